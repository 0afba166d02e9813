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
    TargetContext,
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
    providers: list[str] | None = Field(
        None,
        min_length=1,
        description="Execution providers, in order of preference; default: CPU on the cpu target, and on cuda "
        "TensorRT (where this build has it and 'tensorrt' is on), then CUDA, then CPU.",
    )
    tensorrt: bool = Field(True, description="On cuda, put the TensorRT provider first where this build has it.")
    io_binding: bool = Field(
        True,
        description="On cuda, copy the inputs to the GPU once and keep the outputs there (IO binding), so host-device "
        "copies are outside the timed region; false: session.run with host arrays, copies inside it.",
    )
    execution_mode: Literal["sequential", "parallel"] = "sequential"
    inter_op_threads: int = Field(1, ge=1, description="Threads across independent nodes (parallel mode).")
    session_config: dict[str, str] = Field(
        default_factory=dict, description="Extra SessionOptions config entries (add_session_config_entry)."
    )


#: Execution providers that run on a CUDA device, and take its ``device_id``.
CUDA_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime ``InferenceSession``: created once, ``run`` per iteration.

    On a ``cuda`` target the providers default to TensorRT (where present),
    CUDA, then CPU, each CUDA one on the target's device.  With ``io_binding``
    (the default there) the inputs are copied to the GPU once, in
    ``prepare``, and the outputs stay on it: ``run_with_iobinding`` returns
    when the GPU's stream has finished, and host-device copies fall outside
    the timed region.  ``runtime_info`` says which (``copies_in_timed_region``).
    """

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
        providers = self._providers(available)
        missing = [p for p in providers if p not in available]
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
        with_options = [(p, {"device_id": self._index}) if p in CUDA_PROVIDERS else p for p in providers]
        self.session = ort.InferenceSession(str(artifact.path), sess_options=so, providers=with_options)
        self._run = self.session.run
        self._output_names = [o.name for o in self.session.get_outputs()]
        self._bound = self.target.device == "cuda" and self.options.io_binding

    @property
    def _index(self) -> int:
        return int(self.target.details.get("index", 0))

    def _providers(self, available: list[str]) -> list[str]:
        """The suite's providers, or the default for the target's device."""
        if self.options.providers:
            return list(self.options.providers)
        if self.target.device != "cuda":
            return ["CPUExecutionProvider"]
        trt = ["TensorrtExecutionProvider"] if self.options.tensorrt and CUDA_PROVIDERS[0] in available else []
        return [*trt, "CUDAExecutionProvider", "CPUExecutionProvider"]

    @classmethod
    def unavailable_on(cls, target: TargetContext) -> str | None:
        """On ``cuda``: an ONNX Runtime without the CUDA provider (the CPU-only ``onnxruntime`` wheel)."""
        if target.device != "cuda":
            return None
        import onnxruntime as ort

        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            return (
                f"onnxruntime {ort.__version__} here has no CUDA execution provider (it has {', '.join(available)}); "
                "pip install onnxruntime-gpu in place of onnxruntime"
            )
        return None

    def prepare(self, inputs: dict[str, np.ndarray]) -> Any:
        """Numpy arrays by input name; with IO binding on cuda, a binding with the inputs already on the GPU."""
        feed = {i.name: inputs[i.name] for i in self.session.get_inputs()}
        if not self._bound:
            return feed
        ort, binding = self._ort, self.session.io_binding()
        for name, array in feed.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, "cuda", self._index))
        for name in self._output_names:
            binding.bind_output(name, "cuda", self._index)
        return binding

    def infer(self, feed: Any) -> Any:
        """One ``session.run`` (or ``run_with_iobinding``); it returns when the outputs are ready."""
        if self._bound:
            self.session.run_with_iobinding(feed)
            return feed
        return self._run(None, feed)

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        """Outputs by their graph names (copied from the GPU when they were bound there)."""
        if self._bound:
            outputs = outputs.copy_outputs_to_cpu()
        return dict(zip(self._output_names, outputs))

    def concurrency(self, requested: int | None) -> int:
        """``session.run`` is thread-safe and releases the GIL: by default, one request per group of ``threads`` cores.

        With the target's cores all given to each run's intra-op pool (the
        default), that is 1; a suite asking ``requests: N`` gets N threads.
        """
        if self._bound:
            if requested and requested > 1:
                raise BenchError(
                    "onnxruntime: an IO binding serves one request at a time; set io_binding: false for "
                    f"{requested} concurrent requests on cuda"
                )
            return 1
        if requested:
            return requested
        if self.target.device == "cuda":
            return 1
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
            **(
                {"device_id": self._index, "io_binding": self._bound, "copies_in_timed_region": not self._bound}
                if self.target.device == "cuda"
                else {}
            ),
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
