"""How often does ``benchharness ab`` flag a regression: with none (A/A), with 10% and with 3% injected?

Builds a toy git repository holding a small CNN exported to ONNX (zoo MobileNetV2, width 0.5, 32x32,
10 classes), ``slowdown_plugin.py`` (backend ``slowed``: ONNX Runtime plus a busy wait of a fixed
fraction of each call's own time) and a suite, in three commits that differ only in that fraction:
0, 0.03 and 0.10.  Then it runs ``benchharness ab`` jobs, the three kinds interleaved (A/A, +10%,
+3%, A/A, ...) so that the machine's drift hits each kind alike, and counts the jobs whose verdict
was a regression (exit 1).  The Done-when of issue 9: A/A at most 1 of 10, +10% at least 9 of 10,
+3% at a 5% threshold at most 1 of 10.

    python bench/ab_detection.py --jobs 10 --rounds 10 [--same-core]

Writes ``bench/results/ab-detection-<UTC stamp>.json`` with every job's ratio, CI, p-value, verdict
and wall time, and prints the counts.  ``--summarize FILE`` prints the counts of an earlier run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KINDS = {"A/A": 0.0, "+10%": 0.10, "+3%": 0.03}
SUITE = """\
name: ab-detection
models: [{{source: onnx, path: model.onnx}}]
backends: [{{name: slowed, slowdown: {slowdown}}}]
targets: [{{name: cpu, threads: 1}}]
metrics: [latency]
measure: {{min_samples: 50, min_time: 0.5, max_time: 1.0, warmup: {{max_time: 0.5}}}}
"""


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity."""
    command = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-C", str(repo), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def export_model(path: Path) -> None:
    """The zoo's MobileNetV2 (width 0.5, 32x32, 10 classes, seeded random weights) as ONNX, TorchScript exporter."""
    import torch

    sys.path.insert(0, str(HERE.parent / "plugins"))
    from benchharness_zoo.models import build_model

    torch.manual_seed(0)
    model = build_model("mobilenet_v2", width=0.5, input_size=32, num_classes=10)
    torch.onnx.export(model, (torch.randn(1, 3, 32, 32),), str(path), input_names=["x"], dynamo=False)


def make_repo(root: Path) -> tuple[Path, dict[str, str]]:
    """The toy repository and the commit of each slowdown."""
    repo = root / "project"
    repo.mkdir(parents=True)
    export_model(repo / "model.onnx")
    shutil.copy(HERE / "slowdown_plugin.py", repo / "slowdown_plugin.py")
    git(repo, "init", "-q", "-b", "main")
    commits = {}
    for kind, slowdown in KINDS.items():
        (repo / "suite.yaml").write_text(SUITE.format(slowdown=slowdown))
        git(repo, "add", ".")
        git(repo, "commit", "-q", "--allow-empty", "-m", f"slowdown {slowdown}")
        commits[kind] = git(repo, "rev-parse", "HEAD")
    return repo, commits


def one_job(
    repo: Path, base: str, head: str, rounds: int, threshold: str, out: Path, same_core: bool = False
) -> dict[str, Any]:
    """One ``benchharness ab`` job; its latency row, exit code and wall time."""
    command = [sys.executable, "-m", "benchharness", "ab", "suite.yaml", "--base", base, "--head", head,
               "--rounds", str(rounds), "--threshold", threshold, "-p", "slowdown_plugin", "--format", "json",
               "-o", str(out), *(["--same-core"] if same_core else [])]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise RuntimeError(f"benchharness ab failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    (row,) = [r for r in json.loads(done.stdout)["rows"] if r["metric"] == "latency"]
    keep = ("ratio", "ci_low", "ci_high", "p_value", "test", "verdict", "regression")
    return {"exit": done.returncode, "wall_s": wall, **{k: row.get(k) for k in keep}, "rounds": _rounds(done.stderr)}


def _rounds(stderr: str) -> list[dict[str, float]]:
    """Each round's base and head medians (ms), from the two merged results files the job names."""
    import re

    match = re.search(r"^results: (\S+) and (\S+) ", stderr, re.M)
    if not match:
        return []
    sides = [json.loads(Path(p).read_text())["cases"][0]["processes"] for p in match.groups()]
    return [
        {"base": b["metrics"]["latency"]["value"], "head": h["metrics"]["latency"]["value"]}
        for b, h in zip(*sides)
        if b["status"] == h["status"] == "ok"
    ]


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    """Per kind: jobs, how many were flagged (exit 1), and the ratios' range."""
    out = {}
    for kind in KINDS:
        jobs = [j for j in record["jobs"] if j["kind"] == kind]
        ratios = sorted(j["ratio"] for j in jobs if j["ratio"] is not None)
        out[kind] = {
            "jobs": len(jobs),
            "flagged": sum(j["exit"] == 1 for j in jobs),
            "ratio_min": ratios[0] if ratios else None,
            "ratio_median": ratios[len(ratios) // 2] if ratios else None,
            "ratio_max": ratios[-1] if ratios else None,
            "mean_job_s": sum(j["wall_s"] for j in jobs) / len(jobs) if jobs else None,
        }
    return out


def show(summary: dict[str, Any], threshold: str) -> None:
    for kind, s in summary.items():
        if s["jobs"]:
            print(
                f"{kind:>5}: flagged {s['flagged']} of {s['jobs']} (threshold {threshold}); ratio "
                f"{s['ratio_min']:.3f}..{s['ratio_median']:.3f}..{s['ratio_max']:.3f} (min..median..max); "
                f"{s['mean_job_s']:.0f} s per job"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10, help="A/B jobs of each kind (default 10)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per job (default 10, as benchharness ab)")
    parser.add_argument("--threshold", default="5%")
    parser.add_argument("--same-core", action="store_true", help="pass --same-core to benchharness ab")
    parser.add_argument("--kinds", default=",".join(KINDS), help="which kinds to run (default all)")
    parser.add_argument("--summarize", type=Path, metavar="FILE", help="print the counts of an earlier run")
    args = parser.parse_args(argv)
    if args.summarize:
        record = json.loads(args.summarize.read_text())
        show(summarize(record), record["threshold"])
        return 0
    kinds = [k for k in args.kinds.split(",") if k]
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H%MZ")
    target = HERE / "results" / f"ab-detection{'-same-core' if args.same_core else ''}-{stamp}.json"
    record: dict[str, Any] = {"rounds": args.rounds, "threshold": args.threshold, "same_core": args.same_core,
                              "jobs": [],
                              "command": " ".join(["python", "bench/ab_detection.py", *(argv or sys.argv[1:])])}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="ab-detection-") as scratch:
        repo, commits = make_repo(Path(scratch))
        for n in range(args.jobs):
            for kind in kinds:
                out = Path(scratch) / "out"
                job = one_job(repo, commits["A/A"], commits[kind], args.rounds, args.threshold, out, args.same_core)
                job["kind"] = kind
                record["jobs"].append(job)
                print(f"job {n + 1}/{args.jobs} {kind}: exit {job['exit']}, ratio {job['ratio']:.3f} "
                      f"[{job['ci_low']:.3f}, {job['ci_high']:.3f}], p {job['p_value']:.3g}, {job['verdict']} "
                      f"({job['wall_s']:.0f} s)", flush=True)  # fmt: skip
                target.write_text(json.dumps(record, indent=1))
    record["summary"] = summarize(record)
    target.write_text(json.dumps(record, indent=1))
    show(record["summary"], args.threshold)
    print(f"written: {target.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
