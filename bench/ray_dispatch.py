"""What the ray launcher costs per case, and whether a case measured through it gives the same median.

Starts a one-node Ray cluster on this machine (``ray.cluster_utils.Cluster``,
one ``benchharness_slot``: cases run one after another, as locally), writes a
suite of N identical ONNX Runtime cases (zoo MobileNetV2 w0.25 at 64x64, one
thread), and runs it in interleaved rounds, ABBA, on the ``process`` launcher
and on the ``ray`` launcher.

* **Dispatch cost per case**: in each run the wall time per case in steady state is the interval
  between one case's result and the next (the first case, which also pays for joining the cluster
  and starting the node's Ray worker, is reported apart).  The cost is the median over rounds of
  (ray run's median interval - the adjacent local run's), with a bootstrap 95% CI.
* **Same median**: each case's median latency is one value per worker process.  The ratio ray /
  local of their geometric means over every process, with a Welch t 95% CI on the logs (as
  ``benchharness compare`` tests processes), beside the between-process spread of the local side.

``--rounds N`` (pairs of runs, default 6), ``--cases N`` (per run, default 8), ``--json OUT``.
About 5 minutes at the defaults.  Prints PASS/FAIL against: dispatch cost under 1 s; the ratio's
CI includes 1 or the ratio is within one between-process standard deviation.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

SUITE = """\
name: ray-dispatch
models:
  - {{source: zoo, arch: mobilenet_v2, width: 0.25, input_size: 64, num_classes: 10}}
backends:
{backends}
targets:
  - {{name: cpu, threads: 1}}
metrics: [latency]
measure:
  warmup: {{max_time: 0.3}}
  min_samples: 20
  max_time: 0.7
  target_ci: 0.01
  timeout: 120
"""


def one_run(suite_path: Path, launcher: str, address: str | None, out: Path) -> dict:
    """Run the suite once; the finish times of its cases and each case's median latency."""
    from benchharness.plan import expand
    from benchharness.plugins import PluginHost
    from benchharness.runner import Progress, RunSettings, run_suite
    from benchharness.suite import load_suite

    host = PluginHost()
    loaded = load_suite(suite_path, host)
    cases = expand(loaded)
    finishes: list[float] = []
    progress = Progress(finish=lambda *a: finishes.append(time.perf_counter()))
    settings = RunSettings(
        output_dir=out, launcher=launcher, launcher_options={"address": address} if address else {}, repeat=1
    )
    t0 = time.perf_counter()
    results, _ = run_suite(loaded, cases, host, settings, progress)
    bad = [c.case_id for c in results.cases if c.status != "ok"]
    if bad:
        raise SystemExit(f"{launcher}: cases failed: {bad}")
    intervals = [b - a for a, b in zip(finishes, finishes[1:])]
    return {
        "launcher": launcher,
        "first_s": finishes[0] - t0,
        "intervals_s": intervals,
        "medians_ms": [c.metrics["latency"].value for c in results.cases],
        "nodes": sorted({c.node.node_id for c in results.cases if c.node is not None}),
    }


def bootstrap_ci(values: list[float], seed: int = 0, n: int = 10_000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    arr = np.asarray(values)
    meds = np.median(rng.choice(arr, size=(n, len(arr)), replace=True), axis=1)
    return float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    os.environ.setdefault("BENCHHARNESS_CACHE", str(work / "cache"))  # the node inherits it: one cache
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    backends = "\n".join(f"  - {{name: onnxruntime, label: o{i}}}" for i in range(1, args.cases + 1))
    suite = work / "suite.yaml"
    suite.write_text(SUITE.format(backends=backends), encoding="utf-8")

    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "resources": {"benchharness_slot": 1}, "include_dashboard": False},
    )
    cluster.wait_for_nodes()
    load = os.getloadavg()
    try:
        one_run(suite, "process", None, work / "warm")  # the zoo model is built and exported once, cached
        runs = []
        for r in range(args.rounds):
            order = ["process", "ray"] if r % 2 == 0 else ["ray", "process"]
            pair = {}
            for launcher in order:
                address = cluster.address if launcher == "ray" else None
                pair[launcher] = one_run(suite, launcher, address, work / f"out-{r}-{launcher}")
                print(
                    f"round {r + 1} {launcher:7s}: first case {pair[launcher]['first_s']:.2f} s, then "
                    f"{statistics.median(pair[launcher]['intervals_s']):.3f} s per case",
                    file=sys.stderr,
                )
            runs.append(pair)
    finally:
        cluster.shutdown()
    load_after = os.getloadavg()

    dispatch = [
        statistics.median(p["ray"]["intervals_s"]) - statistics.median(p["process"]["intervals_s"]) for p in runs
    ]
    first = [p["ray"]["first_s"] - p["process"]["first_s"] for p in runs]
    local = [m for p in runs for m in p["process"]["medians_ms"]]
    through = [m for p in runs for m in p["ray"]["medians_ms"]]
    log_l, log_r = np.log(local), np.log(through)
    ratio = math.exp(log_r.mean() - log_l.mean())
    t = stats.ttest_ind(log_r, log_l, equal_var=False)
    ci = t.confidence_interval(0.95)
    spread = float(np.std(log_l, ddof=1))  # between-process standard deviation of the local side, on logs
    low, high = bootstrap_ci(dispatch)
    figures = {
        "rounds": args.rounds,
        "cases_per_run": args.cases,
        "load_before": load,
        "load_after": load_after,
        "dispatch_s_median": statistics.median(dispatch),
        "dispatch_s_ci95": [low, high],
        "per_round_dispatch_s": dispatch,
        "first_case_extra_s_median": statistics.median(first),
        "local_per_case_s_median": statistics.median([statistics.median(p["process"]["intervals_s"]) for p in runs]),
        "median_ratio_ray_over_local": ratio,
        "median_ratio_ci95": [math.exp(ci.low), math.exp(ci.high)],
        "welch_p": float(t.pvalue),
        "local_between_process_sd_log": spread,
        "processes_per_side": len(local),
        "runs": runs,
    }
    ok_cost = figures["dispatch_s_median"] < 1.0
    ok_same = ci.low <= 0 <= ci.high or abs(math.log(ratio)) <= spread
    print(f"load average {load[0]:.1f} before, {load_after[0]:.1f} after")
    print(
        f"dispatch cost per case: {figures['dispatch_s_median'] * 1000:.0f} ms (95% CI {low * 1000:.0f}..{high * 1000:.0f}) "
        f"over {figures['local_per_case_s_median']:.2f} s per case locally; first case +{figures['first_case_extra_s_median']:.2f} s "
        f"-> {'PASS' if ok_cost else 'FAIL'} (target < 1 s)"
    )
    print(
        f"median latency ray / local: {ratio:.3f} (95% CI {math.exp(ci.low):.3f}..{math.exp(ci.high):.3f}, Welch p "
        f"{t.pvalue:.2f}, {len(local)} processes a side); between-process sd of the local side {spread * 100:.1f}% "
        f"-> {'PASS' if ok_same else 'FAIL'} (CI includes 1, or within one between-process sd)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
        print(f"raw figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
