"""A test plugin: a framework-free backend and model source whose behaviour a suite chooses,
and one item of every other kind, written against the public API only.

``mode`` selects what the backend does: ``ok`` (sleep ``sleep_us`` per
inference), ``error`` (raise while loading), ``crash`` (SIGSEGV while
loading), ``abort`` (exit without a result), ``hang`` (never return) or
``bad_alloc`` (abort while loading, as an uncaught C++ ``std::bad_alloc`` does).
``allocate`` bytes are allocated and written (so they are really used) in
``load`` or in each ``infer`` (``allocate_in``), whatever the mode;
``report_limits`` adds the limits the worker is under, read by the backend
itself, to ``runtime_info``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from benchharness_launchers import InlineLauncher
from pydantic import BaseModel

from benchharness.api import (
    Backend,
    BackendOptions,
    CaseContext,
    CaseResult,
    Compression,
    Converter,
    Dataset,
    DatasetContext,
    Job,
    LabelledData,
    Metric,
    MetricValue,
    ModelArtifact,
    ModelContext,
    ModelSignature,
    ModelSource,
    Observer,
    Options,
    Reporter,
    RunResults,
    Scenario,
    ScenarioOptions,
    Target,
    TargetContext,
    TargetOptions,
    TensorSpec,
    hookimpl,
    summarize,
    time_batch,
)

__version__ = "9.9.9"


class DummyOptions(Options):
    size: int = 4


class DummySource(ModelSource):
    name = "dummy"
    description = "a model that is only a vector size"
    produces = "dummy"
    Options: ClassVar[type[BaseModel]] = DummyOptions

    def describe(self, options: DummyOptions, ctx: ModelContext) -> ModelSignature:  # type: ignore[override]
        return ModelSignature(format="dummy", inputs=[TensorSpec(name="x", shape=["batch", options.size])])

    def load(self, options: DummyOptions, ctx: ModelContext) -> ModelArtifact:  # type: ignore[override]
        return ModelArtifact(
            format="dummy", content_hash=f"dummy-{options.size}", info={"size_bytes": 4 * options.size}
        )


class ScriptedOptions(BackendOptions):
    mode: Literal["ok", "error", "crash", "abort", "hang", "bad_alloc"] = "ok"
    sleep_us: float = 0.0
    fail_if_env: str | None = None  # fail while loading when this environment variable is set (a flaky case)
    hang_unless_env: str | None = None  # hang while loading unless this environment variable is set
    fail_once_exists: str | None = None  # fail while loading if this file exists, else create it: a later process fails
    allocate: int = 0  # bytes to allocate and write, to go over a memory cap
    allocate_in: Literal["load", "infer"] = "load"
    report_limits: bool = False


class ScriptedBackend(Backend):
    name = "scripted"
    description = "does what its 'mode' option says"
    formats = ("dummy",)
    Options: ClassVar[type[BaseModel]] = ScriptedOptions

    def _allocate(self) -> None:
        if self.options.allocate and getattr(self, "held", None) is None:  # once: a known allocation, held
            self.held = bytearray(b"\x01") * self.options.allocate  # written, not only reserved

    def load(self, artifact: ModelArtifact) -> None:
        mode = self.options.mode
        if self.options.allocate_in == "load":
            self._allocate()
        if self.options.fail_if_env and os.environ.get(self.options.fail_if_env):
            raise RuntimeError(f"failing because {self.options.fail_if_env} is set")
        if self.options.fail_once_exists:
            marker = Path(self.options.fail_once_exists)
            if marker.exists():
                raise RuntimeError(f"failing because {marker.name} exists (an earlier process made it)")
            marker.touch()
        while self.options.hang_unless_env and not os.environ.get(self.options.hang_unless_env):
            time.sleep(0.1)
        if mode == "error":
            raise RuntimeError("scripted failure while loading")
        if mode == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if mode == "abort":
            os._exit(3)
        if mode == "bad_alloc":  # what libstdc++ prints before aborting on an uncaught allocation failure
            os.write(2, b"terminate called after throwing an instance of 'std::bad_alloc'\n  what():  std::bad_alloc\n")
            os.abort()

    def prepare(self, inputs: dict[str, np.ndarray]) -> Any:
        return inputs

    def infer(self, feed: Any) -> Any:
        if self.options.allocate_in == "infer":
            self._allocate()
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
        info: dict[str, Any] = {"framework": "scripted", "threads": self.threads}
        if self.options.report_limits:
            import resource

            info["affinity"] = sorted(os.sched_getaffinity(0))
            info["thread_affinities"] = sorted(
                {tuple(sorted(os.sched_getaffinity(int(tid)))) for tid in os.listdir("/proc/self/task")}
            )
            info["rlimit_as"] = resource.getrlimit(resource.RLIMIT_AS)[0]
            info["env"] = {var: os.environ.get(var) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
            with open("/proc/self/cgroup", encoding="utf-8") as fh:
                info["cgroups"] = fh.read().splitlines()
        return info


class ScriptedGpu(ScriptedBackend):
    """Drives ``cuda`` too, with a device clock of its own: each call's device time is its call number in µs."""

    name = "scripted-gpu"
    devices = ("cpu", "cuda")

    @classmethod
    def unavailable_on(cls, target: TargetContext) -> str | None:
        missing = os.environ.get("BH_GPU_BACKEND_MISSING")
        return f"scripted-gpu cannot use {target.device} here: {missing}" if missing else None

    def load(self, artifact: ModelArtifact) -> None:
        super().load(artifact)
        self.calls: int | None = None

    def infer(self, feed: Any) -> Any:
        if self.calls is not None:
            self.calls += 1
        return super().infer(feed)

    def start_device_clock(self) -> str | None:
        self.calls = 0
        return "call number in microseconds"

    def stop_device_clock(self) -> list[int]:
        count, self.calls = self.calls or 0, None
        return [1000 * (i + 1) for i in range(count)]


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

    def save(self, artifact: ModelArtifact, folder):  # type: ignore[no-untyped-def]
        # an in-memory model: a third party caches it as it likes (here its hash, which is all there is)
        path = folder / "tag.txt"
        path.write_text(artifact.content_hash)
        return path

    def restore(self, path, artifact_format: str, info: dict[str, Any]) -> ModelArtifact:  # type: ignore[no-untyped-def]
        return ModelArtifact(format=artifact_format, content_hash=path.read_text(), info=info)


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


class FakeNpu(Target):
    name = "fake-npu"
    description = "an accelerator no machine has"

    @classmethod
    def unavailable_here(cls, options: BaseModel) -> str | None:
        return "no fake NPU on this machine (/dev/fake-npu0 is missing)"

    def apply(self, options: BaseModel) -> TargetContext:
        raise AssertionError("never applied: the machine lacks it")


class Count(Reporter):
    name = "count"
    description = "the number of cases"

    def render(self, results: RunResults) -> str:
        return f"{len(results.cases)} cases"


class FixedOptions(ScenarioOptions):
    iterations: int = 50


class FixedIterations(Scenario):
    """A second scenario: a fixed number of timed calls, no warm-up, the measured phase around them."""

    name = "fixed"
    description = "a fixed number of timed calls"
    produces = ("calls", "mean_call")
    Options: ClassVar[type[BaseModel]] = FixedOptions

    def run(self, ctx: CaseContext) -> dict[str, MetricValue]:
        with ctx.measured():
            samples = time_batch(lambda: ctx.backend.infer(ctx.feed), self.options.iterations)
        return {
            "calls": MetricValue(value=float(len(samples)), unit="calls"),
            "mean_call": MetricValue(
                value=sum(samples) / len(samples) / 1e6,
                unit="ms",
                summary=summarize(samples),
                samples=samples,
                method="mean of a fixed number of perf_counter_ns samples",
            ),
        }


class PhaseClock(Observer):
    """A toy observer: the wall time of the measured phase, read around it."""

    name = "phase_time"
    unit = "s"
    description = "wall time of the scenario's measured phase"

    def start(self, ctx: CaseContext) -> None:
        self.t0 = time.perf_counter_ns()
        self.phase_at_start = ctx.phase

    def stop(self) -> MetricValue:
        elapsed = time.perf_counter_ns() - self.t0
        return MetricValue(
            value=elapsed / 1e9, unit=self.unit, method="perf_counter_ns at start and stop",
            details={"phase_at_start": self.phase_at_start},
        )  # fmt: skip


class PhaseShare(Metric):
    """A derived metric: the share of the measured phase spent inside the timed calls."""

    name = "phase_share"
    unit = "1"
    depends_on = ("phase_time", "latency")
    description = "sum of latency samples / measured phase wall time"

    def collect(self, ctx: CaseContext) -> MetricValue:
        phase = ctx.collected["phase_time"].value
        samples = ctx.collected["latency"].samples or []
        return MetricValue(value=sum(samples) / 1e9 / phase if phase else None, unit=self.unit)


class PlainFloat(Metric):
    name = "plain_float"
    unit = "1"
    description = "returns a float instead of a MetricValue"

    def collect(self, ctx: CaseContext) -> MetricValue:
        return 3.0  # type: ignore[return-value]


class Unmeasured(Scenario):
    """A scenario that never opens its measured phase."""

    name = "unmeasured"
    produces = ("calls",)

    def run(self, ctx: CaseContext) -> dict[str, MetricValue]:
        ctx.backend.infer(ctx.feed)
        return {"calls": MetricValue(value=1.0, unit="calls")}


class BrokenObserver(Observer):
    name = "broken_observer"
    unit = "?"
    description = "fails in stop"

    def start(self, ctx: CaseContext) -> None:
        pass

    def stop(self) -> MetricValue:
        raise RuntimeError("observer broke")


#: Payloads the recording launcher was given, as JSON (tests read them).
PAYLOADS: list[str] = []


class Recording(InlineLauncher):
    """Runs each case in this process, as ``inline`` does, and keeps the payload it was handed."""

    name = "recording"
    description = "inline, keeping each payload"

    def launch(self, job: Job) -> CaseResult:
        PAYLOADS.append(job.payload.model_dump_json())
        return super().launch(job)


class Bogus(Metric):
    name = "bogus"
    unit = "?"
    description = "returns a value that is not a number"

    def collect(self, ctx: CaseContext) -> MetricValue:
        return MetricValue(value="not a number", unit=self.unit, details={"odd": object()})  # type: ignore[arg-type]


class Ramp(Dataset):
    name = "ramp"
    description = "labels equal to the input index"

    def load(self, options: BaseModel, ctx: DatasetContext) -> LabelledData:
        return LabelledData(inputs=np.arange(4, dtype=np.float32)[:, None], labels=np.arange(4), images=False)


@hookimpl
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    register(ScriptedBackend)
    register(ScriptedGpu)
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
    register(FakeNpu)


@hookimpl
def benchharness_register_reporters(register):  # type: ignore[no-untyped-def]
    register(Count)


@hookimpl
def benchharness_register_model_sources(register):  # type: ignore[no-untyped-def]
    register(DummySource)


@hookimpl
def benchharness_register_metrics(register):  # type: ignore[no-untyped-def]
    register(Bogus)
    register(PhaseShare)
    register(PlainFloat)


@hookimpl
def benchharness_register_datasets(register):  # type: ignore[no-untyped-def]
    register(Ramp)


@hookimpl
def benchharness_register_scenarios(register):  # type: ignore[no-untyped-def]
    register(FixedIterations)
    register(Unmeasured)


@hookimpl
def benchharness_register_observers(register):  # type: ignore[no-untyped-def]
    register(PhaseClock)
    register(BrokenObserver)


@hookimpl
def benchharness_register_launchers(register):  # type: ignore[no-untyped-def]
    register(Recording)
