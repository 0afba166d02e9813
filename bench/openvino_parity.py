"""Does the harness measure OpenVINO as OpenVINO's own benchmark_app does?  (issue 7)

One ONNX file (a zoo MobileNetV2, width 1.0, 224x224, 1000 classes, exported once) is run, in
interleaved rounds within this one job, four ways:

  latency    harness: openvino backend, hint latency, f32, the ``latency`` scenario (one reused
             request, InferRequest.infer() with its inputs set once), median of its samples
             benchmark_app -api sync -hint latency -infer_precision f32: its "Median"
  throughput harness: openvino backend, hint throughput, f32, the ``throughput`` scenario with the
             backend's optimal number of requests: items/s
             benchmark_app -api async -hint throughput -infer_precision f32: its "Throughput"

The figure quoted is the ratio harness / benchmark_app within a round; the verdict is on the
median ratio over rounds (target 0.95 to 1.05 for both).  Absolute times on a shared machine are
not comparable across processes; ratios taken in the same round are.  Two ways to pair the sides:

  --mode sequential  (the default) each round runs the sides one after the other, on all the
                     cores, in an order that alternates between rounds.  On a shared 2-core VM
                     the machine's speed drifts between the runs of a round: per-round ratios
                     spread over 0.65-1.5.
  --mode concurrent  each round runs both sides at the same time, each pinned to a core of its
                     own with one inference thread (the harness through the cpu target's
                     `cores`, benchmark_app through `taskset` and `-nthreads 1`), swapping cores
                     between rounds.  A slowdown of the machine then hits both sides of a round
                     alike.  benchmark_app starts --delay seconds after the harness, so that
                     their measured windows overlap (the harness spends that long starting its
                     worker, compiling and warming up).

    python bench/openvino_parity.py                        # 5 rounds of 5 s per side, about 4 minutes
    python bench/openvino_parity.py --mode concurrent --rounds 30 --time 6 \
        --json bench/results/openvino-$(date -u +%Y-%m-%dT%H%MZ).json

Always exits 0 (a benchmark, not a test); prints PASS/FAIL per target.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pairing import fixed_time_measure, only_case, run_command, run_together, verdict

ROOT = Path(__file__).resolve().parent.parent
MODEL = {"arch": "mobilenet_v2", "width": 1.0, "input_size": 224, "num_classes": 1000}


def export(path: Path) -> None:
    """The zoo model to ONNX, in a child process so this driver never imports torch."""
    code = f"""
import sys, torch
sys.path.insert(0, {str(ROOT / "plugins")!r})
from benchharness_zoo.models import build_model
torch.manual_seed(0)
m = build_model({MODEL["arch"]!r}, width={MODEL["width"]}, input_size={MODEL["input_size"]},
                num_classes={MODEL["num_classes"]}).eval()
with torch.no_grad():
    torch.onnx.export(m, (torch.rand(1, 3, {MODEL["input_size"]}, {MODEL["input_size"]}),), {str(path)!r},
                      dynamo=False, opset_version=17, input_names=["input"], output_names=["logits"])
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def suite(path: Path, model: Path, scenario: str, seconds: float, core: int | None = None) -> Path:
    hint = "latency" if scenario == "latency" else "throughput"
    metrics = "[latency]" if scenario == "latency" else "[throughput, request_latency]"
    target = f"targets: [{{name: cpu, threads: 1, cores: [{core}]}}]\n" if core is not None else ""
    path.write_text(
        f"name: ov-{scenario}\n"
        f"models: [{{source: onnx, path: {model}, name: mnv2}}]\n"
        f"backends: [{{name: openvino, hint: {hint}, precision: f32}}]\n"
        f"{target}"
        f"scenarios: [{scenario}]\n"
        f"metrics: {metrics}\n" + fixed_time_measure(seconds)
    )
    return path


def harness(suite_path: Path, out: Path, scenario: str) -> dict[str, Any]:
    done = subprocess.run(run_command(suite_path, out), capture_output=True, text=True)
    return harness_result(done, scenario)


def harness_result(done: subprocess.CompletedProcess, scenario: str) -> dict[str, Any]:
    case = only_case(done)
    metrics = case["metrics"]
    if scenario == "latency":
        summary = metrics["latency"]["summary"]
        return {"value": metrics["latency"]["value"], "samples": summary["count"], "min": summary["min"] / 1e6,
                "backend": case["runtime"]["backend"]}  # fmt: skip
    details = metrics["throughput"]["details"]
    return {"value": metrics["throughput"]["value"], "requests": details["requests"],
            "concurrency": details["concurrency"], "backend": case["runtime"]["backend"]}  # fmt: skip


def benchmark_app_command(model: Path, scenario: str, seconds: float, core: int | None = None) -> list[str]:
    api, hint = ("sync", "latency") if scenario == "latency" else ("async", "throughput")
    tool = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    cmd = [
        tool,
        "-m",
        str(model),
        "-d",
        "CPU",
        "-api",
        api,
        "-hint",
        hint,
        "-t",
        str(seconds),
        "-infer_precision",
        "f32",
    ]
    if core is not None:
        cmd = ["taskset", "-c", str(core), *cmd]  # OpenVINO sizes its threads and streams to the affinity
    return cmd


def benchmark_app(model: Path, scenario: str, seconds: float) -> dict[str, Any]:
    done = subprocess.run(benchmark_app_command(model, scenario, seconds), capture_output=True, text=True)
    return benchmark_app_result(done, scenario)


def concurrent_pair(
    suite_path: Path, out: Path, model: Path, scenario: str, seconds: float, core: int, delay: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both sides at once, benchmark_app on ``core`` and starting ``delay`` s after the harness (on the suite's core)."""
    h_done, a_done = run_together(
        run_command(suite_path, out), benchmark_app_command(model, scenario, seconds, core), delay
    )
    return harness_result(h_done, scenario), benchmark_app_result(a_done, scenario)


def benchmark_app_result(done: subprocess.CompletedProcess, scenario: str) -> dict[str, Any]:
    text = done.stdout + done.stderr
    median = re.search(r"Median:\s+([\d.]+) ms", text)
    fastest = re.search(r"Min:\s+([\d.]+) ms", text)
    fps = re.search(r"Throughput:\s+([\d.]+) FPS", text)
    count = re.search(r"Count:\s+(\d+) iterations", text)
    requests = re.search(r"asynchronously, (\d+) inference requests", text)
    if done.returncode != 0 or not (median and fps):
        raise RuntimeError(f"benchmark_app failed ({done.returncode}): {text.strip()[-500:]}")
    value = float(median.group(1)) if scenario == "latency" else float(fps.group(1))
    return {"value": value, "iterations": int(count.group(1)) if count else None,
            "requests": int(requests.group(1)) if requests else 1,
            "min": float(fastest.group(1)) if fastest else None}  # fmt: skip


def summarize_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Print and return the median ratio of each comparison over ``rounds``, with its bootstrap CI."""
    summary = {}
    series = {s: [row[f"{s}_ratio"] for row in rounds] for s in ("latency", "throughput")}
    series["latency_min"] = [
        row["latency_harness"]["min"] / row["latency_benchmark_app"]["min"]
        for row in rounds
        if row["latency_harness"].get("min") and row["latency_benchmark_app"].get("min")
    ]
    for name, ratios in series.items():
        if ratios:
            summary[name] = verdict(name, "harness / benchmark_app", ratios, (0.95, 1.05))
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--time",
        type=int,
        default=5,
        help="seconds of measurement per side and round (benchmark_app takes whole seconds)",
    )
    parser.add_argument("--json", type=Path, help="write every raw figure here")
    parser.add_argument("--mode", choices=["sequential", "concurrent"], default="sequential")
    parser.add_argument("--delay", type=float, default=2.5, help="concurrent mode: benchmark_app starts this late")
    parser.add_argument("--summarize", type=Path, nargs="+", metavar="JSON",
                        help="only summarise the rounds saved in these --json files (pooled), run nothing")  # fmt: skip
    args = parser.parse_args()
    if args.summarize:
        rounds = [row for path in args.summarize for row in json.loads(path.read_text())["rounds"]]
        print(f"{len(rounds)} rounds from {len(args.summarize)} file(s)")
        summarize_rounds(rounds)
        return 0
    cores = sorted(os.sched_getaffinity(0))
    if args.mode == "concurrent" and len(cores) < 2:
        parser.error("--mode concurrent needs two cores")
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = work / "mobilenet_v2-224.onnx"
        export(model)
        scenarios = ("latency", "throughput")
        suites = {s: suite(work / f"{s}.yaml", model, s, args.time) for s in scenarios}
        pinned = {(s, c): suite(work / f"{s}-{c}.yaml", model, s, args.time, c) for s in scenarios for c in cores[:2]}
        env_note = f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, mode {args.mode}"
        print(f"model {model.name} ({model.stat().st_size / 1e6:.1f} MB), {env_note}", file=sys.stderr)
        for r in range(args.rounds):
            order = ["harness", "benchmark_app"] if r % 2 == 0 else ["benchmark_app", "harness"]
            row: dict[str, Any] = {"round": r, "load_1min": os.getloadavg()[0]}
            if args.mode == "concurrent":
                mine, theirs = (cores[0], cores[1]) if r % 2 == 0 else (cores[1], cores[0])
                row["cores"] = {"harness": mine, "benchmark_app": theirs}
            else:
                row["order"] = order
            for scenario in scenarios:
                if args.mode == "concurrent":
                    row[f"{scenario}_harness"], row[f"{scenario}_benchmark_app"] = concurrent_pair(
                        pinned[scenario, mine], work / "results", model, scenario, args.time, theirs, args.delay
                    )
                for side in order if args.mode == "sequential" else []:
                    if side == "harness":
                        row[f"{scenario}_harness"] = harness(suites[scenario], work / "results", scenario)
                    else:
                        row[f"{scenario}_benchmark_app"] = benchmark_app(model, scenario, args.time)
                row[f"{scenario}_ratio"] = (
                    row[f"{scenario}_harness"]["value"] / row[f"{scenario}_benchmark_app"]["value"]
                )
            rounds.append(row)
            print(
                f"round {r}: latency {row['latency_harness']['value']:.3f} / {row['latency_benchmark_app']['value']:.3f} ms"
                f" = {row['latency_ratio']:.3f}; throughput {row['throughput_harness']['value']:.1f} / "
                f"{row['throughput_benchmark_app']['value']:.1f} items/s = {row['throughput_ratio']:.3f}",
                file=sys.stderr,
            )
    summary = summarize_rounds(rounds)
    last = rounds[-1]
    print(f"harness threads/streams/requests: {json.dumps(last['throughput_harness']['backend'])[:300]}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": MODEL, "time_s": args.time, "mode": args.mode, "delay_s": args.delay,
                                         "rounds": rounds, "summary": summary}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
