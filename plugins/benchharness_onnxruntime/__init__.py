"""Built-in ONNX Runtime plugin: the backend and the ONNX-file model source.
onnxruntime and onnx are imported only inside methods."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field

from benchharness.api import Backend, BackendOptions, ModelArtifact, ModelContext, ModelSource, Options
from benchharness.errors import BenchError
from benchharness.hookspecs import hookimpl

if TYPE_CHECKING:
    import numpy as np

    from benchharness.suite import InputSpec

INSTALL = "pip install onnxruntime  (or: pip install 'benchharness[onnxruntime]')"

OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}

# ONNX TensorProto element types to the suite's dtype names.
ONNX_DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
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
    """An ONNX file; its inputs are read from the graph when the suite lists none."""

    name = "onnx"
    description = "an ONNX file (inputs read from the graph)"
    requires = ("onnx",)
    install_hint = "pip install onnx"
    produces = "onnx"
    Options: ClassVar[type[BaseModel]] = OnnxFileOptions

    def default_name(self, options: OnnxFileOptions) -> str:  # type: ignore[override]
        """The file's stem."""
        return Path(options.path).stem

    def load(self, options: OnnxFileOptions, ctx: ModelContext) -> ModelArtifact:  # type: ignore[override]
        """Reference the file; hash its bytes."""
        from benchharness.models import file_hash

        path = ctx.resolve(options.path)
        return ModelArtifact(format="onnx", content_hash=file_hash(path), path=path)

    def default_inputs(self, options: OnnxFileOptions, artifact: ModelArtifact) -> list[InputSpec]:  # type: ignore[override]
        """The graph's inputs (initializers excluded).

        A symbolic first dimension is taken as the batch; other symbolic
        dimensions keep their names and need values in the model's ``dims``.
        """
        import onnx

        from benchharness.suite import InputSpec

        model = onnx.load(str(artifact.path), load_external_data=False)
        initializers = {i.name for i in model.graph.initializer}
        specs = []
        for value in model.graph.input:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            dtype = ONNX_DTYPES.get(tensor.elem_type)
            if dtype is None:
                raise BenchError(f"onnx source: input {value.name!r} has unsupported element type {tensor.elem_type}")
            shape: list[int | str] = [
                d.dim_value
                if d.HasField("dim_value") and d.dim_value > 0
                else ("batch" if index == 0 else d.dim_param or f"dim{index}")
                for index, d in enumerate(tensor.shape.dim)
            ]
            specs.append(InputSpec(name=value.name, shape=shape, dtype=dtype))
        return specs


@hookimpl
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    """Register the ONNX Runtime backend."""
    register(OnnxRuntimeBackend)


@hookimpl
def benchharness_register_model_sources(register):  # type: ignore[no-untyped-def]
    """Register the ONNX-file source."""
    register(OnnxFileSource)
