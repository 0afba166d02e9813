"""Built-in metrics: the size of the model the backend ran.

Latency and throughput are the ``latency`` scenario's own figures (see
``benchharness_scenarios``).
"""

from __future__ import annotations

from benchharness.api import CaseContext, Metric, MetricValue
from benchharness.hookspecs import hookimpl


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
    """Register model size."""
    register(ModelSize)
