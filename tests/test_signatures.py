"""Model signatures read without loading the model: ONNX graphs and TorchScript archives."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from benchharness.errors import BenchError
from benchharness.signature import ModelSignature, TensorSpec

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from benchharness_onnxruntime.graph import describe_onnx  # noqa: E402
from benchharness_torch.schema import describe_torchscript  # noqa: E402

nn = torch.nn
PRODUCER = "pytorch " + torch.__version__.split("+")[0]


# --- models ---------------------------------------------------------------------------------------------------------


class Speech(nn.Module):
    """A streaming speech model: ``input [B, T]`` and ``state [2, B, 128]``."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Linear(1, 128)
        self.out = nn.Linear(128, 10)

    def forward(self, input: Any, state: Any) -> Any:  # noqa: A002 - the exported input's name
        h = self.emb(input.unsqueeze(-1)).mean(1) + state.sum(0)
        return self.out(h), state * 0.5


SPEECH_PARAMETERS = 1 * 128 + 128 + 128 * 10 + 10  # = 1546


class ConvNet(nn.Module):
    """Conv, batch norm and a linear layer: constant folding fuses the batch norm into the conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: Any) -> Any:
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x: Any, scale: Any) -> Any:
        return self.lin(x) * scale


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 4)

    def forward(self, ids: Any) -> Any:
        return self.emb(ids)


class ToFloat(nn.Module):
    def forward(self, x: Any) -> Any:
        return x.float() * 2


def export(module: Any, args: tuple[Any, ...], path: Path, **kwargs: Any) -> Path:
    """``torch.onnx.export`` with the TorchScript exporter at opset 17."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, opset_version=17, **kwargs)
    return path


def speech_onnx(path: Path, dynamic_axes: dict[str, Any], **kwargs: Any) -> Path:
    args = (torch.zeros(2, 7), torch.zeros(2, 2, 128))
    return export(
        Speech(),
        args,
        path,
        input_names=["input", "state"],
        output_names=["logits", "new_state"],
        dynamic_axes=dynamic_axes,
        **kwargs,
    )


def edit_dims(path: Path, dims: dict[tuple[str, int], str]) -> Path:
    """Set ``dim_param`` of (tensor name, index) dims of the graph's inputs and outputs; ``""`` leaves it unnamed."""
    model = onnx.load(str(path))
    values = {v.name: v for v in list(model.graph.input) + list(model.graph.output)}
    for (name, index), param in dims.items():
        dim = values[name].type.tensor_type.shape.dim[index]
        dim.Clear()
        if param:
            dim.dim_param = param
    onnx.save(model, str(path))
    return path


def shapes(specs: list[TensorSpec]) -> dict[str, Any]:
    return {spec.name: spec.shape for spec in specs}


# --- ONNX: dimension names ------------------------------------------------------------------------------------------


def test_unnamed_dims_of_two_inputs_never_share_an_invented_name(tmp_path: Path) -> None:
    # The bug: input [B, T] and state [2, B, 128] both got 'dim1', so dims: {dim1: 512} built state [2, 512, 128].
    path = speech_onnx(tmp_path / "speech.onnx", {"input": [0, 1], "state": [1], "logits": [0], "new_state": [1]})
    edit_dims(
        path,
        {("input", 0): "", ("input", 1): "", ("state", 1): "", ("logits", 0): "", ("new_state", 1): ""},
    )
    sig = describe_onnx(path)
    assert sig.inputs == [
        TensorSpec(name="input", shape=["batch", "input.1"], dtype="float32"),
        TensorSpec(name="state", shape=[2, "state.1", 128], dtype="float32"),
    ]
    assert sig.outputs == [
        TensorSpec(name="logits", shape=["logits.0", 10], dtype="float32"),
        TensorSpec(name="new_state", shape=[2, "new_state.1", 128], dtype="float32"),
    ]


def test_exporter_names_are_kept_and_index_0_is_the_batch(tmp_path: Path) -> None:
    path = speech_onnx(tmp_path / "speech.onnx", {"input": [0, 1], "state": [1], "logits": [0], "new_state": [1]})
    sig = describe_onnx(path)
    assert shapes(sig.inputs) == {
        "input": ["batch", "input_dynamic_axes_2"],
        "state": [2, "state_dynamic_axes_1", 128],
    }
    # input's batch is named input_dynamic_axes_1, which no output uses: the outputs keep their own names.
    assert shapes(sig.outputs) == {
        "logits": ["logits_dynamic_axes_1", 10],
        "new_state": [2, "new_state_dynamic_axes_1", 128],
    }


def test_a_named_batch_dim_shared_by_two_inputs_is_the_batch_everywhere(tmp_path: Path) -> None:
    axes = {"input": {0: "N", 1: "T"}, "state": {1: "N"}, "logits": {0: "N"}, "new_state": {1: "N"}}
    sig = describe_onnx(speech_onnx(tmp_path / "speech.onnx", axes))
    assert shapes(sig.inputs) == {"input": ["batch", "T"], "state": [2, "batch", 128]}
    assert shapes(sig.outputs) == {"logits": ["batch", 10], "new_state": [2, "batch", 128]}


def test_odd_dim_params_are_kept_and_shared_by_name(tmp_path: Path) -> None:
    path = speech_onnx(tmp_path / "speech.onnx", {"input": [0, 1], "state": [1], "logits": [0], "new_state": [1]})
    edit_dims(
        path,
        {
            ("input", 0): "unk__12",
            ("input", 1): "p2o.DynamicDimension.1",
            ("state", 1): "p2o.DynamicDimension.1",
            ("logits", 0): "unk__12",
        },
    )
    sig = describe_onnx(path)
    # unk__12 is input's index-0 dim, so the batch wherever it appears; p2o.DynamicDimension.1 is one dim, kept.
    assert shapes(sig.inputs) == {
        "input": ["batch", "p2o.DynamicDimension.1"],
        "state": [2, "p2o.DynamicDimension.1", 128],
    }
    assert shapes(sig.outputs) == {"logits": ["batch", 10], "new_state": [2, "new_state_dynamic_axes_1", 128]}


def test_question_mark_dim_param_is_unnamed(tmp_path: Path) -> None:
    path = speech_onnx(tmp_path / "speech.onnx", {"input": [0, 1], "state": [1], "logits": [0], "new_state": [1]})
    edit_dims(path, {("input", 0): "?", ("input", 1): "?", ("state", 1): "?", ("logits", 0): "?"})
    sig = describe_onnx(path)
    # The index-0 '?' is the batch, but '?' elsewhere is not: each is a dimension of its own.
    assert shapes(sig.inputs) == {"input": ["batch", "input.1"], "state": [2, "state.1", 128]}
    assert shapes(sig.outputs) == {"logits": ["logits.0", 10], "new_state": [2, "new_state_dynamic_axes_1", 128]}


def test_an_invented_name_never_equals_a_dim_param(tmp_path: Path) -> None:
    path = speech_onnx(tmp_path / "speech.onnx", {"input": [0, 1], "state": [1], "logits": [0], "new_state": [1]})
    edit_dims(path, {("input", 1): "", ("state", 1): "input.1"})
    assert shapes(describe_onnx(path).inputs) == {"input": ["batch", "input.1_"], "state": [2, "input.1", 128]}


def test_scalar_and_unknown_shapes(tmp_path: Path) -> None:
    path = export(
        Scaled(), (torch.zeros(2, 3), torch.tensor(2.0)), tmp_path / "scaled.onnx", input_names=["x", "scale"]
    )
    sig = describe_onnx(path)
    assert sig.inputs == [
        TensorSpec(name="x", shape=[2, 3], dtype="float32"),
        TensorSpec(name="scale", shape=[], dtype="float32"),
    ]
    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.ClearField("shape")
    model.graph.output[0].type.tensor_type.ClearField("shape")
    onnx.save(model, str(path))
    sig = describe_onnx(path)
    assert sig.inputs[0] == TensorSpec(name="x", shape=None, dtype="float32")
    assert sig.outputs[0].shape is None


# --- ONNX: dtypes ---------------------------------------------------------------------------------------------------


def test_int64_input_and_float_output(tmp_path: Path) -> None:
    path = export(
        Tokens(),
        (torch.zeros(2, 5, dtype=torch.int64),),
        tmp_path / "tokens.onnx",
        input_names=["ids"],
        output_names=["vectors"],
        dynamic_axes={"ids": {0: "batch", 1: "seq"}, "vectors": {0: "batch", 1: "seq"}},
    )
    sig = describe_onnx(path)
    assert sig.inputs == [TensorSpec(name="ids", shape=["batch", "seq"], dtype="int64")]
    assert sig.outputs == [TensorSpec(name="vectors", shape=["batch", "seq", 4], dtype="float32")]
    assert sig.parameters == 50 * 4


def test_bfloat16_input_is_an_error(tmp_path: Path) -> None:
    path = export(ToFloat(), (torch.zeros(2, 3, dtype=torch.bfloat16),), tmp_path / "bf16.onnx", input_names=["x"])
    with pytest.raises(BenchError) as err:
        describe_onnx(path)
    assert str(err.value) == "bf16.onnx: input 'x' has element type BFLOAT16, which benchharness cannot generate"


def test_string_input_is_an_error_and_unsupported_output_dtype_is_none(tmp_path: Path) -> None:
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("Identity", ["s"], ["t"])],
        "strings",
        [helper.make_tensor_value_info("s", onnx.TensorProto.STRING, [3])],
        [helper.make_tensor_value_info("t", onnx.TensorProto.STRING, [3])],
    )
    path = tmp_path / "strings.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(BenchError) as err:
        describe_onnx(path)
    assert str(err.value) == "strings.onnx: input 's' has element type STRING, which benchharness cannot generate"

    path = export(ToFloat(), (torch.zeros(2, 3),), tmp_path / "out.onnx", input_names=["x"], output_names=["y"])
    model = onnx.load(str(path))
    model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.BFLOAT16
    onnx.save(model, str(path))
    assert describe_onnx(path).outputs == [TensorSpec(name="y", shape=[2, 3], dtype=None)]


# --- ONNX: parameters and details -----------------------------------------------------------------------------------


def test_parameters_and_details(tmp_path: Path) -> None:
    path = speech_onnx(tmp_path / "speech.onnx", {"input": [0, 1]}, do_constant_folding=False)
    assert sum(p.numel() for p in Speech().parameters()) == SPEECH_PARAMETERS
    sig = describe_onnx(path)
    assert sig.format == "onnx"
    assert sig.parameters == SPEECH_PARAMETERS == 1546
    assert sig.details == {
        "opset": 17,
        "ir_version": onnx.load(str(path)).ir_version,
        "producer": PRODUCER,
        "file_bytes": path.stat().st_size,
    }


def test_parameters_count_initializers_so_folding_changes_them(tmp_path: Path) -> None:
    model = ConvNet()
    parameters = sum(p.numel() for p in model.parameters())
    assert parameters == 216 + 8 + 8 + 8 + 32 + 4 == 276
    plain = export(model, (torch.zeros(1, 3, 8, 8),), tmp_path / "plain.onnx", do_constant_folding=False)
    folded = export(model, (torch.zeros(1, 3, 8, 8),), tmp_path / "folded.onnx", do_constant_folding=True)
    # Unfolded: the parameters, running statistics excluded.  Folded: batch norm fused into the conv's weights.
    assert describe_onnx(plain).parameters == parameters
    assert describe_onnx(folded).parameters == 216 + 8 + 32 + 4 == 260


def test_external_data_is_not_read(tmp_path: Path) -> None:
    path = speech_onnx(tmp_path / "speech.onnx", {"input": [0, 1]}, do_constant_folding=False)
    model = onnx.load(str(path))
    external = tmp_path / "external.onnx"
    onnx.save(model, str(external), save_as_external_data=True, location="external.data", size_threshold=0)
    (tmp_path / "external.data").unlink()  # describe must not need it
    sig = describe_onnx(external)
    assert sig.parameters == SPEECH_PARAMETERS
    assert sig.details["external_data"] is True
    assert sig.details["file_bytes"] == external.stat().st_size < 2000
    assert sig.inputs == describe_onnx(path).inputs


# --- ONNX: files that are not models --------------------------------------------------------------------------------


def test_files_that_are_not_onnx_models(tmp_path: Path) -> None:
    text = tmp_path / "notes.onnx"
    text.write_text("name: large\nmodels: []\n")
    with pytest.raises(BenchError) as err:
        describe_onnx(text)
    message = str(err.value)
    assert message.startswith(f"{text}: not an ONNX model: ") and "\n" not in message
    assert message == f"{text}: not an ONNX model: it does not parse as an ONNX ModelProto"

    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("model/data.pkl", b"\x80\x02}q\x00.")
    with pytest.raises(BenchError) as err:
        describe_onnx(archive)
    assert str(err.value) == f"{archive}: not an ONNX model: it does not parse as an ONNX ModelProto"

    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(BenchError) as err:
        describe_onnx(empty)
    assert str(err.value) == f"{empty}: not an ONNX model: the file is empty"

    # A message that parses by chance (every field unknown or default) is no model either.
    lucky = tmp_path / "lucky.onnx"
    lucky.write_bytes(b"\x08\x00")  # ir_version = 0
    with pytest.raises(BenchError) as err:
        describe_onnx(lucky)
    assert str(err.value) == f"{lucky}: not an ONNX model: no IR version"

    missing = tmp_path / "missing.onnx"
    with pytest.raises(BenchError) as err:
        describe_onnx(missing)
    assert str(err.value) == f"{missing}: cannot read: No such file or directory"


def test_graph_module_imports_no_onnx() -> None:
    code = "import sys, benchharness_onnxruntime.graph; print('onnx' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# --- TorchScript ----------------------------------------------------------------------------------------------------


class Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class TokenModel(nn.Module):
    """Scripted: typed arguments, defaults, nested submodules."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.inner = Inner()
        self.head = nn.Sequential(nn.Linear(4, 2), nn.ReLU())

    def forward(
        self,
        ids: torch.Tensor,
        scale: float = 1.0,
        mask: torch.Tensor | None = None,
        steps: int = 3,
        pair: tuple[torch.Tensor, torch.Tensor] | None = None,
        label: str = "a, b)",
    ) -> torch.Tensor:
        y = self.inner(self.emb(ids)) * scale
        if mask is not None:
            y = y * mask
        return self.head(y)


class Pair(nn.Module):
    """Traced: untyped arguments, a default that tracing bakes in."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = Inner()

    def forward(self, a, b, alpha=0.5):  # type: ignore[no-untyped-def]
        return self.inner(a) + alpha * b


def script(module: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(module)


def trace(module: Any, args: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(module, args)


def jit_save(module: Any, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(module, str(path))
    return path


def test_scripted_module_with_defaults_and_types(tmp_path: Path) -> None:
    path = jit_save(script(TokenModel()), tmp_path / "tokens.pt")
    sig = describe_torchscript(path)
    assert sig == ModelSignature(
        format="torchscript",
        inputs=[TensorSpec(name=n) for n in ("ids", "scale", "mask", "steps", "pair", "label")],
        outputs=[],
        optional_inputs=["scale", "mask", "steps", "pair", "label"],
        parameters=None,
        details={
            "file_bytes": path.stat().st_size,
            "forward": (
                "def forward(self, ids: Tensor, scale: float = 1., mask: Optional[Tensor] = None, steps: int = 3, "
                'pair: Optional[Tuple[Tensor, Tensor]] = None, label: str = "a, b)") -> Tensor'
            ),
            "argument_types": {
                "ids": "Tensor",
                "scale": "float",
                "mask": "Optional[Tensor]",
                "steps": "int",
                "pair": "Optional[Tuple[Tensor, Tensor]]",
                "label": "str",
            },
        },
    )


def test_traced_module(tmp_path: Path) -> None:
    traced = trace(Pair(), (torch.zeros(2, 4), torch.zeros(2, 4)))
    path = jit_save(traced, tmp_path / "pair.pt")
    sig = describe_torchscript(path)
    # Tracing keeps the traced arguments' names, types them all Tensor and drops the untraced default.
    assert sig.inputs == [TensorSpec(name="a"), TensorSpec(name="b")]
    assert sig.details["forward"] == "def forward(self, a: Tensor, b: Tensor) -> Tensor"
    assert sig.optional_inputs == []
    assert sig.details["argument_types"] == {"a": "Tensor", "b": "Tensor"}


@pytest.mark.parametrize("compile", ["script", "trace"])
def test_sequential(tmp_path: Path, compile: str) -> None:
    seq = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    module = script(seq) if compile == "script" else trace(seq, torch.zeros(1, 4))
    sig = describe_torchscript(jit_save(module, tmp_path / "seq.pt"))
    assert sig.inputs == [TensorSpec(name="input")]
    assert sig.details["forward"] == "def forward(self, input: Tensor) -> Tensor"


def test_module_defined_in_main_and_archive_folder_not_the_file_name(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import io, sys, warnings
        import torch
        warnings.simplefilter("ignore")

        class Main(torch.nn.Module):
            def forward(self, frames: torch.Tensor, rate: int = 16000) -> torch.Tensor:
                return frames * rate

        torch.jit.save(torch.jit.script(Main()), sys.argv[1])
        buffer = io.BytesIO()
        torch.jit.save(torch.jit.script(Main()), buffer)
        open(sys.argv[2], "wb").write(buffer.getvalue())
        """
    )
    saved, buffered = tmp_path / "main.pt", tmp_path / "buffered.pt"
    program = tmp_path / "make_main.py"  # TorchScript compiles from the source file: no ``python -c``
    program.write_text(script)
    proc = subprocess.run(
        [sys.executable, str(program), str(saved), str(buffered)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    renamed = saved.rename(tmp_path / "renamed.pt")
    for path, root in ((renamed, "main/"), (buffered, "archive/")):
        with zipfile.ZipFile(path) as archive:
            assert f"{root}data.pkl" in archive.namelist() and f"{root}code/__torch__.py" in archive.namelist()
        sig = describe_torchscript(path)
        assert sig.inputs == [TensorSpec(name="frames"), TensorSpec(name="rate")]
        assert sig.details["forward"] == "def forward(self, frames: Tensor, rate: int = 16000) -> Tensor"


def test_describe_does_not_import_torch(tmp_path: Path) -> None:
    path = jit_save(script(TokenModel()), tmp_path / "tokens.pt")
    code = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from benchharness_torch.schema import describe_torchscript
        sig = describe_torchscript(Path(sys.argv[1]))
        print(json.dumps({"inputs": [i.name for i in sig.inputs], "torch": "torch" in sys.modules}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"inputs": ["ids", "scale", "mask", "steps", "pair", "label"], "torch": False}


def rewrite_zip(source: Path, target: Path, change: Any) -> Path:
    """Copy a zip, passing each (name, data) through ``change``; it returns None to drop the entry."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            kept = change(name, old.read(name))
            if kept is not None:
                new.writestr(name, kept)
    return target


def test_forward_is_read_when_the_code_file_is_not_python(tmp_path: Path) -> None:
    path = jit_save(script(TokenModel()), tmp_path / "tokens.pt")
    expected = describe_torchscript(path)

    def spoil(name: str, data: bytes) -> bytes:
        # A submodule attribute named with a Python keyword makes the file invalid Python.
        return data + b"  class : int\n" if name.endswith(".py") else data

    odd = rewrite_zip(path, tmp_path / "odd.pt", spoil)
    sig = describe_torchscript(odd)
    assert sig.inputs == expected.inputs
    assert {k: v for k, v in sig.details.items() if k != "file_bytes"} == {
        k: v for k, v in expected.details.items() if k != "file_bytes"
    }


def test_torchscript_errors(tmp_path: Path) -> None:
    text = tmp_path / "model.pt"
    text.write_text("not a zip")
    with pytest.raises(BenchError) as err:
        describe_torchscript(text)
    assert str(err.value) == f"{text}: not a TorchScript archive (torch.jit.save): not a zip file"

    good = jit_save(script(TokenModel()), tmp_path / "tokens.pt")
    no_pickle = rewrite_zip(good, tmp_path / "no_pickle.pt", lambda n, d: None if n.endswith("/data.pkl") else d)
    with pytest.raises(BenchError) as err:
        describe_torchscript(no_pickle)
    assert str(err.value) == f"{no_pickle}: not a TorchScript archive (torch.jit.save): no <name>/data.pkl in the zip"

    state = tmp_path / "state.pt"
    torch.save(TokenModel().state_dict(), str(state))
    with pytest.raises(BenchError) as err:
        describe_torchscript(state)
    assert str(err.value) == (
        f"{state}: not a TorchScript archive (torch.jit.save): data.pkl holds a collections.OrderedDict, "
        "not a TorchScript module"
    )

    with zipfile.ZipFile(good) as archive:
        code = [n for n in archive.namelist() if n.endswith("TokenModel.py") or n.endswith("test_signatures.py")]
        first = next(op for op in _globals(archive.read("tokens/data.pkl")))
    module, name = first
    assert name == "TokenModel" and len(code) == 1
    no_code = rewrite_zip(good, tmp_path / "no_code.pt", lambda n, d: None if n == code[0] else d)
    with pytest.raises(BenchError) as err:
        describe_torchscript(no_code)
    assert str(err.value) == (
        f"{no_code}: cannot read the forward signature of {module}.{name}: the archive has no {code[0]}"
    )

    no_forward = rewrite_zip(
        good,
        tmp_path / "no_forward.pt",
        lambda n, d: d.replace(b"def forward(", b"def forwarded(") if n == code[0] else d,
    )
    with pytest.raises(BenchError) as err:
        describe_torchscript(no_forward)
    assert str(err.value) == (
        f"{no_forward}: cannot read the forward signature of {module}.{name}: class TokenModel has no forward method"
    )


def _globals(data: bytes) -> Any:
    """(module, name) of each GLOBAL opcode of a pickle."""
    import pickletools

    for opcode, arg, _pos in pickletools.genops(io.BytesIO(data)):
        if opcode.name == "GLOBAL":
            module, _, name = arg.partition(" ")
            yield module, name
