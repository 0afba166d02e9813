"""Quantization and reduced-precision compressions: torch, ONNX Runtime, OpenVINO (NNCF), fp16 and bf16.

| name | takes | gives | runs on |
|---|---|---|---|
| ``quantize-dynamic-torch`` | torch | torch (dynamic int8/fp16 Linear) | torch only (no ONNX export) |
| ``quantize-ort-dynamic`` | onnx | onnx (MatMulInteger/ConvInteger) | onnxruntime, openvino |
| ``quantize-ort-static`` | onnx | onnx (QDQ, calibrated) | onnxruntime, openvino |
| ``quantize-nncf`` | onnx | OpenVINO IR (FakeQuantize, calibrated) | openvino only |
| ``compress-weights-nncf`` | onnx | OpenVINO IR (int8/int4 weights) | openvino only |
| ``half-torch`` / ``bf16-torch`` | torch | torch (fp16 / bf16 inside casts) | torch only |
| ``half-onnx`` | onnx | onnx (fp16 inside, float32 inputs/outputs) | onnxruntime, openvino |

Every library is imported inside methods (this module is imported at each CLI
start); each step's ``cache_key`` names the library versions that shape its output.
Formats, dtypes and quantization types are always passed explicitly: their
defaults changed between library versions.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from benchharness_torch import TorchCompression
from pydantic import BaseModel, Field, model_validator

from benchharness.api import BenchError, Compression, CompressionContext, CompressionOptions, ModelArtifact

if TYPE_CHECKING:
    import numpy as np

    from benchharness.api import InputSpec

ORT_INSTALL = "pip install onnxruntime onnx"
NNCF_INSTALL = "pip install nncf openvino  (or: pip install 'benchharness[compress]')"
FP16_INSTALL = "pip install onnxconverter-common"
IR_FORMAT = "openvino-ir"  # the openvino plugin's IR format name (benchharness_openvino.IR_FORMAT)
#: Folder under the cache where a step writes its output before the core copies it into its cached folder.
SCRATCH = "quantization-scratch"


# --------------------------------------------------------------------------- helpers


def _scratch_dir(ctx: CompressionContext, name: str) -> Path:
    """A fresh private folder for one step's output files (removed by :meth:`FileCompression.save`)."""
    root = ctx.cache_dir / SCRATCH
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root, prefix=f"{name}."))


def onnx_op_counts(path: Path) -> dict[str, int]:
    """How many nodes of each op type an ONNX graph (main graph only) holds, read without its external data."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def ir_op_counts(model: Any) -> dict[str, int]:
    """How many operations of each type an ``openvino.Model`` holds."""
    counts: dict[str, int] = {}
    for op in model.get_ops():
        kind = op.get_type_name()
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def calibration_batches(
    inputs: dict[str, np.ndarray], specs: list[InputSpec], samples: int, seed: int
) -> tuple[list[dict[str, np.ndarray]], int]:
    """Batches of ``samples`` training samples (a seeded random subset) shaped as the model's fixed inputs.

    ``inputs`` holds one array per model input with every sample along axis 0
    (:attr:`DatasetInputs.inputs`); ``specs`` are the model's inputs with the
    batch size fixed (an exported model takes exactly that batch).  Whole
    batches only: ``samples // batch`` of them (at least one), so the count
    used is a multiple of the batch.  Returns the batches and the number of
    samples in them.  A :class:`BenchError` when the split holds fewer
    samples than one batch.
    """
    import numpy as np

    by_name = {spec.name: spec for spec in specs}
    missing = [name for name in by_name if name not in inputs]
    if missing:
        raise BenchError(f"the dataset gives no values for input(s) {', '.join(missing)}")
    available = min(len(array) for array in inputs.values())
    batch = int(specs[0].shape[0]) if specs and specs[0].shape else 1
    if available < batch:
        raise BenchError(f"the training split has {available} samples, fewer than one batch of {batch}")
    count = min(samples, available)
    batches = max(1, count // batch)
    chosen = np.random.default_rng(seed).permutation(available)[: batches * batch]
    out = []
    for b in range(batches):
        rows = chosen[b * batch : (b + 1) * batch]
        out.append({name: np.ascontiguousarray(inputs[name][rows]) for name in by_name})
    return out, batches * batch


def _ort_version() -> str:
    import onnxruntime

    return f"onnxruntime={onnxruntime.__version__}"


def _nncf_version() -> str:
    import nncf
    import openvino

    return f"nncf={nncf.__version__};openvino={openvino.get_version()}"


def _only_openvino(name: str, backend: str) -> str | None:
    if backend == "openvino":
        return None
    return (
        f"its output is an OpenVINO IR model ({name} runs through NNCF's OpenVINO backend): "
        "only the openvino backend runs it"
    )


# --------------------------------------------------------------------------- bases


class FileCompression(Compression):
    """Base of compressions whose output is a file: written into a scratch folder, copied to the cache, removed."""

    def save(self, artifact: ModelArtifact, folder: Path) -> Path:
        """Copy the model file (and its same-stem siblings, e.g. ``model.bin``) into ``folder``; drop the scratch."""
        main = super().save(artifact, folder)
        if artifact.path is not None and artifact.path.parent.parent.name == SCRATCH:
            shutil.rmtree(artifact.path.parent, ignore_errors=True)
        return main


class OrtCompression(FileCompression):
    """Base of the ONNX Runtime quantizers: ONNX in, ONNX out; keyed by the onnxruntime version."""

    formats: ClassVar[tuple[str, ...]] = ("onnx",)
    requires = ("onnxruntime", "onnx")
    install_hint = ORT_INSTALL

    def cache_key(self, options: BaseModel) -> str:
        """onnxruntime's version: its quantizer's output changes with it."""
        return _ort_version()


class NncfCompression(FileCompression):
    """Base of the NNCF compressions: ONNX read by OpenVINO, compressed, saved as IR; run on openvino only."""

    formats: ClassVar[tuple[str, ...]] = ("onnx",)
    requires = ("nncf", "openvino")
    install_hint = NNCF_INSTALL

    def output_format(self, input_format: str) -> str:
        """Always an OpenVINO IR."""
        return IR_FORMAT

    def cache_key(self, options: BaseModel) -> str:
        """nncf's and openvino's versions."""
        return _nncf_version()

    def unsupported_backend(self, backend: str, options: BaseModel) -> str | None:
        """Any backend but ``openvino``."""
        return _only_openvino(self.name, backend)

    def save_ir(self, model: Any, ctx: CompressionContext, facts: dict[str, Any]) -> ModelArtifact:
        """Save ``model`` as ``model.xml`` + ``model.bin`` (float weights kept: ``compress_to_fp16=False``)."""
        import openvino

        out = _scratch_dir(ctx, self.name) / "model.xml"
        openvino.save_model(model, str(out), compress_to_fp16=False)
        ctx.record(**facts)
        return ModelArtifact(format=IR_FORMAT, content_hash="", path=out)

    def restore(self, path: Path, artifact_format: str, info: dict[str, Any]) -> ModelArtifact:
        """The IR at ``path``, sized with its ``.bin``."""
        from benchharness_openvino import IrArtifact

        return IrArtifact(format=artifact_format, content_hash="", path=path, info=dict(info))

    @staticmethod
    def read_onnx(artifact: ModelArtifact) -> Any:
        """The ONNX model read by OpenVINO (``openvino.Core().read_model``)."""
        import openvino

        return openvino.Core().read_model(str(artifact.path))


def _module_facts(module: Any) -> dict[str, Any]:
    """Parameter count and bytes of every tensor a module's state holds, packed quantized weights included."""
    import torch

    def nbytes(value: Any) -> int:
        if isinstance(value, torch.Tensor):  # quantized tensors too: element_size is their storage type's
            return value.numel() * value.element_size()
        if isinstance(value, tuple | list):
            return sum(nbytes(v) for v in value)
        return 0

    state = module.state_dict()
    return {
        "parameters": sum(p.numel() for p in module.parameters()),
        "size_bytes": sum(nbytes(v) for v in state.values()),
    }


class TorchModuleCompression(TorchCompression):
    """A torch compression whose output ``module_artifact`` cannot hash (quantized packed weights): facts only."""

    def restore(self, path: Path, artifact_format: str, info: dict[str, Any]) -> ModelArtifact:
        """The module ``save`` wrote, on the CPU in eval mode, with its parameter count and bytes."""
        import torch

        module = torch.load(path, map_location="cpu", weights_only=False)
        module.eval()
        return ModelArtifact(format="torch", content_hash="", obj=module, info={**info, **_module_facts(module)})

    def unsupported_backend(self, backend: str, options: BaseModel) -> str | None:
        """Any backend but ``torch``."""
        return None if backend == "torch" else self.other_backends_reason

    #: Why backends other than torch cannot run the output.
    other_backends_reason: ClassVar[str] = ""


# --------------------------------------------------------------------------- torch dynamic


class TorchDynamicOptions(CompressionOptions):
    """Options of ``quantize-dynamic-torch``."""

    dtype: Literal["qint8", "float16"] = Field(
        "qint8", description="Weight dtype of the quantized Linear layers: torch.qint8 or torch.float16."
    )


class QuantizeDynamicTorch(TorchModuleCompression):
    """``torch.ao.quantization.quantize_dynamic`` of every ``nn.Linear`` to ``dtype`` (qint8 or float16).

    Weights are quantized ahead of time, activations on the fly at each call;
    convolutions are left in float32 (dynamic quantization covers Linear and
    recurrent layers only).  Records ``layers_quantized`` and ``dtype``.
    Limits: the output runs on the torch backend only: the TorchScript ONNX
    exporter fails on ``quantized::linear_dynamic`` (``UnsupportedOperatorError``,
    checked with torch 2.13), so ONNX Runtime and OpenVINO cases are skips.
    """

    name = "quantize-dynamic-torch"
    description = "torch dynamic quantization of Linear layers (qint8 or float16); torch backend only"
    Options: ClassVar[type[BaseModel]] = TorchDynamicOptions
    other_backends_reason = (
        "a torch dynamically quantized model has no ONNX export (torch.onnx.export fails: operator "
        "'quantized::linear_dynamic' is not supported), so only the torch backend runs it"
    )

    def apply(self, artifact: ModelArtifact, options: TorchDynamicOptions, ctx: CompressionContext) -> ModelArtifact:  # type: ignore[override]
        """Quantize the Linear layers; a model without any is an error (there would be nothing to quantize)."""
        import torch

        dtype = {"qint8": torch.qint8, "float16": torch.float16}[options.dtype]
        module = artifact.obj
        linears = sum(isinstance(m, torch.nn.Linear) for m in module.modules())
        if not linears:
            raise BenchError("the model has no torch.nn.Linear layer: dynamic quantization would change nothing")
        quantized = torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=dtype, inplace=False)
        done = sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in quantized.modules())
        ctx.record(layers_quantized=done, dtype=options.dtype, quantized_types=["Linear"])
        return ModelArtifact(format="torch", content_hash="", obj=quantized, info=_module_facts(quantized))


# --------------------------------------------------------------------------- ONNX Runtime


class OrtDynamicOptions(CompressionOptions):
    """Options of ``quantize-ort-dynamic``."""

    weight_type: Literal["qint8", "quint8"] = Field(
        "qint8", description="Weight type: QuantType.QInt8 (signed) or QuantType.QUInt8 (unsigned)."
    )
    per_channel: bool = Field(False, description="One scale per output channel of each weight instead of per tensor.")


class QuantizeOrtDynamic(OrtCompression):
    """``onnxruntime.quantization.quantize_dynamic``: int8 weights, activations quantized at run time.

    MatMul/Gemm become ``MatMulInteger`` and Conv ``ConvInteger``, each fed by
    a ``DynamicQuantizeLinear`` of its input.  Records the counts of those ops
    in the output graph, ``weight_type`` and ``per_channel``.  Limits: ORT's
    ConvInteger kernels are not optimised; on a CNN this is often many times
    slower than float32 (see docs/compression/quantization.md).
    """

    name = "quantize-ort-dynamic"
    description = "ONNX Runtime dynamic int8 quantization (MatMulInteger/ConvInteger)"
    Options: ClassVar[type[BaseModel]] = OrtDynamicOptions

    def apply(self, artifact: ModelArtifact, options: OrtDynamicOptions, ctx: CompressionContext) -> ModelArtifact:  # type: ignore[override]
        """Quantize the exported graph; record what it holds now."""
        from onnxruntime.quantization import QuantType, quantize_dynamic

        out = _scratch_dir(ctx, self.name) / "model.onnx"
        weight_type = {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}[options.weight_type]
        quantize_dynamic(
            str(artifact.path), str(out), per_channel=options.per_channel, reduce_range=False, weight_type=weight_type
        )
        ops = onnx_op_counts(out)
        integer = {k: ops.get(k, 0) for k in ("MatMulInteger", "ConvInteger", "DynamicQuantizeLinear")}
        if not integer["MatMulInteger"] and not integer["ConvInteger"]:
            raise BenchError("onnxruntime quantized no node (the graph has no MatMul, Gemm or Conv it takes)")
        ctx.record(
            weight_type=options.weight_type,
            per_channel=options.per_channel,
            nodes_quantized=integer["MatMulInteger"] + integer["ConvInteger"],
            ops=integer,
        )
        return ModelArtifact(format="onnx", content_hash="", path=out)


class OrtStaticOptions(CompressionOptions):
    """Options of ``quantize-ort-static``."""

    calibration_samples: int = Field(
        256, ge=1, le=100_000, description="Training samples to calibrate on (whole batches of the exported model)."
    )
    calibrate_method: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax", description="How activation ranges are chosen from the calibration data (CalibrationMethod)."
    )
    activation_type: Literal["quint8", "qint8"] = Field(
        "quint8", description="Activation type: QuantType.QUInt8 or QuantType.QInt8."
    )
    weight_type: Literal["qint8", "quint8"] = Field("qint8", description="Weight type: QuantType.QInt8 or QUInt8.")
    per_channel: bool = Field(True, description="One weight scale per output channel (per tensor when false).")
    preprocess: bool = Field(
        True,
        description="Run onnxruntime's quant_pre_process first (shape inference, graph optimisation; ORT advises it).",
    )


class QuantizeOrtStatic(OrtCompression):
    """``onnxruntime.quantization.quantize_static`` in QDQ format, calibrated on the model's training split.

    A seeded random subset of ``calibration_samples`` training samples is fed,
    in whole batches of the exported model's fixed batch size, through a
    ``CalibrationDataReader``.  With ``preprocess`` the graph first goes
    through ``quant_pre_process``: ONNX and symbolic shape inference give the
    quantizer every tensor's type and shape, and ORT's optimiser folds
    constants and fuses nodes, so fewer QDQ pairs are needed.  Records format
    QDQ, ``per_channel``, the types, the method, the samples consumed (and the
    split they came from), and the QuantizeLinear/DequantizeLinear counts.
    """

    name = "quantize-ort-static"
    description = "ONNX Runtime static int8 quantization (QDQ), calibrated on the model's training split"
    Options: ClassVar[type[BaseModel]] = OrtStaticOptions
    uses_dataset = True

    def apply(self, artifact: ModelArtifact, options: OrtStaticOptions, ctx: CompressionContext) -> ModelArtifact:  # type: ignore[override]
        """Calibrate, quantize, count the Q/DQ nodes."""
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process

        data = ctx.dataset("train")
        batches, used = calibration_batches(data.inputs, artifact.inputs, options.calibration_samples, ctx.seed)

        class Reader(CalibrationDataReader):
            """Hands the calibration batches to the quantizer one by one, counting what it consumed."""

            def __init__(self) -> None:
                self.batches = iter(batches)
                self.consumed = 0

            def get_next(self) -> dict[str, np.ndarray] | None:
                batch = next(self.batches, None)
                if batch is not None:
                    self.consumed += len(next(iter(batch.values())))
                return batch

        scratch = _scratch_dir(ctx, self.name)
        source = Path(artifact.path)
        if options.preprocess:
            source = scratch / "preprocessed.onnx"
            quant_pre_process(str(artifact.path), str(source), skip_optimization=False, skip_symbolic_shape=False)
        out = scratch / "model.onnx"
        reader = Reader()
        quantize_static(
            str(source),
            str(out),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=options.per_channel,
            reduce_range=False,
            activation_type={"quint8": QuantType.QUInt8, "qint8": QuantType.QInt8}[options.activation_type],
            weight_type={"quint8": QuantType.QUInt8, "qint8": QuantType.QInt8}[options.weight_type],
            calibrate_method={
                "minmax": CalibrationMethod.MinMax,
                "entropy": CalibrationMethod.Entropy,
                "percentile": CalibrationMethod.Percentile,
            }[options.calibrate_method],
        )
        if options.preprocess:
            source.unlink()
        ops = onnx_op_counts(out)
        ctx.record(
            format="QDQ",
            per_channel=options.per_channel,
            activation_type=options.activation_type,
            weight_type=options.weight_type,
            calibrate_method=options.calibrate_method,
            calibration_samples=reader.consumed,
            calibration_split=data.info.get("split", "train"),
            calibration_batches=len(batches),
            preprocessed=options.preprocess,
            quantize_linear=ops.get("QuantizeLinear", 0),
            dequantize_linear=ops.get("DequantizeLinear", 0),
        )
        if reader.consumed != used:
            raise BenchError(f"the quantizer consumed {reader.consumed} calibration samples of the {used} prepared")
        return ModelArtifact(format="onnx", content_hash="", path=out)


# --------------------------------------------------------------------------- NNCF


class NncfQuantizeOptions(CompressionOptions):
    """Options of ``quantize-nncf``."""

    subset_size: int = Field(
        300, ge=1, le=100_000, description="Training samples NNCF calibrates on (whole batches of the exported model)."
    )
    preset: Literal["performance", "mixed"] = Field(
        "performance",
        description="nncf.QuantizationPreset: symmetric weights and activations (performance), or asymmetric "
        "activations (mixed).",
    )


class QuantizeNncf(NncfCompression):
    """NNCF post-training quantization (``nncf.quantize``) of the ONNX model read by OpenVINO, saved as IR.

    Calibrated with an ``nncf.Dataset`` over a seeded subset of the training
    split, in whole batches of the model's fixed batch size.  NNCF inserts
    ``FakeQuantize`` operations that OpenVINO's CPU plugin runs as int8.
    Records the preset, the samples given, and the FakeQuantize count.
    """

    name = "quantize-nncf"
    description = "NNCF post-training int8 quantization for OpenVINO (FakeQuantize IR), calibrated on training data"
    Options: ClassVar[type[BaseModel]] = NncfQuantizeOptions
    uses_dataset = True

    def apply(self, artifact: ModelArtifact, options: NncfQuantizeOptions, ctx: CompressionContext) -> ModelArtifact:  # type: ignore[override]
        """Calibrate, quantize, save the IR."""
        import nncf

        data = ctx.dataset("train")
        batches, used = calibration_batches(data.inputs, artifact.inputs, options.subset_size, ctx.seed)
        model = self.read_onnx(artifact)
        preset = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
        quantized = nncf.quantize(
            model,
            nncf.Dataset(batches),
            subset_size=used,
            preset=preset[options.preset],
            target_device=nncf.TargetDevice.CPU,
        )
        ops = ir_op_counts(quantized)
        if not ops.get("FakeQuantize"):
            raise BenchError("NNCF inserted no FakeQuantize operation")
        return self.save_ir(
            quantized,
            ctx,
            {
                "preset": options.preset,
                "calibration_samples": used,
                "calibration_split": data.info.get("split", "train"),
                "fake_quantize": ops["FakeQuantize"],
            },
        )


class NncfWeightsOptions(CompressionOptions):
    """Options of ``compress-weights-nncf``."""

    mode: Literal["int8_asym", "int8_sym", "int4_sym", "int4_asym"] = Field(
        "int8_asym", description="nncf.CompressWeightsMode of the weights."
    )
    group_size: int = Field(
        -1,
        ge=-1,
        description="int4 only: weights per quantization group along the input channels; -1 means per channel.",
    )

    @model_validator(mode="after")
    def _group_size_for_int4_only(self) -> NncfWeightsOptions:
        if self.group_size != -1 and not self.mode.startswith("int4"):
            raise ValueError(f"group_size applies to the int4 modes only, not to mode {self.mode!r}")
        if self.group_size == 0:
            raise ValueError("group_size must be -1 (per channel) or a positive number of weights")
        return self


class CompressWeightsNncf(NncfCompression):
    """NNCF weight compression (``nncf.compress_weights``): weights stored as int8/int4, decompressed at run time.

    Data-free, activations stay float.  With an int4 mode NNCF compresses only
    MatMul/Gemm weights to int4 and keeps the first and last layers and every
    convolution in int8 asymmetric (its backup precision): on a CNN whose only
    Linear is the classifier no weight becomes int4 (measured on the zoo ResNet).
    Records ``mode`` and ``low_precision_constants``: the IR's constants of
    each 8/4-bit type (the weights, plus their zero points in an asymmetric mode).
    """

    name = "compress-weights-nncf"
    description = "NNCF weight-only compression to int8/int4 for OpenVINO (IR)"
    Options: ClassVar[type[BaseModel]] = NncfWeightsOptions

    def apply(self, artifact: ModelArtifact, options: NncfWeightsOptions, ctx: CompressionContext) -> ModelArtifact:  # type: ignore[override]
        """Compress the weights, count the low-precision constants, save the IR."""
        import nncf

        model = self.read_onnx(artifact)
        kwargs: dict[str, Any] = {"mode": nncf.CompressWeightsMode(options.mode)}
        if options.mode.startswith("int4"):
            kwargs.update(ratio=1.0, group_size=options.group_size)
        compressed = nncf.compress_weights(model, **kwargs)
        constants: dict[str, int] = {}
        for op in compressed.get_ops():
            if op.get_type_name() == "Constant":
                kind = op.get_output_element_type(0).get_type_name()
                if kind in ("i8", "u8", "i4", "u4"):
                    constants[kind] = constants.get(kind, 0) + 1
        if not constants:
            raise BenchError("NNCF compressed no weight")
        return self.save_ir(compressed, ctx, {"mode": options.mode, "low_precision_constants": constants})


# --------------------------------------------------------------------------- fp16 and bf16


def _cast_module_class() -> type:
    """``CastModule``: runs a module in a reduced float type, casting its float inputs in and outputs back."""
    import torch

    class CastModule(torch.nn.Module):
        """Wraps ``inner`` (in ``dtype``): floating inputs are cast to ``dtype``, floating outputs to float32."""

        def __init__(self, inner: torch.nn.Module, dtype: torch.dtype) -> None:
            super().__init__()
            self.inner = inner
            self.dtype = dtype

        def forward(self, *args: Any) -> Any:
            cast = [a.to(self.dtype) if torch.is_tensor(a) and a.is_floating_point() else a for a in args]
            out = self.inner(*cast)
            if isinstance(out, tuple | list):
                return type(out)(o.float() if torch.is_tensor(o) and o.is_floating_point() else o for o in out)
            return out.float() if torch.is_tensor(out) and out.is_floating_point() else out

    CastModule.__module__ = __name__
    CastModule.__qualname__ = "CastModule"
    return CastModule


def __getattr__(name: str) -> Any:
    """``CastModule`` built on first use (torch imported then), so pickled fp16/bf16 modules load."""
    if name == "CastModule":
        cls = _cast_module_class()
        globals()["CastModule"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ReducedFloatTorch(TorchModuleCompression):
    """Base of ``half-torch`` and ``bf16-torch``: the module's weights in ``dtype``, wrapped to take float32."""

    dtype_name: ClassVar[str] = ""
    other_backends_reason = (
        "this variant is a torch module for the torch backend; for ONNX Runtime or OpenVINO use half-onnx, "
        "which converts the exported float32 graph"
    )

    def check_supported(self) -> None:
        """Raise :class:`BenchError` when this CPU cannot run ``dtype``."""

    def apply(self, artifact: ModelArtifact, options: BaseModel, ctx: CompressionContext) -> ModelArtifact:
        """Cast a copy of the module to the reduced type and wrap it in ``CastModule``."""
        import copy

        import torch

        self.check_supported()
        dtype = getattr(torch, self.dtype_name)
        inner = copy.deepcopy(artifact.obj).to(dtype)
        wrapped = __getattr__("CastModule")(inner, dtype)
        ctx.record(dtype=self.dtype_name, io_dtype="float32", tensors_cast=sum(1 for _ in inner.state_dict()))
        return ModelArtifact(format="torch", content_hash="", obj=wrapped, info=_module_facts(wrapped))


class HalfTorch(ReducedFloatTorch):
    """fp16 torch model: ``module.to(torch.float16)`` inside a wrapper that casts float32 inputs in and outputs back.

    The torch backend feeds float32, which a bare ``module.half()`` rejects
    (input and weight types must match); the wrapper keeps the model's
    interface.  On CPUs without native fp16 arithmetic torch computes fp16
    through conversions and is usually slower than float32.
    Records ``dtype`` and ``io_dtype``.
    """

    name = "half-torch"
    description = "fp16 weights and compute for the torch backend (float32 in and out)"
    dtype_name = "float16"


class Bf16Torch(ReducedFloatTorch):
    """bfloat16 torch model, wrapped as ``half-torch`` is; refused where the CPU cannot compute bfloat16.

    Checked at apply: ``torch.backends.cpu.get_cpu_capability()`` and a
    bfloat16 matmul that must run and match float32 within bfloat16 rounding.
    """

    name = "bf16-torch"
    description = "bfloat16 weights and compute for the torch backend (float32 in and out)"
    dtype_name = "bfloat16"

    def check_supported(self) -> None:
        """A trial matmul in bfloat16; a :class:`BenchError` naming the CPU capability when it fails."""
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
        try:
            a = torch.linspace(-1, 1, 64 * 64).reshape(64, 64)
            got = (a.bfloat16() @ a.bfloat16()).float()
            ok = bool(torch.allclose(got, a @ a, rtol=0.05, atol=0.5))
        except RuntimeError as exc:
            raise BenchError(f"this CPU ({capability}) cannot compute bfloat16 in torch: {exc}") from exc
        if not ok:
            raise BenchError(f"bfloat16 matmul on this CPU ({capability}) does not match float32")


class HalfOnnx(OrtCompression):
    """fp16 ONNX model by ``onnxconverter_common.float16.convert_float_to_float16`` (``keep_io_types=True``).

    Initializers and computation in float16, inputs and outputs float32 with
    Cast nodes at the edges.  Records the number of float16 initializers and
    Cast nodes.  Limits: ORT's CPU provider lacks fp16 kernels for many ops
    and inserts casts back to float32 around them, so fp16 is seldom faster
    on a CPU; it halves the file size.
    """

    name = "half-onnx"
    description = "fp16 ONNX model (onnxconverter-common), float32 inputs and outputs"
    requires = ("onnx", "onnxconverter_common")
    install_hint = FP16_INSTALL

    def cache_key(self, options: BaseModel) -> str:
        """onnxconverter-common's version."""
        import onnxconverter_common

        return f"onnxconverter_common={onnxconverter_common.__version__}"

    def apply(self, artifact: ModelArtifact, options: BaseModel, ctx: CompressionContext) -> ModelArtifact:
        """Convert (keep_io_types=True: the backends feed float32), save, count."""
        import onnx
        from onnxconverter_common import float16

        model = float16.convert_float_to_float16(onnx.load(str(artifact.path)), keep_io_types=True)
        out = _scratch_dir(ctx, self.name) / "model.onnx"
        onnx.save(model, str(out))
        halves = sum(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
        ctx.record(
            dtype="float16", io_dtype="float32", fp16_initializers=halves, casts=onnx_op_counts(out).get("Cast", 0)
        )
        return ModelArtifact(format="onnx", content_hash="", path=out)


COMPRESSIONS = (
    QuantizeDynamicTorch,
    QuantizeOrtDynamic,
    QuantizeOrtStatic,
    QuantizeNncf,
    CompressWeightsNncf,
    HalfTorch,
    Bf16Torch,
    HalfOnnx,
)
