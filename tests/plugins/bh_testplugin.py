"""A test plugin: a framework-free backend and model source whose behaviour a suite chooses.

``mode`` selects what the backend does: ``ok`` (sleep ``sleep_us`` per
inference), ``error`` (raise while loading), ``crash`` (SIGSEGV while
loading), ``abort`` (exit without a result) or ``hang`` (never return).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel

from benchharness.api import (
    Backend,
    BackendOptions,
    CaseContext,
    Compression,
    Converter,
    Dataset,
    LabelledData,
    Metric,
    MetricValue,
    ModelArtifact,
    ModelContext,
    ModelSource,
    Options,
    Reporter,
    Target,
    TargetContext,
    TargetOptions,
)
from benchharness.hookspecs import hookimpl
from benchharness.suite import InputSpec

__version__ = "9.9.9"


class DummyOptions(Options):
    size: int = 4


class DummySource(ModelSource):
    name = "dummy"
    description = "a model that is only a vector size"
    produces = "dummy"
    Options: ClassVar[type[BaseModel]] = DummyOptions

    def default_inputs(self, options: DummyOptions, artifact: ModelArtifact) -> list[InputSpec]:  # type: ignore[override]
        return [InputSpec(name="x", shape=["batch", options.size])]

    def load(self, options: DummyOptions, ctx: ModelContext) -> ModelArtifact:  # type: ignore[override]
        return ModelArtifact(
            format="dummy", content_hash=f"dummy-{options.size}", info={"size_bytes": 4 * options.size}
        )


class ScriptedOptions(BackendOptions):
    mode: Literal["ok", "error", "crash", "abort", "hang"] = "ok"
    sleep_us: float = 0.0


class ScriptedBackend(Backend):
    name = "scripted"
    description = "does what its 'mode' option says"
    formats = ("dummy",)
    Options: ClassVar[type[BaseModel]] = ScriptedOptions

    def load(self, artifact: ModelArtifact) -> None:
        mode = self.options.mode
        if mode == "error":
            raise RuntimeError("scripted failure while loading")
        if mode == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if mode == "abort":
            os._exit(3)

    def prepare(self, inputs: dict[str, np.ndarray]) -> Any:
        return inputs

    def infer(self, feed: Any) -> Any:
        if self.options.mode == "hang":
            while True:
                time.sleep(1)
        if self.options.sleep_us:
            end = time.perf_counter() + self.options.sleep_us / 1e6
            while time.perf_counter() < end:
                pass
        return feed

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        return dict(outputs)

    def runtime_info(self) -> dict[str, Any]:
        return {"framework": "scripted", "threads": self.threads}


class ScriptedTwo(ScriptedBackend):
    """Takes only converted models, so the converter must run."""

    name = "scripted2"
    formats = ("dummy2",)

    def load(self, artifact: ModelArtifact) -> None:
        super().load(artifact)
        assert artifact.path is not None and artifact.path.read_text().startswith("converted:")


class DummyToDummy2(Converter):
    name = "dummy-to-dummy2"
    source_formats = ("dummy",)
    target_format = "dummy2"
    suffix = ".d2"

    def convert(self, artifact: ModelArtifact, out_path):  # type: ignore[no-untyped-def]
        CONVERSIONS.append(artifact.content_hash)
        out_path.write_text(f"converted:{artifact.content_hash}")


#: Content hashes converted in this process (tests read it to see cache hits).
CONVERSIONS: list[str] = []


class Missing(ScriptedBackend):
    name = "needs-missing"
    description = "needs a framework that is not installed"
    requires = ("benchharness_missing_framework",)
    install_hint = "pip install benchharness-missing-framework"


class Tag(Compression):
    name = "tag"
    description = "marks the model as compressed without changing it"

    def apply(self, artifact: ModelArtifact, options: BaseModel, ctx: ModelContext) -> ModelArtifact:
        return ModelArtifact(
            format=artifact.format,
            content_hash=artifact.content_hash + "+tag",
            info=dict(artifact.info, tagged=artifact.info.get("tagged", 0) + 1),
        )


class VirtualOptions(TargetOptions):
    threads: int = 3


class Virtual(Target):
    name = "virtual"
    description = "a CPU that claims a thread count and sets an environment variable"
    Options: ClassVar[type[BaseModel]] = VirtualOptions

    def environment(self, options: VirtualOptions) -> dict[str, str]:  # type: ignore[override]
        return {"BH_VIRTUAL_THREADS": str(options.threads)}

    def apply(self, options: VirtualOptions) -> TargetContext:  # type: ignore[override]
        return TargetContext(device="cpu", threads=options.threads, details={"env": os.environ["BH_VIRTUAL_THREADS"]})


class Count(Reporter):
    name = "count"
    description = "the number of cases"

    def render(self, results: Any) -> str:
        return f"{len(results.cases)} cases"


class Bogus(Metric):
    name = "bogus"
    unit = "?"
    description = "returns a value that is not a number"

    def collect(self, ctx: CaseContext) -> MetricValue:
        return MetricValue(value="not a number", unit=self.unit, details={"odd": object()})  # type: ignore[arg-type]


class Ramp(Dataset):
    name = "ramp"
    description = "labels equal to the input index"

    def load(self, options: BaseModel, seed: int) -> LabelledData:
        return LabelledData(inputs={"x": np.arange(4, dtype=np.float32)}, labels=np.arange(4))


@hookimpl
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    register(ScriptedBackend)
    register(ScriptedTwo)
    register(Missing)


@hookimpl
def benchharness_register_converters(register):  # type: ignore[no-untyped-def]
    register(DummyToDummy2)


@hookimpl
def benchharness_register_compressions(register):  # type: ignore[no-untyped-def]
    register(Tag)


@hookimpl
def benchharness_register_targets(register):  # type: ignore[no-untyped-def]
    register(Virtual)


@hookimpl
def benchharness_register_reporters(register):  # type: ignore[no-untyped-def]
    register(Count)


@hookimpl
def benchharness_register_model_sources(register):  # type: ignore[no-untyped-def]
    register(DummySource)


@hookimpl
def benchharness_register_metrics(register):  # type: ignore[no-untyped-def]
    register(Bogus)


@hookimpl
def benchharness_register_datasets(register):  # type: ignore[no-untyped-def]
    register(Ramp)
