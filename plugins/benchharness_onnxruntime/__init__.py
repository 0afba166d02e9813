"""Built-in ONNX Runtime plugin: the backend and the ONNX-file model source.
onnxruntime and onnx are imported only inside methods."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field

from benchharness.api import (
    Backend,
    BackendOptions,
    BenchError,
    ModelArtifact,
    ModelContext,
    ModelSignature,
    ModelSource,
    Options,
    allowed_cores,
    file_hash,
)
from benchharness.hookspecs import hookimpl

if TYPE_CHECKING:
    import numpy as np

INSTALL = "pip install onnxruntime  (or: pip install 'benchharness[onnxruntime]')"

OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


class OrtOptions(BackendOptions):
    """Options of the ``onnxruntime`` backend."""

    graph_optimization_level: Literal["disable", "basic", "extended", "all"] = "all"
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        min_length=1,
        description="Execution providers, in order of preference.",
    )
    execution_mode: Literal["sequential", "parallel"] = "sequential"
    inter_op_threads: int = Field(1, ge=1, description="Threads across independent nodes (parallel mode).")
    session_config: dict[str, str] = Field(
        default_factory=dict, description="Extra SessionOptions config entries (add_session_config_entry)."
    )


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime ``InferenceSession``: created once, ``run`` per iteration."""

    name = "onnxruntime"
    description = "ONNX Runtime InferenceSession (threads, optimisation level, execution providers)"
    requires = ("onnxruntime",)
    install_hint = INSTALL
    formats = ("onnx",)
    devices = ("cpu", "cuda")
    Options: ClassVar[type[BaseModel]] = OrtOptions

    def load(self, artifact: ModelArtifact) -> None:
        """Create the session with explicit threads and the requested providers."""
        import onnxruntime as ort

        self._ort = ort
        available = ort.get_available_providers()
        missing = [p for p in self.options.providers if p not in available]
        if missing:
            raise BenchError(
                f"onnxruntime: execution provider(s) {', '.join(missing)} not available; this build has "
                f"{', '.join(available)}"
            )
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = self.options.inter_op_threads
        so.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, OPT_LEVELS[self.options.graph_optimization_level]
        )
        so.execution_mode = (
            ort.ExecutionMode.ORT_PARALLEL
            if self.options.execution_mode == "parallel"
            else ort.ExecutionMode.ORT_SEQUENTIAL
        )
        for key, value in self.options.session_config.items():
            so.add_session_config_entry(key, value)
        self.session = ort.InferenceSession(str(artifact.path), sess_options=so, providers=self.options.providers)
        self._run = self.session.run
        self._output_names = [o.name for o in self.session.get_outputs()]

    def prepare(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """ONNX Runtime takes numpy arrays by input name."""
        return {i.name: inputs[i.name] for i in self.session.get_inputs()}

    def infer(self, feed: dict[str, np.ndarray]) -> list[Any]:
        """One ``session.run``; it returns when the outputs are ready."""
        return self._run(None, feed)

    def to_numpy(self, outputs: list[Any]) -> dict[str, np.ndarray]:
        """Outputs by their graph names."""
        return dict(zip(self._output_names, outputs))

    def concurrency(self, requested: int | None) -> int:
        """``session.run`` is thread-safe and releases the GIL: by default, one request per group of ``threads`` cores.

        With the target's cores all given to each run's intra-op pool (the
        default), that is 1; a suite asking ``requests: N`` gets N threads.
        """
        if requested:
            return requested
        cores = len(allowed_cores())
        return max(1, cores // self.threads)

    def runtime_info(self) -> dict[str, Any]:
        """Threads set on the session, the providers really used and the version."""
        options = self.session.get_session_options()
        return {
            "framework": "onnxruntime",
            "version": self._ort.__version__,
            "threads": options.intra_op_num_threads,
            "inter_op_threads": options.inter_op_num_threads,
            "providers": self.session.get_providers(),
            "graph_optimization_level": self.options.graph_optimization_level,
        }

    def close(self) -> None:
        """Drop the session."""
        self.session = None
        self._run = None


class OnnxFileOptions(Options):
    """Options of the ``onnx`` model source."""

    path: str = Field(description="ONNX file, relative to the suite.")


class OnnxFileSource(ModelSource):
    """An ONNX file; its inputs are read from the graph (without its weights) when the suite lists none.

    Dynamic dimensions keep their names.  A dynamic first dimension is the
    batch (and so is every dimension sharing its name); an unnamed one is
    called ``INPUT.INDEX`` (``state.1``), unique per input, and needs a value
    in the model's ``dims``.
    """

    name = "onnx"
    description = "an ONNX file (inputs read from the graph)"
    requires = ("onnx",)
    install_hint = "pip install onnx"
    produces = "onnx"
    file_suffixes = (".onnx",)
    Options: ClassVar[type[BaseModel]] = OnnxFileOptions

    def default_name(self, options: OnnxFileOptions) -> str:  # type: ignore[override]
        """The file's stem."""
        return Path(options.path).stem

    def describe(self, options: OnnxFileOptions, ctx: ModelContext) -> ModelSignature:  # type: ignore[override]
        """Inputs, outputs, parameter count and opset, read from the graph without external data."""
        from benchharness_onnxruntime.graph import describe_onnx

        return describe_onnx(ctx.resolve(options.path))

    def load(self, options: OnnxFileOptions, ctx: ModelContext) -> ModelArtifact:  # type: ignore[override]
        """Reference the file; hash its bytes."""
        path = ctx.resolve(options.path)
        return ModelArtifact(format="onnx", content_hash=file_hash(path), path=path)


@hookimpl
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    """Register the ONNX Runtime backend."""
    register(OnnxRuntimeBackend)


@hookimpl
def benchharness_register_model_sources(register):  # type: ignore[no-untyped-def]
    """Register the ONNX-file source."""
    register(OnnxFileSource)
