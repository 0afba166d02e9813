"""Built-in metrics: latency (the measured distribution), throughput derived from it, and model size."""

from __future__ import annotations

import functools

from benchharness.api import CaseContext, Metric, MetricValue
from benchharness.hookspecs import hookimpl


class Latency(Metric):
    """Time per synchronous inference: warm up until stable, then sample until the median's CI is tight."""

    name = "latency"
    unit = "ms"
    description = "per-inference latency: warm-up until stable, adaptive sampling, raw samples kept"

    def collect(self, ctx: CaseContext) -> MetricValue:
        """Time ``backend.infer(feed)`` one call per sample."""
        from benchharness.measure import SamplingSettings, WarmupSettings, measure

        cfg = ctx.measure
        warmup = WarmupSettings(
            min_iterations=cfg.warmup.min_iterations,
            max_iterations=cfg.warmup.max_iterations,
            max_time_s=cfg.warmup.max_time,
            min_time_s=min(cfg.warmup.min_time, cfg.warmup.max_time),
            window=cfg.warmup.window,
            tolerance=cfg.warmup.tolerance,
            stable_windows=cfg.warmup.stable_windows,
        )
        sampling = SamplingSettings(
            min_samples=cfg.min_samples,
            max_samples=cfg.max_samples,
            max_time_s=cfg.max_time,
            min_time_s=min(cfg.min_time, cfg.max_time),
            target_ci=cfg.target_ci,
            ci_level=cfg.ci_level,
        )
        run = functools.partial(ctx.backend.infer, ctx.feed)
        m = measure(run, warmup, sampling)
        summary = m.summary.to_dict()
        noisy = m.summary.rel_iqr > cfg.noisy_threshold
        return MetricValue(
            value=m.summary.median / 1e6,
            unit=self.unit,
            summary=summary,
            samples=m.samples_ns,
            method="perf_counter_ns around each backend.infer call",
            details={
                "samples_unit": "ns",
                "noisy": noisy,
                "rel_iqr": m.summary.rel_iqr,
                "ci_rel_halfwidth": m.summary.ci_rel_halfwidth,
                "stop_reason": m.stop_reason,
                "sampling_time_s": m.elapsed_s,
                "warmup": {
                    "iterations": m.warmup.iterations,
                    "time_s": m.warmup.elapsed_s,
                    "settled": m.warmup.settled,
                },
            },
        )


class Throughput(Metric):
    """Items per second at the measured median latency (batch / median); one request at a time."""

    name = "throughput"
    unit = "items/s"
    better = "higher"
    depends_on = ("latency",)
    description = "batch size / median latency (derived from latency, single stream)"

    def collect(self, ctx: CaseContext) -> MetricValue:
        """Derive from the latency already collected."""
        latency_ms = ctx.collected["latency"].value
        value = ctx.case.batch / (latency_ms / 1e3) if latency_ms else None
        return MetricValue(value=value, unit=self.unit, method="batch / median latency")


class ModelSize(Metric):
    """Bytes of the model the backend ran, and its parameter count when known."""

    name = "model_size"
    unit = "MB"
    description = "size of the model the backend ran (file, or weights in memory) and parameter count"

    def collect(self, ctx: CaseContext) -> MetricValue:
        """Read the size from the artifact."""
        size = ctx.artifact.size_bytes()
        return MetricValue(
            value=size / 1e6 if size is not None else None,
            unit=self.unit,
            method="file size" if ctx.artifact.path is not None else "sum of weight tensor bytes",
            details={"bytes": size, "parameters": ctx.artifact.info.get("parameters"), "format": ctx.artifact.format},
        )


@hookimpl
def benchharness_register_metrics(register):  # type: ignore[no-untyped-def]
    """Register latency, throughput and model size."""
    register(Latency)
    register(Throughput)
    register(ModelSize)
