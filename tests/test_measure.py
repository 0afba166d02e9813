import itertools
import math
import statistics
from collections.abc import Callable

import pytest

from benchharness import measure as measure_module
from benchharness.measure import (
    MIN_SAMPLES_TIME_FACTOR,
    SamplingSettings,
    WarmupSettings,
    measure,
    sample,
    time_batch,
    warm_up,
)

S = 1_000_000_000  # ns per second


class FakeClock:
    """Deterministic clock: reading it never advances time; only the scripted fn does."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def workload(self, duration_ns: Callable[[int], int]) -> Callable[[], None]:
        """A fn whose i-th call (0-based) takes duration_ns(i) on this clock."""
        calls = itertools.count()

        def fn() -> None:
            self.now += duration_ns(next(calls))

        return fn


def constant(ns: int) -> Callable[[int], int]:
    return lambda i: ns


def alternating(a: int, b: int) -> Callable[[int], int]:
    return lambda i: a if i % 2 == 0 else b


# --- time_batch -------------------------------------------------------------


def test_time_batch_reads_the_clock_exactly_twice_per_call() -> None:
    reads = iter([0, 5, 10, 17, 100, 101]).__next__
    calls = []
    assert time_batch(lambda: calls.append(1), 3, clock=reads) == [5, 7, 1]
    assert len(calls) == 3


def test_time_batch_empty_and_negative() -> None:
    assert time_batch(lambda: None, 0) == []
    with pytest.raises(ValueError, match="n must be >= 0"):
        time_batch(lambda: None, -1)


def test_time_batch_real_clock_overhead_is_small() -> None:
    samples = time_batch(lambda: None, 10_000)
    assert len(samples) == 10_000
    assert all(type(s) is int and s >= 0 for s in samples)
    assert statistics.median(samples) < 1000  # ~50-150 ns on typical hardware


# --- warm_up ----------------------------------------------------------------


def transient_then_flat(i: int) -> int:
    # 30 calls getting faster (window medians 8650, 5650, 2650), then flat at 1000.
    return 10_000 - 300 * i if i < 30 else 1000


def test_warmup_settles_after_transient() -> None:
    clock = FakeClock()
    report = warm_up(clock.workload(transient_then_flat), WarmupSettings(), clock)
    # Window 4 (calls 30-39) is the first flat one; windows 5 and 6 make two stable comparisons.
    assert report.settled is True
    assert report.iterations == 60
    expected_ns = sum(transient_then_flat(i) for i in range(60))
    assert report.elapsed_s == pytest.approx(expected_ns / S)


def test_warmup_respects_min_iterations() -> None:
    clock = FakeClock()
    report = warm_up(clock.workload(constant(1000)), WarmupSettings(min_iterations=95), clock)
    # Stable from the third window on, but must reach 95 calls: the 10th window ends at 100.
    assert report.settled is True
    assert report.iterations == 100


def test_warmup_respects_min_time() -> None:
    clock = FakeClock()
    # Windows agree from the start, but each call is 1 ms and at least 0.25 s must pass: 250 calls.
    report = warm_up(clock.workload(constant(1_000_000)), WarmupSettings(min_time_s=0.25), clock)
    assert report.settled is True
    assert report.iterations == 250
    assert report.elapsed_s == pytest.approx(0.25)


@pytest.mark.parametrize("max_iterations", [200, 205])
def test_warmup_never_settles_on_alternating_windows(max_iterations: int) -> None:
    clock = FakeClock()
    slow_every_other_window = lambda i: 1000 if (i // 10) % 2 == 0 else 2000  # noqa: E731
    settings = WarmupSettings(max_iterations=max_iterations, max_time_s=1000.0)
    report = warm_up(clock.workload(slow_every_other_window), settings, clock)
    assert report.settled is False
    assert report.iterations == max_iterations  # the last window is cut short, not overrun


def test_warmup_stops_at_time_budget() -> None:
    clock = FakeClock()
    fn = clock.workload(lambda i: S // 10 if (i // 10) % 2 == 0 else S // 5)
    report = warm_up(fn, WarmupSettings(max_time_s=2.5), clock)
    # Windows take 1 s and 2 s alternately; the budget is checked between windows,
    # so the second window runs to its end at 3 s.
    assert report.settled is False
    assert report.iterations == 20
    assert report.elapsed_s == pytest.approx(3.0)


def test_warmup_min_iterations_override_time_budget() -> None:
    clock = FakeClock()
    settings = WarmupSettings(min_iterations=30, max_time_s=1.0)
    report = warm_up(clock.workload(alternating(S, 3 * S)), settings, clock)
    assert report.iterations == 30
    assert report.elapsed_s == pytest.approx(60.0)


# --- sample -----------------------------------------------------------------


def test_sample_reaches_ci_for_constant_timings_after_min_samples() -> None:
    clock = FakeClock()
    samples, reason, elapsed_s = sample(clock.workload(constant(1000)), SamplingSettings(), clock)
    assert reason == "ci_reached"
    assert samples == [1000] * 20
    assert elapsed_s == pytest.approx(20 * 1000 / S)


def test_sample_keeps_going_until_min_time() -> None:
    clock = FakeClock()
    settings = SamplingSettings(min_time_s=0.5, max_time_s=2.0)
    samples, reason, elapsed_s = sample(clock.workload(constant(1_000_000)), settings, clock)
    # The CI target is met after 20 samples, but half a second of 1 ms calls must pass first.
    assert reason == "ci_reached"
    assert len(samples) >= 500
    assert 0.5 <= elapsed_s < 2.0


def test_sample_needs_enough_samples_for_the_ci_level() -> None:
    clock = FakeClock()
    settings = SamplingSettings(min_samples=2, max_samples=100)
    samples, reason, _ = sample(clock.workload(constant(1000)), settings, clock)
    # 2 or 4 samples cannot give a 95% CI of the median; 8 is the first check with n >= 6.
    assert reason == "ci_reached"
    assert len(samples) == 8


def test_sample_stops_at_max_samples() -> None:
    clock = FakeClock()
    settings = SamplingSettings(max_samples=1000)
    samples, reason, _ = sample(clock.workload(alternating(1000, 2000)), settings, clock)
    assert reason == "max_samples"
    assert len(samples) == 1000
    assert samples[:4] == [1000, 2000, 1000, 2000]


def test_sample_batches_double_and_land_on_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    real_time_batch = measure_module.time_batch

    def recording_time_batch(fn, n, clock):
        sizes.append(n)
        return real_time_batch(fn, n, clock)

    monkeypatch.setattr(measure_module, "time_batch", recording_time_batch)
    clock = FakeClock()
    settings = SamplingSettings(max_samples=1000)
    sample(clock.workload(alternating(1000, 2000)), settings, clock)
    # Probe of one call, doubling up to exactly min_samples=20, doubling, then capped at 1000.
    assert sizes == [1, 1, 2, 4, 8, 4, 20, 40, 80, 160, 320, 360]


def test_sample_stops_at_time_budget() -> None:
    clock = FakeClock()
    settings = SamplingSettings(max_time_s=10.0)
    fn = clock.workload(alternating(S // 10, S // 5))
    samples, reason, elapsed_s = sample(fn, settings, clock)
    assert reason == "time_budget"
    assert len(samples) >= settings.min_samples
    # Batches are sized from the time per call so far, so the overrun is under one call.
    assert 10.0 <= elapsed_s < 10.0 + 0.2
    assert elapsed_s == pytest.approx(sum(samples) / S)


def test_sample_stretches_budget_to_reach_min_samples() -> None:
    clock = FakeClock()
    settings = SamplingSettings(min_samples=8, max_time_s=5.0)
    samples, reason, elapsed_s = sample(clock.workload(constant(S)), settings, clock)
    # 8 one-second calls run past the 5 s budget, within the stretched deadline of 10 s.
    assert reason == "ci_reached"
    assert len(samples) == 8
    assert elapsed_s == pytest.approx(8.0)


def test_sample_gives_up_on_min_samples_past_stretched_budget() -> None:
    clock = FakeClock()
    settings = SamplingSettings(min_samples=8, max_time_s=5.0)
    samples, reason, elapsed_s = sample(clock.workload(constant(3 * S)), settings, clock)
    # Calls end at 3, 6, 9, 12 s; the stretched deadline is 10 s.
    assert MIN_SAMPLES_TIME_FACTOR * settings.max_time_s == 10.0
    assert reason == "time_budget"
    assert len(samples) == 4
    assert elapsed_s == pytest.approx(12.0)


def test_measure_warms_up_then_samples() -> None:
    clock = FakeClock()
    fn = clock.workload(transient_then_flat)
    result = measure(fn, WarmupSettings(), SamplingSettings(), clock)
    assert result.warmup.settled is True
    assert result.warmup.iterations == 60
    assert result.stop_reason == "ci_reached"
    assert result.samples_ns == [1000] * 20  # no warmup call leaks into the samples
    assert result.elapsed_s == pytest.approx(20_000 / S)
    assert result.summary.count == 20
    assert result.summary.median == 1000.0
    assert result.summary.ci_level == 0.95


def test_measure_with_real_clock_is_consistent() -> None:
    result = measure(
        lambda: sum(range(200)),
        WarmupSettings(max_time_s=0.2),
        SamplingSettings(max_time_s=0.3, max_samples=20_000),
    )
    assert result.stop_reason in {"ci_reached", "max_samples", "time_budget"}
    assert result.summary.count == len(result.samples_ns) >= 20
    assert 0 < result.summary.median < 1e6
    assert result.elapsed_s < 2.0


# --- settings validation ----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_iterations": 0}, "min_iterations must be a positive integer"),
        ({"max_iterations": -1}, "max_iterations must be a positive integer"),
        ({"window": 0}, "window must be a positive integer"),
        ({"stable_windows": 0}, "stable_windows must be a positive integer"),
        ({"min_iterations": 2.5}, "min_iterations must be a positive integer"),
        ({"window": True}, "window must be a positive integer"),
        ({"min_iterations": 20, "max_iterations": 10}, "must not exceed max_iterations"),
        ({"max_time_s": 0}, "max_time_s must be a finite number of seconds > 0"),
        ({"max_time_s": math.inf}, "max_time_s must be a finite number of seconds > 0"),
        ({"max_time_s": math.nan}, "max_time_s must be a finite number of seconds > 0"),
        ({"tolerance": -0.01}, "tolerance must be a finite number >= 0"),
        ({"tolerance": math.nan}, "tolerance must be a finite number >= 0"),
        ({"min_time_s": 11.0}, r"min_time_s must be between 0 and max_time_s \(10.0\), got 11.0"),
        ({"min_time_s": -1}, r"min_time_s must be between 0 and max_time_s"),
    ],
)
def test_warmup_settings_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WarmupSettings(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_samples": 0}, "min_samples must be a positive integer"),
        ({"max_samples": 0}, "max_samples must be a positive integer"),
        ({"min_samples": 50, "max_samples": 49}, "must not exceed max_samples"),
        ({"max_time_s": -1.0}, "max_time_s must be a finite number of seconds > 0"),
        ({"target_ci": 0.0}, r"target_ci must be in the open interval \(0, 1\)"),
        ({"target_ci": 1.0}, r"target_ci must be in the open interval \(0, 1\)"),
        ({"ci_level": 1.0}, r"ci_level must be in the open interval \(0, 1\)"),
        ({"ci_level": 0.0}, r"ci_level must be in the open interval \(0, 1\)"),
        ({"min_time_s": 20.0}, r"min_time_s must be between 0 and max_time_s \(10.0\), got 20.0"),
    ],
)
def test_sampling_settings_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SamplingSettings(**kwargs)


def test_default_settings_are_valid() -> None:
    WarmupSettings()
    SamplingSettings()
    WarmupSettings(min_iterations=1, max_iterations=1, tolerance=0.0)
    SamplingSettings(min_samples=1, max_samples=1)
