"""Speed and accuracy of quantized variants against float32, measured in one process, interleaved, 1 thread.

For each digits-trained zoo model (input 32, batch 1), builds with the benchharness compressions:
ONNX Runtime float32, static int8 (QDQ, per channel, 256 training samples), dynamic int8 and fp16; OpenVINO
float32 (the same ONNX) and NNCF int8 (300 training samples).  Each round times CALLS calls of every variant of a
runtime in a rotated order (so no variant always runs first) and takes each variant's median call; the figure is
the median over ROUNDS of the per-round ratio variant/float32 (>1: slower), with a distribution-free 95% CI of
that median (order statistics).  Accuracy is top-1 on the digits TEST split (the quantizers calibrate on TRAIN).

    python bench/quantization_speed.py                      # mobilenet_v2 w0.25 and resnet w0.25 d0.5
    python bench/quantization_speed.py --rounds 15 --calls 200 --arch resnet

Writes bench/results/quantization-<UTC stamp>.json and prints a summary table.  Ratios only: absolute times on
a shared machine mean little.  The load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for sub in ("plugins",):
    if str(ROOT / sub) not in sys.path:
        sys.path.insert(0, str(ROOT / sub))

MODELS = {
    "mobilenet_v2": {"arch": "mobilenet_v2", "width": 0.25},
    "resnet": {"arch": "resnet", "width": 0.25, "depth": 0.5},
}


def median_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median: the order statistics whose binomial coverage reaches ``confidence``."""
    from scipy.stats import binom

    ordered = sorted(values)
    n = len(ordered)
    lo = int(binom.ppf((1 - confidence) / 2, n, 0.5))  # 0-based index of the lower bound
    lo = max(0, min(lo, n - 1))
    hi = max(0, n - 1 - lo)
    return ordered[lo], ordered[hi]


def digits_split(split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The digits split fed as the zoo trains on it: float32 NCHW, 3 channels, ``size`` pixels square."""
    from benchharness_datasets.digits import load_split

    from benchharness.api import DatasetSpec, feed_dataset
    from benchharness.signature import InputSpec

    data = load_split(split)
    spec = InputSpec(name="input", shape=["batch", 3, size, size], dtype="float32")
    return feed_dataset(data, DatasetSpec(name="digits"), spec), np.asarray(data.labels)


def build_variants(name: str, cache: Path, work: Path) -> dict[str, dict[str, Any]]:
    """The model's variants: ``{label: {runtime, path, facts}}``, each built by the benchharness compression."""
    import torch
    from benchharness_compress import quantization as q
    from benchharness_torch import ONNX_OPSET
    from benchharness_zoo import ZooOptions, ZooSource

    from benchharness.api import CompressionContext, DatasetInputs, ModelArtifact, ModelContext
    from benchharness.signature import InputSpec

    options = ZooOptions(
        input_size=32, num_classes=10, weights="digits", **MODELS[name]
    )  # trained on digits once, cached
    module = ZooSource().load(options, ModelContext(base_dir=ROOT, cache_dir=cache, seed=0)).obj
    work.mkdir(parents=True, exist_ok=True)
    fp32 = work / f"{name}-fp32.onnx"
    torch.onnx.export(
        module, (torch.zeros(1, 3, 32, 32),), str(fp32), input_names=["input"], dynamo=False, opset_version=ONNX_OPSET
    )
    artifact = ModelArtifact(
        format="onnx", content_hash=name, path=fp32, inputs=[InputSpec(name="input", shape=[1, 3, 32, 32])]
    )
    train_x, train_y = digits_split("train", 32)

    def loader(split: str | None) -> DatasetInputs:
        assert split == "train"
        return DatasetInputs(
            name="digits", inputs={"input": train_x}, labels=train_y, fed="input", info={"split": split}
        )

    variants: dict[str, dict[str, Any]] = {
        "ort fp32": {"runtime": "onnxruntime", "path": fp32, "facts": {}},
        "ov fp32": {"runtime": "openvino", "path": fp32, "facts": {}},
        # OpenVINO's CPU plugin computes in bfloat16 by default where the CPU has it (AMX/AVX512_BF16 here)
        "ov bf16 (precision hint)": {"runtime": "openvino", "path": fp32, "facts": {}, "precision": "bf16"},
    }
    steps = [
        ("ort static int8 (QDQ)", "onnxruntime", q.QuantizeOrtStatic, {"calibration_samples": 256}),
        ("ort dynamic int8", "onnxruntime", q.QuantizeOrtDynamic, {}),
        ("ort fp16", "onnxruntime", q.HalfOnnx, {}),
        ("ov nncf int8", "openvino", q.QuantizeNncf, {"subset_size": 300}),
    ]
    for label, runtime, cls, opts in steps:
        ctx = CompressionContext(base_dir=ROOT, cache_dir=cache, seed=0, dataset_loader=loader)
        compression = cls()
        out = compression.apply(artifact, cls.Options(**opts), ctx)
        folder = work / f"{name}-{cls.name}"
        folder.mkdir(exist_ok=True)
        path = compression.save(out, folder)
        variants[label] = {"runtime": runtime, "path": path, "facts": ctx.facts}
    return variants


def runner(runtime: str, path: Path, precision: str = "f32") -> Any:
    """A callable running the model on one (1, 3, 32, 32) array, with 1 thread (OpenVINO: ``precision`` explicit)."""
    if runtime == "onnxruntime":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    import openvino

    compiled = openvino.Core().compile_model(
        str(path),
        "CPU",
        {
            "INFERENCE_NUM_THREADS": 1,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": precision,
        },
    )
    request = compiled.create_infer_request()
    return lambda x: request.infer([x])[0].copy()


def accuracy(run: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 over every test sample, one at a time (the models take batch 1)."""
    hits = sum(int(run(x[i : i + 1]).argmax()) == int(y[i]) for i in range(len(x)))
    return hits / len(x)


def measure(runs: dict[str, Any], sample: np.ndarray, rounds: int, calls: int) -> dict[str, list[float]]:
    """Per-round median call time (ns) of each variant, variants interleaved in a rotated order every round."""
    labels = list(runs)
    for label in labels:  # warm up
        for _ in range(20):
            runs[label](sample)
    medians: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(rounds):
        order = labels[r % len(labels) :] + labels[: r % len(labels)]
        for label in order:
            run = runs[label]
            times = []
            for _ in range(calls):
                t0 = time.perf_counter_ns()
                run(sample)
                times.append(time.perf_counter_ns() - t0)
            medians[label].append(statistics.median(times))
    return medians


def main(argv: list[str] | None = None) -> int:
    """Build, measure, write the JSON, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("BENCHHARNESS_CACHE", "/tmp/bh-quant-cache")))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    import nncf
    import onnxruntime
    import openvino
    import torch

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    started = dt.datetime.now(dt.timezone.utc)
    results: dict[str, Any] = {
        "command": "python bench/quantization_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": started.isoformat(timespec="seconds"),
        "host": {
            "cpu": platform.processor() or platform.machine(),
            "torch_capability": torch.backends.cpu.get_cpu_capability(),
        },
        "versions": {
            "onnxruntime": onnxruntime.__version__,
            "openvino": openvino.get_version(),
            "nncf": nncf.__version__,
        },
        "threads": 1,
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "load_before": load_before,
        "models": {},
    }
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    results["host"]["isa"] = [
        f for f in flags if f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_fp16")
    ]
    test_x, test_y = digits_split("test", 32)
    sample = np.ascontiguousarray(test_x[:1])
    for name in args.arch:
        variants = build_variants(name, args.cache, args.cache / "quantization-bench")
        runs = {label: runner(v["runtime"], v["path"], v.get("precision", "f32")) for label, v in variants.items()}
        acc = {label: accuracy(run, test_x, test_y) for label, run in runs.items()}
        medians: dict[str, list[float]] = {}
        for runtime in ("onnxruntime", "openvino"):
            mine = {label: runs[label] for label, v in variants.items() if v["runtime"] == runtime}
            medians.update(measure(mine, sample, args.rounds, args.calls))
        table = {}
        for label, v in variants.items():
            base = "ort fp32" if v["runtime"] == "onnxruntime" else "ov fp32"
            ratios = [a / b for a, b in zip(medians[label], medians[base], strict=True)]
            lo, hi = median_ci(ratios)
            table[label] = {
                "runtime": v["runtime"],
                "baseline": base,
                "time_ratio": statistics.median(ratios),
                "ratio_ci95": [lo, hi],
                "per_round_ratios": ratios,
                "top1_test": acc[label],
                "top1_delta_vs_baseline": acc[label] - acc[base],
                "file_bytes": sum(p.stat().st_size for p in Path(v["path"]).parent.glob(Path(v["path"]).stem + ".*")),
                "facts": v["facts"],
            }
        results["models"][name] = {"variants": table, "test_samples": len(test_y)}
    results["load_after"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"quantization-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"load average before {load_before[0]:.2f}, after {results['load_after'][0]:.2f}; wrote {out}")
    print(f"{'model':<14}{'variant':<24}{'time vs fp32':>14}{'95% CI':>16}{'top-1':>8}{'delta':>8}")
    for name, model in results["models"].items():
        for label, row in model["variants"].items():
            lo, hi = row["ratio_ci95"]
            verdict = "slower" if lo > 1 else "faster" if hi < 1 else "n.s."
            print(
                f"{name:<14}{label:<24}{row['time_ratio']:>9.2f}x {verdict:<5}{f'[{lo:.2f}, {hi:.2f}]':>15}"
                f"{row['top1_test']:>8.3f}{row['top1_delta_vs_baseline']:>+8.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
