"""Read OpenVINO models without compiling them: IR signatures, tensor names, error messages.

``openvino.Core().read_model`` parses an IR's ``.xml`` and maps its ``.bin``
(the weights are not copied); nothing is compiled for a device.  openvino is
imported only inside the functions that need it.

An IR names no dynamic dimension, so the names follow the rules of the ONNX
source (``benchharness_onnxruntime.graph``) for unnamed dimensions:

1. a dynamic dimension at index 0 of an input is the batch (``BATCH_DIM``);
2. any other dynamic dimension, of an input or an output, gets a name of its
   own, ``"<tensor name>.<index>"``: the IR does not say which dimensions are
   the same, so none share a name.

A tensor is named by its first tensor name (``get_any_name``); one without
any takes its node's friendly name, so every input and output has a name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchharness.errors import BenchError
from benchharness.signature import BATCH_DIM, ModelSignature, TensorSpec

if TYPE_CHECKING:
    import openvino as ov

#: OpenVINO element type names (``Type.get_type_name()``) to the names in ``benchharness.signature.DTYPES``.
OV_DTYPES: dict[str, str] = {
    "f32": "float32",
    "f16": "float16",
    "f64": "float64",
    "i64": "int64",
    "i32": "int32",
    "i16": "int16",
    "i8": "int8",
    "u8": "uint8",
    "boolean": "bool",
}

#: Element types of weights (counted as parameters); integer constants are mostly shapes and indices.
WEIGHT_TYPES = frozenset({"f32", "f16", "bf16", "f64", "f8e4m3", "f8e5m2", "nf4", "f4e2m1"})

#: How far into an .xml file its ``<net`` root element must start (after the XML declaration and comments).
_SNIFF_BYTES = 4096

#: Source locations OpenVINO prefixes to its messages (``Exception from src/...cpp:84:``, ``Check '...' failed at``).
_LOCATION = re.compile(r"(Exception from \S+:\d+:|Check '.*?' failed at \S+:\d+:)")


def describe_ir(path: Path) -> ModelSignature:
    """Read the IR at ``path`` (its ``.xml``; the ``.bin`` beside it) and return its signature.

    Raises ``BenchError`` when the file is not an IR, its weights are missing,
    or an input has an element type that benchharness cannot generate.
    """
    model = read_ir(path)
    inputs = [
        TensorSpec(name=name, shape=_shape(port, name, is_input=True), dtype=_input_dtype(path, port, name))
        for port, name in zip(model.inputs, port_names(model.inputs))
    ]
    outputs = [
        TensorSpec(name=name, shape=_shape(port, name, is_input=False), dtype=_dtype(port))
        for port, name in zip(model.outputs, port_names(model.outputs))
    ]
    weights = path.with_suffix(".bin")
    details: dict[str, Any] = {"file_bytes": path.stat().st_size}  # the model's size: the .xml and its .bin
    if weights.is_file():
        details["weights_file"] = weights.name
        details["weights_bytes"] = weights.stat().st_size
        details["file_bytes"] += details["weights_bytes"]
    return ModelSignature(
        format="openvino-ir", inputs=inputs, outputs=outputs, parameters=count_weights(model), details=details
    )


def read_ir(path: Path) -> ov.Model:
    """``Core().read_model`` of an IR ``.xml``, with a one-line ``BenchError`` for anything else.

    The file's start is checked first: given a file that is not XML,
    read_model would try every frontend in turn (TensorFlow's logs to stderr).
    """
    if path.suffix.lower() != ".xml":
        raise BenchError(f"{path}: not an OpenVINO IR model: expected the .xml file (with its .bin beside it)")
    try:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise BenchError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not head.lstrip().startswith(b"<") or b"<net" not in head:
        raise BenchError(f"{path}: not an OpenVINO IR model: no <net> element at its start")
    import openvino as ov

    try:
        return ov.Core().read_model(str(path))
    except RuntimeError as exc:
        raise BenchError(f"{path}: not a readable OpenVINO IR model: {ov_message(exc)}") from None


def port_names(ports: Any) -> list[str]:
    """Each port's tensor name (its node's friendly name when it has none), in order."""
    names = []
    for port in ports:
        names.append(port.get_any_name() if port.get_names() else port.get_node().get_friendly_name())
    return names


def _shape(port: Any, name: str, *, is_input: bool) -> list[int | str] | None:
    """Fixed dimensions as ints, dynamic ones named (rules in the module docstring); ``None`` for a dynamic rank."""
    partial = port.get_partial_shape()
    if partial.rank.is_dynamic:
        return None
    shape: list[int | str] = []
    for index, dim in enumerate(partial):
        if dim.is_static and dim.get_length() > 0:
            shape.append(int(dim.get_length()))
        elif is_input and index == 0:
            shape.append(BATCH_DIM)
        else:
            shape.append(f"{name}.{index}")
    return shape


def _dtype(port: Any) -> str | None:
    return OV_DTYPES.get(port.get_element_type().get_type_name())


def _input_dtype(path: Path, port: Any, name: str) -> str:
    dtype = _dtype(port)
    if dtype is None:
        kind = port.get_element_type().get_type_name()
        raise BenchError(f"{path.name}: input {name!r} has element type {kind}, which benchharness cannot generate")
    return dtype


def count_weights(model: ov.Model) -> int:
    """Elements of the model's floating-point constants: its weights, read from their shapes alone."""
    total = 0
    for op in model.get_ops():
        if op.get_type_name() != "Constant" or op.get_output_element_type(0).get_type_name() not in WEIGHT_TYPES:
            continue
        count = 1
        for dim in op.get_output_shape(0):
            count *= int(dim)
        total += count
    return total


def ov_message(exc: BaseException) -> str:
    """An OpenVINO exception's text on one line, without the C++ source locations it is wrapped in."""
    text = _LOCATION.sub("", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    message = " ".join(lines) or type(exc).__name__
    return message if len(message) <= 400 else message[:397] + "..."
