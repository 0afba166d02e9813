"""Model problems users hit at run time, caught before anything runs; TorchScript binding; plugin code in the CLI.

Each test is the regression test of one reported bug (the old behaviour is in
its docstring).  Every error is one exact line, ``file:line path: message`` for
a suite problem and ``benchharness: error: message`` otherwise, with exit code 2.

The models are built once per module: ``tokens.onnx`` (``ids [batch, seq]``,
int64), ``m.onnx`` (``x [N, 4]``), ``speech.onnx`` (``input [B, T]`` and
``state [2, B, 128]`` with every dynamic dimension unnamed, as some exporters
write them) and ``pair.pt`` (TorchScript ``forward(self, a, b) -> a - 2 * b``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import write_onnx

from benchharness.api import BenchError, ModelArtifact, TargetContext, file_hash
from benchharness.cli import main
from benchharness.inputs import make_inputs
from benchharness.results import load_results
from benchharness.signature import InputSpec

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from benchharness_torch import TorchBackend, _without_values  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")

ROOT = Path(__file__).parents[1]
QUICK = "measure: {min_samples: 10, max_time: 0.2, target_ci: 0.05, warmup: {max_time: 0.2}}\n"
NO_AUTOLOAD = "BENCHHARNESS_DISABLE_PLUGIN_AUTOLOAD"
#: What `inspect` says of the speech model's inputs, and of its dims; the same for a file and a suite.
SPEECH_BODY = """\

inputs:
  name    dtype    shape
  input   float32  [batch, input.1]
  state   float32  [2, state.1, 128]

outputs:
  name       dtype    shape
  logits     float32  [logits.0, 10]
  new_state  float32  [2, new_state.1, 128]

batch: the suite's batch_sizes
dims to set in the suite: input.1, state.1   e.g. dims: {input.1: 1, state.1: 1}"""
PAIR_BODY = """\
def forward(self, a: Tensor, b: Tensor) -> Tensor

inputs:
  name    dtype    shape
  a       ?        ?
  b       ?        ?

shapes unknown: declare each input's shape under 'inputs' in the suite"""
SPEECH_PARAMETERS = 1 * 128 + 128 + 128 * 10 + 10


class Speech(torch.nn.Module):
    """A streaming speech model: ``input [B, T]`` and ``state [2, B, 128]``."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Linear(1, 128)
        self.out = torch.nn.Linear(128, 10)

    def forward(self, input: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: A002
        return self.out(self.emb(input.unsqueeze(-1)).mean(1) + state.sum(0)), state * 0.5


class Pair(torch.nn.Module):
    """Two inputs of one shape whose order matters."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a - 2 * b


class SumOfList(torch.nn.Module):
    """A forward that takes a list: a tensor fed to it is a TorchScript type error that prints the tensor."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return xs[0] + xs[1]


def _increment(x: int) -> int:
    return x + 1


def _speech_onnx(path: Path) -> None:
    """Export with named dynamic axes, then clear every dim_param: the graph says "dynamic", nothing more."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Speech().eval(),
            (torch.zeros(2, 7), torch.zeros(2, 2, 128)),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input", "state"],
            output_names=["logits", "new_state"],
            dynamic_axes={"input": [0, 1], "state": [1], "logits": [0], "new_state": [1]},
        )
    model = onnx.load(str(path))
    for value in [*model.graph.input, *model.graph.output]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.WhichOneof("value") == "dim_param":
                dim.Clear()
    onnx.save(model, str(path))


def _script(obj: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated
        return torch.jit.script(obj)


def _jit_save(module: Any, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(module, str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    write_onnx(folder / "tokens.onnx", {"ids": (["batch", "seq"], onnx.TensorProto.INT64)})
    write_onnx(folder / "m.onnx")
    _speech_onnx(folder / "speech.onnx")
    _jit_save(_script(Pair()), folder / "pair.pt")
    return folder


@pytest.fixture(autouse=True)
def _builtins_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed third-party plugins must not change the lists of known names in the messages."""
    monkeypatch.setenv(NO_AUTOLOAD, "1")


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``benchharness ARGS`` in this process: (exit code, stdout, stderr); never a traceback."""

    def call(*args: str | Path) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    return call


def lines(text: str, path: Path) -> str:
    """Expected stderr: ``{p}`` is the suite's path; one line each, newline-terminated."""
    return "".join(line.replace("{p}", str(path)) + "\n" for line in text.strip("\n").splitlines())


def size_text(path: Path) -> str:
    size = path.stat().st_size
    assert 1e3 <= size < 1e6
    return f"{size / 1e3:.3g} kB"


# ------------------------------------------------------------------ 1. validate checks each model


def test_a_dynamic_dimension_without_a_value(models: Path, write_suite: Callable[..., Path], cli: Cli) -> None:
    """Old: validate passed; each case failed in its worker ("dimension 'seq' has no value")."""
    suite = write_suite(
        f"""
        name: tokens
        models:
          - source: onnx
            path: {models / "tokens.onnx"}
        backends:
          - name: onnxruntime
        """
    )
    assert cli("validate", suite) == (
        2,
        "",
        lines(
            "{p}:3 models[0]: model 'tokens': dimension 'seq' of input 'ids' [batch, seq] has no value; "
            "set it under 'dims' (the model's dynamic dimensions: seq)",
            suite,
        ),
    )


def test_an_input_the_model_does_not_have(models: Path, write_suite: Callable[..., Path], cli: Cli) -> None:
    """Old: validate passed; the run failed with a bare ``KeyError: 'state'`` (the declared inputs replaced the graph's)."""
    suite = write_suite(
        f"""
        name: speech
        models:
          - source: onnx
            path: {models / "speech.onnx"}
            inputs:
              - {{name: input, shape: [batch, 512]}}
              - {{name: hidden, shape: [2, batch, 128]}}
        backends:
          - name: onnxruntime
        """
    )
    assert cli("validate", suite) == (
        2,
        "",
        lines("{p}:7 models[0].inputs[1].name: model 'speech' has no input 'hidden'; its inputs: input, state", suite),
    )


def test_declared_rank_size_and_dtype_must_match_the_graph(
    models: Path, write_suite: Callable[..., Path], cli: Cli
) -> None:
    """Old: validate passed; onnxruntime refused each case at run time ("Invalid rank", "Unexpected input data type")."""
    suite = write_suite(
        f"""
        name: mismatch
        models:
          - name: rank
            source: onnx
            path: {models / "m.onnx"}
            inputs: [{{name: x, shape: [batch, 4, 1]}}]
          - name: size
            source: onnx
            path: {models / "m.onnx"}
            inputs: [{{name: x, shape: [batch, 5]}}]
          - name: dtype
            source: onnx
            path: {models / "m.onnx"}
            inputs: [{{name: x, dtype: int64}}]
        backends:
          - name: onnxruntime
        """
    )
    assert cli("validate", suite) == (
        2,
        "",
        lines(
            """
{p}:6 models[0].inputs[0].shape: input 'x' has rank 2 in the model [batch, 4], not 3
{p}:10 models[1].inputs[0].shape: input 'x': dimension 1 is 4 in the model [batch, 4], not 5
{p}:14 models[2].inputs[0].dtype: input 'x' is float32 in the model, not int64
""",
            suite,
        ),
    )


def test_a_backend_that_cannot_take_the_model_format(models: Path, write_suite: Callable[..., Path], cli: Cli) -> None:
    """Old: validate passed; the case failed in its worker ("no installed converter turns 'onnx' into ...")."""
    text = f"""
        name: pairing
        models:
          - source: onnx
            path: {models / "m.onnx"}
        backends:
          - name: torch
          - name: onnxruntime
        """
    suite = write_suite(text)
    assert cli("validate", suite) == (
        2,
        "",
        lines(
            "{p}:6 backends[0]: backend 'torch' takes torch, torchscript models and no installed converter turns "
            "model 'm' (onnx) into one of them; exclude the pair: {model: m, backend: torch}",
            suite,
        ),
    )
    # The advice works.
    suite = write_suite(text.rstrip(" ") + "        exclude: [{model: m, backend: torch}]\n")
    assert cli("validate", suite) == (0, f"{suite}: ok (1 case)\n", "")


def test_a_torchscript_model_needs_its_input_shapes(models: Path, write_suite: Callable[..., Path], cli: Cli) -> None:
    """Old: validate passed; the case failed in its worker ("source 'torchscript' cannot tell its inputs")."""
    text = f"""
        name: ts
        models:
          - source: torchscript
            path: {models / "pair.pt"}
        backends:
          - name: torch
        """
    suite = write_suite(text)
    assert cli("validate", suite) == (
        2,
        "",
        lines(
            "{p}:3 models[0]: model 'pair': the torchscript schema names input(s) a, b but gives no shapes; "
            "declare each under 'inputs' with its 'shape'",
            suite,
        ),
    )
    declared = text.replace(
        "        backends:",
        "            inputs: [{name: a, shape: [batch, 3]}, {name: b, shape: [batch, 3]}]\n        backends:",
    )
    suite = write_suite(declared)
    assert cli("validate", suite) == (0, f"{suite}: ok (1 case)\n", "")


def test_inspect_names_the_speech_model_s_unnamed_dims(models: Path, cli: Cli) -> None:
    """Old: no ``inspect``; the unnamed dims of both inputs were called ``dim1``, so one value set both."""
    path = models / "speech.onnx"
    header = f"speech.onnx (onnx, opset 17, {SPEECH_PARAMETERS:,} parameters, {size_text(path)})\n"
    assert cli("inspect", path) == (0, header + SPEECH_BODY + "\n", "")


SPEECH_SUITE = """
    name: speech
    models:
      - source: onnx
        path: {path}
        dims: {dims}
    backends:
      - name: onnxruntime
    """


def test_speech_model_old_dim_name_is_refused(models: Path, write_suite: Callable[..., Path], cli: Cli) -> None:
    """Old: ``dims: {dim1: 512}`` validated and ran with ``state`` [2, 512, 128] (its batch dimension set to 512)."""
    suite = write_suite(SPEECH_SUITE.format(path=models / "speech.onnx", dims="{dim1: 512}"))
    known = "(the model's dynamic dimensions: input.1, state.1)"
    assert cli("validate", suite) == (
        2,
        "",
        lines(
            f"""
{{p}}:5 models[0].dims: model 'speech': dimension 'input.1' of input 'input' [batch, input.1] has no value; set it under 'dims' {known}
{{p}}:5 models[0].dims: model 'speech': dimension 'state.1' of input 'state' [2, state.1, 128] has no value; set it under 'dims' {known}
{{p}}:5 models[0].dims.dim1: 'dim1' is not a dimension of any input of 'speech'; the model's dynamic dimensions: input.1, state.1
""",
            suite,
        ),
    )


def test_validate_in_a_subprocess_is_lines_and_exit_2(models: Path, write_suite: Callable[..., Path]) -> None:
    """The real command: no traceback, the problem lines on stderr, nothing on stdout, exit 2."""
    suite = write_suite(SPEECH_SUITE.format(path=models / "speech.onnx", dims="{dim1: 512}"))
    proc = subprocess.run(
        [sys.executable, "-m", "benchharness", "validate", str(suite)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, NO_AUTOLOAD: "1"},
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert "Traceback" not in proc.stderr
    assert [line.split(" ", 2)[:2] for line in proc.stderr.splitlines()] == [
        [f"{suite}:5", "models[0].dims:"],
        [f"{suite}:5", "models[0].dims:"],
        [f"{suite}:5", "models[0].dims.dim1:"],
    ]


def test_speech_model_with_its_dims_validates_and_runs(
    models: Path, write_suite: Callable[..., Path], cli: Cli, tmp_path: Path
) -> None:
    """With the names ``inspect`` prints, each input gets its own value: state keeps its batch of 1."""
    suite = write_suite(SPEECH_SUITE.format(path=models / "speech.onnx", dims="{input.1: 512, state.1: 1}") + QUICK)
    assert cli("validate", suite) == (0, f"{suite}: ok (1 case)\n", "")
    code, _, err = cli("run", suite, "-o", tmp_path / "out", "-q", "--launcher", "inline")
    assert code == 0, err
    (results,) = (load_results(p) for p in (tmp_path / "out").glob("*.json"))
    (case,) = results.cases
    assert case.status == "ok", case.error
    assert case.runtime.model is not None
    assert [(i.name, i.shape) for i in case.runtime.model.inputs] == [("input", [1, 512]), ("state", [2, 1, 128])]


# ------------------------------------------------------------------ 2. TorchScript inputs are bound by name


def _torch_backend() -> TorchBackend:
    return TorchBackend(TorchBackend.Options(), TargetContext(device="cpu", threads=1))


def _torchscript(path: Path, inputs: list[InputSpec]) -> ModelArtifact:
    """The artifact a worker builds, made directly: no validate in between."""
    return ModelArtifact(format="torchscript", content_hash=file_hash(path), path=path, inputs=inputs)


def test_torchscript_inputs_are_bound_by_name_not_position(models: Path) -> None:
    """Old: inputs went to ``forward`` in the suite's order, so ``[b, a]`` computed b - 2a without a word."""
    specs = [InputSpec(name=name, shape=[2, 3], dtype="float32") for name in ("b", "a")]
    backend = _torch_backend()
    backend.load(_torchscript(models / "pair.pt", specs))
    arrays = make_inputs(specs, seed=0)
    assert not np.allclose(arrays["a"], arrays["b"])
    outputs = backend.to_numpy(backend.infer(backend.prepare(arrays)))
    assert list(outputs) == ["output0"]
    np.testing.assert_allclose(outputs["output0"], arrays["a"] - 2 * arrays["b"], rtol=1e-6)
    backend.close()


def test_an_input_the_torchscript_forward_does_not_have(models: Path) -> None:
    """The expected argument names are listed; the message holds no tensor."""
    specs = [InputSpec(name=name, shape=[2, 3], dtype="float32") for name in ("x", "a")]
    with pytest.raises(BenchError) as info:
        _torch_backend().load(_torchscript(models / "pair.pt", specs))
    assert str(info.value) == (
        "torchscript forward(a, b): it has no argument 'x'; argument 'b' is not given; "
        "name the suite's inputs after its arguments"
    )


def test_torchscript_type_errors_never_print_the_tensor() -> None:
    """TorchScript appends ``Value: tensor(...)`` (the whole input, over many lines) to a type error."""
    scripted = _script(_increment)
    with pytest.raises(RuntimeError) as info:
        scripted(torch.full((3, 4), 7.25))
    message = str(info.value)
    assert "Value: tensor([[7.2500" in message
    assert _without_values(message) == (
        "_increment() Expected a value of type 'int' for argument 'x' but instead found type 'Tensor'. "
        "Position: 0 (value not shown)"
    )


def test_a_failing_torchscript_forward_is_one_line_without_values(tmp_path: Path) -> None:
    path = _jit_save(_script(SumOfList()), tmp_path / "sum.pt")
    spec = InputSpec(name="xs", shape=[2, 3], dtype="float32")
    backend = _torch_backend()
    backend.load(_torchscript(path, [spec]))
    feed = backend.prepare({"xs": np.full((2, 3), 7.25, dtype=np.float32)})
    with pytest.raises(BenchError) as info:
        backend.infer(feed)
    assert str(info.value) == (
        "torch: the model's forward failed: forward() Expected a value of type 'List[Tensor]' for argument 'xs' "
        "but instead found type 'Tensor'. Position: 1 (value not shown)"
    )


# ------------------------------------------------------------------ 3. a failed conversion says which


def test_a_failed_conversion_names_the_model_formats_and_converter(
    write_suite: Callable[..., Path], cli: Cli, tmp_path: Path
) -> None:
    """Old: the case's error was the exporter's alone ("UnsupportedOperatorError: Exporting the operator ...")."""
    suite = write_suite(
        """
        name: convert
        models:
          - source: python
            factory: bh_models:inverse
            inputs: [{name: x, shape: [batch, 3, 3]}]
        backends:
          - name: onnxruntime
        """
        + QUICK
    )
    code, _, err = cli("run", suite, "-o", tmp_path / "out", "-q", "--launcher", "inline")
    assert code == 1
    assert err.endswith("1 of 1 cases failed: inverse/none/onnxruntime/cpu/latency/b1 (error)\n")
    (results,) = (load_results(p) for p in (tmp_path / "out").glob("*.json"))
    (case,) = results.cases
    assert case.error is not None
    assert case.error.startswith("converting inverse (torch) to onnx with torch-onnx failed: ")
    assert "'aten::linalg_inv'" in case.error
    assert "\n" not in case.error


# ------------------------------------------------------------------ 4. plugin code in the CLI process


@pytest.mark.parametrize(
    "crash_in, message",
    [
        ("describe", "failed in describe: ZeroDivisionError: division by zero"),
        (
            "default_name",
            "failed in default_name: AttributeError: 'BadOptions' object has no attribute 'no_such_option'",
        ),
        ("describe-type", "failed in describe: returned dict, expected ModelSignature or None"),
    ],
)
def test_a_model_source_raising_in_validate(
    crash_in: str, message: str, write_suite: Callable[..., Path], cli: Cli
) -> None:
    """Old: a traceback (default_name), or validate passed and the case failed later in its worker."""
    suite = write_suite(
        f"""
        name: bad
        models:
          - source: bad-source
            crash_in: {crash_in}
        backends:
          - name: onnxruntime
        """
    )
    expected = lines(f"{{p}}:3 models[0]: plugin 'bh_badcode' (model source 'bad-source') {message}", suite)
    assert cli("validate", "-p", "bh_badcode", suite) == (2, "", expected)


def test_a_reporter_raising_in_show(cli: Cli) -> None:
    """Old: a traceback and exit 1."""
    results = ROOT / "tests" / "data" / "results-v2-models.json"
    assert cli("show", "-p", "bh_badcode", "--format", "bad-reporter", results) == (
        2,
        "",
        "benchharness: error: plugin 'bh_badcode' (reporter 'bad-reporter') failed in render: "
        "AttributeError: 'RunResults' object has no attribute 'no_such_field'\n",
    )


# ------------------------------------------------------------------ 5. -p


def test_a_p_module_that_does_not_import_is_one_error(models: Path, write_suite: Callable[..., Path], cli: Cli) -> None:
    """Old: a warning, then the command went on and exited 0."""
    suite = write_suite(SPEECH_SUITE.format(path=models / "speech.onnx", dims="{input.1: 512, state.1: 1}"))
    assert cli("validate", "-p", "no_such_module", suite) == (
        2,
        "",
        "benchharness: error: -p no_such_module: failed to import: "
        "ModuleNotFoundError: No module named 'no_such_module'\n",
    )


def test_p_before_the_command(cli: Cli) -> None:
    """Old: argparse refused ``-p`` before the command (exit 2)."""
    code, out, err = cli("-p", "bh_testplugin", "plugins", "--json")
    assert (code, err) == (0, "")
    (record,) = [r for r in json.loads(out) if r["name"] == "bh_testplugin"]
    assert (record["origin"], record["module"], record["error"]) == ("-p", "bh_testplugin", None)
    assert ("backend", "scripted") in [(item["kind"], item["name"]) for item in record["provides"]]


def test_blocking_the_builtin_zoo(write_suite: Callable[..., Path], cli: Cli) -> None:
    """Old: ``-p no:zoo`` was taken for a module name: a failed-import warning, and the zoo stayed."""
    suite = write_suite(
        """
        name: zoo
        models:
          - {source: zoo, arch: mobilenet_v2, width: 0.25, input_size: 32, num_classes: 10}
        backends:
          - name: onnxruntime
        """
    )
    assert cli("validate", suite) == (0, f"{suite}: ok (1 case)\n", "")
    assert cli("validate", "-p", "no:zoo", suite) == (
        2,
        "",
        lines("{p}:3 models[0].source: unknown model source 'zoo'; known: onnx, openvino-ir, python, torchscript", suite),
    )
    code, out, err = cli("plugins", "--json", "-p", "no:zoo")
    assert (code, err) == (0, "")
    (zoo,) = [r for r in json.loads(out) if r["name"] == "zoo"]
    assert (zoo["origin"], zoo["error"], zoo["provides"]) == ("builtin", "blocked (-p no:zoo)", [])


def test_blocking_an_unknown_plugin_warns_once(models: Path, write_suite: Callable[..., Path], cli: Cli) -> None:
    """Old: "plugin 'no:nothing' failed to import: ModuleNotFoundError" (a module name, not a block)."""
    suite = write_suite(SPEECH_SUITE.format(path=models / "speech.onnx", dims="{input.1: 512, state.1: 1}"))
    assert cli("-p", "no:nothing", "validate", "-p", "no:nothing", suite) == (
        0,
        f"{suite}: ok (1 case)\n",
        "benchharness: warning: -p no:nothing: there is no plugin named 'nothing'\n",
    )


# ------------------------------------------------------------------ 6. inspect


def test_inspect_onnx_json(models: Path, cli: Cli) -> None:
    path = models / "speech.onnx"
    proto = onnx.load(str(path))
    code, out, err = cli("inspect", path, "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [
        {
            "model": "speech.onnx",
            "format": "onnx",
            "inputs": [
                {"name": "input", "shape": ["batch", "input.1"], "dtype": "float32"},
                {"name": "state", "shape": [2, "state.1", 128], "dtype": "float32"},
            ],
            "outputs": [
                {"name": "logits", "shape": ["logits.0", 10], "dtype": "float32"},
                {"name": "new_state", "shape": [2, "new_state.1", 128], "dtype": "float32"},
            ],
            "optional_inputs": [],
            "parameters": SPEECH_PARAMETERS,
            "details": {
                "opset": 17,
                "ir_version": proto.ir_version,
                "producer": f"{proto.producer_name} {proto.producer_version}",
                "file_bytes": path.stat().st_size,
            },
        }
    ]


def test_inspect_torchscript(models: Path, cli: Cli) -> None:
    path = models / "pair.pt"
    assert cli("inspect", path) == (0, f"pair.pt (torchscript, {size_text(path)})\n{PAIR_BODY}\n", "")


def test_inspect_a_suite_describes_each_model(models: Path, write_suite: Callable[..., Path], cli: Cli) -> None:
    """Models are listed by label; the suite need not validate (its dims are wrong here)."""
    suite = write_suite(
        f"""
        name: both
        models:
          - source: onnx
            path: {models / "speech.onnx"}
            dims: {{dim1: 512}}
          - source: torchscript
            path: {models / "pair.pt"}
            name: pair-ts
        backends:
          - name: onnxruntime
        """
    )
    speech = f"speech (onnx, opset 17, {SPEECH_PARAMETERS:,} parameters, {size_text(models / 'speech.onnx')})\n"
    pair = f"pair-ts (torchscript, {size_text(models / 'pair.pt')})\n"
    assert cli("inspect", suite) == (0, speech + SPEECH_BODY + "\n\n" + pair + PAIR_BODY + "\n", "")


def test_inspect_a_relative_path_in_a_folder(
    models: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``inspect sub/m.onnx`` once looked for ``sub/sub/m.onnx``."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pair.pt").write_bytes((models / "pair.pt").read_bytes())
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("inspect", "sub/pair.pt")
    assert (code, err) == (0, "")
    assert out.startswith("pair.pt (torchscript, ")


def test_inspect_an_unknown_suffix(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0" * 8)
    assert cli("inspect", path) == (
        2,
        "",
        f"benchharness: error: {path}: no model source reads .bin files; they read: .jit (torchscript), "
        ".onnx (onnx), .pt (torchscript), .pth (torchscript), .torchscript (torchscript), .xml (openvino-ir)\n",
    )


def test_inspect_a_file_without_a_suffix(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "model"
    path.write_bytes(b"\0" * 8)
    code, out, err = cli("inspect", path)
    assert (code, out) == (2, "")
    assert err.startswith(f"benchharness: error: {path}: no model source reads files without a suffix; they read: ")


def test_inspect_with_a_source_that_reads_no_files(models: Path, cli: Cli) -> None:
    """Once a pydantic traceback: the zoo's options have no ``path``."""
    path = models / "speech.onnx"
    assert cli("inspect", path, "--source", "zoo") == (
        2,
        "",
        f"benchharness: error: {path}: model source 'zoo' does not read files (arch: Field required)\n",
    )


@pytest.mark.parametrize("name", ["missing.onnx", "missing.bin", "missing.yaml"])
def test_inspect_a_missing_file(name: str, cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / name
    assert cli("inspect", path) == (2, "", f"benchharness: error: {path}: no such file\n")


LAZY_INSPECT = """
import sys
from benchharness.cli import main
code = main(sys.argv[1:])
print("HEAVY", sorted(m for m in ("torch", "onnxruntime") if m in sys.modules), "CODE", code)
"""


@pytest.mark.parametrize("target", ["speech.onnx", "pair.pt", "suite"])
def test_inspect_imports_neither_torch_nor_onnxruntime(
    target: str, models: Path, write_suite: Callable[..., Path]
) -> None:
    if target == "suite":
        path = write_suite(SPEECH_SUITE.format(path=models / "speech.onnx", dims="{}"))
    else:
        path = models / target
    proc = subprocess.run(
        [sys.executable, "-c", LAZY_INSPECT, "inspect", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, NO_AUTOLOAD: "1"},
    )
    assert "HEAVY [] CODE 0" in proc.stdout, proc.stdout + proc.stderr
