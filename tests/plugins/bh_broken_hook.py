"""A plugin whose backend hook raises, and whose metric hook works."""

from benchharness.api import CaseContext, Metric, MetricValue
from benchharness.hookspecs import hookimpl


class Answer(Metric):
    name = "answer"
    unit = "1"

    def collect(self, ctx: CaseContext) -> MetricValue:
        return MetricValue(value=42.0, unit=self.unit)


@hookimpl
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    raise RuntimeError("backend hook exploded")


@hookimpl
def benchharness_register_metrics(register):  # type: ignore[no-untyped-def]
    register(Answer)
