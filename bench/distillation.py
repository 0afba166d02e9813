"""Does distillation improve a small zoo student over training it alone?  (issue 10, part 4: Done-when)

On scikit-learn's digits (8x8 greyscale, fed at ``--input-size`` as a suite's
``dataset: {name: digits}`` feeds them), a teacher is trained with the zoo's
recipe (``benchharness_zoo.train.train``), then for each seed the ``distill``
compression itself trains the student twice from the same initial weights,
batches and shifts: distilled (``alpha``, ``temperature``) and alone
(``alpha = 0``).  Reported: the test-split top-1 of both per seed, their means
and the paired differences (mean, seeds improved, a paired t-test's 95% CI and
the exact two-sided Wilcoxon signed-rank p).  The verdict says plainly whether
distillation helped.  Writes ``bench/results/distillation-<stamp>.json``.

    python bench/distillation.py                # the defaults below; about 5 minutes on 2 loaded cores
    python bench/distillation.py --seeds 3 --epochs 2 --json /tmp/d.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _digits_loader(in_channels: int, input_size: int) -> Any:
    """A ``CompressionContext.dataset_loader`` giving digits splits fed as the zoo's training feeds them."""
    from benchharness_zoo.train import _fed

    from benchharness.api import DatasetInputs

    def load(split: str | None) -> DatasetInputs:
        images, labels = _fed(split or "test", in_channels, input_size)
        return DatasetInputs(name="digits", inputs={"input": images}, labels=labels, fed="input", info={"split": split})

    return load


def paired(distilled: list[float], alone: list[float]) -> dict[str, Any]:
    """Paired comparison of per-seed top-1: differences, their mean, seeds improved, t-test CI, Wilcoxon p."""
    from scipy import stats

    gains = [round(d - a, 3) for d, a in zip(distilled, alone, strict=True)]
    out: dict[str, Any] = {
        "gains": gains,
        "mean_gain": round(statistics.fmean(gains), 3),
        "seeds_improved": sum(g > 0 for g in gains),
        "seeds_worse": sum(g < 0 for g in gains),
    }
    if len(gains) >= 2 and statistics.pstdev(gains) > 0:
        test = stats.ttest_rel(distilled, alone)
        ci = test.confidence_interval(0.95)
        out["t_test"] = {"p": round(float(test.pvalue), 4), "ci95": [round(float(ci.low), 3), round(float(ci.high), 3)]}
    if any(gains):
        out["wilcoxon_p"] = round(float(stats.wilcoxon(distilled, alone, method="exact").pvalue), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    """Train the teacher, then the student distilled and alone for each seed; print and save the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="resnet:0.5:0.5", help="arch:width:depth (default resnet:0.5:0.5)")
    parser.add_argument("--student", default="resnet:0.125:0.25", help="arch:width:depth (default resnet:0.125:0.25)")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=4, help="student epochs, both ways (default 4)")
    parser.add_argument("--alpha", type=float, default=0.7)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--json", type=Path, help="output file (default bench/results/distillation-<stamp>.json)")
    args = parser.parse_args(argv)

    import torch
    from benchharness_compress.distillation import Distill, DistillOptions
    from benchharness_torch import module_artifact
    from benchharness_zoo import ZooOptions
    from benchharness_zoo.train import train

    from benchharness.api import CompressionContext, InputSpec

    started, load_start = time.time(), _loadavg()
    t_arch, t_width, t_depth = args.teacher.split(":")
    s_arch, s_width, s_depth = args.student.split(":")
    teacher_options = ZooOptions(arch=t_arch, width=float(t_width), depth=float(t_depth), input_size=args.input_size,
                                 in_channels=1, num_classes=10, weights="digits")  # fmt: skip
    torch.set_num_threads(1)
    print(f"training the teacher {args.teacher} (zoo recipe), load {load_start}", file=sys.stderr)
    teacher, teacher_report = train(teacher_options, seed=0)
    print(f"teacher: test top-1 {teacher_report['test_top1']}% in {teacher_report['train_seconds']} s", file=sys.stderr)
    artifact = module_artifact(teacher, identity=f"teacher:{args.teacher}")
    artifact.inputs = [InputSpec(name="input", shape=[1, 1, args.input_size, args.input_size], dtype="float32")]
    options = DistillOptions(
        student={"arch": s_arch, "width": float(s_width), "depth": float(s_depth)},
        temperature=args.temperature, alpha=args.alpha, epochs=args.epochs, compare_alone=True,
    )  # fmt: skip
    rounds = []
    with __import__("tempfile").TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            ctx = CompressionContext(base_dir=Path(tmp), cache_dir=Path(tmp), seed=seed, model_label="teacher",
                                     dataset_loader=_digits_loader(1, args.input_size))  # fmt: skip
            t0 = time.perf_counter()
            Distill().apply(artifact, options, ctx)
            facts = dict(ctx.facts, seed=seed, seconds=round(time.perf_counter() - t0, 1), loadavg=_loadavg())
            rounds.append(facts)
            print(f"seed {seed}: distilled {facts['student_top1']}%, alone {facts['alone_top1']}% "
                  f"(gain {facts['top1_gain']:+.3f}), {facts['seconds']} s, load {facts['loadavg']}", file=sys.stderr)  # fmt: skip
    distilled = [r["student_top1"] for r in rounds]
    alone = [r["alone_top1"] for r in rounds]
    comparison = paired(distilled, alone)
    helped = (
        comparison["mean_gain"] > 0 and comparison.get("wilcoxon_p", 1.0) <= 0.0625 and not comparison["seeds_worse"]
    )
    means = f"mean test top-1 {statistics.fmean(distilled):.2f}% distilled vs {statistics.fmean(alone):.2f}% alone"
    counts = f"better on {comparison['seeds_improved']}/{len(rounds)} seeds, worse on {comparison['seeds_worse']}"
    hurt = comparison["mean_gain"] < 0 and comparison.get("wilcoxon_p", 1.0) <= 0.0625
    if helped:
        verdict = f"distillation improved the student: {means}, {counts}"
    elif hurt:
        verdict = f"distillation made the student WORSE: {means}, {counts}"
    else:
        verdict = f"distillation did NOT clearly improve the student: {means}, {counts}"
    result = {
        "bench": "distillation",
        "command": "python bench/distillation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        "loadavg_start": load_start,
        "loadavg_end": _loadavg(),
        "torch": str(torch.__version__),
        "threads": 1,
        "teacher": {"spec": args.teacher, **teacher_report},
        "student": args.student,
        "options": options.model_dump(mode="json"),
        "split_scored": "test (450 digits; never trained on)",
        "rounds": rounds,
        "distilled_top1": {"mean": round(statistics.fmean(distilled), 3), "per_seed": distilled},
        "alone_top1": {"mean": round(statistics.fmean(alone), 3), "per_seed": alone},
        "paired": comparison,
        "std": {
            "distilled": round(float(np.std(distilled, ddof=1)), 3) if len(rounds) > 1 else None,
            "alone": round(float(np.std(alone, ddof=1)), 3) if len(rounds) > 1 else None,
        },  # fmt: skip
        "verdict": verdict,
    }
    out = args.json or RESULTS / f"distillation-{time.strftime('%Y-%m-%dT%H%MZ', time.gmtime(started))}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(verdict)
    print(f"paired: {json.dumps(comparison)}; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
