"""Built-in static metrics: the figures of the model the backend ran (size, parameters, MACs).

Latency and throughput are the ``latency`` scenario's own figures (see
``benchharness_scenarios``).  The counters live in modules of their own,
``benchharness_metrics.macs`` and ``benchharness_metrics.weights``, so other
commands can reuse them; they import frameworks inside their functions, never at import.
"""

from __future__ import annotations

from typing import Any, ClassVar

from benchharness.api import BATCH_DIM, CaseContext, Metric, MetricValue, ModelArtifact
from benchharness.hookspecs import hookimpl
from benchharness_metrics.weights import artifact_bytes, parameter_count


class _ArtifactFigure(Metric):
    """A static figure of the artefact the backend ran: a number shown in millions, with how it was obtained."""

    #: The key of ``details`` that holds the number itself.
    key: ClassVar[str]

    def measure(self, artifact: ModelArtifact) -> tuple[int | None, str]:
        """The number (``None`` when unknown) and the method that gave it."""
        raise NotImplementedError

    def collect(self, ctx: CaseContext) -> MetricValue:
        """Measure ``ctx.artifact``; the value is the number in millions of ``unit``'s base."""
        number, method = self.measure(ctx.artifact)
        details = {self.key: number, "format": ctx.artifact.format, **self.more_details(ctx)}
        value = number / 1e6 if number is not None else None
        return MetricValue(value=value, unit=self.unit, method=method, details=details)

    def more_details(self, ctx: CaseContext) -> dict[str, Any]:
        """Details beside the number and the format; none by default."""
        return {}


class ModelSize(_ArtifactFigure):
    """Bytes of the artefact the backend ran: the file(s) on disk, or a torch module's tensors in memory."""

    name = "model_size"
    unit = "MB"
    description = "size of the model the backend ran (file with its weights files, or tensors in memory)"
    key = "bytes"

    measure = staticmethod(artifact_bytes)

    def more_details(self, ctx: CaseContext) -> dict[str, Any]:
        """The parameter count the model source recorded, if any."""
        return {"parameters": ctx.artifact.info.get("parameters")}


class Parameters(_ArtifactFigure):
    """The parameter count of the model the backend ran, in millions."""

    name = "parameters"
    unit = "M"
    description = "parameter count of the model the backend ran (elements of its weight tensors), in millions"
    key = "count"

    measure = staticmethod(parameter_count)


class Macs(Metric):
    """Multiply-accumulates of one inference of one item (batch 1), in millions, counted from the model's graph."""

    name = "macs"
    unit = "M"
    description = "multiply-accumulates per inference of one item, counted from the graph with inferred shapes"

    def collect(self, ctx: CaseContext) -> MetricValue:
        """Count the MACs at the case's inputs, then divide by the items of one inference.

        The items are the case's batch when an input has the batch dimension,
        else 1.  ``details``: ``batch_total`` (MACs of one inference of the
        whole batch), ``items``, ``per_item``, ``by_op`` (per item),
        ``nodes``, ``not_counted`` (op types without a formula that are not
        free by convention, with their node counts: the value is then a lower
        bound), ``complete``, ``free`` and ``counted_from``.
        """
        from benchharness_metrics.macs import count_artifact

        count = count_artifact(ctx.artifact)
        items = _items_per_inference(ctx)
        method = (
            f"counted from the {count.source} graph, shapes inferred for the case's inputs: Conv, ConvTranspose, "
            "Gemm and MatMul (and their quantized forms) at one MAC per weight-input product; elementwise, "
            "normalisation, pooling and data-movement ops free; per item = batch total / items"
        )
        if not count.complete:
            left_out = ", ".join(f"{op} ({n})" for op, n in count.not_counted.items())
            method += f"; a lower bound, not counted: {left_out}"
        return MetricValue(
            value=count.total / items / 1e6,
            unit=self.unit,
            method=method,
            details={
                "per_item": _per_item(count.total, items),
                "batch_total": count.total,
                "items": items,
                "by_op": {op: _per_item(macs, items) for op, macs in sorted(count.by_op.items())},
                "nodes": dict(sorted(count.nodes.items())),
                "not_counted": count.not_counted,
                "complete": count.complete,
                "free": count.free,
                "counted_from": count.source,
            },
        )


def _items_per_inference(ctx: CaseContext) -> int:
    """The case's batch when one of the model's inputs has the batch dimension (or its inputs are unknown), else 1."""
    specs = ctx.case.model.inputs
    if specs is None or any(BATCH_DIM in (spec.shape or []) for spec in specs):
        return ctx.case.batch
    return 1


def _per_item(macs: int, items: int) -> Any:
    """``macs / items``, an int when it divides evenly."""
    return macs // items if macs % items == 0 else macs / items


@hookimpl
def benchharness_register_metrics(register):  # type: ignore[no-untyped-def]
    """Register model size, parameter count and MACs."""
    register(ModelSize)
    register(Parameters)
    register(Macs)
