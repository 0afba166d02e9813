"""How a case is measured: the one definition of the settings and their defaults.

A suite's ``measure`` block is validated by :class:`MeasureSettings`; the
scenarios read the same object in the worker.  Nothing else defines a default.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from benchharness.strict import StrictModel

#: The most worker processes a case may ask for (``repeat``): enough for any significance test, and a typo's guard.
MAX_REPEAT = 1000
#: The largest ``seed``: numpy's and torch's generators take seeds in 0..2**32 - 1 on every platform.
MAX_SEED = 2**32 - 1


class _Strict(StrictModel):
    model_config = ConfigDict(frozen=True)


class WarmupSettings(_Strict):
    """Warm up until the medians of consecutive windows agree.

    Timings have settled once a window's median is within ``tolerance`` of
    the previous window's for ``stable_windows`` windows in a row, after at
    least ``min_iterations`` calls; warm-up then goes on until ``min_time``
    seconds have passed.  It gives up, unsettled, after ``max_iterations``
    calls or ``max_time`` seconds, whichever comes first: near the deadline
    windows shrink to what fits in the time left, so warm-up ends within
    ``max_time`` plus about one call.
    """

    min_iterations: PositiveInt = Field(10, description="Calls at least, unless max_time runs out first.")
    max_iterations: PositiveInt = 10_000
    min_time: NonNegativeFloat = Field(
        0.5,
        description="Seconds of warm-up at least, even when windows agree earlier (capped at max_time): "
        "short windows of a fast model can agree while caches and CPU clocks are still warming.",
    )
    max_time: PositiveFloat = Field(5.0, description="Seconds of warm-up at most.")
    window: PositiveInt = Field(10, description="Calls per window.")
    tolerance: float = Field(0.05, gt=0, lt=1, description="Relative change of window medians that counts as stable.")
    stable_windows: PositiveInt = 2

    @model_validator(mode="after")
    def _bounds(self) -> WarmupSettings:
        if self.min_iterations > self.max_iterations:
            raise ValueError(f"min_iterations ({self.min_iterations}) exceeds max_iterations ({self.max_iterations})")
        return self

    @property
    def min_time_capped(self) -> float:
        """``min_time``, but never more than ``max_time``."""
        return min(self.min_time, self.max_time)


#: Before ``min_samples`` are in hand the sampling budget may stretch to this many times ``max_time``:
#: a few meaningful samples are worth more than punctuality, but a very slow model must still be cut off.
MIN_SAMPLES_TIME_FACTOR = 2.0


class MeasureSettings(_Strict):
    """How each case is measured: warm-up, then sampling until the median's CI is tight.

    Sampling stops once at least ``min_samples`` were taken and ``min_time``
    has passed and the ``ci_level`` confidence interval of the median is
    within ``±target_ci`` of it; or at ``max_samples``; or when the time
    budget ``max_time`` is spent (stretched to ``MIN_SAMPLES_TIME_FACTOR``
    times while fewer than ``min_samples`` are in hand).  A call that would
    not end before the deadline is not started.
    """

    warmup: WarmupSettings = Field(default_factory=WarmupSettings)
    min_samples: PositiveInt = 20
    max_samples: PositiveInt = 100_000
    min_time: NonNegativeFloat = Field(
        1.0,
        description="Seconds of sampling at least before the CI target may stop it (capped at max_time): "
        "consecutive samples on a shared machine are correlated.",
    )
    max_time: PositiveFloat = Field(5.0, description="Sampling time budget per case, seconds.")
    target_ci: float = Field(
        0.01, gt=0, lt=1, description="Stop when the CI of the median is within this fraction of it."
    )
    ci_level: float = Field(0.95, gt=0, lt=1)
    noisy_threshold: PositiveFloat = Field(0.10, description="Flag a case whose IQR/median exceeds this.")
    timeout: PositiveFloat = Field(300.0, description="Seconds before a case's worker is killed.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Weights of generated models and random inputs.")
    repeat: PositiveInt | None = Field(
        None,
        le=MAX_REPEAT,
        description="Worker processes per case, run round-robin over the suite's cases; the table's figure is "
        "the median of theirs and its CI comes from their spread. Unset: --repeat, else BENCHHARNESS_REPEAT, "
        "else 1 (see docs/regressions.md for the trade-off).",
    )

    @model_validator(mode="after")
    def _bounds(self) -> MeasureSettings:
        if self.min_samples > self.max_samples:
            raise ValueError(f"min_samples ({self.min_samples}) exceeds max_samples ({self.max_samples})")
        return self

    @property
    def min_time_capped(self) -> float:
        """``min_time``, but never more than ``max_time``."""
        return min(self.min_time, self.max_time)
