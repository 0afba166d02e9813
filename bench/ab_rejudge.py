"""Re-judge the rounds an ab_detection.py run recorded, leaving out rounds with an outlying process.

    python bench/ab_rejudge.py bench/results/ab-detection-2026-11-30T0758Z.json

For each job: the verdict as run, and the verdict of ``benchharness.compare.judge_paired`` on the
rounds that are left when every round is dropped in which either side's process median lies more
than 3.5 robust standard deviations (1.4826 x MAD) from that side's median.  A what-if for a rule
the harness does not apply yet (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchharness.compare import judge_paired  # noqa: E402


def kept_rounds(rounds: list[dict[str, float]], k: float = 3.5) -> list[dict[str, float]]:
    """The rounds in which neither side's median is an outlier among that side's rounds."""
    outlying = []
    for side in ("base", "head"):
        values = [r[side] for r in rounds]
        centre = statistics.median(values)
        mad = statistics.median(abs(v - centre) for v in values) or 1e-12
        outlying.append([abs(v - centre) / (1.4826 * mad) > k for v in values])
    return [r for r, a, b in zip(rounds, *outlying) if not (a or b)]


def main() -> int:
    record = json.loads(Path(sys.argv[1]).read_text())
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for job in record["jobs"]:
        kept = kept_rounds(job["rounds"])
        ratios = [r["head"] / r["base"] for r in kept]
        judged = judge_paired(ratios, better="lower", threshold=0.05, alpha=0.05, time_based=True)
        counts[job["kind"]][0] += 1
        counts[job["kind"]][1] += job["exit"] == 1
        counts[job["kind"]][2] += judged.regression
        print(f"{job['kind']:>5}: {job['verdict']} -> {judged.verdict} (ratio {judged.ratio:.3f}, {len(kept)} rounds)")
    for kind, (jobs, as_run, rejudged) in counts.items():
        print(f"{kind:>5}: {jobs} jobs, flagged {as_run} as run, {rejudged} with outlying rounds left out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
