"""Does turning the memory and energy observers on change a case's latency?  (issue 8)

The same case (a zoo MobileNetV2, width 0.5, 96x96, 10 classes, on ONNX Runtime, 1 thread) is run by
two suites that differ only in their metrics: `[latency]` and `[latency, memory, energy]`.  The
figure is the ratio observed / plain of the median latency within a round; the verdict is on the
median over rounds (target 0.98 to 1.02), with a percentile-bootstrap 95% interval of that median.
Two ways to pair the sides:

  --mode inline      (the default) one driver process runs the two suites alternately, each case in
                     that same process (the `inline` launcher), pinned to one core.  On this VM a
                     fresh process's median of the same case lands in one of two modes about 40%
                     apart (0.50 or 0.73 ms here), whatever it measures: pairing within one process
                     takes that out, and leaves what the observers themselves do.
  --mode concurrent  each round runs both suites at the same time as separate `benchharness run`
                     processes (the `process` launcher, as users run it), each pinned to a core of
                     its own, swapping cores between rounds.

    python bench/observer_overhead.py                          # 20 rounds of 3 s, about 4 minutes
    python bench/observer_overhead.py --rounds 30 --json bench/results/observers-$(date -u +%Y-%m-%dT%H%MZ).json

Always exits 0 (a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pairing import fixed_time_measure, only_case, run_command, run_together, verdict

MODEL = "{source: zoo, arch: mobilenet_v2, width: 0.5, input_size: 96, num_classes: 10}"
METRICS = {"plain": "[latency]", "observed": "[latency, memory, energy]"}


def suite(path: Path, metrics: str, core: int, seconds: float) -> Path:
    path.write_text(
        f"name: observers\nmodels: [{MODEL}]\nbackends: [{{name: onnxruntime}}]\n"
        f"targets: [{{name: cpu, threads: 1, cores: [{core}]}}]\nmetrics: {metrics}\n" + fixed_time_measure(seconds)
    )
    return path


def figures(done: subprocess.CompletedProcess) -> dict[str, Any]:
    metrics = only_case(done)["metrics"]
    out = {"latency_ms": metrics["latency"]["value"], "samples": metrics["latency"]["summary"]["count"]}
    if "memory" in metrics:
        out["memory_mb"] = metrics["memory"]["value"]
        out["energy_mj"] = metrics["energy"]["value"]
        out["energy_method"] = metrics["energy"]["method"].split(":")[0]
    return out


def inline_rounds(work: Path, rounds: int, seconds: float, core: int) -> list[dict[str, Any]]:
    """Alternate the two suites in this process (the inline launcher), ``rounds`` times each, on ``core``."""
    import contextlib
    import io

    from benchharness.cli import main as cli

    suites = {side: suite(work / f"{side}-inline.yaml", metrics, core, seconds) for side, metrics in METRICS.items()}
    out: list[dict[str, Any]] = []
    for r in range(rounds + 1):  # round 0 converts the model and warms the process: not counted
        order = ("plain", "observed") if r % 2 == 0 else ("observed", "plain")
        row: dict[str, Any] = {"round": r - 1, "order": list(order), "core": core}
        for side in order:
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                code = cli(["run", str(suites[side]), "-q", "-o", str(work / "out"), "--launcher", "inline"])
            row[side] = figures(subprocess.CompletedProcess([], code, "", err.getvalue()))
        row["ratio"] = row["observed"]["latency_ms"] / row["plain"]["latency_ms"]
        if r:
            out.append(row)
            print(f"round {r - 1}: observed {row['observed']['latency_ms']:.4f} / plain "
                  f"{row['plain']['latency_ms']:.4f} ms = {row['ratio']:.3f}", file=sys.stderr)  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--time", type=float, default=3.0, help="seconds of sampling per side and round")
    parser.add_argument("--json", type=Path, help="write every raw figure here")
    parser.add_argument("--mode", choices=["inline", "concurrent"], default="inline")
    args = parser.parse_args()
    if args.rounds < 10:
        parser.error("--rounds must be at least 10")
    cores = sorted(os.sched_getaffinity(0))
    if args.mode == "concurrent" and len(cores) < 2:
        parser.error("--mode concurrent needs two cores: both sides run at once, on a core each")
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["BENCHHARNESS_CACHE"] = str(work / "cache")  # the workers share one conversion cache
        if args.mode == "inline":
            rounds = inline_rounds(work, args.rounds, args.time, cores[-1])
        else:
            suites = {(side, core): suite(work / f"{side}-{core}.yaml", metrics, core, args.time)
                      for side, metrics in METRICS.items() for core in cores[:2]}  # fmt: skip
            # Convert the model once, before the rounds, so neither side pays for the export.
            subprocess.run(run_command(suites["plain", cores[0]], work / "warm"), capture_output=True, check=True)
            print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
            for r in range(args.rounds):
                plain_core, observed_core = (cores[0], cores[1]) if r % 2 == 0 else (cores[1], cores[0])
                first, second = ("plain", "observed") if r % 2 == 0 else ("observed", "plain")
                core_of = {"plain": plain_core, "observed": observed_core}
                done = run_together(run_command(suites[first, core_of[first]], work / "out"),
                                    run_command(suites[second, core_of[second]], work / "out"))  # fmt: skip
                row: dict[str, Any] = {"round": r, "cores": core_of, "started_first": first}
                row.update({side: figures(d) for side, d in zip((first, second), done)})
                row["ratio"] = row["observed"]["latency_ms"] / row["plain"]["latency_ms"]
                rounds.append(row)
                print(f"round {r}: observed {row['observed']['latency_ms']:.4f} / plain {row['plain']['latency_ms']:.4f} "
                      f"ms = {row['ratio']:.3f}", file=sys.stderr)  # fmt: skip
    summary = verdict("latency", "observed / plain", [row["ratio"] for row in rounds], (0.98, 1.02))
    last = rounds[-1]["observed"]
    print(f"observed figures (last round): memory {last['memory_mb']:.1f} MB, energy {last['energy_mj']:.3g} mJ "
          f"per inference ({last['energy_method']})")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": MODEL, "time_s": args.time, "mode": args.mode, "rounds": rounds,
                                         "summary": summary},
                                        indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
