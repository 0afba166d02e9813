"""Describe an ONNX file from its graph alone: inputs, outputs, parameter count, opset.

The weights are never looked at: external data is not loaded, and initializers
are counted from their ``dims``.  onnx is imported only inside ``describe_onnx``.

Dynamic dimensions are named so that a suite's ``dims`` can set each one, and
so that two dimensions share a name only when the model says they are the same:

1. a dynamic dimension at index 0 of any input is the batch (``BATCH_DIM``);
   when it has a ``dim_param``, every dimension with that ``dim_param`` is the
   batch too (inputs and outputs that share it);
2. any other ``dim_param`` is kept as written (equal names are one dimension);
3. a dimension with no value and no name (or the name ``"?"``) gets a name of
   its own, ``"<tensor name>.<index>"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchharness.errors import BenchError
from benchharness.signature import BATCH_DIM, ModelSignature, TensorSpec

if TYPE_CHECKING:
    from onnx import GraphProto, ModelProto, ValueInfoProto

# ONNX TensorProto element types to the names in ``benchharness.signature.DTYPES``.
ONNX_DTYPES: dict[int, str] = {
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

#: dim_param values that some exporters write for "unknown": treated as having no name.
UNKNOWN_DIM_PARAMS = frozenset({"?"})

#: TensorProto.data_location value for weights stored outside the .onnx file.
_EXTERNAL = 1


def describe_onnx(path: Path) -> ModelSignature:
    """Read ``path``'s graph (without external data) and return its signature.

    Raises ``BenchError`` when the file is not an ONNX model or an input has an
    element type that benchharness cannot generate.
    """
    model = _load(path)
    graph = model.graph
    weights = {init.name for init in graph.initializer} | {sparse.values.name for sparse in graph.sparse_initializer}
    graph_inputs = [value for value in graph.input if value.name not in weights]
    namer = _DimNamer(graph, graph_inputs)

    inputs = [
        TensorSpec(name=value.name, shape=namer.shape(value, is_input=True), dtype=_input_dtype(path, value))
        for value in graph_inputs
    ]
    outputs = [
        TensorSpec(name=value.name, shape=namer.shape(value, is_input=False), dtype=_output_dtype(value))
        for value in graph.output
    ]
    return ModelSignature(
        format="onnx", inputs=inputs, outputs=outputs, parameters=_parameters(graph), details=_details(path, model)
    )


def _load(path: Path) -> ModelProto:
    """Parse the model proto, weights embedded in the file included but external data left out."""
    import onnx
    from google.protobuf.message import DecodeError

    # ModelProto.ParseFromString is what onnx.load does, without its format guess from the file's
    # extension and its external-data handling: the weights embedded in the file are parsed (fast:
    # bytes fields are copied whole), those in external files are not touched.
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BenchError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not data:
        raise BenchError(f"{path}: not an ONNX model: the file is empty")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        # protobuf's own message ("Error parsing message ...: Wire format was corrupt") says no more than this.
        raise BenchError(f"{path}: not an ONNX model: it does not parse as an ONNX ModelProto") from None
    # An arbitrary file can parse as a protobuf message by accident (an empty file always does):
    # a real model has an IR version and a graph with at least one node or output.
    if model.ir_version <= 0 or not model.HasField("graph"):
        missing = "no IR version" if model.ir_version <= 0 else "no graph"
        raise BenchError(f"{path}: not an ONNX model: {missing}")
    if not model.graph.node and not model.graph.output:
        raise BenchError(f"{path}: not an ONNX model: the graph has no nodes and no outputs")
    return model


class _DimNamer:
    """Names the dynamic dimensions of a graph's inputs and outputs (rules in the module docstring)."""

    def __init__(self, graph: GraphProto, graph_inputs: list[ValueInfoProto]) -> None:
        values = list(graph_inputs) + list(graph.output)
        #: Every dim_param of the inputs and outputs: an invented name must differ from all of them.
        self._taken = {dim.dim_param for value in values for dim in _dims(value) or () if dim.dim_param}
        #: The dim_params of the inputs' dynamic index-0 dimensions: all of them are the batch.
        self._batch_params: set[str] = set()
        for value in graph_inputs:
            dims = _dims(value)
            if dims and not _is_static(dims[0]) and _named(dims[0]):
                self._batch_params.add(dims[0].dim_param)

    def shape(self, value: ValueInfoProto, *, is_input: bool) -> list[int | str] | None:
        """The tensor's shape: ints for fixed dimensions, names for dynamic ones; ``None`` when unknown."""
        dims = _dims(value)
        if dims is None:
            return None
        shape: list[int | str] = []
        for index, dim in enumerate(dims):
            if _is_static(dim):
                shape.append(int(dim.dim_value))
            elif (is_input and index == 0) or (_named(dim) and dim.dim_param in self._batch_params):
                shape.append(BATCH_DIM)
            elif _named(dim):
                shape.append(dim.dim_param)
            else:
                shape.append(self._invent(f"{value.name}.{index}"))
        return shape

    def _invent(self, name: str) -> str:
        """``name``, made distinct from every dim_param the graph uses (``_`` appended while it clashes)."""
        while name in self._taken:
            name += "_"
        return name


def _dims(value: ValueInfoProto) -> Any:
    """The dims of a tensor-typed value, or ``None`` when it is not a tensor or its shape is unknown."""
    if value.type.WhichOneof("value") != "tensor_type" or not value.type.tensor_type.HasField("shape"):
        return None
    return value.type.tensor_type.shape.dim


def _is_static(dim: Any) -> bool:
    return dim.WhichOneof("value") == "dim_value" and dim.dim_value > 0


def _named(dim: Any) -> bool:
    return dim.WhichOneof("value") == "dim_param" and bool(dim.dim_param) and dim.dim_param not in UNKNOWN_DIM_PARAMS


def _input_dtype(path: Path, value: ValueInfoProto) -> str:
    """The input's dtype name; ``BenchError`` when benchharness cannot generate values of its type."""
    import onnx

    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        what = f"type {kind.removesuffix('_type')}" if kind else "no type"
        raise BenchError(f"{path.name}: input {value.name!r} has {what}, which benchharness cannot generate")
    elem_type = value.type.tensor_type.elem_type
    dtype = ONNX_DTYPES.get(elem_type)
    if dtype is None:
        try:
            type_name = onnx.TensorProto.DataType.Name(elem_type)
        except ValueError:
            type_name = str(elem_type)
        raise BenchError(
            f"{path.name}: input {value.name!r} has element type {type_name}, which benchharness cannot generate"
        )
    return dtype


def _output_dtype(value: ValueInfoProto) -> str | None:
    """The output's dtype name, or ``None`` when it is not a tensor or of a type benchharness does not name."""
    if value.type.WhichOneof("value") != "tensor_type":
        return None
    return ONNX_DTYPES.get(value.type.tensor_type.elem_type)


def _parameters(graph: GraphProto) -> int:
    """Elements over all initializers (dense size for sparse ones), from their dims: no weight is read."""
    total = 0
    for tensor in graph.initializer:
        total += _product(tensor.dims)
    for sparse in graph.sparse_initializer:
        total += _product(sparse.dims)
    return total


def _product(dims: Any) -> int:
    result = 1
    for dim in dims:
        result *= int(dim)
    return result


def _details(path: Path, model: ModelProto) -> dict[str, Any]:
    """Opset of the default domain, IR version, producer, file size and whether weights are external."""
    details: dict[str, Any] = {}
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            details["opset"] = int(opset.version)
            break
    details["ir_version"] = int(model.ir_version)
    producer = f"{model.producer_name} {model.producer_version}".strip()
    if producer:
        details["producer"] = producer
    details["file_bytes"] = path.stat().st_size
    if any(tensor.data_location == _EXTERNAL for tensor in model.graph.initializer):
        details["external_data"] = True
    return details
