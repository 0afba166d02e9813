"""Multiply-accumulates (MACs) of a model, counted from its graph with every tensor shape inferred.

One counter for every format, so the figures agree: an ONNX graph is counted
after ``onnx.shape_inference.infer_shapes`` (with the inputs fixed to the
case's shapes); a torch module is first exported to ONNX in memory (the same
TorchScript exporter the ``torch-onnx`` converter uses) and counted the same
way; an OpenVINO IR is counted from ``read_model``'s graph, whose shapes
OpenVINO infers.

The convention is the one papers quote ("multiply-adds"): only the layers
that multiply an input by a weight and sum, one multiply-accumulate per
product.

- ``Conv`` (1-D, 2-D, 3-D; grouped and depthwise): N * Cout * prod(out spatial)
  * (Cin / groups) * prod(kernel), i.e. each output element costs one weight
  slice ``W[co]`` of (Cin / groups) * prod(kernel).
- ``ConvTranspose``: counted from the input side, each input element is
  multiplied by a kernel slice of (Cout / groups) * prod(kernel):
  N * Cin * prod(in spatial) * (Cout / groups) * prod(kernel).
- ``Gemm``: M * N * K (``transA``/``transB`` honoured); ``MatMul``: every
  element of the broadcast output costs K, so batch dims broadcast as numpy's
  ``matmul`` does.
- The quantized forms count as their float twins: ``ConvInteger``,
  ``QLinearConv``, ``MatMulInteger``, ``QLinearMatMul``.
- Biases, ``alpha``/``beta`` scalings, elementwise operations, activations,
  normalisation (``BatchNormalization`` folds into the conv), pooling,
  reductions, resampling, quantize/dequantize and data movement are free by
  this convention (:data:`FREE_ONNX_OPS`).
- Any other op type (``Einsum``, ``LSTM``, ``GRU``, ``Attention``, control
  flow, custom domains) is *not counted*: the total is then a lower bound and
  :attr:`MacCount.not_counted` lists those op types with their node counts.

A counted node whose shapes inference could not fix (a dynamic reshape, an op
of an unknown domain upstream) makes the count fail with a one-line
:class:`BenchError` naming the node, rather than give a figure that silently
leaves it out.  Frameworks (onnx, torch, openvino) are imported inside the
functions that need them.
"""

from __future__ import annotations

import io
import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchharness.errors import BenchError

if TYPE_CHECKING:
    import onnx

    from benchharness.api import ModelArtifact

#: A tensor's shape with every dimension known, or ``None``.
Shape = tuple[int, ...] | None

#: Op types of the default ONNX domain that cost no multiply-accumulate by convention.
FREE_ONNX_OPS = frozenset(
    # elementwise arithmetic, logic and comparison
    "Abs Acos Acosh Add And Asin Asinh Atan Atanh BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Ceil Cos "
    "Cosh Div Equal Erf Exp Floor Greater GreaterOrEqual IsInf IsNaN Less LessOrEqual Log Max Mean Min Mod Mul "
    "Neg Not Or Pow Reciprocal Round Sign Sin Sinh Sqrt Sub Sum Tan Where Xor "
    # activations
    "Celu Clip Elu Gelu HardSigmoid HardSwish Hardmax LeakyRelu LogSoftmax Mish PRelu Relu Selu Shrink Sigmoid "
    "Softmax Softplus Softsign Swish Tanh ThresholdedRelu "
    # normalisation
    "BatchNormalization GroupNormalization InstanceNormalization LayerNormalization LpNormalization LRN "
    "MeanVarianceNormalization RMSNormalization "
    # pooling and reductions
    "AveragePool GlobalAveragePool GlobalLpPool GlobalMaxPool LpPool MaxPool MaxRoiPool MaxUnpool ArgMax ArgMin "
    "CumSum ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum "
    "ReduceSumSquare TopK "
    # resampling
    "AffineGrid GridSample Resize RoiAlign Upsample "
    # data movement, shapes and indices
    "Cast CastLike CenterCropPad Col2Im Compress Concat Constant ConstantOfShape DepthToSpace Expand EyeLike "
    "Flatten Gather GatherElements GatherND Identity NonZero OneHot Pad Range Reshape ReverseSequence Scatter "
    "ScatterElements ScatterND Shape Size Slice SpaceToDepth Split Squeeze Tile Transpose Trilu Unique Unsqueeze "
    # quantization, regularisation, randomness
    "DequantizeLinear DynamicQuantizeLinear QuantizeLinear Dropout Bernoulli Multinomial RandomNormal "
    "RandomNormalLike RandomUniform RandomUniformLike NonMaxSuppression".split()
)

#: OpenVINO op types (opsets of ``read_model``) that cost no multiply-accumulate by convention.
FREE_IR_OPS = frozenset(
    # graph plumbing and precision
    "Parameter Result Constant Convert ConvertLike FakeQuantize FakeConvert ReadValue Assign "
    # elementwise arithmetic, logic and comparison
    "Abs Acos Acosh Add Asin Asinh Atan Atanh BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Ceiling Cos Cosh Divide "
    "Equal Erf Exp Floor FloorMod Greater GreaterEqual IsFinite IsInf IsNaN Less LessEqual Log LogicalAnd "
    "LogicalNot LogicalOr LogicalXor Maximum Minimum Mod Multiply Negative NotEqual Power Round Select Sign Sin "
    "Sinh Sqrt SquaredDifference Subtract Tan "
    # activations
    "Clamp Elu Gelu HardSigmoid HSigmoid HSwish LogSoftmax Mish PRelu Relu Selu Sigmoid SoftMax Softmax "
    "SoftPlus SoftSign Swish Tanh "
    # normalisation
    "BatchNormInference GroupNormalization LRN MVN NormalizeL2 RMS "
    # pooling and reductions
    "AdaptiveAvgPool AdaptiveMaxPool AvgPool MaxPool ArgMax CumSum ReduceL1 ReduceL2 ReduceLogicalAnd "
    "ReduceLogicalOr ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum TopK "
    # resampling
    "GridSample Interpolate ROIAlign ROIPooling "
    # data movement, shapes and indices
    "Broadcast Concat DepthToSpace Gather GatherElements GatherND NonZero OneHot Pad Range Reshape "
    "ReverseSequence ScatterElementsUpdate ScatterNDUpdate ScatterUpdate ShapeOf ShuffleChannels Slice "
    "SpaceToDepth Split Squeeze StridedSlice Tile Transpose Unique Unsqueeze VariadicSplit NonMaxSuppression".split()
)


@dataclass
class MacCount:
    """The multiply-accumulates of one forward pass of a model, as shaped (for the batch of its inputs)."""

    #: MACs of the whole graph, of the counted op types.
    total: int = 0
    #: MACs per counted op type.
    by_op: dict[str, int] = field(default_factory=dict)
    #: Nodes per counted op type.
    nodes: dict[str, int] = field(default_factory=dict)
    #: Op types present that have no formula and are not free by convention, with their node counts.
    not_counted: dict[str, int] = field(default_factory=dict)
    #: Op types present that are free by convention (see the module docstring).
    free: list[str] = field(default_factory=list)
    #: Where the graph came from: ``onnx``, ``onnx export of the torch module``, ``openvino-ir``.
    source: str = "onnx"

    @property
    def complete(self) -> bool:
        """Whether every op of the graph was counted or is free: the total is then not a lower bound."""
        return not self.not_counted

    def add(self, op: str, macs: int) -> None:
        """Add one counted node of type ``op`` costing ``macs``."""
        self.total += macs
        self.by_op[op] = self.by_op.get(op, 0) + macs
        self.nodes[op] = self.nodes.get(op, 0) + 1


def _numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


# --------------------------------------------------------------------------- formulas, shared by ONNX and IR


def conv_macs(output: Sequence[int], weight: Sequence[int], per_group_axes: int = 1) -> int:
    """Conv: each output element costs one weight slice, ``prod(weight[per_group_axes:])`` products.

    ONNX ``Conv`` weights are (Cout, Cin/groups, *kernel) (``per_group_axes``
    1); OpenVINO's ``GroupConvolution`` ones (groups, Cout/groups,
    Cin/groups, *kernel) (``per_group_axes`` 2).
    """
    return _numel(output) * _numel(weight[per_group_axes:])


def conv_transpose_macs(data: Sequence[int], weight: Sequence[int], per_group_axes: int = 1) -> int:
    """ConvTranspose: each input element is multiplied by a slice (Cout/groups) * prod(kernel) of the weights.

    ONNX weights are (Cin, Cout/groups, *kernel); OpenVINO's grouped form
    (groups, Cin/groups, Cout/groups, *kernel) (``per_group_axes`` 2).
    """
    return _numel(data) * _numel(weight[per_group_axes:])


def matmul_macs(a: Sequence[int], output: Sequence[int], transpose_a: bool = False) -> int:
    """MatMul with numpy's broadcasting: every element of the output costs K products.

    K is the last dimension of ``a`` (its second to last when ``transpose_a``);
    a 1-D ``a`` is a vector of K.
    """
    if len(a) == 1:
        k = a[0]
    else:
        k = a[-2] if transpose_a else a[-1]
    return _numel(output) * k


# --------------------------------------------------------------------------- ONNX


def _tensor_types(graph: onnx.GraphProto) -> dict[str, onnx.TypeProto]:
    """The type of every tensor an (inferred) graph annotates: inputs, value_info, outputs, initializers, Constants."""
    from onnx import helper

    types = {value.name: value.type for value in [*graph.input, *graph.value_info, *graph.output]}
    for tensor in graph.initializer:
        types[tensor.name] = helper.make_tensor_type_proto(tensor.data_type, list(tensor.dims))
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    types[node.output[0]] = helper.make_tensor_type_proto(attr.t.data_type, list(attr.t.dims))
    return types


def _type_shape(tensor_type: onnx.TypeProto | None) -> Shape:
    """The shape of a tensor type when every dimension is a known size, else ``None``."""
    if tensor_type is None or tensor_type.WhichOneof("value") != "tensor_type":
        return None
    if not tensor_type.tensor_type.HasField("shape"):
        return None
    dims = []
    for dim in tensor_type.tensor_type.shape.dim:
        if dim.WhichOneof("value") != "dim_value" or dim.dim_value < 0:
            return None
        dims.append(int(dim.dim_value))
    return tuple(dims)


#: ``TensorProto.EXTERNAL``: the data location of a weight kept in a file of its own (not loaded here).
_EXTERNAL = 1
#: The most elements of a tensor whose value :func:`_propagate` keeps: shape arithmetic, never activations.
_VALUE_LIMIT = 4096
#: Op types :func:`_propagate` never evaluates: their values are random.
_RANDOM_OPS = frozenset(
    {"Bernoulli", "Multinomial", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Dropout"}
)


def _propagate(model: onnx.ModelProto, types: dict[str, onnx.TypeProto]) -> dict[str, onnx.TypeProto]:
    """Infer shapes node by node, folding the small constant subgraphs that compute shapes.

    onnx's graph-level inference propagates values only through a few ops
    (``data_prop``): a reshape whose target shape goes through ``Mod`` (as
    torch's exporter writes ``unflatten``) leaves everything after it
    unknown.  Here each node of the default domain whose inputs are all known
    small values is evaluated with onnx's reference evaluator, ``Shape`` and
    ``Size`` of a tensor of known shape give their values, and each node's
    output types are inferred by its onnx schema with those values at hand.
    Where that fails, the graph-level ``types`` stand.
    """
    import numpy as np
    from onnx import defs, helper, numpy_helper, shape_inference
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    opsets = {("" if entry.domain == "ai.onnx" else entry.domain): entry.version for entry in model.opset_import}
    types = dict(types)
    values: dict[str, Any] = {}
    for tensor in graph.initializer:
        if _numel(tensor.dims) <= _VALUE_LIMIT and tensor.data_location != _EXTERNAL:
            values[tensor.name] = numpy_helper.to_array(tensor)
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or any(attr.g.node or attr.graphs for attr in node.attribute):
            continue  # custom domains and control flow: only the graph-level inference knows them
        inputs = [name for name in node.input if name]
        schema_types = {name: types[name] for name in inputs if name in types}
        data = {name: numpy_helper.from_array(np.asarray(values[name]), name) for name in inputs if name in values}
        try:
            schema = defs.get_schema(node.op_type, opsets.get("", 1), "")
            inferred = shape_inference.infer_node_outputs(
                schema, node, schema_types, data, opset_imports=list(model.opset_import)
            )
        except Exception:  # noqa: BLE001 - a missing input type or a failed check: keep the graph-level types
            inferred = {}
        for name, tensor_type in inferred.items():
            if _type_shape(tensor_type) is not None or _type_shape(types.get(name)) is None:
                types[name] = tensor_type
        outputs = _known_values(node, inputs, values, types, opsets, ReferenceEvaluator)
        for name, value in zip(node.output, outputs or ()):
            array = np.asarray(value)
            types[name] = helper.make_tensor_type_proto(helper.np_dtype_to_tensor_dtype(array.dtype), array.shape)
            if array.size <= _VALUE_LIMIT:
                values[name] = array
    return types


def _known_values(
    node: onnx.NodeProto,
    inputs: list[str],
    values: dict[str, Any],
    types: dict[str, onnx.TypeProto],
    opsets: dict[str, int],
    evaluator: Any,
) -> list[Any] | None:
    """The values of ``node``'s outputs when they follow from known values and shapes, else ``None``."""
    import numpy as np

    if node.op_type in ("Shape", "Size"):
        shape = _type_shape(types.get(node.input[0]))
        if shape is None:
            return None
        if node.op_type == "Size":
            return [np.array(_numel(shape), dtype=np.int64)]
        start, end = _attribute(node, "start", 0), _attribute(node, "end", len(shape))
        return [np.array(shape[start:end], dtype=np.int64)]
    if node.op_type in _RANDOM_OPS or not all(name in values for name in inputs):
        return None
    # Evaluate only what stays small: shape arithmetic, not a ConstantOfShape the size of an activation.
    for name in node.output:
        shape = _type_shape(types.get(name))
        if name and (shape is None or _numel(shape) > _VALUE_LIMIT):
            return None
    try:
        return list(evaluator(node, opsets=opsets).run(None, {name: values[name] for name in inputs}))
    except Exception:  # noqa: BLE001 - the reference evaluator lacks some ops and checks
        return None


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(attr.i)
    return default


#: For each counted ONNX op type: the tensors its formula needs, as (``"in"``/``"out"``, index) pairs.
_ONNX_OPERANDS: dict[str, tuple[tuple[str, int], ...]] = {
    "Conv": (("out", 0), ("in", 1)),
    "ConvInteger": (("out", 0), ("in", 1)),
    "QLinearConv": (("out", 0), ("in", 3)),
    "ConvTranspose": (("in", 0), ("in", 1)),
    "Gemm": (("in", 0), ("out", 0)),
    "MatMul": (("in", 0), ("out", 0)),
    "MatMulInteger": (("in", 0), ("out", 0)),
    "QLinearMatMul": (("in", 0), ("out", 0)),
}


def _onnx_node_macs(node: onnx.NodeProto, first: tuple[int, ...], second: tuple[int, ...]) -> int:
    """MACs of one counted node, given the two shapes ``_ONNX_OPERANDS`` names for its type."""
    op = node.op_type
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        return conv_macs(first, second)
    if op == "ConvTranspose":
        return conv_transpose_macs(first, second)
    if op == "Gemm":  # A is (M, K), or (K, M) with transA; the output is (M, N)
        return matmul_macs(first, second, transpose_a=bool(_attribute(node, "transA", 0)))
    return matmul_macs(first, second)


def _op_name(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"


def count_onnx_model(
    model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]] | None = None, *, source: str = "onnx"
) -> MacCount:
    """Count the MACs of ``model`` after fixing its inputs to ``input_shapes`` and inferring every shape.

    ``input_shapes`` maps graph input names to fixed shapes (the case's);
    inputs it does not name keep the shapes the graph declares.  The model
    is copied, never changed.  Raises :class:`BenchError` (one line) when an
    input shape does not fit the graph, shape inference fails, or a counted
    node's shapes stay unknown.
    """
    import onnx

    model = _with_fixed_inputs(model, input_shapes or {})
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=True, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - onnx raises InferenceError, ValidationError or RuntimeError
        raise BenchError(f"cannot count MACs: onnx shape inference failed: {_first_line(exc)}") from None
    types = _tensor_types(inferred.graph)
    if _unknown_operands(inferred.graph, types):
        types = _propagate(model, types)
    unknown = _unknown_operands(inferred.graph, types)
    if unknown:
        more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
        raise BenchError(f"cannot count MACs: onnx shape inference left the shape of {unknown[0]}{more} unknown")
    count = MacCount(source=source)
    free: set[str] = set()
    not_counted: Counter[str] = Counter()
    for node in inferred.graph.node:
        op = _op_name(node)
        if op in _ONNX_OPERANDS:
            first, second = (_type_shape(types.get(name)) for name in _operands(node))
            count.add(op, _onnx_node_macs(node, first, second))  # type: ignore[arg-type]
        elif op in FREE_ONNX_OPS:
            free.add(op)
        else:
            not_counted[op] += 1
    count.not_counted = dict(sorted(not_counted.items()))
    count.free = sorted(free)
    return count


def _operands(node: onnx.NodeProto) -> list[str]:
    """The names of the two tensors whose shapes a counted node's formula needs."""
    return [(node.input if kind == "in" else node.output)[i] for kind, i in _ONNX_OPERANDS[_op_name(node)]]


def _unknown_operands(graph: onnx.GraphProto, types: dict[str, onnx.TypeProto]) -> list[str]:
    """One line per counted node of ``graph`` with an operand whose shape ``types`` does not fix."""
    unknown = []
    for node in graph.node:
        if _op_name(node) not in _ONNX_OPERANDS:
            continue
        for name in _operands(node):
            if _type_shape(types.get(name)) is None:
                unknown.append(f"{node.op_type} node {node.name or '(unnamed)'!r} (tensor {name!r})")
                break
    return unknown


def _with_fixed_inputs(model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]]) -> onnx.ModelProto:
    """A copy of ``model`` whose inputs have the given shapes, with no stale shape annotations left.

    The value_info and the outputs' shapes are dropped, so every shape is
    inferred from the inputs alone (an annotation written for another batch
    would otherwise contradict inference).
    """
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    weights = {tensor.name for tensor in graph.initializer}
    graph_inputs = {value.name: value for value in graph.input if value.name not in weights}
    unknown = sorted(set(input_shapes) - set(graph_inputs))
    if unknown:
        raise BenchError(
            f"cannot count MACs: the graph has no input {', '.join(map(repr, unknown))} "
            f"(its inputs: {', '.join(graph_inputs) or 'none'})"
        )
    for name, value in graph_inputs.items():
        if name not in input_shapes:
            continue
        shape = [int(d) for d in input_shapes[name]]
        declared = _declared_rank(value)
        if declared is not None and declared != len(shape):
            raise BenchError(
                f"cannot count MACs: input {name!r} has rank {declared} in the graph, not {len(shape)} ({shape})"
            )
        tensor_type = value.type.tensor_type
        tensor_type.ClearField("shape")
        for size in shape:
            tensor_type.shape.dim.add().dim_value = size
    del graph.value_info[:]
    for value in graph.output:
        if value.type.WhichOneof("value") == "tensor_type":
            value.type.tensor_type.ClearField("shape")
    return copy


def _declared_rank(value: onnx.ValueInfoProto) -> int | None:
    tensor_type = value.type.tensor_type
    if value.type.WhichOneof("value") != "tensor_type" or not tensor_type.HasField("shape"):
        return None
    return len(tensor_type.shape.dim)


def load_onnx_graph(path: Path) -> onnx.ModelProto:
    """The ONNX model at ``path``, without its external data (counting needs shapes only); one-line errors."""
    import onnx

    try:
        return onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError, OSError
        raise BenchError(f"{path}: cannot read the ONNX model: {_first_line(exc)}") from None


def count_onnx_file(path: Path, input_shapes: Mapping[str, Sequence[int]] | None = None) -> MacCount:
    """Count the MACs of the ONNX file at ``path`` (see :func:`count_onnx_model`)."""
    return count_onnx_model(load_onnx_graph(path), input_shapes)


# --------------------------------------------------------------------------- torch


def export_torch_to_onnx(module: Any, args: Sequence[Any], input_names: Sequence[str]) -> onnx.ModelProto:
    """Export ``module`` to ONNX in memory, with the TorchScript exporter (opset 17, static shapes).

    The same exporter and opset as the ``torch-onnx`` converter, so a torch
    module and the ONNX file made from it count alike.  ``args`` are tensors
    on the module's device.  Raises :class:`BenchError` when export fails.
    """
    import onnx
    import torch

    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, tuple(args), buffer, dynamo=False, opset_version=17, input_names=list(input_names)
            )
    except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds
        raise BenchError(
            f"cannot count MACs: exporting the torch module to ONNX failed: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    return onnx.load_model_from_string(buffer.getvalue())


def count_torch_module(module: Any, args: Sequence[Any], input_names: Sequence[str]) -> MacCount:
    """Count the MACs of a torch module (or TorchScript module) called with ``args``, via an in-memory export."""
    model = export_torch_to_onnx(module, args, input_names)
    return count_onnx_model(model, source="onnx export of the torch module")


# --------------------------------------------------------------------------- OpenVINO IR


def count_ov_model(model: Any) -> MacCount:
    """Count the MACs of an ``openvino.Model`` whose shapes are static (reshape it first when they are not).

    ``Convolution``, ``GroupConvolution``, ``ConvolutionBackpropData``,
    ``GroupConvolutionBackpropData`` and ``MatMul`` (``transpose_a``
    honoured) are counted with the ONNX formulas; :data:`FREE_IR_OPS` are
    free; any other op type is listed as not counted.
    """
    count = MacCount(source="openvino-ir")
    free: set[str] = set()
    not_counted: Counter[str] = Counter()
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        formula = _IR_FORMULAS.get(kind)
        if formula is None:
            if kind in FREE_IR_OPS:
                free.add(kind)
            else:
                not_counted[kind] += 1
            continue
        shapes = [op.get_input_partial_shape(0), op.get_input_partial_shape(1), op.get_output_partial_shape(0)]
        if any(shape.is_dynamic for shape in shapes):
            raise BenchError(f"cannot count MACs: the shapes of {kind} node {op.get_friendly_name()!r} are not static")
        data, weight, output = (tuple(int(d.get_length()) for d in shape) for shape in shapes)
        count.add(kind, formula(op, data, weight, output))
    count.not_counted = dict(sorted(not_counted.items()))
    count.free = sorted(free)
    return count


def _ir_matmul(op: Any, data: tuple[int, ...], weight: tuple[int, ...], output: tuple[int, ...]) -> int:
    return matmul_macs(data, output, transpose_a=bool(op.get_attributes().get("transpose_a", False)))


_IR_FORMULAS: dict[str, Callable[[Any, tuple[int, ...], tuple[int, ...], tuple[int, ...]], int]] = {
    "Convolution": lambda op, data, weight, output: conv_macs(output, weight),
    "GroupConvolution": lambda op, data, weight, output: conv_macs(output, weight, per_group_axes=2),
    "ConvolutionBackpropData": lambda op, data, weight, output: conv_transpose_macs(data, weight),
    "GroupConvolutionBackpropData": lambda op, data, weight, output: conv_transpose_macs(
        data, weight, per_group_axes=2
    ),
    "MatMul": _ir_matmul,
}


def count_ir_file(path: Path, input_shapes: Mapping[str, Sequence[int]] | None = None) -> MacCount:
    """Count the MACs of the IR at ``path`` (its ``.xml``), reshaped to ``input_shapes`` where given."""
    from benchharness_openvino.graph import ov_message, port_names, read_ir

    model = read_ir(path)
    if input_shapes:
        names = port_names(model.inputs)
        unknown = sorted(set(input_shapes) - set(names))
        if unknown:
            raise BenchError(f"cannot count MACs: the IR has no input {', '.join(map(repr, unknown))}")
        import openvino as ov

        new_shapes = {
            port: ov.PartialShape(list(input_shapes[name]))
            for port, name in zip(model.inputs, names)
            if name in input_shapes
        }
        try:
            model.reshape(new_shapes)
        except RuntimeError as exc:
            message = ov_message(exc)
            raise BenchError(f"cannot count MACs: reshaping the IR to the case's inputs failed: {message}") from None
    return count_ov_model(model)


# --------------------------------------------------------------------------- artifacts


def input_shapes_of(artifact: ModelArtifact) -> dict[str, list[int]]:
    """The artifact's fixed input shapes by name; :class:`BenchError` when one still has a dynamic dimension."""
    shapes: dict[str, list[int]] = {}
    for spec in artifact.inputs:
        if any(not isinstance(dim, int) for dim in spec.shape):
            raise BenchError(f"cannot count MACs: input {spec.name!r} has a dimension that is not fixed: {spec.shape}")
        shapes[spec.name] = [int(dim) for dim in spec.shape]
    return shapes


def count_artifact(artifact: ModelArtifact) -> MacCount:
    """Count the MACs of the model a backend ran, for its fixed inputs (the case's batch).

    Formats: ``onnx`` (the file), ``torch`` (the module in ``obj``) and
    ``torchscript`` (the file), both exported to ONNX in memory, and
    ``openvino-ir``.  Any other format raises :class:`BenchError`.
    """
    shapes = input_shapes_of(artifact)
    if artifact.format == "onnx" and artifact.path is not None:
        return count_onnx_file(artifact.path, shapes)
    if artifact.format == "openvino-ir" and artifact.path is not None:
        return count_ir_file(artifact.path, shapes)
    if artifact.format in ("torch", "torchscript"):
        module = torch_module(artifact)
        return count_torch_module(module, torch_inputs(artifact, module), list(shapes))
    raise BenchError(
        f"cannot count MACs of a {artifact.format!r} model: counted formats are onnx, torch, torchscript, openvino-ir"
    )


def torch_module(artifact: ModelArtifact) -> Any:
    """The ``nn.Module`` of a ``torch`` artifact, or the loaded TorchScript module of a ``torchscript`` one."""
    import torch

    if artifact.format == "torch":
        if not isinstance(artifact.obj, torch.nn.Module):
            raise BenchError(f"the torch artifact holds a {type(artifact.obj).__name__}, not a torch.nn.Module")
        return artifact.obj
    if artifact.path is None:
        raise BenchError("the torchscript artifact has no file")
    return torch.jit.load(str(artifact.path), map_location="cpu")


def torch_inputs(artifact: ModelArtifact, module: Any) -> list[Any]:
    """The case's inputs (generated from seed 0, as the ``torch-onnx`` converter does) on the module's device."""
    import torch

    from benchharness.inputs import make_inputs

    arrays = make_inputs(artifact.inputs, seed=0)
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    return [torch.from_numpy(arrays[spec.name]).to(device) for spec in artifact.inputs]


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
