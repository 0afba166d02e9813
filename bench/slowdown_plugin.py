"""A backend that is ONNX Runtime plus a known slowdown, for testing whether A/B comparisons detect one.

Load it with ``-p slowdown_plugin`` (``bench/`` on ``PYTHONPATH``).  Backend ``slowed`` takes the
options of ``onnxruntime`` and ``slowdown`` (a fraction): each ``infer`` runs ONNX Runtime, then
busy-waits ``slowdown`` times as long as that call took, so every call costs ``1 + slowdown`` times
the plain one, whatever the machine's speed at that moment.  ``slowdown: 0`` is plain ONNX Runtime
plus three clock reads.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from benchharness_onnxruntime import OnnxRuntimeBackend, OrtOptions
from pydantic import BaseModel, Field

from benchharness.api import hookimpl


class SlowedOptions(OrtOptions):
    """Options of ``slowed``: those of ``onnxruntime``, and the slowdown."""

    slowdown: float = Field(0.0, ge=0, le=10, description="Extra time per call, as a fraction of the call's own.")


class SlowedBackend(OnnxRuntimeBackend):
    """ONNX Runtime, each call stretched by ``slowdown`` of its own duration (a busy wait, not a sleep)."""

    name = "slowed"
    description = "ONNX Runtime with an injected slowdown per call (for A/B detection benchmarks)"
    Options: ClassVar[type[BaseModel]] = SlowedOptions

    def infer(self, feed: Any) -> Any:
        """Run ONNX Runtime, then spin for ``slowdown`` times as long.

        The same steps whatever the slowdown (at 0 the spin ends at its first check), so that a base
        with ``slowdown: 0`` pays the same bookkeeping and the two differ by the spin alone.
        """
        start = time.perf_counter_ns()
        out = super().infer(feed)
        now = time.perf_counter_ns()
        until = now + int((now - start) * self.options.slowdown)
        while time.perf_counter_ns() < until:
            pass
        return out


@hookimpl
def benchharness_register_backends(register: Any) -> None:
    """Register ``slowed``."""
    register(SlowedBackend)
