"""Latency speed-up and digits accuracy of channel pruning (and of magnitude pruning) on ONNX Runtime CPU.

The issue's Done-when: on a digits-trained zoo model, 50% channel pruning gives a measured latency speed-up of
at least 1.5x on ONNX Runtime CPU, and accuracy after fine-tuning within 2 points of the baseline.

What it does, all in one process:

1. builds the zoo model with ``weights: digits`` (trained once into the benchharness cache);
2. applies ``prune-channels`` (``--amount``, fine-tuned ``--finetune-epochs`` on the digits train split) and
   ``prune-magnitude`` (same amount, global scope, not fine-tuned) through the plugins' own ``apply``;
3. exports the three models to ONNX (``dynamo=False``, opset 17, batch 1) and opens one ONNX Runtime session
   each (1 intra-op thread, 1 inter-op thread, sequential);
4. runs ``--rounds`` interleaved rounds; a round times ``--calls`` calls of each model (after 20 warm-up calls)
   and keeps each model's median; the order of the three rotates every round.  The speed-up of a variant is
   the median over rounds of baseline median / variant median, with a bootstrap 95% CI of that median;
5. scores the three models on the digits test split (and the channel-pruned one before fine-tuning).

Run::

    python bench/pruning_speedup.py --out bench/results/pruning-$(date -u +%Y%m%dT%H%M%SZ).json
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _digits(split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    from benchharness_zoo.train import _fed

    return _fed(split, 3, size)


def _top1(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    import torch

    model.eval()
    with torch.inference_mode():
        predicted = torch.cat([model(chunk).argmax(1) for chunk in torch.from_numpy(x).split(256)])
    return round(100.0 * float((predicted.numpy() == y).mean()), 2)


def _session(model: Any, size: int, folder: Path, name: str) -> Any:
    import onnxruntime as ort
    import torch

    path = folder / f"{name}.onnx"
    torch.onnx.export(
        model.eval(), (torch.zeros(1, 3, size, size),), path, dynamo=False, opset_version=17, input_names=["input"]
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _median_ns(session: Any, feed: dict[str, np.ndarray], calls: int) -> float:
    for _ in range(20):
        session.run(None, feed)
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        session.run(None, feed)
        times.append(time.perf_counter_ns() - start)
    return float(np.median(times))


def _bootstrap_median_ci(values: list[float], seed: int = 0, resamples: int = 10000) -> list[float]:
    rng = np.random.default_rng(seed)
    data = np.asarray(values)
    medians = np.median(rng.choice(data, size=(resamples, len(data)), replace=True), axis=1)
    return [round(float(np.percentile(medians, 2.5)), 4), round(float(np.percentile(medians, 97.5)), 4)]


def main(argv: list[str] | None = None) -> int:
    """Measure and print the figures; write them as JSON with ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--amount", type=float, default=0.5)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    import tempfile

    import onnxruntime
    import torch
    from benchharness_compress.pruning import ChannelOptions, ChannelPruning, MagnitudeOptions, MagnitudePruning
    from benchharness_zoo import ZooOptions, ZooSource

    from benchharness.api import CompressionContext, DatasetInputs, InputSpec
    from benchharness.models import default_cache_dir

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    started = time.perf_counter()
    cache = default_cache_dir()
    zoo = ZooOptions(arch=args.arch, width=args.width, input_size=args.input_size, num_classes=10, weights="digits")
    ctx_args = {"base_dir": Path.cwd(), "cache_dir": cache, "seed": args.seed, "model_label": args.arch}
    base = ZooSource().load(zoo, CompressionContext(**ctx_args))
    base.inputs = [InputSpec(name="input", shape=[1, 3, args.input_size, args.input_size], dtype="float32")]

    def loader(split: str | None) -> DatasetInputs:
        x, y = _digits(split or "test", args.input_size)
        return DatasetInputs(name="digits", inputs={"input": x}, labels=y, fed="input", info={"split": split})

    variants: dict[str, Any] = {"baseline": base.obj}
    facts: dict[str, dict[str, Any]] = {}
    plans = {
        "prune-channels": (
            ChannelPruning(),
            ChannelOptions(amount=args.amount, finetune_epochs=args.finetune_epochs, lr=args.lr),
        ),
        "prune-channels-no-finetune": (ChannelPruning(), ChannelOptions(amount=args.amount)),
        "prune-magnitude": (MagnitudePruning(), MagnitudeOptions(amount=args.amount, scope="global")),
    }
    for name, (compression, options) in plans.items():
        ctx = CompressionContext(**ctx_args, dataset_loader=loader)
        t0 = time.perf_counter()
        variants[name] = compression.apply(copy.copy(base), options, ctx).obj
        facts[name] = {**ctx.facts, "seconds": round(time.perf_counter() - t0, 1)}
    test_x, test_y = _digits("test", args.input_size)
    accuracy = {name: _top1(model, test_x, test_y) for name, model in variants.items()}

    timed = ["baseline", "prune-channels", "prune-magnitude"]
    feed = {"input": test_x[:1]}
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {name: _session(variants[name], args.input_size, Path(tmp), name) for name in timed}
        rounds = []
        for r in range(args.rounds):
            order = timed[r % 3 :] + timed[: r % 3]
            medians = {name: _median_ns(sessions[name], feed, args.calls) for name in order}
            rounds.append(medians)
    ratios = {
        name: [round(m["baseline"] / m[name], 4) for m in rounds] for name in ("prune-channels", "prune-magnitude")
    }
    speedup = {
        name: {"median": round(float(np.median(values)), 4), "ci95_bootstrap": _bootstrap_median_ci(values)}
        for name, values in ratios.items()
    }
    load_after = os.getloadavg()
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/pruning_speedup.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": {**zoo.model_dump(), "seed": args.seed},
        "amount": args.amount,
        "finetune": {"epochs": args.finetune_epochs, "lr": args.lr},
        "backend": {"onnxruntime": onnxruntime.__version__, "intra_op_threads": 1, "inter_op_threads": 1, "batch": 1},
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "speedup_vs_baseline": speedup,
        "per_round_ratios": ratios,
        "per_round_median_us": [{k: round(v / 1000, 2) for k, v in m.items()} for m in rounds],
        "test_top1": accuracy,
        "test_top1_drop_after_finetune": round(accuracy["baseline"] - accuracy["prune-channels"], 2),
        "facts": facts,
        "targets": {
            "speedup_at_least_1.5x": speedup["prune-channels"]["median"] >= 1.5,
            "accuracy_within_2_points": accuracy["baseline"] - accuracy["prune-channels"] <= 2.0,
        },
        "load_average": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in load_after]},
        "torch": torch.__version__,
        "seconds": round(time.perf_counter() - started, 1),
    }
    pc = speedup["prune-channels"]
    pm = speedup["prune-magnitude"]
    print(
        f"{args.arch} w{args.width} {args.input_size}px, {args.rounds} interleaved rounds x {args.calls} calls, ORT 1 thread\n"
        f"  prune-channels {args.amount}: speed-up {pc['median']}x (95% CI {pc['ci95_bootstrap']}), "
        f"MACs {facts['prune-channels']['macs_before']} -> {facts['prune-channels']['macs_after']}, "
        f"params {facts['prune-channels']['parameters_before']} -> {facts['prune-channels']['parameters_after']}\n"
        f"  prune-magnitude {args.amount}: speed-up {pm['median']}x (95% CI {pm['ci95_bootstrap']})\n"
        f"  test top-1: baseline {accuracy['baseline']}, channels before fine-tune {accuracy['prune-channels-no-finetune']}, "
        f"after {args.finetune_epochs} epochs {accuracy['prune-channels']}, magnitude {accuracy['prune-magnitude']}\n"
        f"  targets: {result['targets']}; load average before {result['load_average']['before']} "
        f"after {result['load_average']['after']}"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
