"""A model's parameter count and its size, read from the artefact a backend ran.

Parameters are the elements of the model's weight tensors; how they are found
depends on the format, and each function returns the method with the figure:

- ``torch``: ``sum(p.numel() for p in module.parameters())`` (each shared
  parameter once); buffers such as BatchNorm's running statistics are not
  parameters.  ``torchscript``: the same, on the loaded module.
- ``onnx``: the elements of the top-level graph's initializers and
  ``Constant`` tensors whose element type is floating point or an integer of
  8 bits or fewer (weights, biases, quantized weights, quantization scales and
  zero points); wider integers and booleans are shapes, axes and indices, not
  weights.  Sparse initializers count at their dense size.  Read from the
  tensors' dims: no weight is loaded.
- ``openvino-ir``: the elements of the graph's ``Constant`` ops of the same
  element types, from ``read_model`` (the ``.bin`` is mapped, not read).

torch's exporter folds BatchNorm into the preceding convolution (weight and
bias per channel) in eval mode, so an ONNX or IR model exported from a torch
module with BatchNorm counts one parameter per BatchNorm channel fewer than
the module: its two (scale and shift) become the conv's one bias.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchharness.errors import BenchError

if TYPE_CHECKING:
    from benchharness.api import ModelArtifact

#: ONNX element types (``TensorProto.DataType`` names) whose tensors are weights.
ONNX_WEIGHT_TYPES = (
    "FLOAT FLOAT16 DOUBLE BFLOAT16 FLOAT8E4M3FN FLOAT8E4M3FNUZ FLOAT8E5M2 FLOAT8E5M2FNUZ FLOAT8E8M0 FLOAT4E2M1 "
    "INT8 UINT8 INT4 UINT4 INT2 UINT2".split()
)
#: OpenVINO element types (``Type.get_type_name()``) whose constants are weights.
IR_WEIGHT_TYPES = frozenset("f64 f32 f16 bf16 f8e4m3 f8e5m2 f8e8m0 f4e2m1 nf4 i8 u8 i4 u4 u3 u2 u1 u6".split())


def parameter_count(artifact: ModelArtifact) -> tuple[int | None, str]:
    """The parameter count of the model ``artifact`` holds, and how it was counted (module docstring).

    A format this module does not read gives the ``parameters`` its source
    recorded in ``artifact.info``, or ``None`` with the reason.
    """
    if artifact.format == "torch":
        from benchharness_metrics.macs import torch_module

        module = torch_module(artifact)
        return _module_parameters(module), "sum of the torch module's parameters (buffers excluded)"
    if artifact.format == "torchscript" and artifact.path is not None:
        from benchharness_metrics.macs import torch_module

        count = _module_parameters(torch_module(artifact))
        return count, "sum of the TorchScript module's parameters (buffers excluded)"
    if artifact.format == "onnx" and artifact.path is not None:
        from benchharness_metrics.macs import load_onnx_graph

        return _onnx_weights(load_onnx_graph(artifact.path)), (
            "elements of the ONNX graph's floating-point and 8-bit-or-narrower integer initializers and constants"
        )
    if artifact.format == "openvino-ir" and artifact.path is not None:
        from benchharness_openvino.graph import read_ir

        return _ir_weights(read_ir(artifact.path)), (
            "elements of the IR's floating-point and 8-bit-or-narrower integer constants"
        )
    reported = artifact.info.get("parameters")
    if isinstance(reported, int):
        return reported, f"as the model source reported it (a {artifact.format!r} model is not read here)"
    return None, f"unknown: a {artifact.format!r} model is not read here and its source reported no parameter count"


def _module_parameters(module: Any) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def _onnx_weights(model: Any) -> int:
    """Elements of the weight-typed initializers, sparse initializers and ``Constant`` tensors of the main graph."""
    import onnx

    weight_types = set()
    for name in ONNX_WEIGHT_TYPES:
        try:
            weight_types.add(onnx.TensorProto.DataType.Value(name))
        except ValueError:  # a type this onnx does not know cannot occur in a model it parsed
            continue
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            tensors += [attr.t for attr in node.attribute if attr.name == "value" and attr.HasField("t")]
    total = sum(math.prod(tensor.dims) for tensor in tensors if tensor.data_type in weight_types)
    # A sparse initializer stores only its non-zeros; it counts at its dense size, as a pruned dense weight does.
    total += sum(
        math.prod(sparse.dims) for sparse in model.graph.sparse_initializer if sparse.values.data_type in weight_types
    )
    return total


def _ir_weights(model: Any) -> int:
    total = 0
    for op in model.get_ops():
        if op.get_type_name() == "Constant" and op.get_output_element_type(0).get_type_name() in IR_WEIGHT_TYPES:
            total += math.prod(op.get_output_shape(0))
    return total


# --------------------------------------------------------------------------- size


def artifact_bytes(artifact: ModelArtifact) -> tuple[int | None, str]:
    """Bytes of the artefact a backend ran, and what they are the size of.

    - a ``torch`` module: the bytes of its ``state_dict`` tensors (parameters
      and buffers, each storage once) in memory;
    - an ``onnx`` file: its size plus that of each external data file it names;
    - an ``openvino-ir``: its ``.xml`` plus the ``.bin`` beside it;
    - any other file (``torchscript``): its size;
    - otherwise the ``size_bytes`` the source recorded, or ``None``.
    """
    if artifact.format == "torch" and artifact.obj is not None:
        from benchharness_metrics.macs import torch_module

        return _state_bytes(torch_module(artifact)), "bytes of the module's state_dict tensors in memory"
    path = artifact.path
    if path is not None and path.is_file():
        if artifact.format == "onnx":
            return _onnx_bytes(path)
        if artifact.format == "openvino-ir":
            weights = path.with_suffix(".bin")
            if weights.is_file():
                return path.stat().st_size + weights.stat().st_size, f"size of {path.name} and {weights.name}"
            return path.stat().st_size, f"size of {path.name} (no {weights.name} beside it)"
        return path.stat().st_size, "file size"
    reported = artifact.size_bytes()
    if reported is not None:
        return reported, "as the model source reported it"
    return None, "unknown: the model has no file and its source reported no size"


def _state_bytes(module: Any) -> int:
    """Bytes of a module's state_dict tensors, counting a storage shared by several entries once."""
    import torch

    seen: set[tuple[int, int]] = set()
    total = 0
    pending: list[Any] = list(module.state_dict().values())
    while pending:
        item = pending.pop()
        if isinstance(item, (tuple, list)):  # packed parameters of quantized modules
            pending.extend(item)
            continue
        if not isinstance(item, torch.Tensor) or item.is_meta:
            continue
        key = (item.untyped_storage().data_ptr(), item.storage_offset()) if item.numel() else (id(item), 0)
        if key in seen:
            continue
        seen.add(key)
        total += item.numel() * item.element_size()
    return total


def _onnx_bytes(path: Path) -> tuple[int, str]:
    """The file's size plus each distinct external data file its initializers name (``location``)."""
    from benchharness_metrics.macs import load_onnx_graph

    model = load_onnx_graph(path)
    locations: set[str] = set()
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                locations.add(entry.value)
    size = path.stat().st_size
    missing = []
    for location in sorted(locations):
        data = path.parent / location
        if not data.is_file():
            missing.append(location)
            continue
        size += data.stat().st_size
    if missing:
        raise BenchError(f"{path.name}: external data file {missing[0]!r} is missing")
    if locations:
        return size, f"size of {path.name} and its {len(locations)} external data file(s)"
    return size, "file size"
