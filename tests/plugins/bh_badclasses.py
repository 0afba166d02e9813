"""Classes a plugin author gets wrong, each refused at registration with a reason; one good one beside them."""

from typing import ClassVar

from bh_stubs import NullBackend
from pydantic import BaseModel

from benchharness.api import Backend, BackendOptions, Metric, MetricValue, ModelSource, Options, hookimpl

_Runs = NullBackend


class NoFormats(_Runs):
    name = "no-formats"


class FormatsAString(_Runs):
    name = "formats-a-string"
    formats = "onnx"  # type: ignore[assignment]


class NotImplemented_(Backend):
    name = "half-done"
    formats = ("onnx",)

    def load(self, artifact):  # type: ignore[no-untyped-def]
        pass


class WrongSignature(_Runs):
    name = "wrong-signature"
    formats = ("onnx",)

    def load(self):  # type: ignore[override]
        pass


class NameOptions(BackendOptions):
    name: str = "x"


class ReservedName(_Runs):
    name = "reserved-name"
    formats = ("onnx",)
    Options: ClassVar[type[BaseModel]] = NameOptions


class LabelOptions(Options):
    label: int = 0


class ReservedLabel(Metric):
    name = "reserved-label"
    unit = "1"
    Options: ClassVar[type[BaseModel]] = LabelOptions

    def collect(self, ctx):  # type: ignore[no-untyped-def]
        return MetricValue(value=1.0, unit=self.unit)


class Loose(BaseModel):
    depth: int = 1


class LooseOptions(Metric):
    name = "loose-options"
    unit = "1"
    Options: ClassVar[type[BaseModel]] = Loose

    def collect(self, ctx):  # type: ignore[no-untyped-def]
        return MetricValue(value=1.0, unit=self.unit)


class SourceOptions(Options):
    inputs: list[str] = []


class SourceWithInputsOption(ModelSource):
    name = "inputs-option"
    produces = "onnx"
    Options: ClassVar[type[BaseModel]] = SourceOptions

    def load(self, options, ctx):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class NoUnit(Metric):
    name = "no-unit"

    def collect(self, ctx):  # type: ignore[no-untyped-def]
        return MetricValue(value=1.0, unit="?")


class Slashed(Metric):
    name = "a/b"
    unit = "1"

    def collect(self, ctx):  # type: ignore[no-untyped-def]
        return MetricValue(value=1.0, unit=self.unit)


class Good(_Runs):
    name = "good"
    formats = ("onnx",)


@hookimpl
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    for cls in (NoFormats, FormatsAString, NotImplemented_, WrongSignature, ReservedName, Good):
        register(cls)


@hookimpl
def benchharness_register_metrics(register):  # type: ignore[no-untyped-def]
    for cls in (ReservedLabel, LooseOptions, NoUnit, Slashed):
        register(cls)


@hookimpl
def benchharness_register_model_sources(register):  # type: ignore[no-untyped-def]
    register(SourceWithInputsOption)
