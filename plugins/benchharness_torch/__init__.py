"""Built-in PyTorch plugin: the eager backend, TorchScript and Python-callable model sources,
and the torch-to-ONNX converter.  torch is imported only inside methods."""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field, field_validator

from benchharness.api import (
    Backend,
    BackendOptions,
    BenchError,
    Compression,
    Converter,
    ModelArtifact,
    ModelContext,
    ModelSignature,
    ModelSource,
    Options,
    TargetContext,
    file_hash,
)
from benchharness.hookspecs import hookimpl

if TYPE_CHECKING:
    import numpy as np

INSTALL = "pip install torch  (or: pip install 'benchharness[torch]')"
ONNX_OPSET = 17
#: TorchScript argument types that take a Python scalar, not a tensor.
SCALAR_TYPES = {"float": float, "int": int, "bool": bool}


def module_artifact(module: Any, *, identity: str) -> ModelArtifact:
    """Wrap an ``nn.Module`` (put in eval mode) with its content hash, size and parameter count.

    The hash covers ``identity`` (what built it), the module's structure and
    every weight, so conversions are cached per exact model.
    """
    import torch

    module.eval()
    digest = hashlib.sha256(identity.encode())
    digest.update(str(module).encode())
    size = 0
    for key, tensor in module.state_dict().items():
        data = tensor.detach().cpu().contiguous()
        digest.update(key.encode())
        digest.update(str(data.dtype).encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
        size += data.numel() * data.element_size()
    parameters = sum(p.numel() for p in module.parameters())
    return ModelArtifact(
        format="torch",
        content_hash=digest.hexdigest(),
        obj=module,
        info={"parameters": parameters, "size_bytes": size},
    )


class TorchCompression(Compression):
    """Base of compressions that take and give an in-memory ``torch.nn.Module``: caches it with ``torch.save``.

    Subclass it and write ``apply``; ``save`` pickles the whole module (its
    classes must be importable where it is restored, as the zoo's and any
    ``python`` source's are), ``restore`` loads it on the CPU in eval mode.
    """

    formats: ClassVar[tuple[str, ...]] = ("torch",)
    requires = ("torch",)
    install_hint = INSTALL

    def cache_key(self, options: BaseModel) -> str:
        """torch's version: it changes what a quantizer or a trainer produces."""
        import torch

        return f"torch={torch.__version__}"

    def save(self, artifact: ModelArtifact, folder: Path) -> Path:
        """``torch.save`` of the whole module into ``folder/model.pt``."""
        import torch

        if artifact.format != "torch" or artifact.obj is None:
            return super().save(artifact, folder)
        path = folder / "model.pt"
        torch.save(artifact.obj, path)
        return path

    def restore(self, path: Path, artifact_format: str, info: dict[str, Any]) -> ModelArtifact:
        """The module ``save`` wrote, loaded on the CPU (the backend moves it), with its parameter count and size."""
        import torch

        if artifact_format != "torch":
            return super().restore(path, artifact_format, info)
        module = torch.load(path, map_location="cpu", weights_only=False)
        restored = module_artifact(module, identity=str(path))
        restored.info = {**info, **restored.info}
        return restored


class TorchOptions(BackendOptions):
    """Options of the ``torch`` backend."""

    channels_last: bool = Field(False, description="Use the channels_last memory format for 4-D inputs and the model.")
    interop_threads: int | None = Field(None, ge=1, description="Inter-op threads; left to torch when unset.")
    cudnn_benchmark: bool = Field(
        False, description="On CUDA, let cuDNN pick the fastest convolution algorithms (during warm-up)."
    )


class TorchBackend(Backend):
    """PyTorch eager mode: eval mode, ``torch.inference_mode``, explicit thread counts.

    On a ``cuda`` target (``cuda:N``) the inputs are copied to the GPU once,
    in ``prepare``; each ``infer`` ends with ``torch.cuda.synchronize``, so
    the host clock sees the whole inference; CUDA events around each forward
    are a second clock (``start_device_clock``), and the peak memory torch
    allocated and reserved is in ``runtime_info``.
    """

    name = "torch"
    description = "PyTorch eager (inference_mode, eval, channels_last option)"
    requires = ("torch",)
    install_hint = INSTALL
    formats = ("torch", "torchscript")
    devices = ("cpu", "cuda")
    Options: ClassVar[type[BaseModel]] = TorchOptions

    def load(self, artifact: ModelArtifact) -> None:
        """Set threads, load the module onto the device, in eval mode; bind TorchScript inputs by name."""
        import torch

        self._torch = torch
        torch.set_num_threads(self.threads)
        if self.options.interop_threads:
            try:
                torch.set_num_interop_threads(self.options.interop_threads)
            except RuntimeError as exc:  # torch allows this once, before any parallel work
                raise BenchError(f"torch: cannot set interop_threads: {exc}") from None
        module = artifact.obj if artifact.format == "torch" else torch.jit.load(str(artifact.path))
        module = module.eval().to(self._device())
        if self.options.channels_last:
            module = module.to(memory_format=torch.channels_last)
        self.model = module
        self.input_names = [spec.name for spec in artifact.inputs]
        #: TorchScript forward arguments by name -> Python scalar type (None for tensors); None for eager modules.
        self.arguments = _bind_by_name(module, self.input_names) if artifact.format == "torchscript" else None
        self._sync = None
        #: (start, end) CUDA event pairs of the calls timed on the device clock; None when it is not running.
        self._events: list[tuple[Any, Any]] | None = None
        if self._device().type == "cuda":
            device = self._device()
            torch.cuda.set_device(device)
            torch.backends.cudnn.benchmark = self.options.cudnn_benchmark
            torch.cuda.reset_peak_memory_stats(device)
            self._sync = functools.partial(torch.cuda.synchronize, device)

    def _device(self) -> Any:
        index = self.target.details.get("index", 0)
        return self._torch.device(f"cuda:{index}" if self.target.device == "cuda" else "cpu")

    @classmethod
    def unavailable_on(cls, target: TargetContext) -> str | None:
        """On ``cuda``: a torch built without CUDA, or one that sees no GPU (or too few)."""
        if target.device != "cuda":
            return None
        import torch

        if not torch.backends.cuda.is_built():
            return f"torch {torch.__version__} here is built without CUDA; install a CUDA build of torch"
        if not torch.cuda.is_available():
            return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no usable GPU here"
        index, count = target.details.get("index", 0), torch.cuda.device_count()
        if index >= count:
            return f"needs cuda:{index}; torch sees {count} GPU(s) here"
        return None

    def prepare(self, inputs: dict[str, np.ndarray]) -> tuple[list[Any], dict[str, Any]]:
        """Tensors on the device: positional in the model's input order, or by name for TorchScript."""
        torch = self._torch
        values = {}
        for name in self.input_names:
            scalar = self.arguments.get(name) if self.arguments is not None else None
            if scalar is not None:
                values[name] = scalar(inputs[name].item())
                continue
            tensor = torch.from_numpy(inputs[name]).to(self._device())
            if self.options.channels_last and tensor.dim() == 4:
                tensor = tensor.contiguous(memory_format=torch.channels_last)
            values[name] = tensor
        if self.arguments is not None:
            return [], values
        return [values[name] for name in self.input_names], {}

    def infer(self, feed: tuple[list[Any], dict[str, Any]]) -> Any:
        """One forward pass; on CUDA it waits for the device before returning."""
        args, kwargs = feed
        events = self._events
        if events is not None:
            start, end = self._torch.cuda.Event(enable_timing=True), self._torch.cuda.Event(enable_timing=True)
            start.record()
        try:
            with self._torch.inference_mode():
                out = self.model(*args, **kwargs)
        except RuntimeError as exc:
            raise BenchError(f"torch: the model's forward failed: {_without_values(str(exc))}") from None
        if events is not None:
            end.record()
            events.append((start, end))
        if self._sync is not None:
            self._sync()
        return out

    def start_device_clock(self) -> str | None:
        """On CUDA: a pair of CUDA events around each forward, read after the calls; ``None`` on the CPU."""
        if self._sync is None:
            return None
        self._events = []
        return "CUDA events recorded on the current stream around each forward (torch.cuda.Event.elapsed_time)"

    def stop_device_clock(self) -> list[int]:
        """Each forward's GPU time, in ns, from its events."""
        events, self._events = self._events or [], None
        if self._sync is not None:
            self._sync()
        return [round(start.elapsed_time(end) * 1e6) for start, end in events]

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        """Outputs named ``output0``, ``output1``, ... (or by key for dict outputs)."""
        if isinstance(outputs, dict):
            return {str(k): v.detach().cpu().numpy() for k, v in outputs.items()}
        items = outputs if isinstance(outputs, (tuple, list)) else [outputs]
        return {f"output{i}": t.detach().cpu().numpy() for i, t in enumerate(items)}

    def runtime_info(self) -> dict[str, Any]:
        """Threads torch really uses, its version and the device."""
        torch = self._torch
        info: dict[str, Any] = {
            "framework": "torch",
            "version": torch.__version__,
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "device": str(self._device()),
            "channels_last": self.options.channels_last,
        }
        device = self._device()
        if device.type == "cuda":
            props = torch.cuda.get_device_properties(device)
            info["cuda"] = {
                "name": props.name,
                "capability": f"{props.major}.{props.minor}",
                "memory_total_bytes": props.total_memory,
                "cuda_version": torch.version.cuda,
                "cudnn_version": torch.backends.cudnn.version(),
                "cudnn_benchmark": torch.backends.cudnn.benchmark,
                "max_memory_allocated_bytes": torch.cuda.max_memory_allocated(device),
                "max_memory_reserved_bytes": torch.cuda.max_memory_reserved(device),
            }
        return info

    def close(self) -> None:
        """Drop the model."""
        self.model = None


class TorchScriptOptions(Options):
    """Options of the ``torchscript`` model source."""

    path: str = Field(description="TorchScript file (torch.jit.save), relative to the suite.")


class TorchScriptSource(ModelSource):
    """A TorchScript file."""

    name = "torchscript"
    description = "a TorchScript file saved with torch.jit.save"
    requires = ("torch",)
    install_hint = INSTALL
    produces = "torchscript"
    file_suffixes = (".pt", ".pth", ".jit", ".torchscript")
    Options: ClassVar[type[BaseModel]] = TorchScriptOptions

    def default_name(self, options: TorchScriptOptions) -> str:  # type: ignore[override]
        """The file's stem."""
        return Path(options.path).stem

    def describe(self, options: TorchScriptOptions, ctx: ModelContext) -> ModelSignature:  # type: ignore[override]
        """The forward's argument names and types, read from the archive's code without importing torch.

        TorchScript gives no shapes: the suite declares each input under ``inputs``.
        """
        from benchharness_torch.schema import describe_torchscript

        return describe_torchscript(ctx.resolve(options.path))

    def load(self, options: TorchScriptOptions, ctx: ModelContext) -> ModelArtifact:  # type: ignore[override]
        """Reference the file; the backend loads it."""
        path = ctx.resolve(options.path)
        return ModelArtifact(format="torchscript", content_hash=file_hash(path), path=path)


class PythonOptions(Options):
    """Options of the ``python`` model source."""

    factory: str = Field(description="'package.module:function' returning a torch.nn.Module.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the factory.")

    @field_validator("factory")
    @classmethod
    def _module_colon_function(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", value):
            raise ValueError(f"expected 'package.module:function', got {value!r}")
        return value


class PythonSource(ModelSource):
    """A Python callable that returns a ``torch.nn.Module``."""

    name = "python"
    description = "a Python callable 'package.module:factory' returning a torch.nn.Module"
    requires = ("torch",)
    install_hint = INSTALL
    produces = "torch"
    Options: ClassVar[type[BaseModel]] = PythonOptions

    def default_name(self, options: PythonOptions) -> str:  # type: ignore[override]
        """The factory's function name."""
        return options.factory.rsplit(":", 1)[1]

    def load(self, options: PythonOptions, ctx: ModelContext) -> ModelArtifact:  # type: ignore[override]
        """Import the factory and call it with a seeded generator, so weights are reproducible."""
        import sys

        import torch

        module_name, func_name = options.factory.split(":")
        if str(ctx.base_dir) not in sys.path:
            sys.path.append(str(ctx.base_dir))  # factories next to the suite are importable
        try:
            factory = getattr(importlib.import_module(module_name), func_name)
        except (ImportError, AttributeError) as exc:
            raise BenchError(f"python source: cannot import {options.factory!r}: {exc}") from None
        torch.manual_seed(ctx.seed)
        module = factory(**options.kwargs)
        if not isinstance(module, torch.nn.Module):
            raise BenchError(f"python source: {options.factory} returned {type(module).__name__}, not torch.nn.Module")
        return module_artifact(module, identity=f"{options.factory}:{sorted(options.kwargs.items())}:{ctx.seed}")


class TorchToOnnx(Converter):
    """Export with TorchScript-based ``torch.onnx.export`` (``dynamo=False``, so no onnxscript needed)."""

    name = "torch-onnx"
    description = f"torch.onnx.export (TorchScript exporter, opset {ONNX_OPSET}, static shapes)"
    requires = ("torch", "onnx")
    install_hint = "pip install torch onnx"
    source_formats = ("torch", "torchscript")
    target_format = "onnx"
    suffix = ".onnx"

    def cache_key(self, artifact: ModelArtifact) -> str:
        """The opset and torch version change the exported graph."""
        import torch

        return f"opset={ONNX_OPSET};torch={torch.__version__}"

    def convert(self, artifact: ModelArtifact, out_path: Path) -> None:
        """Export with the artifact's fixed input shapes; inputs and outputs keep their names."""
        import torch

        from benchharness.inputs import make_inputs

        module = artifact.obj if artifact.format == "torch" else torch.jit.load(str(artifact.path))
        arrays = make_inputs(artifact.inputs, seed=0)
        args = tuple(torch.from_numpy(arrays[spec.name]) for spec in artifact.inputs)
        torch.onnx.export(
            module.eval(),
            args,
            str(out_path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=[spec.name for spec in artifact.inputs],
        )


def _bind_by_name(module: Any, names: list[str]) -> dict[str, type | None]:
    """Check the inputs against a TorchScript forward's arguments; map each to its scalar type, if any.

    The names must match the schema's (order does not matter), so a model is
    never fed inputs in the wrong order; on a mismatch the expected names are
    listed, never the tensors.
    """
    arguments = list(module.forward.schema.arguments)[1:]  # without self
    expected = [a.name for a in arguments]
    unknown = [n for n in names if n not in expected]
    missing = [a.name for a in arguments if a.name not in names and not a.has_default_value()]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"it has no argument {', '.join(map(repr, unknown))}")
        if missing:
            parts.append(f"argument {', '.join(map(repr, missing))} is not given")
        raise BenchError(
            f"torchscript forward({', '.join(expected)}): {'; '.join(parts)}; "
            "name the suite's inputs after its arguments"
        )
    return {a.name: SCALAR_TYPES.get(str(a.type)) for a in arguments if a.name in names}


def _without_values(message: str) -> str:
    """A torch error message without the tensor values TorchScript appends (``Value: tensor([...])``)."""
    lines = []
    for line in message.strip().splitlines():
        head, sep, _ = line.partition("Value:")
        lines.append((head.rstrip() + (" (value not shown)" if sep else "")).strip())
        if sep:
            break
    return " ".join(line for line in lines if line)[:500]


@hookimpl
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    """Register the PyTorch eager backend."""
    register(TorchBackend)


@hookimpl
def benchharness_register_model_sources(register):  # type: ignore[no-untyped-def]
    """Register the TorchScript and Python-callable sources."""
    register(TorchScriptSource)
    register(PythonSource)


@hookimpl
def benchharness_register_converters(register):  # type: ignore[no-untyped-def]
    """Register torch to ONNX."""
    register(TorchToOnnx)
