"""Timing loop: warm up until timings settle, then sample adaptively.

The references are pyperf's warmup calibration (compare consecutive groups of
values until they agree) and ``torch.utils.benchmark``'s ``adaptive_autorange``
(keep sampling until a precision target or a time budget is hit). Unlike
both, every call of ``fn`` is timed on its own, because inference calls are
long enough for a per-call clock and the raw per-call samples are kept for
significance tests later.
"""

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchharness.stats import Summary, summarize

Clock = Callable[[], int]
"""A monotonic clock in integer nanoseconds; ``time.perf_counter_ns`` by default."""

# Before ``min_samples`` are in hand the time budget may stretch to this many
# times ``max_time_s``: a few statistically meaningful samples are worth more
# than strict punctuality, but a very slow ``fn`` must still be cut off.
MIN_SAMPLES_TIME_FACTOR = 2.0

_NS_PER_S = 1_000_000_000


def _require_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _require_positive_seconds(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")


def _require_min_time(min_time_s: float, max_time_s: float) -> None:
    if not (isinstance(min_time_s, (int, float)) and math.isfinite(min_time_s) and 0 <= min_time_s <= max_time_s):
        raise ValueError(f"min_time_s must be between 0 and max_time_s ({max_time_s}), got {min_time_s!r}")


def _require_open_unit(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be in the open interval (0, 1), got {value!r}")


@dataclass(frozen=True)
class WarmupSettings:
    """When warmup stops.

    Warmup runs windows of ``window`` calls and compares the median of each
    window with the previous one. It has settled once the relative change is
    at most ``tolerance`` for ``stable_windows`` windows in a row and at least
    ``min_iterations`` calls were made and ``min_time_s`` has passed. It gives
    up (unsettled) at ``max_iterations`` calls or once ``max_time_s`` has
    passed.
    """

    min_iterations: int = 10
    max_iterations: int = 10_000
    max_time_s: float = 10.0
    #: Short windows of a fast model can agree while caches, allocators and
    #: CPU clocks are still warming; a floor in seconds guards against that.
    min_time_s: float = 0.0
    window: int = 10
    tolerance: float = 0.05
    stable_windows: int = 2

    def __post_init__(self) -> None:
        for name in ("min_iterations", "max_iterations", "window", "stable_windows"):
            _require_positive_int(name, getattr(self, name))
        if self.min_iterations > self.max_iterations:
            raise ValueError(
                f"min_iterations ({self.min_iterations}) must not exceed max_iterations ({self.max_iterations})"
            )
        _require_positive_seconds("max_time_s", self.max_time_s)
        _require_min_time(self.min_time_s, self.max_time_s)
        if not (isinstance(self.tolerance, (int, float)) and math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(f"tolerance must be a finite number >= 0, got {self.tolerance!r}")


@dataclass(frozen=True)
class SamplingSettings:
    """When sampling stops.

    Sampling stops as soon as at least ``min_samples`` were taken, at least
    ``min_time_s`` has passed, and the ``ci_level`` confidence interval of the
    median has a relative half-width of at most ``target_ci``; or at
    ``max_samples``; or once ``max_time_s`` has passed. Before
    ``min_samples`` are in hand the budget stretches to
    ``MIN_SAMPLES_TIME_FACTOR * max_time_s``.
    """

    min_samples: int = 20
    max_samples: int = 100_000
    max_time_s: float = 10.0
    #: On a shared machine consecutive samples are correlated: a tight CI from
    #: a few milliseconds of samples understates run-to-run variation.
    min_time_s: float = 0.0
    target_ci: float = 0.01
    ci_level: float = 0.95

    def __post_init__(self) -> None:
        _require_positive_int("min_samples", self.min_samples)
        _require_positive_int("max_samples", self.max_samples)
        if self.min_samples > self.max_samples:
            raise ValueError(f"min_samples ({self.min_samples}) must not exceed max_samples ({self.max_samples})")
        _require_positive_seconds("max_time_s", self.max_time_s)
        _require_min_time(self.min_time_s, self.max_time_s)
        _require_open_unit("target_ci", self.target_ci)
        _require_open_unit("ci_level", self.ci_level)


@dataclass
class WarmupReport:
    """What warmup did: calls made, seconds spent, and whether timings settled."""

    iterations: int
    elapsed_s: float
    settled: bool


@dataclass
class Measurement:
    """Raw samples and their summary for one function.

    ``elapsed_s`` covers the sampling phase only; warmup time is in
    ``warmup.elapsed_s``. ``stop_reason`` is ``"ci_reached"``,
    ``"max_samples"`` or ``"time_budget"``.
    """

    samples_ns: list[int]
    warmup: WarmupReport
    stop_reason: str
    elapsed_s: float
    summary: Summary


def time_batch(fn: Callable[[], object], n: int, clock: Clock = time.perf_counter_ns) -> list[int]:
    """Call ``fn`` ``n`` times and return each call's duration in clock units (ns).

    This is the only timed region of the harness, so the loop body is just
    two clock reads around the call and a store into a preallocated list.
    ``fn`` must include whatever makes its work complete, e.g. a CUDA
    synchronize, since the clock only sees the host.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    samples = [0] * n
    for i in range(n):
        t0 = clock()
        fn()
        samples[i] = clock() - t0
    return samples


def warm_up(fn: Callable[[], object], settings: WarmupSettings, clock: Clock = time.perf_counter_ns) -> WarmupReport:
    """Call ``fn`` until its timings settle, as described by ``WarmupSettings``.

    At least ``min_iterations`` calls are always made, even past
    ``max_time_s``: skipping warmup would bias every sample that follows. The
    time budget is checked between windows, so it can be overrun by up to one
    window. A final window cut short by ``max_iterations`` is still compared.
    """
    start = clock()
    budget_ns = settings.max_time_s * _NS_PER_S
    iterations = 0
    streak = 0
    previous: float | None = None
    while True:
        n = min(settings.window, settings.max_iterations - iterations)
        current = statistics.median(time_batch(fn, n, clock))
        iterations += n
        # Written as a product so a zero median (coarse clock) cannot divide by zero.
        if previous is not None and abs(current - previous) <= settings.tolerance * previous:
            streak += 1
        else:
            streak = 0
        previous = current
        elapsed_ns = clock() - start
        if (
            streak >= settings.stable_windows
            and iterations >= settings.min_iterations
            and elapsed_ns >= settings.min_time_s * _NS_PER_S
        ):
            settled = True
            break
        out_of_time = elapsed_ns >= budget_ns
        if iterations >= settings.max_iterations or (out_of_time and iterations >= settings.min_iterations):
            settled = False
            break
    elapsed_s = (clock() - start) / _NS_PER_S
    return WarmupReport(iterations=iterations, elapsed_s=elapsed_s, settled=settled)


def sample(
    fn: Callable[[], object], settings: SamplingSettings, clock: Clock = time.perf_counter_ns
) -> tuple[list[int], str, float]:
    """Time ``fn`` in growing batches until a stop rule of ``SamplingSettings`` fires.

    Returns ``(samples_ns, stop_reason, elapsed_s)``. The CI check sorts all
    samples, so it runs only between batches, never inside the timed region.
    The first batch is a single call, because the cost of ``fn`` is unknown;
    later batches double the sample count (amortising the check) but are
    capped by ``max_samples`` and by the calls that fit in the time left,
    estimated from the wall time per call so far (check cost included), so
    ``max_time_s`` is overrun by about one call and one check at most. Until
    ``min_samples`` are taken the deadline is ``MIN_SAMPLES_TIME_FACTOR``
    times ``max_time_s``; past that, sampling stops with ``"time_budget"``
    and fewer than ``min_samples``.
    """
    start = clock()
    budget_ns = settings.max_time_s * _NS_PER_S
    min_time_ns = settings.min_time_s * _NS_PER_S
    samples: list[int] = []
    batch = 1
    while True:
        samples += time_batch(fn, batch, clock)
        count = len(samples)
        enough = count >= settings.min_samples
        elapsed_ns = clock() - start
        if (
            enough
            and elapsed_ns >= min_time_ns
            and summarize(samples, settings.ci_level).ci_rel_halfwidth <= settings.target_ci
        ):
            reason = "ci_reached"
            break
        if count >= settings.max_samples:
            reason = "max_samples"
            break
        deadline_ns = budget_ns if enough else MIN_SAMPLES_TIME_FACTOR * budget_ns
        if elapsed_ns >= deadline_ns:
            reason = "time_budget"
            break
        # Double the count; before min_samples, land on it exactly so the first check comes early.
        growth = count if enough else min(count, settings.min_samples - count)
        batch = min(growth, settings.max_samples - count)
        per_call_ns = elapsed_ns / count
        if per_call_ns > 0:
            batch = max(1, min(batch, int((deadline_ns - elapsed_ns) / per_call_ns)))
    return samples, reason, (clock() - start) / _NS_PER_S


def measure(
    fn: Callable[[], object],
    warmup: WarmupSettings,
    sampling: SamplingSettings,
    clock: Clock = time.perf_counter_ns,
) -> Measurement:
    """Warm ``fn`` up, sample it, and summarize the samples at ``sampling.ci_level``."""
    report = warm_up(fn, warmup, clock)
    samples, reason, elapsed_s = sample(fn, sampling, clock)
    return Measurement(
        samples_ns=samples,
        warmup=report,
        stop_reason=reason,
        elapsed_s=elapsed_s,
        summary=summarize(samples, sampling.ci_level),
    )
