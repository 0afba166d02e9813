"""A do-nothing backend and a matching model source, for measuring the harness's own cost.

Load it with ``benchharness run -p noop_plugin SUITE`` with ``bench/`` on
``PYTHONPATH``.  The source produces an artifact in the ``noop`` format, which
only the ``noop`` backend accepts, so no converter or framework is involved;
``infer`` returns ``None`` at once.  The latency the harness then reports is
the cost of one timed iteration itself: two ``perf_counter_ns`` reads, the
call through ``functools.partial`` and ``Backend.infer``, and the list store.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar

from pydantic import BaseModel, Field, PositiveInt

from benchharness.api import (
    Backend,
    ModelArtifact,
    ModelContext,
    ModelSignature,
    ModelSource,
    Options,
    TensorSpec,
    hookimpl,
)

FORMAT = "noop"

#: Modules whose presence in the worker would mean something imported a heavy framework it did not need.
HEAVY_MODULES = ("torch", "onnxruntime", "onnx", "openvino", "tensorflow")


class NoopModelOptions(Options):
    """Options of the ``noop`` model source."""

    size: PositiveInt = Field(1, description="Length of the single float32 input.")


class NoopModelSource(ModelSource):
    """A trivial model: nothing but a name, a hash and one small input."""

    name = "noop"
    description = "trivial artifact for the noop backend (harness overhead benchmark)"
    produces = FORMAT
    Options: ClassVar[type[BaseModel]] = NoopModelOptions

    def load(self, options: NoopModelOptions, ctx: ModelContext) -> ModelArtifact:  # type: ignore[override]
        """An artifact with no weights at all."""
        return ModelArtifact(format=FORMAT, content_hash=f"noop-{options.size}", info={"size_bytes": 0})

    def describe(self, options: NoopModelOptions, ctx: ModelContext) -> ModelSignature:  # type: ignore[override]
        """One float32 vector ``x`` of ``size`` elements."""
        return ModelSignature(format=FORMAT, inputs=[TensorSpec(name="x", shape=[options.size], dtype="float32")])


class NoopBackend(Backend):
    """Does nothing: ``infer`` returns ``None`` immediately."""

    name = "noop"
    description = "does nothing; its latency is the harness's per-iteration overhead"
    formats = (FORMAT,)
    devices = ("cpu",)

    def load(self, artifact: ModelArtifact) -> None:
        """Nothing to load."""

    def prepare(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The numpy inputs, untouched."""
        return inputs

    def infer(self, feed: Any) -> None:
        """No work at all."""
        return None

    def to_numpy(self, outputs: Any) -> dict[str, Any]:
        """No outputs."""
        return {}

    def runtime_info(self) -> dict[str, Any]:
        """Which heavy frameworks the worker had imported by the end of the case (it should be none)."""
        return {"framework": "noop", "heavy_modules_loaded": [m for m in HEAVY_MODULES if m in sys.modules]}


@hookimpl
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    """Register the noop backend."""
    register(NoopBackend)


@hookimpl
def benchharness_register_model_sources(register):  # type: ignore[no-untyped-def]
    """Register the noop model source."""
    register(NoopModelSource)
