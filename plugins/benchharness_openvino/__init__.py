"""Built-in OpenVINO plugin: the backend (ONNX and IR models, asynchronous infer requests) and the IR model source.
openvino is imported only inside methods."""

from __future__ import annotations

import glob
import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field, PositiveInt, field_validator

from benchharness.api import (
    Backend,
    BackendOptions,
    BenchError,
    ModelArtifact,
    ModelContext,
    ModelSignature,
    ModelSource,
    Options,
    Target,
    TargetContext,
    TargetOptions,
    allowed_cores,
    file_hash,
)
from benchharness.hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

INSTALL = "pip install openvino  (or: pip install 'benchharness[openvino]')"
IR_FORMAT = "openvino-ir"

#: Devices that spread a model over others, named after the colon (``AUTO:GPU,CPU``, ``BATCH:GPU(4)``).
VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")
_DEVICE = r"[A-Z][A-Z0-9_]*(?:\.[0-9]+)?"
_DEVICE_NAME = re.compile(rf"{_DEVICE}|(?:{'|'.join(VIRTUAL_DEVICES)}):{_DEVICE}(?:\([0-9]+\))?(?:,{_DEVICE})*")

#: ``hint`` option -> name of the ``openvino.properties.hint.PerformanceMode`` member.
HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT", "cumulative_throughput": "CUMULATIVE_THROUGHPUT"}


class OpenVinoOptions(BackendOptions):
    """Options of the ``openvino`` backend; each is passed to ``compile_model`` as a property."""

    device: str = Field(
        "CPU", description="OpenVINO device: CPU, GPU, GPU.1, NPU, AUTO, or a virtual one such as AUTO:GPU,CPU."
    )
    hint: Literal["latency", "throughput", "cumulative_throughput"] = Field(
        "latency", description="Performance hint (PERFORMANCE_HINT)."
    )
    streams: PositiveInt | None = Field(
        None, description="Execution streams (NUM_STREAMS); the hint's choice if unset."
    )
    requests: PositiveInt | None = Field(
        None,
        description="Infer requests kept in flight by the throughput scenario (and PERFORMANCE_HINT_NUM_REQUESTS); "
        "the device's optimal number if unset.",
    )
    precision: Literal["f32", "bf16", "f16"] = Field(
        "f32",
        description="Inference precision (INFERENCE_PRECISION_HINT); f32 by default, so accuracy compares fairly "
        "(the CPU plugin would otherwise pick bf16 where the CPU has it).",
    )
    cache_dir: str | None = Field(None, description="Folder for compiled models (CACHE_DIR); no caching if unset.")

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        device = value.strip().upper()
        if not _DEVICE_NAME.fullmatch(device):
            raise ValueError(f"expected a device such as CPU, GPU.1, NPU, AUTO or HETERO:GPU,CPU, got {value!r}")
        return device


@dataclass
class OpenVinoFeed:
    """Inputs as OpenVINO tensors, in the model's input order, built once by ``prepare``."""

    tensors: tuple[Any, ...]
    #: The same tensors by input index, as ``AsyncInferQueue.start_async`` takes them.
    by_index: dict[int, Any]


class OpenVinoBackend(Backend):
    """OpenVINO Runtime: compiled once with explicit properties; one reused infer request, or a queue of them.

    ``infer`` calls ``InferRequest.infer()`` on one request whose input
    tensors were set by ``prepare``.  Against ``start_async(); wait()`` on the
    same request and ``compiled_model(inputs)`` (medians, interleaved rounds,
    this project's 2-core machine), it was the fastest with 1 thread (zoo
    MobileNetV2 at 128 px: 926 / 960 / 980 us; a one-layer model: 10 / 15 /
    23 us: the asynchronous call hands the work to another thread and back)
    and within 1-3% of ``start_async`` with 2 threads (1232 / 1215 / 1320 us),
    where it stayed the fastest on the one-layer model (12 / 18 / 25 us).
    The throughput scenario submits to an ``AsyncInferQueue`` of
    ``concurrency()`` requests instead.
    """

    name = "openvino"
    description = "OpenVINO Runtime (device, performance hint, streams, precision; asynchronous infer requests)"
    requires = ("openvino",)
    install_hint = INSTALL
    formats = (IR_FORMAT, "onnx")
    devices = ("cpu", *(f"openvino:{kind}" for kind in ("CPU", "GPU", "NPU")))
    asynchronous: ClassVar[bool] = True
    Options: ClassVar[type[BaseModel]] = OpenVinoOptions

    def load(self, artifact: ModelArtifact) -> None:
        """Read the model, fix its dynamic inputs to the case's shapes, and compile it with the options."""
        import openvino as ov

        from benchharness_openvino.graph import ov_message, port_names

        self._ov = ov
        self.core = ov.Core()
        self.device = self._device()
        self._check_device(self.core.available_devices)
        try:
            model = self.core.read_model(str(artifact.path))
        except RuntimeError as exc:
            raise BenchError(f"openvino: cannot read {artifact.path}: {ov_message(exc)}") from None
        # Names come from the model as read: compiling may give an output the names of the tensors merged into it.
        self.input_names = port_names(model.inputs)
        self.output_names = port_names(model.outputs)
        self.reshaped = self._fix_shapes(model, artifact)
        self.config = self._properties()
        try:
            self.compiled = self.core.compile_model(model, self.device, self.config)
        except RuntimeError as exc:
            raise BenchError(f"openvino: cannot compile for {self.device}: {ov_message(exc)}") from None
        self.optimal_requests = int(self._compiled_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") or 1)
        self.request = self.compiled.create_infer_request()
        self._bound: OpenVinoFeed | None = None
        self._queue: Any = None
        self._queue_size: int | None = None
        self._failure: BaseException | None = None
        self._failure_lock = threading.Lock()

    def _device(self) -> str:
        """The ``device`` option, or the OpenVINO device the target names (``openvino:GPU``) when it names one.

        A ``device`` option set in the suite that differs from the target's is an error.
        """
        if not self.target.device.startswith("openvino:"):
            return self.options.device
        wanted = self.target.device.split(":", 1)[1]
        if "device" in self.options.model_fields_set and self.options.device != wanted:
            raise BenchError(
                f"openvino: the backend's device {self.options.device!r} differs from the target's {wanted!r}; "
                "leave the backend's device out to use the target's"
            )
        return wanted

    def _check_device(self, available: list[str]) -> None:
        """A one-line error naming the devices there are, when the option names one that is not."""
        device = self.device
        kind, _, listed = device.partition(":")
        wanted = [re.sub(r"\(\d+\)$", "", d) for d in listed.split(",")] if listed else []
        if kind not in VIRTUAL_DEVICES:
            wanted = [device]
        for name in wanted:
            base, _, index = name.partition(".")
            known = name in available or any(a.split(".")[0] == name for a in available)
            if not known and not (index == "0" and base in available):
                raise BenchError(
                    f"openvino: device {name!r} is not available on this machine; "
                    f"available devices: {', '.join(available) or 'none'}"
                )

    def _fix_shapes(self, model: Any, artifact: ModelArtifact) -> dict[str, list[int]]:
        """Reshape the model's dynamic inputs to the case's fixed shapes (static shapes compile faster code)."""
        specs = {spec.name: spec for spec in artifact.inputs}
        unknown = [name for name in specs if name not in self.input_names]
        missing = [name for name in self.input_names if name not in specs]
        if unknown or missing:
            parts = [f"it has no input {', '.join(map(repr, unknown))}"] if unknown else []
            parts += [f"input {', '.join(map(repr, missing))} is not given"] if missing else []
            raise BenchError(f"openvino: model inputs {', '.join(self.input_names)}: {'; '.join(parts)}")
        shapes = {}
        for port, name in zip(model.inputs, self.input_names):
            shape = specs[name].shape
            if shape is not None and port.get_partial_shape().is_dynamic:
                shapes[name] = [int(dim) for dim in shape]
        if shapes:
            by_port = {port: self._ov.PartialShape(shapes[name]) for port, name in zip(model.inputs, self.input_names)
                       if name in shapes}  # fmt: skip
            try:
                model.reshape(by_port)
            except RuntimeError as exc:
                from benchharness_openvino.graph import ov_message

                raise BenchError(f"openvino: cannot reshape the model to {shapes}: {ov_message(exc)}") from None
        return shapes

    def _properties(self) -> dict[str, Any]:
        """The options as ``compile_model`` properties."""
        import openvino.properties as props
        import openvino.properties.hint as hint
        import openvino.properties.streams as streams

        options = self.options
        self.cache_path = Path(options.cache_dir).expanduser().resolve() if options.cache_dir is not None else None
        config: dict[str, Any] = {
            hint.performance_mode: getattr(hint.PerformanceMode, HINTS[options.hint]),
            hint.inference_precision: getattr(self._ov.Type, options.precision),
            props.inference_num_threads: self.threads,
        }
        if options.streams is not None:
            config[streams.num] = options.streams
        if options.requests is not None:
            config[hint.num_requests] = options.requests
        if options.cache_dir is not None:
            config[props.cache_dir] = str(self.cache_path)
        return config

    def prepare(self, inputs: dict[str, np.ndarray]) -> OpenVinoFeed:
        """OpenVINO tensors (copies) in the model's input order, set on the latency request at once."""
        ov = self._ov
        tensors = []
        for name in self.input_names:
            array = inputs[name]
            tensors.append(ov.Tensor(array if array.flags.c_contiguous else array.copy()))
        feed = OpenVinoFeed(tensors=tuple(tensors), by_index=dict(enumerate(tensors)))
        self._bind(feed)
        return feed

    def _bind(self, feed: OpenVinoFeed) -> None:
        from benchharness_openvino.graph import ov_message

        for index, tensor in enumerate(feed.tensors):
            try:
                self.request.set_input_tensor(index, tensor)
            except RuntimeError as exc:
                raise BenchError(f"openvino: input {self.input_names[index]!r}: {ov_message(exc)}") from None
        self._bound = feed

    def infer(self, feed: OpenVinoFeed) -> Any:
        """One ``InferRequest.infer()`` on the reused request; returns its outputs (copied, so they stay valid)."""
        if feed is not self._bound:
            self._bind(feed)
        try:
            return self.request.infer()
        except RuntimeError as exc:
            from benchharness_openvino.graph import ov_message

            raise BenchError(f"openvino: inference failed: {ov_message(exc)}") from None

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        """Outputs by their tensor names in the model (the ONNX graph's output names for an ONNX file)."""
        values = outputs if isinstance(outputs, tuple) else outputs.to_tuple()
        return dict(zip(self.output_names, values))

    # ----------------------------------------------------------------- concurrent requests

    def concurrency(self, requested: int | None) -> int:
        """``requested``, else the ``requests`` option, else the compiled model's OPTIMAL_NUMBER_OF_INFER_REQUESTS."""
        count = requested or self.options.requests or self.optimal_requests
        if self._queue is not None and count != self._queue_size:
            self._queue.wait_all()
            self._queue = None
        self._queue_size = count
        return count

    def submit(self, feed: OpenVinoFeed, done: Callable[[Any], None]) -> None:
        """Start one inference on an idle request of the queue (blocks while all are busy); ``done`` gets copies."""
        if self._queue is None:
            self._queue = self._ov.AsyncInferQueue(self.compiled, self._queue_size or self.concurrency(None))
            self._queue.set_callback(self._finished)
        try:
            self._queue.start_async(feed.by_index, done)
        except RuntimeError as exc:
            from benchharness_openvino.graph import ov_message

            raise BenchError(f"openvino: cannot start an inference: {ov_message(exc)}") from None

    def _finished(self, request: Any, done: Callable[[Any], None]) -> None:
        """The queue's callback, on an OpenVINO thread: ``done`` is called exactly once, whatever fails.

        A failure is kept for :meth:`wait_all` to raise: raised here, it would
        surface in an unrelated ``start_async``.
        """
        outputs = None
        try:
            outputs = tuple(request.get_output_tensor(i).data.copy() for i in range(len(self.output_names)))
        except BaseException as exc:  # noqa: BLE001 - re-raised by wait_all
            self._fail(exc)
        try:
            done(outputs)
        except BaseException as exc:  # noqa: BLE001 - re-raised by wait_all
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        with self._failure_lock:
            if self._failure is None:
                self._failure = exc

    def wait_all(self) -> None:
        """Wait for every submitted inference; raise the first failure of a callback, if any."""
        if self._queue is not None:
            self._queue.wait_all()
        with self._failure_lock:
            failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    # ----------------------------------------------------------------- records

    def _compiled_property(self, key: str) -> Any:
        """A property of the compiled model; for a virtual device (AUTO), that of its single execution device."""
        try:
            return self.compiled.get_property(key)
        except RuntimeError:
            pass
        per_device = self._device_properties()
        values = [props[key] for props in per_device.values() if key in props]
        return values[0] if len(values) == 1 else None

    def _device_properties(self) -> dict[str, dict[str, Any]]:
        try:
            found = self.compiled.get_property("DEVICE_PROPERTIES")
        except RuntimeError:
            return {}
        return found if isinstance(found, dict) else {}

    def runtime_info(self) -> dict[str, Any]:
        """The version, the devices' full names, and the properties read back from the compiled model."""
        ov = self._ov
        execution = [str(d).strip("()") for d in self._compiled_property("EXECUTION_DEVICES") or []]
        names = {}
        for device in execution or [self.device]:
            try:
                names[device] = str(self.core.get_property(device, "FULL_DEVICE_NAME"))
            except RuntimeError:
                names[device] = "unknown"
        info: dict[str, Any] = {
            "framework": "openvino",
            "version": ov.get_version(),
            "device": self.device,
            "execution_devices": execution,
            "device_names": names,
            "hint": _plain(self._compiled_property("PERFORMANCE_HINT")),
            "streams": _plain(self._compiled_property("NUM_STREAMS")),
            "threads": _plain(self._compiled_property("INFERENCE_NUM_THREADS")),
            "precision": _plain(self._compiled_property("INFERENCE_PRECISION_HINT")),
            "optimal_requests": self.optimal_requests,
            "call": "InferRequest.infer() on one reused request, inputs set once",
        }
        requests_hint = _plain(self._compiled_property("PERFORMANCE_HINT_NUM_REQUESTS"))
        if self.options.requests is not None:
            info["requests_hint"] = requests_hint
        if self._queue_size is not None:
            info["async_requests"] = self._queue_size
        if self.reshaped:
            info["reshaped"] = self.reshaped
        if self.options.cache_dir is not None:
            info["cache_dir"] = str(self.cache_path)
            info["loaded_from_cache"] = _plain(self._compiled_property("LOADED_FROM_CACHE"))
        per_device = self._device_properties()
        if len(per_device) > 1:  # a virtual device over several: each one's own settings
            keys = {"PERFORMANCE_HINT": "hint", "NUM_STREAMS": "streams", "INFERENCE_NUM_THREADS": "threads",
                    "INFERENCE_PRECISION_HINT": "precision"}  # fmt: skip
            info["per_device"] = {
                device: {short: _plain(props.get(key)) for key, short in keys.items()}
                for device, props in per_device.items()
            }
        return info

    def close(self) -> None:
        """Wait for any request in flight, then drop the requests and the compiled model."""
        queue = getattr(self, "_queue", None)
        if queue is not None:
            queue.wait_all()
        self._queue = None
        self.request = None
        self.compiled = None


def _plain(value: Any) -> Any:
    """A property value as JSON: numbers as they are, enums and element types by their lower-case short name."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if hasattr(value, "get_type_name"):  # openvino.Type: "f32"
        return value.get_type_name()
    if not isinstance(value, str) and hasattr(value, "name"):  # an enum: PerformanceMode.LATENCY
        return str(value.name).lower()
    text = str(value)
    if text.isdigit():  # some plugins report numbers as text ("0")
        return int(text)
    return text.lower() if text.isupper() else text


# --------------------------------------------------------------------------- the IR source


@dataclass
class IrArtifact(ModelArtifact):
    """An IR model: ``path`` is its ``.xml``; its size counts the ``.bin`` of weights beside it."""

    def size_bytes(self) -> int | None:
        """Bytes of the ``.xml`` and its ``.bin``."""
        if self.path is None or not self.path.exists():
            return super().size_bytes()
        weights = self.path.with_suffix(".bin")
        return self.path.stat().st_size + (weights.stat().st_size if weights.is_file() else 0)


class IrFileOptions(Options):
    """Options of the ``openvino-ir`` model source."""

    path: str = Field(description="The IR's .xml file (its .bin beside it), relative to the suite.")


class IrFileSource(ModelSource):
    """An OpenVINO IR model (``.xml`` with its ``.bin``); inputs and outputs are read with ``read_model``.

    Dynamic dimensions have no names in an IR: a dynamic first dimension of
    an input is the batch; any other is called ``TENSOR.INDEX`` and needs a
    value in the model's ``dims``.
    """

    name = "openvino-ir"
    description = "an OpenVINO IR model (.xml + .bin; inputs read with read_model, nothing compiled)"
    requires = ("openvino",)
    install_hint = INSTALL
    produces = IR_FORMAT
    file_suffixes = (".xml",)
    Options: ClassVar[type[BaseModel]] = IrFileOptions

    def default_name(self, options: IrFileOptions) -> str:  # type: ignore[override]
        """The file's stem."""
        return Path(options.path).stem

    def describe(self, options: IrFileOptions, ctx: ModelContext) -> ModelSignature:  # type: ignore[override]
        """Inputs, outputs (dynamic dimensions named), weight count and file sizes, from ``read_model``."""
        from benchharness_openvino.graph import describe_ir

        return describe_ir(ctx.resolve(options.path))

    def load(self, options: IrFileOptions, ctx: ModelContext) -> ModelArtifact:  # type: ignore[override]
        """Reference the ``.xml``; the content hash covers it and its ``.bin``."""
        path = ctx.resolve(options.path)
        if path.suffix.lower() != ".xml":
            raise BenchError(f"{path}: not an OpenVINO IR model: expected the .xml file (with its .bin beside it)")
        weights = path.with_suffix(".bin")
        digest = hashlib.sha256(file_hash(path).encode())
        if weights.is_file():
            digest.update(file_hash(weights).encode())
        return IrArtifact(format=IR_FORMAT, content_hash=digest.hexdigest(), path=path)


#: Device files whose presence says a machine has the device: OpenVINO's GPU plugin drives Intel GPUs through a DRM
#: render node, its NPU plugin the Linux accel driver.  Looked for without importing openvino.
DEVICE_FILES = {"GPU": "/dev/dri/renderD*", "NPU": "/dev/accel/accel*"}


class OpenVinoTargetOptions(TargetOptions):
    """Options of the ``openvino`` target."""

    device: Literal["GPU", "NPU", "CPU"] = Field("GPU", description="The OpenVINO device the case runs on.")
    threads: PositiveInt | None = Field(
        None, description="Host threads for the backend; default: the cores this process may use."
    )


#: The cluster resource a node offers for each OpenVINO device (``ray start --resources '{"intel_npu": 1}'``).
NODE_RESOURCES = {"GPU": "intel_gpu", "NPU": "intel_npu"}


class OpenVinoTarget(Target):
    """An OpenVINO device, ``openvino:GPU``, ``openvino:NPU`` or ``openvino:CPU``, driven by the ``openvino`` backend.

    Where the machine lacks the device (no ``/dev/dri/renderD*`` for a GPU,
    no ``/dev/accel/accel*`` for an NPU) or openvino is not installed, its
    cases are skipped with that reason.  Other backends cannot drive it.
    """

    name = "openvino"
    description = "an OpenVINO device (GPU, NPU or CPU) for the openvino backend; skipped where the machine lacks it"
    Options: ClassVar[type[BaseModel]] = OpenVinoTargetOptions

    @classmethod
    def unavailable_here(cls, options: OpenVinoTargetOptions) -> str | None:  # type: ignore[override]
        """A missing openvino package, or a missing device file for a GPU or an NPU."""
        if OpenVinoBackend.missing_requirements():
            return f"openvino is not installed: {INSTALL}"
        pattern = DEVICE_FILES.get(options.device)
        if pattern and not glob.glob(pattern):
            return f"no {options.device} for OpenVINO on this machine ({pattern} is missing)"
        return None

    @classmethod
    def node_needs(cls, options: OpenVinoTargetOptions) -> dict[str, float]:  # type: ignore[override]
        """A node labelled with the device: ``intel_gpu`` or ``intel_npu`` (Ray does not detect either); any for CPU."""
        return {NODE_RESOURCES[options.device]: 1} if options.device in NODE_RESOURCES else {}

    def apply(self, options: OpenVinoTargetOptions) -> TargetContext:  # type: ignore[override]
        """The device, and the host threads the backend may use."""
        cores = len(allowed_cores())
        files = sorted(glob.glob(DEVICE_FILES[options.device])) if options.device in DEVICE_FILES else []
        return TargetContext(
            device=f"openvino:{options.device}",
            threads=options.threads or cores,
            details={"kind": "OpenVINO device", "device_files": files},
        )


@hookimpl
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    """Register the OpenVINO backend."""
    register(OpenVinoBackend)


@hookimpl
def benchharness_register_targets(register):  # type: ignore[no-untyped-def]
    """Register the OpenVINO device target."""
    register(OpenVinoTarget)


@hookimpl
def benchharness_register_model_sources(register):  # type: ignore[no-untyped-def]
    """Register the OpenVINO IR source."""
    register(IrFileSource)
