"""Run suites/design.yaml (or read its results) and write the design guide's tables, plots and figures.

Latency on this shared 2-core machine is quoted only as ratios taken within
one run: each case runs in ``--repeat`` worker processes, round-robin over the
cases (round 1 runs process 1 of every case, and so on), so a ratio is taken
per round between two cases measured minutes apart, and the median of those
per-round ratios is quoted, with the lowest and highest round beside it.
Two ratios are written: each model against its question's reference
(:data:`design_configs.QUESTIONS`, first entry) on the same backend, and ONNX
Runtime against torch eager for the same model.  Absolute medians are kept in
the JSON for the record, not as findings.  The load average is read before
and after the run and written beside the figures.

Usage::

    python bench/design_guide.py                     # run the suite (--repeat 3), then write everything
    python bench/design_guide.py --results FILE.json # write everything from an existing run

Writes ``docs/img/design-<question>.png`` (accuracy against relative latency),
``docs/img/design-activation-latency.png`` (latency by activation),
``bench/results/design-<stamp>.json`` (every figure) and prints the markdown
tables that docs/design-guide.md embeds (also saved as ``bench/results/design-<stamp>.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from design_configs import COMMON, QUESTIONS, TOLERANCES, Config  # noqa: E402

BACKENDS = ("torch", "onnxruntime")
QUESTION_TITLES = {
    "width-depth": "Width vs depth at ~0.7 M parameters (ResNet)",
    "activation": "Activation (MobileNetV2 w0.55)",
    "blocks": "Block family at ~2.4 M MACs",
}


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def run_suite(suite: Path, repeat: int, output: Path) -> tuple[Path, dict[str, Any]]:
    """Run ``suite`` with ``benchharness run --repeat``; return its results file and the run's conditions."""
    before = load_average()
    started = time.time()
    command = [sys.executable, "-m", "benchharness", "run", str(suite), "--repeat", str(repeat), "-o", str(output)]
    proc = subprocess.run(command, text=True)
    if proc.returncode not in (0, 1):  # 1: a case failed, which the tables show
        raise SystemExit(f"design_guide: {' '.join(command)} exited {proc.returncode}")
    files = sorted(output.glob("*.json"))
    if not files:
        raise SystemExit(f"design_guide: the run wrote no results file under {output}")
    conditions = {
        "command": " ".join(["benchharness", "run", os.path.relpath(suite, ROOT), "--repeat", str(repeat)]),
        "wall_seconds": round(time.time() - started, 1),
        "load_before": before,
        "load_after": load_average(),
    }
    return files[-1], conditions


def _label(case: Any) -> str:
    return case.case_id.split("/")[0]


def per_process(case: Any, metric: str) -> dict[int, float]:
    """The headline value of ``metric`` in each worker process of ``case`` that ended ok, by process index."""
    if case.processes:
        return {
            run.index: run.metrics[metric].value
            for run in case.processes
            if run.status == "ok" and metric in run.metrics and run.metrics[metric].value is not None
        }
    value = case.metrics.get(metric)
    return {1: value.value} if case.status == "ok" and value is not None and value.value is not None else {}


def training_report(case: Any) -> dict[str, Any] | None:
    """The digits training facts the zoo recorded for ``case``'s model (first process): top-1, seconds, cache hit."""
    if case is None:
        return None
    runtimes = [run.runtime for run in case.processes] or [case.runtime]
    for runtime in runtimes:
        if runtime.model is not None and "training" in runtime.model.info:
            training = runtime.model.info["training"]
            return {key: training.get(key) for key in ("test_top1", "train_seconds", "epochs", "threads", "cache_hit")}
    return None


def paired_ratio(numerator: dict[int, float], denominator: dict[int, float]) -> dict[str, Any] | None:
    """Median, lowest and highest of the per-round ratios ``numerator / denominator`` (rounds both have)."""
    rounds = sorted(set(numerator) & set(denominator))
    if not rounds:
        return None
    ratios = [numerator[r] / denominator[r] for r in rounds]
    return {
        "median": statistics.median(ratios),
        "low": min(ratios),
        "high": max(ratios),
        "rounds": len(ratios),
        "per_round": [round(x, 4) for x in ratios],
    }


def figures(results: Any) -> dict[str, Any]:
    """Every figure the guide quotes, by question, model and backend, from one run's results."""
    cases = {case.case_id: case for case in results.cases}

    def case_of(config: Config, backend: str) -> Any:
        return cases.get(f"{config.label}/none/{backend}/cpu/latency/b1")

    out: dict[str, Any] = {}
    for question, configs in QUESTIONS.items():
        rows = []
        for config in configs:
            row: dict[str, Any] = {"model": config.label, "arch": config.arch, "width": config.width}
            row.update(depth=config.depth, activation=config.activation)
            torch_case = case_of(config, "torch")
            row["training"] = training_report(torch_case)
            for backend in BACKENDS:
                case = case_of(config, backend)
                reference = case_of(configs[0], backend)
                if case is None:
                    row[backend] = {"status": "missing"}
                    continue
                latency = per_process(case, "latency")
                entry: dict[str, Any] = {
                    "status": case.status,
                    "error": case.error,
                    "latency_ms_per_process": {str(k): v for k, v in latency.items()},
                    "vs_reference": paired_ratio(latency, per_process(reference, "latency")) if reference else None,
                }
                if backend != "torch" and torch_case is not None:
                    entry["vs_torch"] = paired_ratio(latency, per_process(torch_case, "latency"))
                for metric in ("accuracy", "parameters", "macs", "model_size"):
                    value = case.metrics.get(metric)
                    entry[metric] = None if value is None else value.value
                row[backend] = entry
            rows.append(row)
        out[question] = rows
    return out


def cpu_time_rounds(rounds: int, calls: int) -> dict[str, Any]:
    """CPU time per inference of every design model, torch eager and ONNX Runtime, in one process, one thread.

    Wall-clock medians on a machine with more runnable threads than cores are
    biased by length: an inference shorter than the scheduler's time slice
    mostly runs unpreempted (its median is clean), a longer one is preempted
    in nearly every call (its median grows with the load).  The time the
    calling thread spends on the CPU (``time.thread_time_ns``; both frameworks
    compute on the calling thread at one thread) does not count the time it
    waits, so it stays comparable under load.  Each round runs every model on
    both backends (``calls`` inferences each, the median kept) in the same
    order; ratios are taken per round, as for the suite's figures.
    """
    import numpy as np
    import onnxruntime as ort
    import torch
    from benchharness_metrics.macs import export_torch_to_onnx
    from benchharness_zoo import ZooOptions, ZooSource

    from benchharness.api import ModelContext
    from benchharness.models import default_cache_dir

    torch.set_num_threads(1)
    context = ModelContext(base_dir=ROOT, cache_dir=default_cache_dir(), seed=0)
    configs = list(dict.fromkeys(config for configs in QUESTIONS.values() for config in configs))
    runners: dict[tuple[str, str], Any] = {}
    x = torch.rand(
        1, COMMON["in_channels"], COMMON["input_size"], COMMON["input_size"], generator=torch.Generator().manual_seed(0)
    )
    for config in configs:
        module = ZooSource().load(ZooOptions(arch=config.arch, **config.options()), context).obj
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        graph = export_torch_to_onnx(module, [x], ["input"]).SerializeToString()
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        feed = {"input": x.numpy()}

        def run_torch(module: Any = module) -> None:
            with torch.inference_mode():
                module(x)

        runners[config.label, "torch"] = run_torch
        runners[config.label, "onnxruntime"] = lambda session=session, feed=feed: session.run(None, feed)
    for run in runners.values():  # warm-up
        for _ in range(max(5, calls // 10)):
            run()
    medians: dict[tuple[str, str], list[float]] = {key: [] for key in runners}
    before = load_average()
    for _ in range(rounds):
        for key, run in runners.items():
            times = []
            for _ in range(calls):
                start = time.thread_time_ns()
                run()
                times.append(time.thread_time_ns() - start)
            medians[key].append(float(np.median(times)) / 1e6)
    out: dict[str, Any] = {
        "method": f"median thread CPU time of {calls} calls per model and backend, {rounds} rounds, one process",
        "load_before": before,
        "load_after": load_average(),
        "questions": {},
    }
    for question, question_configs in QUESTIONS.items():
        reference = question_configs[0].label
        rows = []
        for config in question_configs:
            row: dict[str, Any] = {"model": config.label}
            for backend in BACKENDS:
                mine = dict(enumerate(medians[config.label, backend]))
                row[backend] = {
                    "cpu_ms_per_round": [round(v, 5) for v in medians[config.label, backend]],
                    "vs_reference": paired_ratio(mine, dict(enumerate(medians[reference, backend]))),
                }
            row["onnxruntime"]["vs_torch"] = paired_ratio(
                dict(enumerate(medians[config.label, "onnxruntime"])), dict(enumerate(medians[config.label, "torch"]))
            )
            rows.append(row)
        out["questions"][question] = rows
    return out


def cpu_markdown(cpu: dict[str, Any]) -> str:
    """The CPU-time ratios as one markdown table per question."""
    parts = [f"CPU time per inference ({cpu['method']}; load {cpu['load_before']} -> {cpu['load_after']})\n"]
    for question, rows in cpu["questions"].items():
        parts.append(f"**{QUESTION_TITLES[question]}**, CPU time (reference: {rows[0]['model']})\n")
        parts.append("| model | CPU time vs ref, torch | CPU time vs ref, ORT | ORT / torch |")
        parts.append("|---|---:|---:|---:|")
        for row in rows:
            parts.append(
                f"| {row['model']} | {_ratio_text(row['torch']['vs_reference'])} | "
                f"{_ratio_text(row['onnxruntime']['vs_reference'])} | {_ratio_text(row['onnxruntime']['vs_torch'])} |"
            )
        parts.append("")
    return "\n".join(parts)


def _check_latency_unit(results: Any) -> None:
    """Latency is in milliseconds in the results file; checked so a change of unit is not misread."""
    units = {case.metrics["latency"].unit for case in results.cases if "latency" in case.metrics}
    if units - {"ms"}:
        raise SystemExit(f"design_guide: latency units {sorted(units)}, expected 'ms'")


def _ratio_text(ratio: dict[str, Any] | None) -> str:
    if ratio is None:
        return "-"
    digits = 2 if ratio["low"] >= 0.1 else 3
    return f"{ratio['median']:.{digits}f} ({ratio['low']:.{digits}f}-{ratio['high']:.{digits}f})"


def _accuracy(entry: dict[str, Any]) -> str:
    value = entry.get("accuracy")
    return "-" if value is None else f"{value:.1f}"


def markdown(data: dict[str, Any]) -> str:
    """One markdown table per question: counts, accuracy and relative latency per backend."""
    parts = []
    for question, rows in data["questions"].items():
        figure, allowed = TOLERANCES[question]
        parts.append(f"**{QUESTION_TITLES[question]}** (reference: {rows[0]['model']}; {figure} matched)\n")
        parts.append(
            "| model | parameters (M) | MACs (M) | top-1 % torch | top-1 % ORT | latency vs ref, torch | "
            "latency vs ref, ORT | ORT / torch |"
        )
        parts.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            torch_entry, ort_entry = row["torch"], row["onnxruntime"]
            counts = torch_entry if torch_entry.get("parameters") is not None else ort_entry
            parameters = counts.get("parameters")
            macs = counts.get("macs")
            parts.append(
                f"| {row['model']} | {'-' if parameters is None else f'{parameters:.3f}'} | "
                f"{'-' if macs is None else f'{macs:.3f}'} | {_accuracy(torch_entry)} | {_accuracy(ort_entry)} | "
                f"{_ratio_text(torch_entry.get('vs_reference'))} | {_ratio_text(ort_entry.get('vs_reference'))} | "
                f"{_ratio_text(ort_entry.get('vs_torch'))} |"
            )
        parts.append("")
    return "\n".join(parts)


def plot(data: dict[str, Any], img_dir: Path) -> list[Path]:
    """Accuracy against relative latency per question, and latency by activation; the PNGs written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    written = []
    markers = {"torch": "o", "onnxruntime": "s"}
    for question, rows in data["questions"].items():
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for backend in BACKENDS:
            points = [
                (row[backend]["vs_reference"], row[backend].get("accuracy"), row["model"])
                for row in rows
                if row[backend].get("vs_reference") and row[backend].get("accuracy") is not None
            ]
            if not points:
                continue
            xs = [p[0]["median"] for p in points]
            errors = [[p[0]["median"] - p[0]["low"] for p in points], [p[0]["high"] - p[0]["median"] for p in points]]
            ys = [p[1] for p in points]
            ax.errorbar(xs, ys, xerr=errors, fmt=markers[backend], capsize=3, label=backend)
            for x, y, point in zip(xs, ys, points, strict=True):
                if backend != "onnxruntime":  # one label per model
                    continue
                ax.annotate(point[2], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel(f"latency relative to {rows[0]['model']} (same backend; median of rounds, bars: range)")
        ax.set_ylabel("digits test top-1 (%)")
        ax.set_title(QUESTION_TITLES[question], fontsize=10)
        ax.axvline(1.0, color="grey", linewidth=0.5)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = img_dir / f"design-{question}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    panels = [("wall clock, suite (3 rounds)", data["questions"]["activation"])]
    if "cpu_time" in data:
        panels.append(("thread CPU time, one process (5 rounds)", data["cpu_time"]["questions"]["activation"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels) / 1.4, 3.6), squeeze=False, sharey=True)
    width = 0.38
    for ax, (title, rows) in zip(axes[0], panels, strict=True):
        for offset, backend in zip((-width / 2, width / 2), BACKENDS, strict=True):
            ratios = [row[backend].get("vs_reference") for row in rows]
            xs = [i + offset for i, r in enumerate(ratios) if r]
            medians = [r["median"] for r in ratios if r]
            errors = [[r["median"] - r["low"] for r in ratios if r], [r["high"] - r["median"] for r in ratios if r]]
            ax.bar(xs, medians, width, yerr=errors, capsize=3, label=backend)
        ax.set_xticks(range(len(rows)), [config.activation for config in QUESTIONS["activation"]])
        ax.axhline(1.0, color="grey", linewidth=0.5)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("latency relative to ReLU (median, bars: range)")
    fig.suptitle("Latency by activation, MobileNetV2 w0.55, 1 thread", fontsize=10)
    fig.tight_layout()
    path = img_dir / "design-activation-latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Run or read the design suite's results and write the guide's tables, plots and JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="a results file of suites/design.yaml (default: run it now)")
    parser.add_argument("--suite", type=Path, default=ROOT / "suites" / "design.yaml")
    parser.add_argument("--repeat", type=int, default=3, help="worker processes per case (default 3)")
    parser.add_argument("--img-dir", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--note", help="with --results: how that run went (its load average, its wall time)")
    parser.add_argument(
        "--cpu-rounds",
        type=int,
        default=5,
        help="rounds of the in-process CPU-time measurement of the trained models (0: skip; default 5)",
    )
    parser.add_argument("--cpu-calls", type=int, default=200, help="inferences per model, backend and round")
    args = parser.parse_args(argv)
    from benchharness.results import load_results

    if args.results is None:
        with tempfile.TemporaryDirectory() as tmp:
            results_path, conditions = run_suite(args.suite.resolve(), args.repeat, Path(tmp))
            results = load_results(results_path)
    else:
        results = load_results(args.results)
        conditions = {"results_file": str(args.results), "note": args.note}
    if results.suite.name != "design":
        raise SystemExit(f"design_guide: {args.results} is a run of suite {results.suite.name!r}, not 'design'")
    _check_latency_unit(results)
    data = {
        "run_id": results.run_id,
        "started_at": results.started_at,
        "finished_at": results.finished_at,
        "machine": results.machine.model_dump(mode="json"),
        "conditions": conditions,
        "latency_note": "ratios of per-process medians, paired by round (process index), median over rounds",
        "questions": figures(results),
    }
    if args.cpu_rounds > 0:
        data["cpu_time"] = cpu_time_rounds(args.cpu_rounds, args.cpu_calls)
    stamp = f"{results.started_at[:13]}{results.started_at[14:16]}Z"  # 2026-11-30T0645Z
    args.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.out_dir / f"design-{stamp}.json"
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    tables = markdown(data)
    if "cpu_time" in data:
        tables += "\n" + cpu_markdown(data["cpu_time"])
    (args.out_dir / f"design-{stamp}.md").write_text(tables)
    images = plot(data, args.img_dir)
    print(tables)
    print(f"load average: {conditions}", file=sys.stderr)
    print(f"wrote {json_path} and {', '.join(str(p) for p in images)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
