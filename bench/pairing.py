"""Shared by the paired benchmarks: two commands run at once, and the median of per-round ratios with its CI.

On a shared machine only ratios taken in the same round mean anything.  Two
processes run at the same time, each pinned to a core of its own (cores
swapped between rounds), see the same slowdowns of the machine; the verdict
is on the median of the per-round ratios, with a percentile-bootstrap 95%
interval of that median.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def fixed_time_measure(seconds: float) -> str:
    """A suite's ``measure`` that samples for exactly ``seconds`` (min_time = max_time, a CI target it cannot
    reach), as benchmark_app runs for ``-t`` seconds, after 1-2 s of warm-up."""
    return (
        f"measure: {{min_time: {seconds}, max_time: {seconds}, target_ci: 0.0001, max_samples: 10000000,\n"
        f"          warmup: {{min_time: 1.0, max_time: 2.0}}, timeout: {seconds * 4 + 60}}}\n"
    )


def run_command(suite_path: Path, out: Path) -> list[str]:
    """``benchharness run`` of ``suite_path`` into ``out``, quiet, printing JSON."""
    return [sys.executable, "-m", "benchharness", "run", str(suite_path), "-q", "-o", str(out), "--format", "json"]


def only_case(done: subprocess.CompletedProcess) -> dict[str, Any]:
    """The one case of the results file a finished ``benchharness run`` named on stderr; an error if it failed."""
    match = re.search(r"^results: (.+)$", done.stderr, re.M)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"benchharness run failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    (case,) = json.loads(Path(match.group(1)).read_text())["cases"]
    return case


def run_together(first: list[str], second: list[str], delay: float = 0.0) -> tuple[subprocess.CompletedProcess, ...]:
    """Start ``first``, then ``second`` ``delay`` seconds later; wait for both; return both results (text)."""
    procs = [subprocess.Popen(first, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    time.sleep(delay)
    procs.append(subprocess.Popen(second, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    done = []
    for proc in procs:
        out, err = proc.communicate()
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return tuple(done)


def bootstrap_ci(ratios: list[float], resamples: int = 10000, seed: int = 0) -> tuple[float, float]:
    """A percentile-bootstrap 95% interval of the median of ``ratios`` (rounds resampled with replacement)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    data = np.asarray(ratios)
    medians = np.median(rng.choice(data, size=(resamples, len(data)), replace=True), axis=1)
    return float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def verdict(name: str, what: str, ratios: list[float], band: tuple[float, float]) -> dict[str, Any]:
    """Print one line on the median ratio of ``ratios`` against ``band``, with its CI; return the figures."""
    median = statistics.median(ratios)
    low, high = bootstrap_ci(ratios)
    lo, hi = band
    summary = {"median_ratio": median, "ci95": [low, high], "min": min(ratios), "max": max(ratios), "ratios": ratios,
               "pass": lo <= median <= hi, "settled": lo <= low and high <= hi}  # fmt: skip
    print(f"{name}: {what} median ratio {median:.3f}, 95% CI {low:.3f} .. {high:.3f} (range {min(ratios):.3f} .. "
          f"{max(ratios):.3f}, {len(ratios)} rounds); target {lo:g}-{hi:g}: {'PASS' if summary['pass'] else 'FAIL'} "
          f"(CI {'inside' if summary['settled'] else 'not inside'} the band)")  # fmt: skip
    return summary
