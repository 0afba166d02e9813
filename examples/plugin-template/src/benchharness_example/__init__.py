"""An example benchharness plugin: one backend, one metric and one reporter, on the public API only.

* ``torch-traced`` (backend): runs ``torch`` models as a ``torch.jit.trace``,
  frozen with ``torch.jit.freeze``;
* ``tail_ratio`` (metric): a tail percentile of the latency over its median,
  read from the figure the scenario already produced;
* ``bars`` (reporter): a plain-text bar chart of each case's median latency.

benchharness finds this module through the ``benchharness`` entry point in
``pyproject.toml`` and calls the ``benchharness_register_*`` hooks at the
bottom, which hand each class to the core.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from benchharness.api import (
    Backend,
    BackendOptions,
    CaseContext,
    Metric,
    MetricValue,
    ModelArtifact,
    Options,
    Reporter,
    RunResults,
    hookimpl,
    summarize,
)
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    import numpy as np

__version__ = "0.1.0"


# --------------------------------------------------------------------------- backend


class TracedTorchOptions(BackendOptions):
    """Options of ``torch-traced``, besides ``threads`` and ``label``, which every backend takes."""

    freeze: bool = Field(True, description="Freeze the trace (torch.jit.freeze): inline weights, fold constants.")


class TracedTorch(Backend):
    """A ``torch`` model traced once with example inputs of the case's shapes, then frozen."""

    name = "torch-traced"
    description = "torch.jit.trace, then torch.jit.freeze"
    requires = ("torch",)
    install_hint = "pip install torch"
    formats = ("torch",)
    Options: ClassVar[type[BaseModel]] = TracedTorchOptions

    def load(self, artifact: ModelArtifact) -> None:
        """Trace the eager model on zeros of each input's fixed shape, and freeze the trace."""
        import torch

        self.torch = torch
        torch.set_num_threads(self.threads)
        self.names = [spec.name for spec in artifact.inputs]
        examples = tuple(torch.zeros(spec.shape, dtype=getattr(torch, spec.dtype)) for spec in artifact.inputs)
        with torch.no_grad(), warnings.catch_warnings():
            # TorchScript is deprecated in recent torch; tracing it is what this backend measures.
            warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", DeprecationWarning)
            model = torch.jit.trace(artifact.obj.eval(), examples)
            if self.options.freeze:  # type: ignore[attr-defined]
                model = torch.jit.freeze(model)
        self.model = model

    def prepare(self, inputs: dict[str, np.ndarray]) -> list[Any]:
        """The inputs as tensors, in the model's order (zero-copy)."""
        return [self.torch.from_numpy(inputs[name]) for name in self.names]

    def infer(self, feed: list[Any]) -> Any:
        """One forward pass; CPU execution is synchronous, so nothing more is needed to time it."""
        with self.torch.inference_mode():
            return self.model(*feed)

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        """A tensor as ``output0``; a tuple or list as ``output0``, ``output1``...; a dict by its keys."""
        if isinstance(outputs, dict):
            return {str(key): value.numpy() for key, value in outputs.items()}
        if isinstance(outputs, (tuple, list)):
            return {f"output{i}": value.numpy() for i, value in enumerate(outputs)}
        return {"output0": outputs.numpy()}

    def runtime_info(self) -> dict[str, Any]:
        """What torch really used."""
        return {
            "framework": "torch-traced",
            "version": self.torch.__version__,
            "threads": self.torch.get_num_threads(),
            "frozen": self.options.freeze,  # type: ignore[attr-defined]
        }

    def close(self) -> None:
        """Drop the traced model."""
        self.model = None


# --------------------------------------------------------------------------- metric


class TailRatioOptions(Options):
    """Options of ``tail_ratio``."""

    percentile: Literal[90, 95, 99] = Field(99, description="The tail percentile compared with the median.")


class TailRatio(Metric):
    """How far the latency's tail lies from its median: ``p99 / median`` by default (1.0: no tail at all).

    It costs nothing: it reads the ``latency`` figure the scenario already
    produced, so the suite must list ``latency`` before it.
    """

    name = "tail_ratio"
    unit = "x"
    description = "a tail percentile of the latency over its median (p99 / median by default)"
    depends_on = ("latency",)
    better = "lower"
    Options: ClassVar[type[BaseModel]] = TailRatioOptions

    def collect(self, ctx: CaseContext) -> MetricValue:
        """Divide the percentile by the median of the latency's summary (or of its samples)."""
        latency = ctx.collected.get("latency")
        if latency is None:
            raise ValueError("there is no 'latency' figure to read (the scenario did not produce it, or it failed)")
        summary = latency.summary
        if summary is None and latency.samples:
            summary = summarize(latency.samples)
        if summary is None:
            raise ValueError("the 'latency' figure has neither a summary nor samples")
        percentile = self.options.percentile  # type: ignore[attr-defined]
        tail = getattr(summary, f"p{percentile}")
        return MetricValue(
            value=tail / summary.median if summary.median else None,
            unit=self.unit,
            method=f"p{percentile} / median of the latency samples",
            details={"percentile": percentile, "samples": summary.count},
        )


# --------------------------------------------------------------------------- reporter


class Bars(Reporter):
    """One line per case: its id, a bar as long as its median latency (the slowest fills the width), the value."""

    name = "bars"
    description = "plain-text bar chart of each case's median latency"
    #: Characters of the longest bar.
    width: ClassVar[int] = 40

    def render(self, results: RunResults) -> str:
        """The chart; a case without a latency shows why instead of a bar."""
        if not results.cases:
            return "no cases"
        values = {}
        for case in results.cases:
            latency = case.metrics.get("latency")
            values[case.case_id] = latency.value if latency is not None else None
        slowest = max((v for v in values.values() if v is not None), default=None)
        id_width = max(len(case_id) for case_id in values)
        lines = [f"median latency, ms (longest bar: {slowest:.3f} ms)" if slowest else "median latency, ms"]
        for case in results.cases:
            value = values[case.case_id]
            if value is None or not slowest:
                why = case.status if case.status != "ok" else "no latency"
                lines.append(f"{case.case_id:<{id_width}}  ({why})")
                continue
            bar = "#" * max(1, round(self.width * value / slowest))
            lines.append(f"{case.case_id:<{id_width}}  {bar:<{self.width}}  {value:.3f}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- registration


@hookimpl
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    """Register the traced backend."""
    register(TracedTorch)


@hookimpl
def benchharness_register_metrics(register):  # type: ignore[no-untyped-def]
    """Register the tail ratio."""
    register(TailRatio)


@hookimpl
def benchharness_register_reporters(register):  # type: ignore[no-untyped-def]
    """Register the bar chart."""
    register(Bars)
