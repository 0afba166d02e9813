"""How much faster is a zoo MobileNetV2 on torch eager after conv-BN folding, and with channels_last too?

Four variants of the same model, timed in interleaved rounds in one process
(the variants' order rotates each round, so a slow spell of the shared machine
hits each in turn): ``unfused``, ``fused`` (the ``fuse`` compression's folding),
``fused+cl`` (``fuse`` with ``channels_last: true``, the input in channels_last
as the torch backend's ``channels_last`` option feeds it) and ``unfused+cl``
(the backend's option alone).  Each round takes each variant's median latency
over ``--time`` seconds of batch-``--batch`` calls under ``torch.inference_mode``;
the figure is the median over rounds of the per-round ratio unfused / variant
(above 1: faster), with a bootstrap 95% CI of that median.  Outputs are checked
equal (1e-4 relative) first.  Writes ``bench/results/fusion-<stamp>.json``.

    python bench/fusion_speed.py                          # 224x224, batch 1, 1 thread, 20 rounds: about 70 s
    python bench/fusion_speed.py --input-size 128 --rounds 10 --json /tmp/f.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("unfused", "fused", "fused+cl", "unfused+cl")


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def median_ci(values: list[float], seed: int = 0, resamples: int = 10_000) -> list[float]:
    """Bootstrap 95% CI of the median of ``values`` (percentile method)."""
    rng = np.random.default_rng(seed)
    data = np.asarray(values)
    medians = np.median(rng.choice(data, size=(resamples, len(data)), replace=True), axis=1)
    return [round(float(np.percentile(medians, 2.5)), 4), round(float(np.percentile(medians, 97.5)), 4)]


def _time(module: Any, x: Any, seconds: float) -> float:
    """Median seconds per call of ``module(x)`` over ``seconds`` (at least 5 calls) after 2 warm-up calls."""
    import torch

    with torch.inference_mode():
        module(x)
        module(x)
        samples: list[float] = []
        end = time.perf_counter() + seconds
        while len(samples) < 5 or time.perf_counter() < end:
            start = time.perf_counter_ns()
            module(x)
            samples.append((time.perf_counter_ns() - start) / 1e9)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    """Build the variants, check their outputs, time them in rotating rounds; print and save the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--time", type=float, default=0.6, help="seconds per variant per round (default 0.6)")
    parser.add_argument("--json", type=Path, help="output file (default bench/results/fusion-<stamp>.json)")
    args = parser.parse_args(argv)

    import torch
    from benchharness_compress.fusion import Fuse, FuseOptions
    from benchharness_torch import module_artifact
    from benchharness_zoo.models import build_model

    from benchharness.api import CompressionContext

    started, load_start = time.time(), _loadavg()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model("mobilenet_v2", width=args.width, input_size=args.input_size, num_classes=1000).eval()
    ctx = CompressionContext(base_dir=Path("."), cache_dir=Path("."), seed=0)
    artifact = module_artifact(model, identity="bench")
    fused = Fuse().apply(artifact, FuseOptions(), ctx).obj
    facts = dict(ctx.facts)
    fused_cl = Fuse().apply(artifact, FuseOptions(channels_last=True), ctx).obj
    unfused_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x = torch.randn(args.batch, 3, args.input_size, args.input_size, generator=torch.Generator().manual_seed(0))
    x_cl = x.contiguous(memory_format=torch.channels_last)
    cases = {
        "unfused": (model, x),
        "fused": (fused, x),
        "fused+cl": (fused_cl, x_cl),
        "unfused+cl": (unfused_cl, x_cl),
    }
    with torch.inference_mode():
        reference = model(x)
        scale = float(reference.abs().max())
        errors = {name: float((m(inp) - reference).abs().max()) / scale for name, (m, inp) in cases.items()}
    assert all(e < 1e-4 for e in errors.values()), errors
    rounds = []
    for i in range(args.rounds):
        order = VARIANTS[i % 4 :] + VARIANTS[: i % 4]
        medians = {name: _time(*cases[name], args.time) for name in order}
        ratios = {name: medians["unfused"] / medians[name] for name in VARIANTS[1:]}
        rounds.append({"round": i, "order": list(order), "median_s": medians, "speedup": ratios, "loadavg": _loadavg()})
        print(f"round {i}: " + ", ".join(f"{n} {medians[n] * 1e3:.2f} ms" for n in VARIANTS)
              + f"; load {_loadavg()[0]}", file=sys.stderr)  # fmt: skip
    summary = {}
    for name in VARIANTS[1:]:
        values = [r["speedup"][name] for r in rounds]
        summary[name] = {"median_speedup": round(statistics.median(values), 4), "ci95": median_ci(values)}
    result = {
        "bench": "fusion_speed",
        "command": "python bench/fusion_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        "loadavg_start": load_start,
        "loadavg_end": _loadavg(),
        "torch": str(torch.__version__),
        "model": f"zoo mobilenet_v2 width {args.width}, {args.input_size}x{args.input_size}, 1000 classes",
        "batch": args.batch,
        "threads": args.threads,
        "fuse_record": facts,
        "max_relative_error": errors,
        "speedup_vs_unfused": summary,
        "note": "speedup = unfused median latency / variant's, per round; median over rounds, bootstrap 95% CI",
        "rounds": rounds,
    }
    out = args.json or RESULTS / f"fusion-{time.strftime('%Y-%m-%dT%H%MZ', time.gmtime(started))}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    for name, figures in summary.items():
        print(f"{name}: {figures['median_speedup']:.3f}x vs unfused (95% CI {figures['ci95'][0]:.3f}-"
              f"{figures['ci95'][1]:.3f})")  # fmt: skip
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
