import math

import numpy as np
import pytest
from scipy import stats as sps

from benchharness.stats import Summary, median_ci, summarize

N_LARGE = 200_000


def _expected_quantiles(dist) -> dict[str, float]:
    return {
        "median": dist.ppf(0.5),
        "p90": dist.ppf(0.9),
        "p95": dist.ppf(0.95),
        "p99": dist.ppf(0.99),
        "iqr": dist.ppf(0.75) - dist.ppf(0.25),
    }


@pytest.mark.parametrize(
    ("name", "dist"),
    [
        ("normal", sps.norm(loc=10.0, scale=2.0)),
        ("exponential", sps.expon(scale=1.0)),
        ("uniform", sps.uniform(loc=0.0, scale=1.0)),
    ],
)
def test_summary_matches_theoretical_quantiles(name: str, dist) -> None:
    x = dist.rvs(size=N_LARGE, random_state=np.random.default_rng(1234))
    s = summarize(x)
    assert s.count == N_LARGE
    # n = 200k puts every sample quantile within ~1% of the truth (several standard errors).
    for field, expected in _expected_quantiles(dist).items():
        assert getattr(s, field) == pytest.approx(expected, rel=0.02, abs=0.01), (name, field)
    assert s.mean == pytest.approx(dist.mean(), rel=0.01, abs=0.01)
    assert s.stdev == pytest.approx(dist.std(), rel=0.01)
    assert s.min == x.min() and s.max == x.max()
    assert s.ci_low <= s.median <= s.ci_high
    assert s.ci_rel_halfwidth < 0.01


def test_percentiles_use_numpy_linear_method() -> None:
    x = np.random.default_rng(7).lognormal(size=1001)
    s = summarize(x)
    p25, p50, p75, p90, p95, p99 = np.percentile(x, [25, 50, 75, 90, 95, 99])
    assert (s.median, s.p90, s.p95, s.p99) == (p50, p90, p95, p99)
    assert s.iqr == p75 - p25
    assert s.stdev == pytest.approx(np.std(x, ddof=1))


def test_median_ci_coverage_on_exponential_samples() -> None:
    rng = np.random.default_rng(2024)
    true_median = math.log(2.0)
    trials = 400
    hits = 0
    for _ in range(trials):
        lo, hi = median_ci(np.sort(rng.exponential(size=50)), 0.95)
        hits += lo <= true_median <= hi
    coverage = hits / trials
    # Nominal coverage for n=50 is 0.967; the upper bound catches a CI degenerated to the range.
    assert 0.93 <= coverage < 0.995


@pytest.mark.parametrize("n", [6, 7, 10, 20, 50, 51, 999])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_median_ci_matches_scipy_quantile_test(n: int, level: float) -> None:
    x = np.sort(np.random.default_rng(n).exponential(size=n))
    expected = sps.quantile_test(x, q=float(np.median(x)), p=0.5).confidence_interval(level)
    if np.isnan(expected.low):
        # scipy gives NaN where no order statistics reach the level; we fall back to the range.
        assert median_ci(x, level) == (x[0], x[-1])
    else:
        assert median_ci(x, level) == (expected.low, expected.high)


@pytest.mark.parametrize(
    ("n", "rank_low", "rank_high"),
    [
        # B ~ Bin(10, 1/2): P(B <= 1) = 11/1024 < 0.025 <= P(B <= 2) = 56/1024,
        # so the 2nd and 9th order statistics; coverage 1 - 22/1024 = 0.979.
        (10, 2, 9),
        # Textbook table for n = 20 at 95%: 6th and 15th (coverage 0.959).
        (20, 6, 15),
        # n = 6 is the smallest n reaching 95%: 1 - 2/64 = 0.969 with the extremes.
        (6, 1, 6),
    ],
)
def test_median_ci_hand_computed_ranks(n: int, rank_low: int, rank_high: int) -> None:
    x = np.arange(1.0, n + 1)
    assert median_ci(x, 0.95) == (float(rank_low), float(rank_high))


def test_small_n_falls_back_to_range_and_flags_unreached_level() -> None:
    s = summarize([3.0, 1.0, 2.0, 5.0, 4.0])  # n = 5 < 6 cannot reach 95%
    assert (s.ci_low, s.ci_high) == (1.0, 5.0)
    assert s.ci_rel_halfwidth == math.inf
    # At 90%, n = 5 suffices (1 - 2/32 = 0.94), so the same range is a genuine CI.
    s90 = summarize([3.0, 1.0, 2.0, 5.0, 4.0], ci_level=0.9)
    assert (s90.ci_low, s90.ci_high) == (1.0, 5.0)
    assert s90.ci_rel_halfwidth == pytest.approx(2.0 / 3.0)


def test_single_sample() -> None:
    s = summarize([42])
    assert s.count == 1
    assert s.min == s.max == s.mean == s.median == s.p99 == 42.0
    assert s.stdev == 0.0
    assert s.iqr == 0.0
    assert (s.ci_low, s.ci_high) == (42.0, 42.0)
    assert s.ci_rel_halfwidth == math.inf
    assert median_ci(np.array([42.0])) == (42.0, 42.0)


def test_two_samples() -> None:
    s = summarize([1, 3])
    assert s.median == 2.0
    assert s.stdev == pytest.approx(math.sqrt(2.0))


def test_constant_samples_have_zero_relative_spread() -> None:
    s = summarize([1000] * 30)
    assert s.ci_rel_halfwidth == 0.0
    assert s.rel_iqr == 0.0


def test_zero_median_gives_infinite_relative_measures() -> None:
    s = summarize([0] * 10 + [5])
    assert s.median == 0.0
    assert s.ci_rel_halfwidth == math.inf
    assert s.rel_iqr == math.inf


def test_relative_measures() -> None:
    s = summarize(np.arange(1.0, 21.0))  # median 10.5, CI (6, 15)
    assert s.ci_rel_halfwidth == pytest.approx(4.5 / 10.5)
    assert s.rel_iqr == pytest.approx(s.iqr / 10.5)


@pytest.mark.parametrize("bad", [[], np.array([])])
def test_empty_input_raises(bad) -> None:
    with pytest.raises(ValueError, match="empty"):
        summarize(bad)
    with pytest.raises(ValueError, match="at least one sample"):
        median_ci(np.asarray(bad, dtype=float))


@pytest.mark.parametrize("bad", [[1.0, math.nan], [1.0, math.inf]])
def test_non_finite_input_raises(bad) -> None:
    with pytest.raises(ValueError, match="NaN or infinite"):
        summarize(bad)


def test_two_dimensional_input_raises() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        summarize(np.ones((3, 3)))


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 1.5])
def test_bad_level_raises(level: float) -> None:
    with pytest.raises(ValueError, match="confidence level"):
        summarize([1.0, 2.0], ci_level=level)
    with pytest.raises(ValueError, match="confidence level"):
        median_ci(np.array([1.0, 2.0]), level)


def test_summary_is_plain_and_json_safe() -> None:
    summary = summarize(np.int64([5, 1, 4, 2, 3, 9, 7]))
    d = summary.model_dump()
    assert list(d) == [
        "count",
        "min",
        "mean",
        "stdev",
        "median",
        "p90",
        "p95",
        "p99",
        "max",
        "iqr",
        "ci_low",
        "ci_high",
        "ci_level",
    ]
    assert type(d["count"]) is int and all(type(v) is float for k, v in d.items() if k != "count")
    assert Summary.model_validate_json(summary.model_dump_json()) == summary


def test_ci_is_unknown_below_six_samples_at_95_percent() -> None:
    assert not summarize([1.0, 2.0, 3.0, 4.0, 5.0]).ci_known
    assert summarize([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).ci_known
    s = Summary(
        count=1,
        min=1.0,
        mean=1.0,
        stdev=math.nan,
        median=1.0,
        p90=1.0,
        p95=1.0,
        p99=1.0,
        max=1.0,
        iqr=0.0,
        ci_low=math.nan,
        ci_high=math.nan,
        ci_level=0.95,
    )
    assert s.ci_rel_halfwidth == math.inf
