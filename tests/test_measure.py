import itertools
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from benchharness import measure as measure_module
from benchharness.measure import measure, sample, time_batch, warm_up
from benchharness.settings import MIN_SAMPLES_TIME_FACTOR, MeasureSettings, WarmupSettings
from benchharness.stats import summarize

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


def test_time_batch_real_clock_gives_one_nonnegative_int_per_call() -> None:
    calls = []
    samples = time_batch(lambda: calls.append(1), 1000)
    assert len(samples) == len(calls) == 1000
    assert all(type(s) is int and s >= 0 for s in samples)


# --- warm_up ----------------------------------------------------------------


def transient_then_flat(i: int) -> int:
    # 30 calls getting faster, then flat at 1000.
    return 10_000 - 300 * i if i < 30 else 1000


NO_MIN_TIME = {"min_time": 0.0}


def test_warmup_settles_after_transient() -> None:
    clock = FakeClock()
    report = warm_up(clock.workload(transient_then_flat), WarmupSettings(**NO_MIN_TIME), clock)
    # A probe call, then windows of calls 1-10, 11-20, 21-30, 31-40 (the first flat one), 41-50 and 51-60:
    # the last two each agree with the one before.
    assert report.settled is True
    assert report.iterations == 61
    expected_ns = sum(transient_then_flat(i) for i in range(61))
    assert report.elapsed_s == pytest.approx(expected_ns / S)


def test_warmup_respects_min_iterations() -> None:
    clock = FakeClock()
    report = warm_up(clock.workload(constant(1000)), WarmupSettings(min_iterations=95, **NO_MIN_TIME), clock)
    # Stable from the third window on, but must reach 95 calls: the probe and ten windows make 101.
    assert report.settled is True
    assert report.iterations == 101


def test_warmup_goes_on_until_min_time_once_settled() -> None:
    clock = FakeClock()
    # Windows agree from the start, but each call is 1 ms and at least 0.25 s must pass.
    report = warm_up(clock.workload(constant(1_000_000)), WarmupSettings(min_time=0.25), clock)
    assert report.settled is True
    assert report.iterations == 251
    assert report.elapsed_s == pytest.approx(0.251)


def test_warmup_that_settled_early_stays_settled_when_noise_follows() -> None:
    clock = FakeClock()
    # Flat for 100 calls, then every other window is twice as slow: settled before min_time ends.
    fn = clock.workload(lambda i: 1000 if i < 100 or (i // 10) % 2 else 2000)
    report = warm_up(fn, WarmupSettings(min_time=0.001, max_time=10.0), clock)
    assert report.settled is True
    assert report.elapsed_s >= 0.001


@pytest.mark.parametrize("max_iterations", [200, 205])
def test_warmup_never_settles_on_alternating_windows(max_iterations: int) -> None:
    clock = FakeClock()
    slow_every_other_window = lambda i: 1000 if ((i - 1) // 10) % 2 == 0 else 2000  # noqa: E731
    settings = WarmupSettings(max_iterations=max_iterations, max_time=1000.0, **NO_MIN_TIME)
    report = warm_up(clock.workload(slow_every_other_window), settings, clock)
    assert report.settled is False
    assert report.iterations == max_iterations  # the last window is cut short, not overrun


def test_warmup_of_a_slow_model_ends_within_max_time_plus_one_call() -> None:
    # A real 1.7 s detector spent 18 s warming up with max_time 5: windows of 10 calls ran past the budget.
    clock = FakeClock()
    report = warm_up(clock.workload(constant(1_700_000_000)), WarmupSettings(max_time=5.0), clock)
    assert report.settled is False
    assert report.elapsed_s <= 5.0 + 1.7
    assert report.iterations == 2  # 3.4 s done; a third call would end at 5.1 s, past the budget


def test_warmup_stops_near_the_budget_when_calls_slow_down() -> None:
    clock = FakeClock()
    # Calls take 0.1 s for ten calls, then 0.2 s: the first estimate is too low, so windows shrink to fit.
    fn = clock.workload(lambda i: S // 10 if i < 10 else S // 5)
    report = warm_up(fn, WarmupSettings(max_time=2.5, **NO_MIN_TIME), clock)
    assert report.elapsed_s <= 2.5 + 0.2


def test_warmup_stops_at_max_iterations_before_min_iterations_make_sense() -> None:
    clock = FakeClock()
    settings = WarmupSettings(min_iterations=1, max_iterations=1, tolerance=0.01)
    report = warm_up(clock.workload(constant(1000)), settings, clock)
    assert (report.iterations, report.settled) == (1, False)


# --- sample -----------------------------------------------------------------


def settings(**kwargs: float) -> MeasureSettings:
    return MeasureSettings(**{"min_time": 0.0, **kwargs})


def test_sample_reaches_ci_for_constant_timings_after_min_samples() -> None:
    clock = FakeClock()
    result = sample(clock.workload(constant(1000)), settings(), clock)
    assert result.stop_reason == "ci_reached"
    assert result.samples_ns == [1000] * 20
    assert result.elapsed_s == pytest.approx(20 * 1000 / S)


def test_sample_keeps_going_until_min_time() -> None:
    clock = FakeClock()
    result = sample(clock.workload(constant(1_000_000)), settings(min_time=0.5, max_time=2.0), clock)
    # The CI target is met after 20 samples, but half a second of 1 ms calls must pass first.
    assert result.stop_reason == "ci_reached"
    assert len(result.samples_ns) >= 500
    assert 0.5 <= result.elapsed_s < 2.0


def test_sample_needs_enough_samples_for_the_ci_level() -> None:
    clock = FakeClock()
    result = sample(clock.workload(constant(1000)), settings(min_samples=2, max_samples=100), clock)
    # 2 or 4 samples cannot give a 95% CI of the median; 8 is the first check with n >= 6.
    assert result.stop_reason == "ci_reached"
    assert len(result.samples_ns) == 8


def test_sample_stops_at_max_samples() -> None:
    clock = FakeClock()
    result = sample(clock.workload(alternating(1000, 2000)), settings(max_samples=1000), clock)
    assert result.stop_reason == "max_samples"
    assert len(result.samples_ns) == 1000
    assert result.samples_ns[:4] == [1000, 2000, 1000, 2000]


def test_sample_batches_double_and_land_on_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    real_time_batch = measure_module.time_batch

    def recording_time_batch(fn, n, clock):
        sizes.append(n)
        return real_time_batch(fn, n, clock)

    monkeypatch.setattr(measure_module, "time_batch", recording_time_batch)
    clock = FakeClock()
    sample(clock.workload(alternating(1000, 2000)), settings(max_samples=1000), clock)
    # Probe of one call, doubling up to exactly min_samples=20, doubling, then capped at 1000.
    assert sizes == [1, 1, 2, 4, 8, 4, 20, 40, 80, 160, 320, 360]


def test_sample_stops_before_the_time_budget() -> None:
    clock = FakeClock()
    fn = clock.workload(alternating(S // 10, S // 5))
    result = sample(fn, settings(max_time=10.0), clock)
    assert result.stop_reason == "time_budget"
    assert len(result.samples_ns) >= 20
    # A call that would end past the deadline is not started.
    assert 10.0 - 0.2 <= result.elapsed_s <= 10.0
    assert result.elapsed_s == pytest.approx(sum(result.samples_ns) / S)


def test_sample_stretches_budget_to_reach_min_samples() -> None:
    clock = FakeClock()
    result = sample(clock.workload(constant(S)), settings(min_samples=8, max_time=5.0), clock)
    # 8 one-second calls run past the 5 s budget, within the stretched deadline of 10 s.
    assert result.stop_reason == "ci_reached"
    assert len(result.samples_ns) == 8
    assert result.elapsed_s == pytest.approx(8.0)


def test_sample_never_passes_the_stretched_budget() -> None:
    # A 1.7 s model with max_time 2 sampled for 5.1 s against its 4 s cap: the third call should not start.
    clock = FakeClock()
    result = sample(clock.workload(constant(1_700_000_000)), settings(max_time=2.0), clock)
    assert MIN_SAMPLES_TIME_FACTOR * 2.0 == 4.0
    assert result.stop_reason == "time_budget"
    assert len(result.samples_ns) == 2
    assert result.elapsed_s == pytest.approx(3.4)


def test_measure_warms_up_then_samples() -> None:
    clock = FakeClock()
    fn = clock.workload(transient_then_flat)
    result = measure(fn, MeasureSettings(min_time=0.0, warmup=WarmupSettings(**NO_MIN_TIME)), clock)
    assert result.warmup.settled is True
    assert result.warmup.iterations == 61
    assert result.stop_reason == "ci_reached"
    assert result.samples_ns == [1000] * 20  # no warm-up call leaks into the samples
    assert result.elapsed_s == pytest.approx(20_000 / S)
    assert result.summary.count == 20
    assert result.summary.median == 1000.0
    assert result.summary.ci_level == 0.95


def test_measure_with_real_clock_is_consistent() -> None:
    calls = []
    fn = lambda: calls.append(sum(range(200)))  # noqa: E731
    result = measure(fn, settings(max_time=0.3, max_samples=20_000, warmup=WarmupSettings(max_time=0.2, min_time=0)))
    assert len(calls) == result.warmup.iterations + len(result.samples_ns)
    assert result.summary == summarize(result.samples_ns)
    # Sampling wall time covers the timed calls themselves.
    assert result.elapsed_s * S >= sum(result.samples_ns)
    if result.stop_reason == "ci_reached":
        assert result.summary.ci_rel_halfwidth <= 0.01 and len(result.samples_ns) >= 20
    elif result.stop_reason == "max_samples":
        assert len(result.samples_ns) == 20_000
    else:
        assert result.stop_reason == "time_budget"


# --- settings validation: one definition, the suite's -------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_iterations": 0}, "min_iterations\n  Input should be greater than 0"),
        ({"window": 0}, "window\n  Input should be greater than 0"),
        ({"stable_windows": 0}, "stable_windows\n  Input should be greater than 0"),
        ({"min_iterations": 2.5}, "min_iterations\n  Input should be a valid integer"),
        ({"min_iterations": 20, "max_iterations": 10}, r"min_iterations \(20\) exceeds max_iterations \(10\)"),
        ({"max_time": 0}, "max_time\n  Input should be greater than 0"),
        ({"max_time": float("inf")}, "max_time\n  non-finite number inf is not allowed"),
        ({"tolerance": -0.01}, "tolerance\n  Input should be greater than 0"),
        ({"min_time": -1}, "min_time\n  Input should be greater than or equal to 0"),
        ({"warm": 1}, "warm\n  Extra inputs are not permitted"),
    ],
)
def test_warmup_settings_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WarmupSettings(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_samples": 0}, "min_samples\n  Input should be greater than 0"),
        ({"min_samples": 50, "max_samples": 49}, r"min_samples \(50\) exceeds max_samples \(49\)"),
        ({"max_time": -1.0}, "max_time\n  Input should be greater than 0"),
        ({"target_ci": 0.0}, "target_ci\n  Input should be greater than 0"),
        ({"target_ci": 1.0}, "target_ci\n  Input should be less than 1"),
        ({"ci_level": 1.0}, "ci_level\n  Input should be less than 1"),
    ],
)
def test_measure_settings_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MeasureSettings(**kwargs)


def test_min_time_is_capped_at_max_time() -> None:
    assert MeasureSettings(min_time=20.0, max_time=3.0).min_time_capped == 3.0
    assert WarmupSettings(min_time=0.2, max_time=3.0).min_time_capped == 0.2


def test_documented_defaults_are_the_defaults() -> None:
    """The README's suite-format block states the defaults; they must be the code's."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme[readme.index("measure:\n  warmup:") :].split("\n```", 1)[0]
    warmup_line = re.search(r"warmup: \{(.*)\}", block).group(1)  # type: ignore[union-attr]
    documented_warmup = dict(item.split(": ") for item in warmup_line.split(", "))
    defaults = WarmupSettings()
    assert {k: float(v) for k, v in documented_warmup.items()} == {
        k: float(getattr(defaults, k)) for k in documented_warmup
    }
    measure_defaults = MeasureSettings()
    for key, value in re.findall(r"^  (\w+): ([\d.]+)", block, re.M):
        assert float(value) == float(getattr(measure_defaults, key)), key


def test_sampling_loads_the_statistics_before_its_clock_starts() -> None:
    """The first CI check must not import scipy inside the phase: that once took 0.9 s of a 2 s budget.

    And it needs only scipy.special: scipy.stats would cost every worker about a second more.
    """
    import subprocess
    import sys

    code = (
        "import sys, time\n"
        "from benchharness.measure import sample\n"
        "from benchharness.settings import MeasureSettings\n"
        "reads = []\n"
        "def clock():\n"
        "    reads.append('scipy.special' in sys.modules and 'scipy.stats' not in sys.modules)\n"
        "    return time.perf_counter_ns()\n"
        "sample(lambda: None, MeasureSettings(min_time=0, max_time=0.05), clock)\n"
        "print(all(reads), len(reads) > 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["True", "True"], proc.stderr
