"""Does the harness measure soundly?  Four figures, each against a target.

1. Harness vs bare loop: the same ONNX model timed by a real ``benchharness
   run`` (CLI process + worker process) and by ``bench/bare_loop.py`` (a plain
   ``perf_counter_ns`` loop), in interleaved rounds (harness, loop, harness,
   loop, ...).  Figure: the median of the per-round ratios harness/loop.
   Target: within 0.98-1.02.
2. Spread: relative IQR and (max-min)/median of the per-round medians of each
   side, over the same rounds.  Target: the harness's no wider than the loop's.
3. Overhead per timed iteration: ``benchharness run -p noop_plugin`` on a
   backend whose ``infer`` does nothing.  Figure: the median sample (the timer
   and call cost inside the timed region); also sampling wall time / samples.
   Target: median sample <= 1 us.
4. Start-up: ``benchharness --help`` minus ``python -c pass``, interleaved;
   median of the paired differences.  Target: < 0.3 s.
5. Informational, no target: part 1 again with the harness at its *default*
   measure settings (``--default-rounds``, 0 to skip).

Only paired, interleaved ratios mean anything on a shared machine: two runs
of the same model differ by 12-40% there.  This is a measurement, not a test:
the exit code is 0 whether or not the targets are met (2 on a usage error,
1 when a round fails to produce a figure).

    python bench/harness_overhead.py [--rounds 10] [--threads 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchharness import machine

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
BARE_LOOP = BENCH_DIR / "bare_loop.py"
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

MIN_ROUNDS = 10
RATIO_LOW, RATIO_HIGH = 0.98, 1.02
NOOP_TARGET_NS = 1000.0
STARTUP_TARGET_S = 0.3

# The model: a zoo MobileNetV2 when the zoo is importable, else a small conv net defined below.
ZOO_MODEL = {"arch": "mobilenet_v2", "width": 0.5, "input_size": 96, "num_classes": 10}
INPUT_SHAPE = (1, 3, 96, 96)


# --------------------------------------------------------------------------- helpers


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """Q1, median, Q3 with linear interpolation (numpy's default percentile method)."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def spread(values: list[float]) -> dict[str, float]:
    """Relative IQR and relative range of a list of per-round medians."""
    q1, med, q3 = quartiles(values)
    return {
        "median": med,
        "rel_iqr": (q3 - q1) / med,
        "rel_range": (max(values) - min(values)) / med,
        "min": min(values),
        "max": max(values),
    }


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_DIR, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def benchharness_exe() -> str:
    """The ``benchharness`` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "benchharness"
    if beside.exists():
        return str(beside)
    found = shutil.which("benchharness")
    if found is None:
        raise SystemExit("benchharness: command not found; install the package (pip install -e .)")
    return found


def thread_env(threads: int) -> dict[str, str]:
    """The variables the ``cpu`` target sets for its worker."""
    return {var: str(threads) for var in THREAD_ENV_VARS}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- model export (subprocess)


def export_model(path: Path) -> dict[str, Any]:
    """Export the benchmark model to ONNX at ``path``; runs in its own process so the driver never loads torch."""
    import torch

    torch.manual_seed(0)
    try:
        from benchharness_zoo.models import build_model

        model = build_model(
            ZOO_MODEL["arch"],
            width=ZOO_MODEL["width"],
            input_size=ZOO_MODEL["input_size"],
            num_classes=ZOO_MODEL["num_classes"],
        )
        described = {"source": "benchharness_zoo.models.build_model", **ZOO_MODEL}
    except Exception as exc:  # noqa: BLE001 - the zoo is optional here; fall back to a local net
        model = _small_convnet()
        described = {"source": "bench fallback conv net", "zoo_error": f"{type(exc).__name__}: {exc}"}
    model.eval()
    with torch.no_grad():
        torch.onnx.export(
            model,
            (torch.rand(*INPUT_SHAPE),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
        )
    described["parameters"] = sum(p.numel() for p in model.parameters())
    described["input_shape"] = list(INPUT_SHAPE)
    return described


def _small_convnet() -> Any:
    from torch import nn

    def block(cin: int, cout: int, stride: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    return nn.Sequential(
        block(3, 16, 2),
        block(16, 32, 2),
        block(32, 64, 2),
        block(64, 64, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


# --------------------------------------------------------------------------- suites


def ort_suite(model: Path, threads: int, seconds: float) -> str:
    # target_ci is set so low that sampling runs for the whole time budget, like the bare loop:
    # both sides then sample for the same time.
    return (
        "name: bench-ort\n"
        "models:\n"
        f"  - {{source: onnx, path: {json.dumps(str(model))}, name: bench_model}}\n"
        "backends: [{name: onnxruntime}]\n"
        f"targets: [{{name: cpu, threads: {threads}}}]\n"
        "metrics: [latency]\n"
        f"measure: {{max_time: {seconds}, target_ci: 0.0001}}\n"
    )


def default_suite(model: Path, threads: int) -> str:
    # No measure block: the harness's own defaults (warm-up, min_samples, target_ci, max_time).
    return (
        "name: bench-ort-defaults\n"
        "models:\n"
        f"  - {{source: onnx, path: {json.dumps(str(model))}, name: bench_model}}\n"
        "backends: [{name: onnxruntime}]\n"
        f"targets: [{{name: cpu, threads: {threads}}}]\n"
        "metrics: [latency]\n"
    )


def noop_suite(threads: int, samples: int) -> str:
    # A fixed sample count (min = max): the CI check, which sorts every sample, then runs only at the
    # end, so sampling wall time / samples shows the timed loop itself.
    return (
        "name: bench-noop\n"
        "models: [{source: noop, name: noop}]\n"
        "backends: [{name: noop}]\n"
        f"targets: [{{name: cpu, threads: {threads}}}]\n"
        "metrics: [latency]\n"
        f"measure: {{max_time: 10.0, min_samples: {samples}, max_samples: {samples}}}\n"
    )


# --------------------------------------------------------------------------- one round of each kind


def run_harness(suite: Path, out_dir: Path, env: dict[str, str], plugins: list[str] = ()) -> dict[str, Any]:
    """One ``benchharness run``; returns the latency figures of its single case."""
    shutil.rmtree(out_dir, ignore_errors=True)  # a reused --workdir: never read an older run's file
    out_dir.mkdir(parents=True)
    cmd = [benchharness_exe(), "run", str(suite), "-q", "--format", "json", "-o", str(out_dir)]
    for plugin in plugins:
        cmd += ["-p", plugin]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    files = sorted(glob.glob(str(out_dir / "*.json")))
    if proc.returncode != 0 or not files:
        raise RuntimeError(f"benchharness run failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    results = json.loads(Path(files[-1]).read_text(encoding="utf-8"))
    case = results["cases"][0]
    if case["status"] != "ok":
        raise RuntimeError(f"case {case['case_id']} {case['status']}: {case.get('error')}")
    latency = case["metrics"]["latency"]
    summary, details = latency["summary"], latency["details"]
    return {
        "median_ns": summary["median"],
        "min_ns": summary["min"],
        "count": summary["count"],
        "rel_iqr": details.get("rel_iqr"),
        "sampling_time_s": details["sampling_time_s"],
        "stop_reason": details["stop_reason"],
        "warmup": details["warmup"],
        "runtime": case["runtime"],
        "worker_duration_s": case["duration_s"],
        "warnings": case["warnings"],
        "wall_s": wall,
    }


def run_bare_loop(model: Path, threads: int, seconds: float, warmup_s: float, env: dict[str, str]) -> dict[str, Any]:
    """One ``bench/bare_loop.py`` process; returns its JSON report."""
    cmd = [
        sys.executable,
        str(BARE_LOOP),
        str(model),
        "--threads",
        str(threads),
        "--time",
        str(seconds),
        "--warmup-time",
        str(warmup_s),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"bare loop failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["wall_s"] = wall
    return report


def time_process(cmd: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one process, start to exit."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    return wall


# --------------------------------------------------------------------------- the four parts


def interleave(
    args: argparse.Namespace, work: Path, model: Path, env: dict[str, str], suite: Path, count: int, tag: str
) -> list[dict[str, Any]]:
    """``count`` rounds of one harness run then one bare-loop run, each with its ratio."""
    loop_env = dict(env, **thread_env(args.threads), PYTHONUNBUFFERED="1")
    rounds = []
    for i in range(count):
        harness = run_harness(suite, work / f"{tag}-round-{i:02d}", env)
        loop = run_bare_loop(model, args.threads, args.time, args.loop_warmup, loop_env)
        ratio = harness["median_ns"] / loop["median_ns"]
        rounds.append(
            {"round": i, "harness": harness, "loop": loop, "ratio": ratio, "loadavg_1min": os.getloadavg()[0]}
        )
        log(
            f"  round {i + 1:2d}/{count}: harness {harness['median_ns'] / 1e3:9.2f} us "
            f"(n={harness['count']} in {harness['sampling_time_s'] * 1e3:.1f} ms, {harness['stop_reason']}; "
            f"warm-up {harness['warmup']['iterations']} calls), loop {loop['median_ns'] / 1e3:9.2f} us "
            f"(n={loop['count']}), ratio {ratio:.4f}, load {os.getloadavg()[0]:.2f}"
        )
    return rounds


def part_ratio(args: argparse.Namespace, work: Path, model: Path, env: dict[str, str]) -> dict[str, Any]:
    suite = work / "ort-suite.yaml"
    suite.write_text(ort_suite(model, args.threads, args.time), encoding="utf-8")
    rounds = interleave(args, work, model, env, suite, args.rounds, "ort")
    ratios = [r["ratio"] for r in rounds]
    h_medians = [r["harness"]["median_ns"] for r in rounds]
    l_medians = [r["loop"]["median_ns"] for r in rounds]
    median_ratio = statistics.median(ratios)
    h_spread, l_spread = spread(h_medians), spread(l_medians)
    return {
        "suite": suite.read_text(encoding="utf-8"),
        "rounds": rounds,
        "ratios": ratios,
        "median_ratio": median_ratio,
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
        "ratio_target": [RATIO_LOW, RATIO_HIGH],
        "ratio_pass": RATIO_LOW <= median_ratio <= RATIO_HIGH,
        "harness_medians_ns": h_medians,
        "loop_medians_ns": l_medians,
        "harness_spread": h_spread,
        "loop_spread": l_spread,
        "rel_iqr_no_wider": h_spread["rel_iqr"] <= l_spread["rel_iqr"],
        "rel_range_no_wider": h_spread["rel_range"] <= l_spread["rel_range"],
        **spread_test(h_medians, l_medians),
    }


def spread_test(harness: list[float], loop: list[float]) -> dict[str, Any]:
    """Is the harness's spread wider than the loop's? Brown-Forsythe test on relative medians.

    With ten rounds the sample IQRs are themselves noisy (the loop against itself differed 1.26x),
    so the verdict is "wider" only when a one-sided Brown-Forsythe test (Levene's test centred on
    the median) finds the harness's dispersion larger at the 5% level.
    """
    from scipy.stats import levene

    h = [v / statistics.median(harness) for v in harness]
    lo = [v / statistics.median(loop) for v in loop]
    p_two = float(levene(h, lo, center="median").pvalue)
    h_dev = statistics.median(abs(v - 1) for v in h)
    l_dev = statistics.median(abs(v - 1) for v in lo)
    p_wider = p_two / 2 if h_dev > l_dev else 1 - p_two / 2
    return {
        "spread_test": "Brown-Forsythe (scipy.stats.levene, center='median'), one-sided: harness wider",
        "spread_test_p": p_wider,
        "spread_no_wider": p_wider >= 0.05,
    }


def part_defaults(args: argparse.Namespace, work: Path, model: Path, env: dict[str, str]) -> dict[str, Any]:
    """Informational: the harness at its default measure settings vs the same bare loop, interleaved."""
    suite = work / "ort-defaults-suite.yaml"
    suite.write_text(default_suite(model, args.threads), encoding="utf-8")
    rounds = interleave(args, work, model, env, suite, args.default_rounds, "defaults")
    ratios = [r["ratio"] for r in rounds]
    h_medians = [r["harness"]["median_ns"] for r in rounds]
    l_medians = [r["loop"]["median_ns"] for r in rounds]
    return {
        "suite": suite.read_text(encoding="utf-8"),
        "rounds": rounds,
        "ratios": ratios,
        "median_ratio": statistics.median(ratios),
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
        "harness_counts": [r["harness"]["count"] for r in rounds],
        "harness_sampling_time_s": [r["harness"]["sampling_time_s"] for r in rounds],
        "harness_warmup_iterations": [r["harness"]["warmup"]["iterations"] for r in rounds],
        "harness_spread": spread(h_medians),
        "loop_spread": spread(l_medians),
    }


def part_noop(args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, Any]:
    suite = work / "noop-suite.yaml"
    suite.write_text(noop_suite(args.threads, args.noop_samples), encoding="utf-8")
    path = os.pathsep.join(p for p in (str(BENCH_DIR), env.get("PYTHONPATH", "")) if p)
    noop_env = dict(env, PYTHONPATH=path)
    rounds = []
    for i in range(args.noop_rounds):
        r = run_harness(suite, work / f"noop-round-{i:02d}", noop_env, plugins=["noop_plugin"])
        r["wall_per_sample_ns"] = r["sampling_time_s"] * 1e9 / r["count"]
        rounds.append(r)
        log(
            f"  noop round {i + 1}/{args.noop_rounds}: median sample {r['median_ns']:.0f} ns, "
            f"sampling wall/sample {r['wall_per_sample_ns']:.0f} ns (n={r['count']})"
        )
    medians = [r["median_ns"] for r in rounds]
    per_sample = [r["wall_per_sample_ns"] for r in rounds]
    median_sample = statistics.median(medians)
    heavy = sorted({m for r in rounds for m in r["runtime"]["backend"].get("heavy_modules_loaded", [])})
    return {
        "suite": suite.read_text(encoding="utf-8"),
        "rounds": rounds,
        "median_sample_ns": median_sample,
        "median_samples_ns": medians,
        "wall_per_sample_ns": statistics.median(per_sample),
        "wall_per_sample_all_ns": per_sample,
        "heavy_modules_in_worker": heavy,
        "target_ns": NOOP_TARGET_NS,
        "pass": median_sample <= NOOP_TARGET_NS,
    }


def part_startup(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    bare = [sys.executable, "-c", "pass"]
    helpcmd = [benchharness_exe(), "--help"]
    python_s, help_s = [], []
    for _ in range(args.startup_rounds):
        python_s.append(time_process(bare, env))
        help_s.append(time_process(helpcmd, env))
    diffs = [h - p for h, p in zip(help_s, python_s)]
    median_diff = statistics.median(diffs)
    return {
        "python_c_pass_s": python_s,
        "benchharness_help_s": help_s,
        "differences_s": diffs,
        "median_difference_s": median_diff,
        "median_python_s": statistics.median(python_s),
        "median_help_s": statistics.median(help_s),
        "target_s": STARTUP_TARGET_S,
        "pass": median_diff < STARTUP_TARGET_S,
    }


# --------------------------------------------------------------------------- report


def args_time(res: dict[str, Any]) -> float:
    return res["config"]["time"]


def summary_text(res: dict[str, Any]) -> str:
    r, n, s = res["ratio"], res["noop"], res["startup"]
    hs, ls = r["harness_spread"], r["loop_spread"]
    m = res["machine"]
    lines = [
        "",
        "benchharness measurement check",
        f"  machine: {m['cpu_model']}, {m['usable_cores']} usable cores; load average "
        f"{m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at end",
        f"  model: {res['model'].get('source')} ({res['model'].get('parameters')} parameters), "
        f"{res['config']['threads']} thread(s), {res['config']['rounds']} rounds x {res['config']['time']} s sampling",
        "",
        f"1. harness / bare loop, median of {len(r['ratios'])} per-round ratios: {r['median_ratio']:.4f} "
        f"(per-round range {r['min_ratio']:.4f} .. {r['max_ratio']:.4f}); target {RATIO_LOW}-{RATIO_HIGH}: "
        f"{verdict(r['ratio_pass'])}",
        f"   medians of per-round medians: harness {hs['median'] / 1e3:.2f} us, loop {ls['median'] / 1e3:.2f} us",
        "2. spread of per-round medians  harness      loop",
        f"   relative IQR                 {hs['rel_iqr']:8.4f}  {ls['rel_iqr']:8.4f}   harness no wider: "
        f"{'yes' if r['rel_iqr_no_wider'] else 'no'}",
        f"   (max-min)/median             {hs['rel_range']:8.4f}  {ls['rel_range']:8.4f}   harness no wider: "
        f"{'yes' if r['rel_range_no_wider'] else 'no'}",
        f"   relative IQR harness/loop = {hs['rel_iqr'] / ls['rel_iqr'] if ls['rel_iqr'] else float('inf'):.2f}; "
        f"one-sided Brown-Forsythe test that the harness's spread is wider: p = {r['spread_test_p']:.3f}",
        f"   target: harness's spread no wider (not significantly wider at 5%): {verdict(r['spread_no_wider'])}",
        f"3. noop backend, median sample (timer + call per timed iteration), median of {len(n['rounds'])} runs: "
        f"{n['median_sample_ns']:.0f} ns; target <= {NOOP_TARGET_NS:.0f} ns: {verdict(n['pass'])}",
        f"   sampling wall time / samples: {n['wall_per_sample_ns']:.0f} ns "
        f"(runs: {', '.join(f'{v:.0f}' for v in n['wall_per_sample_all_ns'])})",
        f"   heavy frameworks imported in the noop worker: {', '.join(n['heavy_modules_in_worker']) or 'none'}",
        f"4. start-up, benchharness --help minus python -c pass, median of {len(s['differences_s'])} paired "
        f"differences: {s['median_difference_s']:.3f} s (help {s['median_help_s']:.3f} s, python "
        f"{s['median_python_s']:.3f} s); target < {STARTUP_TARGET_S} s: {verdict(s['pass'])}",
    ]
    d = res.get("defaults")
    if d:
        dh, dl = d["harness_spread"], d["loop_spread"]
        lines += [
            f"5. informational, no target: harness at its DEFAULT measure settings / bare loop ({args_time(res)} s), "
            f"median of {len(d['ratios'])} ratios: {d['median_ratio']:.4f} (range {d['min_ratio']:.4f} .. "
            f"{d['max_ratio']:.4f})",
            f"   harness samples per run: median {statistics.median(d['harness_counts']):g} in "
            f"{statistics.median(d['harness_sampling_time_s']) * 1e3:.1f} ms; warm-up calls: median "
            f"{statistics.median(d['harness_warmup_iterations']):g}",
            f"   relative IQR harness {dh['rel_iqr']:.4f} vs loop {dl['rel_iqr']:.4f}; (max-min)/median "
            f"{dh['rel_range']:.4f} vs {dl['rel_range']:.4f}",
        ]
    failed = [
        name
        for name, ok in (
            ("ratio", r["ratio_pass"]),
            ("spread", r["spread_no_wider"]),
            ("noop overhead", n["pass"]),
            ("start-up", s["pass"]),
        )
        if not ok
    ]
    lines.append("")
    lines.append("all targets met" if not failed else f"FAIL: {', '.join(failed)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Check that benchharness measures soundly: harness vs bare loop, spread, noop overhead, start-up."
    )
    parser.add_argument("--rounds", type=int, default=20, help=f"interleaved rounds (default 20, minimum {MIN_ROUNDS})")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads on both sides (default 1)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every raw number to this JSON file")
    parser.add_argument("--time", type=float, default=2.0, help="sampling seconds per round, both sides (default 2.0)")
    parser.add_argument("--loop-warmup", type=float, default=0.5, help="warm-up seconds of the bare loop (default 0.5)")
    parser.add_argument(
        "--default-rounds",
        type=int,
        default=10,
        help="informational rounds of the harness at its default measure settings vs the loop (default 10; 0: skip)",
    )
    parser.add_argument("--noop-rounds", type=int, default=5, help="noop harness runs (default 5)")
    parser.add_argument("--noop-samples", type=int, default=200_000, help="samples per noop run (default 200000)")
    parser.add_argument("--startup-rounds", type=int, default=20, help="start-up pairs (default 20)")
    parser.add_argument("--workdir", type=Path, help="keep the model, suites and results here (default: a temp dir)")
    parser.add_argument("--export-model", type=Path, help=argparse.SUPPRESS)  # internal: export and exit
    args = parser.parse_args(argv)
    if args.export_model is None:
        if args.rounds < MIN_ROUNDS:
            parser.error(f"--rounds must be at least {MIN_ROUNDS}")
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        if args.time <= 0 or args.loop_warmup < 0:
            parser.error("--time must be > 0 and --loop-warmup >= 0")
        if args.default_rounds < 0:
            parser.error("--default-rounds must be >= 0")
        if min(args.noop_rounds, args.noop_samples, args.startup_rounds) < 1:
            parser.error("--noop-rounds, --noop-samples and --startup-rounds must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.export_model is not None:
        print(json.dumps(export_model(args.export_model)))
        return 0

    started = dt.datetime.now(dt.timezone.utc)
    keep = args.workdir is not None
    work = args.workdir.resolve() if keep else Path(tempfile.mkdtemp(prefix="bh-overhead-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, BENCHHARNESS_CACHE=str(work / "cache"))
    loadavg_start = os.getloadavg()
    try:
        model = work / "model.onnx"
        log(f"exporting the model to {model} ...")
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--export-model", str(model)],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            log(proc.stderr)
            return 1
        model_info = json.loads(proc.stdout.strip().splitlines()[-1])
        log(f"1-2. {args.rounds} interleaved rounds, harness then bare loop ...")
        ratio = part_ratio(args, work, model, env)
        log(f"3. noop backend, {args.noop_rounds} runs ...")
        noop = part_noop(args, work, env)
        log(f"4. start-up, {args.startup_rounds} pairs ...")
        startup = part_startup(args, env)
        defaults = None
        if args.default_rounds > 0:
            log(
                f"5. (informational) {args.default_rounds} rounds, harness at its default measure settings then loop ..."
            )
            defaults = part_defaults(args, work, model, env)
    except RuntimeError as exc:
        log(f"error: {exc}")
        return 1
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)

    results = {
        "date": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": {
            "rounds": args.rounds,
            "threads": args.threads,
            "time": args.time,
            "loop_warmup": args.loop_warmup,
            "noop_rounds": args.noop_rounds,
            "noop_samples": args.noop_samples,
            "startup_rounds": args.startup_rounds,
            "default_rounds": args.default_rounds,
        },
        "machine": {
            "cpu_model": machine.cpu_model(),
            "cpu_count": os.cpu_count(),
            "usable_cores": usable_cores(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "benchharness": version("benchharness"),
            "onnxruntime": version("onnxruntime"),
            "torch": version("torch"),
            "git_commit": git_commit(),
            "loadavg_start": loadavg_start,
            "loadavg_end": os.getloadavg(),
        },
        "model": model_info,
        "ratio": ratio,
        "noop": noop,
        "startup": startup,
        "defaults": defaults,
    }
    text = summary_text(results)
    results["summary"] = text
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
        print(f"raw numbers: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
