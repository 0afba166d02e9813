"""Built-in scenario: ``latency``, one request at a time (MLPerf's SingleStream)."""

from __future__ import annotations

import functools

from benchharness.api import CaseContext, MetricValue, Scenario, sample, summarize, warm_up
from benchharness.hookspecs import hookimpl


class Latency(Scenario):
    """One synchronous inference at a time: warm up until stable, then sample until the median's CI is tight.

    The measured phase (observers running) is the sampling phase only.
    Produces ``latency`` (the distribution, raw samples kept) and
    ``throughput`` (batch / median latency: what one stream achieves).
    """

    name = "latency"
    description = "one request at a time: warm-up until stable, adaptive sampling, raw samples kept"
    produces = ("latency", "throughput")

    def run(self, ctx: CaseContext) -> dict[str, MetricValue]:
        """Time ``backend.infer(feed)``, one call per sample."""
        settings = ctx.settings
        call = functools.partial(ctx.backend.infer, ctx.feed)
        warmup = warm_up(call, settings.warmup)
        with ctx.measured():
            sampled = sample(call, settings)
        summary = summarize(sampled.samples_ns, settings.ci_level)
        median_ms = summary.median / 1e6
        latency = MetricValue(
            value=median_ms,
            unit="ms",
            summary=summary,
            samples=sampled.samples_ns,
            method="perf_counter_ns around each backend.infer call",
            details={
                "samples_unit": "ns",
                "noisy": summary.rel_iqr > settings.noisy_threshold,
                "rel_iqr": summary.rel_iqr,
                "ci_rel_halfwidth": summary.ci_rel_halfwidth,
                "stop_reason": sampled.stop_reason,
                "sampling_time_s": sampled.elapsed_s,
                "warmup": {"iterations": warmup.iterations, "time_s": warmup.elapsed_s, "settled": warmup.settled},
            },
        )
        throughput = MetricValue(
            value=ctx.case.batch / (median_ms / 1e3) if median_ms else None,
            unit="items/s",
            method="batch / median latency (single stream)",
        )
        return {"latency": latency, "throughput": throughput}


@hookimpl
def benchharness_register_scenarios(register):  # type: ignore[no-untyped-def]
    """Register the latency scenario."""
    register(Latency)
