"""Statistics of timing samples: percentiles and a distribution-free CI of the median.

Timing distributions are skewed and heavy-tailed, so the harness reports the
median and percentiles, and judges precision by a confidence interval of the
median built from order statistics. That interval assumes only independent
samples, not normality.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import numpy as np

# numpy and scipy are imported inside the functions: the results models (and so every
# plugin that imports benchharness.api) use Summary without paying for them.

# Percentiles taken from the sorted samples in one call, in this order.
_PERCENTILES = (25.0, 50.0, 75.0, 90.0, 95.0, 99.0)


class Summary(BaseModel):
    """Descriptive statistics of one set of samples, in the samples' unit.

    ``ci_low``/``ci_high`` bound the median at confidence ``ci_level``; see
    :func:`median_ci` for the method and the small-sample fallback.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int
    min: float
    mean: float
    stdev: float
    median: float
    p90: float
    p95: float
    p99: float
    max: float
    iqr: float
    ci_low: float
    ci_high: float
    ci_level: float

    @property
    def ci_rel_halfwidth(self) -> float:
        """Larger side of the median's CI relative to the median.

        ``inf`` when the median is 0, a bound is not finite, or ``count`` is
        too small for any order-statistic interval to reach ``ci_level`` (then
        the stored bounds are only the sample range), so a stopping rule
        never accepts an interval that lacks its stated coverage.
        """
        if (
            self.median == 0
            or not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high))
            or _median_ci_indices(self.count, self.ci_level) is None
        ):
            return math.inf
        return max(self.median - self.ci_low, self.ci_high - self.median) / abs(self.median)

    @property
    def ci_known(self) -> bool:
        """Whether ``count`` samples can give an order-statistic CI at ``ci_level`` (6 at 95%)."""
        return _median_ci_indices(self.count, self.ci_level) is not None

    @property
    def rel_iqr(self) -> float:
        """Interquartile range relative to the median (``inf`` if the median is 0)."""
        if self.median == 0:
            return math.inf
        return self.iqr / abs(self.median)


def preload(ci_level: float = 0.95) -> None:
    """Import numpy and scipy now, so the first CI check of a sampling phase does not pay for it.

    Importing them takes a good part of a second; inside a timed phase's budget it
    would cut the samples short and overrun ``max_time``.
    """
    summarize([1.0] * 8, ci_level)


@lru_cache(maxsize=256)
def _median_ci_indices(n: int, level: float) -> tuple[int, int] | None:
    """0-based order-statistic indices bounding the median's CI, or None if unreachable.

    With B ~ Binomial(n, 1/2) counting samples below the true median, the
    interval [x[lo], x[hi]] of the sorted x misses it only if B <= lo or B > hi; each tail
    is kept at most (1 - level) / 2, so coverage is at least ``level``. The
    ranks are exactly those of ``scipy.stats.quantile_test(...)
    .confidence_interval()`` (two-sided, p=0.5). Cached because the stopping
    rule and ``Summary.ci_rel_halfwidth`` ask for the same (n, level) repeatedly.
    """
    # scipy.special, not scipy.stats: importing scipy.stats costs a worker about a second, scipy.special a
    # third of that, and these two quantiles are all the harness needs of it in a worker.
    # P(B <= k) = I_{1/2}(n - k, k + 1) and P(B > k) = I_{1/2}(k + 1, n - k), in floats (bdtr's n is a C int).
    from scipy.special import betainc

    def cdf(k: int) -> float:
        return 1.0 if k >= n else float(betainc(n - k, k + 1, 0.5))

    def sf(k: int) -> float:
        return 0.0 if k >= n else float(betainc(k + 1, n - k, 0.5))

    tail = (1.0 - level) / 2.0
    lo = _first(lambda k: cdf(k) >= tail, n) - 1  # binom.ppf(tail, n, 1/2) - 1
    hi = _first(lambda k: sf(k) <= tail, n)  # binom.isf(tail, n, 1/2)
    if lo < 0 or hi >= n:
        return None
    return lo, hi


def _first(holds: Callable[[int], bool], n: int) -> int:
    """The smallest k in 0..n for which ``holds(k)`` (monotone: false, then true), by bisection."""
    low, high = 0, n
    while low < high:
        middle = (low + high) // 2
        if holds(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level!r}")


def median_ci(sorted_samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    ``sorted_samples`` must be sorted ascending (not checked: callers already
    hold a sorted copy). The bounds are order statistics whose ranks come from
    Binomial(n, 1/2), giving coverage of at least ``level`` for any continuous
    distribution.

    When n is too small for any pair of order statistics to reach ``level``
    (n < 6 at 95%), the sample range ``(min, max)`` is returned; its coverage
    is only ``1 - 2 * 0.5**n``. For n == 1 both bounds equal the sample.
    ``Summary.ci_rel_halfwidth`` reports ``inf`` in that case.
    """
    import numpy as np

    _check_level(level)
    x = np.asarray(sorted_samples)
    n = x.shape[0]
    if n == 0:
        raise ValueError("median_ci needs at least one sample, got none")
    indices = _median_ci_indices(n, level)
    if indices is None:
        return float(x[0]), float(x[-1])
    lo, hi = indices
    return float(x[lo]), float(x[hi])


def summarize(samples: Sequence[float] | np.ndarray, ci_level: float = 0.95) -> Summary:
    """Summarize samples: count, min/max, mean, stdev (ddof=1), percentiles, IQR, median CI.

    Percentiles use numpy's default linear interpolation; ``iqr`` is p75 - p25.
    The standard deviation is 0 for a single sample. Raises ValueError for an
    empty, non-1-D or non-finite input.
    """
    import numpy as np

    _check_level(ci_level)
    x = np.array(samples, dtype=np.float64)  # a copy: sorted in place below
    if x.ndim != 1:
        raise ValueError(f"samples must be one-dimensional, got shape {x.shape}")
    n = x.shape[0]
    if n == 0:
        raise ValueError("cannot summarize an empty set of samples")
    if not np.isfinite(x).all():
        raise ValueError("samples contain NaN or infinite values")
    x.sort()
    p25, p50, p75, p90, p95, p99 = np.percentile(x, _PERCENTILES)
    ci_low, ci_high = median_ci(x, ci_level)
    return Summary(
        count=n,
        min=float(x[0]),
        mean=float(x.mean()),
        stdev=float(x.std(ddof=1)) if n > 1 else 0.0,
        median=float(p50),
        p90=float(p90),
        p95=float(p95),
        p99=float(p99),
        max=float(x[-1]),
        iqr=float(p75 - p25),
        ci_low=ci_low,
        ci_high=ci_high,
        ci_level=float(ci_level),
    )
