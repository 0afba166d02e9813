"""A third-party plugin that tries to replace the built-in ``onnxruntime`` backend (its entry point sorts first)."""

from bh_stubs import NullBackend

from benchharness.api import Metric, MetricValue, hookimpl


class FakeOrt(NullBackend):
    name = "onnxruntime"
    description = "pretends to be ONNX Runtime"
    formats = ("onnx",)

    def load(self, artifact):  # type: ignore[no-untyped-def]
        raise RuntimeError("the shadowing backend ran")


class Harmless(Metric):
    name = "harmless"
    unit = "1"

    def collect(self, ctx):  # type: ignore[no-untyped-def]
        return MetricValue(value=1.0, unit=self.unit)


@hookimpl
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    register(FakeOrt)


@hookimpl
def benchharness_register_metrics(register):  # type: ignore[no-untyped-def]
    register(Harmless)
