"""Suite input is bounded and strict: each refusal is one ``file:line field: message`` line and exit code 2.

* A boolean where a number belongs is an error, not ``1`` (``threads: true``), in the core's fields and in
  every plugin's ``Options``, a third-party one's included, inside lists, dicts and unions.
* What a worker would refuse, ``validate`` refuses: ``inf``/``nan`` (JSON would carry them as ``null``),
  ``!!binary``, a seed outside 0..2**32-1, an option that changes on its way through JSON.
* A suite file is a regular file of at most ``MAX_SUITE_BYTES``, of at most ``MAX_SUITE_NODES`` nodes once
  its aliases are expanded, nested at most ``MAX_SUITE_DEPTH`` levels; each is refused within seconds.
* A model path that is a directory or a device says so.

The slow or dangerous inputs (an alias bomb, a FIFO, ``/dev/zero``) run ``benchharness`` in a subprocess
with a memory cap and a timeout, so the code before these limits fails the tests instead of hanging them.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Optional

import pytest
from conftest import ONNX_SUITE, write_onnx
from conftest import write_suite_and_model as write
from pydantic import BaseModel, Field, PositiveInt, ValidationError

from benchharness.api import BackendOptions, ModelContext, Options
from benchharness.cli import main
from benchharness.errors import BenchError, SuiteError
from benchharness.plugins import PluginHost
from benchharness.settings import MAX_SEED, MeasureSettings
from benchharness.signature import InputSpec
from benchharness.suite import check_suite
from benchharness.yamlfile import MAX_SUITE_BYTES, MAX_SUITE_DEPTH, MAX_SUITE_NODES, LocatedDocument, load_yaml

# Lines 1-6; additions start on line 7.
BASE = ONNX_SUITE

BOOL = "expected a number, got a boolean (true)"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, list[str]]:
    """Run the CLI in this process: its exit code, its stdout and its stderr lines."""
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err.splitlines()


def refused(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> list[str]:
    """``validate`` the suite: exit code 2, nothing on stdout; its stderr lines."""
    code, out, lines = cli(capsys, "validate", *extra, str(path))
    assert (code, out) == (2, ""), lines
    return lines


def accepted(capsys: pytest.CaptureFixture[str], path: Path) -> None:
    """``validate`` the suite: exit code 0, no complaint."""
    assert cli(capsys, "validate", str(path)) == (0, f"{path}: ok (1 case)\n", [])


# ------------------------------------------------------------------ booleans are not numbers

BOOLEAN_CASES = {
    "batch-sizes": ("batch_sizes: [1, true]\n", "{p}:7 batch_sizes[1]"),
    "backend-threads": (BASE.replace("onnxruntime\n", "onnxruntime\n    threads: true\n"), "{p}:7 backends[0].threads"),
    "inter-op-threads": (
        BASE.replace("onnxruntime\n", "onnxruntime\n    inter_op_threads: true\n"),
        "{p}:7 backends[0].inter_op_threads",
    ),
    "measure-min-samples": ("measure:\n  min_samples: true\n", "{p}:8 measure.min_samples"),
    "measure-seed": ("measure: {seed: true}\n", "{p}:7 measure.seed"),
    "warmup-window": ("measure:\n  warmup: {window: true}\n", "{p}:8 measure.warmup.window"),
    "target-threads": ("targets: [{name: cpu, threads: true}]\n", "{p}:7 targets[0].threads"),
    "target-cores": ("targets:\n  - name: cpu\n    cores: [0, true]\n", "{p}:9 targets[0].cores[1]"),
    "input-range": (
        BASE.replace("m.onnx\n", "m.onnx\n    inputs: [{name: x, range: [true, 2]}]\n"),
        "{p}:5 models[0].inputs[0].range[0]",
    ),
    "input-shape": (
        BASE.replace("m.onnx\n", "m.onnx\n    inputs: [{name: x, shape: [batch, true]}]\n"),
        "{p}:5 models[0].inputs[0].shape[1]",
    ),
    "dims": (BASE.replace("m.onnx\n", "m.onnx\n    dims: {N: true}\n"), "{p}:5 models[0].dims.N"),
    "include-batch": ("include: [{batch: true}]\n", "{p}:7 include[0].batch"),
}


@pytest.mark.parametrize("text, where", BOOLEAN_CASES.values(), ids=BOOLEAN_CASES.keys())
def test_a_boolean_is_not_a_number(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str) -> None:
    """Each numeric field, the core's and the built-in plugins', refuses ``true`` with one line."""
    path = write(tmp_path, text if text.startswith("name:") else BASE + text)
    assert refused(capsys, path) == [f"{where.replace('{p}', str(path))}: {BOOL}"]


def test_zoo_options_refuse_booleans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The zoo's ``width`` and ``input_size`` took ``true`` as 1; a ``bool`` option still takes it."""
    path = write(
        tmp_path,
        """\
        name: s
        models:
          - {source: zoo, arch: mobilenet_v2, width: true, input_size: 32}
          - {source: zoo, arch: resnet, input_size: true}
        backends: [{name: torch, channels_last: true}]
        """,
    )
    assert refused(capsys, path) == [f"{path}:3 models[0].width: {BOOL}", f"{path}:4 models[1].input_size: {BOOL}"]
    path.write_text(
        path.read_text().replace("width: true", "width: 0.25").replace("input_size: true", "input_size: 32")
    )
    assert cli(capsys, "validate", str(path)) == (0, f"{path}: ok (2 cases)\n", [])


def test_run_refuses_a_boolean_before_any_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``threads: true`` ran one thread and was recorded as ``true``; now nothing runs and nothing is written."""
    path = write(tmp_path, BASE.replace("onnxruntime\n", "onnxruntime\n    threads: true\n"))
    code, out, lines = cli(capsys, "run", str(path), "-o", str(tmp_path / "out"))
    assert (code, out, lines) == (2, "", [f"{path}:7 backends[0].threads: {BOOL}"])
    assert not (tmp_path / "out").exists()


class ThirdPartyOptions(Options):
    """A third-party plugin's options, written against the public API only."""

    count: int = 1
    sizes: list[int] = Field(default_factory=list)
    limits: dict[str, int] = Field(default_factory=dict)
    scale: Optional[float] = None  # noqa: UP045 - the old spelling must work too
    ratio: float | None = None
    pair: tuple[float, float] = (0.0, 1.0)
    nested: list[dict[str, PositiveInt]] = Field(default_factory=list)
    level: Literal[1, 2, 3] = 1
    flag: bool = False
    either: int | bool = 0
    anything: Any = None
    where: Path | None = None


@pytest.mark.parametrize(
    "data, loc",
    [
        ({"count": True}, ("count",)),
        ({"count": False}, ("count",)),
        ({"sizes": [1, True]}, ("sizes", 1)),
        ({"limits": {"a": 1, "b": True}}, ("limits", "b")),
        ({"scale": True}, ("scale",)),
        ({"ratio": True}, ("ratio",)),
        ({"pair": [0.5, True]}, ("pair", 1)),
        ({"nested": [{"a": 1}, {"b": True}]}, ("nested", 1, "b")),
        ({"level": True}, ("level",)),
    ],
    ids=["int", "int-false", "list", "dict", "optional", "union-none", "tuple", "nested", "literal"],
)
def test_third_party_options_refuse_booleans_for_numbers(data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    """The mechanism lives on ``Options``: a subclass it never saw gets it, at the exact location."""
    with pytest.raises(ValidationError) as info:
        ThirdPartyOptions.model_validate(data)
    errors = info.value.errors(include_url=False)
    assert [(e["loc"], e["type"]) for e in errors] == [(loc, "bool_for_number")]
    assert errors[0]["msg"].startswith("expected a number, got a boolean (")


def test_third_party_options_refuse_only_booleans() -> None:
    """Booleans stay booleans where the type takes them; lists become tuples, strings paths and numbers."""
    lax = {"flag": True, "either": True, "anything": [True, 1.5], "pair": [0, "2.5"], "where": "m.onnx", "ratio": "0.5"}
    with pytest.raises(ValidationError) as info:
        ThirdPartyOptions.model_validate({**lax, "count": True})
    assert [e["loc"] for e in info.value.errors()] == [("count",)]  # only the boolean where a number belongs
    options = ThirdPartyOptions.model_validate(lax)
    assert options.flag is True and options.either is True and options.anything == [True, 1.5]
    assert options.pair == (0.0, 2.5) and options.where == Path("m.onnx") and options.ratio == 0.5
    assert ThirdPartyOptions.model_validate({"either": 3}).either == 3
    assert InputSpec.model_validate({"name": "mask", "dtype": "bool", "value": True}).value is True


def test_a_plain_pydantic_model_inside_options_is_checked_too() -> None:
    """A nested model that is not an ``Options`` (a plugin's own ``BaseModel``) is looked into by its parent."""

    class Inner(BaseModel):
        n: int = 0

    class Outer(Options):
        inner: Inner = Field(default_factory=Inner)
        inners: list[Inner] = Field(default_factory=list)

    with pytest.raises(ValidationError) as info:
        Outer.model_validate({"inner": {"n": True}, "inners": [{"n": 1}, {"n": True}]})
    assert [e["loc"] for e in info.value.errors()] == [("inner", "n"), ("inners", 1, "n")]


PLUGIN = """\
from datetime import date
from typing import ClassVar

from pydantic import BaseModel, Field

from benchharness.api import Backend, BackendOptions, hookimpl


class LimitsOptions(BackendOptions):
    count: int = 1
    sizes: list[int] = Field(default_factory=list)
    flag: bool = False
    day: date | None = Field(None, strict=True)


class LimitsBackend(Backend):
    name = "limits"
    formats = ("onnx",)
    Options: ClassVar[type[BaseModel]] = LimitsOptions

    def load(self, artifact): ...
    def prepare(self, inputs): return inputs
    def infer(self, feed): return feed
    def to_numpy(self, outputs): return outputs


@hookimpl
def benchharness_register_backends(register):
    register(LimitsBackend)
"""


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A third-party plugin module ``bh_limits`` in the test's folder, loaded with ``-p bh_limits``."""
    (tmp_path / "bh_limits.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "bh_limits", raising=False)
    yield "bh_limits"
    sys.modules.pop("bh_limits", None)


def test_a_third_party_backend_refuses_booleans_in_a_suite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], third_party: str
) -> None:
    path = write(
        tmp_path,
        BASE.replace("onnxruntime\n", "limits\n    count: true\n    sizes: [2, true]\n    flag: true\n"),
    )
    assert refused(capsys, path, "-p", third_party) == [
        f"{path}:7 backends[0].count: {BOOL}",
        f"{path}:8 backends[0].sizes[1]: {BOOL}",
    ]


def test_an_option_the_worker_would_get_changed_by_json_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], third_party: str
) -> None:
    """YAML gives a date; JSON gives the worker a string, which a strict ``date`` refuses: so does validate."""
    path = write(tmp_path, BASE.replace("onnxruntime\n", "limits\n    day: 2024-05-01\n"))
    assert refused(capsys, path, "-p", third_party) == [
        f"{path}:7 backends[0].day: Input should be a valid date (as a worker gets it, through JSON)"
    ]


# ------------------------------------------------------------------ what a worker refuses, validate refuses


NON_FINITE_CASES = {
    "measure": ("measure:\n  max_time: .inf\n", "{p}:8 measure.max_time: non-finite number .inf is not allowed"),
    "zoo-width": (
        "name: s\nmodels:\n  - {source: zoo, arch: resnet, width: .inf}\nbackends: [{name: torch}]\n",
        "{p}:3 models[0].width: non-finite number .inf is not allowed",
    ),
    "negative-in-a-list": (
        BASE.replace("m.onnx\n", "m.onnx\n    inputs: [{name: x, range: [-.INF, 0]}]\n"),
        "{p}:5 models[0].inputs[0].range[0]: non-finite number -.INF is not allowed",
    ),
    "nan-in-python-kwargs": (
        "name: s\nmodels:\n  - source: python\n    factory: 'm:f'\n    kwargs: {eps: .nan}\n"
        "    inputs: [{name: x, shape: [batch, 4]}]\nbackends: [{name: torch}]\n",
        "{p}:5 models[0].kwargs.eps: non-finite number .nan is not allowed",
    ),
    "unknown-field": ("x: [1, .inf]\n", "{p}:7 x[1]: non-finite number .inf is not allowed"),
}


@pytest.mark.parametrize("text, line", NON_FINITE_CASES.values(), ids=NON_FINITE_CASES.keys())
def test_non_finite_numbers_are_refused_where_they_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: str
) -> None:
    """``.inf`` reached the worker as ``null`` (JSON has no infinity); the loader refuses it, wherever it is."""
    path = write(tmp_path, text if text.startswith("name:") else BASE + text)
    assert refused(capsys, path) == [line.replace("{p}", str(path))]


def test_binary_data_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``!!binary`` in a factory's kwargs passed validate, then the run died serialising the payload."""
    path = write(
        tmp_path,
        "name: s\nmodels:\n  - source: python\n    factory: 'm:f'\n    kwargs: {a: !!binary /w==}\n"
        "    inputs: [{name: x, shape: [batch, 4]}]\nbackends: [{name: torch}]\n",
    )
    assert refused(capsys, path) == [
        f"{path}:5 models[0].kwargs.a: binary data (!!binary) is not allowed; a suite holds text and numbers"
    ]


def test_seed_is_what_every_generator_takes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A seed outside 0..2**32-1 passed validate, then failed in every worker."""
    for seed, bound in [(MAX_SEED + 1, "less than or equal to 4294967295"), (-1, "greater than or equal to 0")]:
        path = write(tmp_path, BASE + f"measure: {{seed: {seed}}}\n")
        assert refused(capsys, path) == [f"{path}:7 measure.seed: Input should be {bound}"]
    for seed in (0, MAX_SEED):
        accepted(capsys, write(tmp_path, BASE + f"measure: {{seed: {seed}}}\n"))


def in_memory(data: dict[str, Any], host: PluginHost, tmp_path: Path) -> list[str]:
    with pytest.raises(SuiteError) as info:
        check_suite(LocatedDocument.from_data(data), tmp_path / "suite.yaml", host)
    return info.value.problems


def test_in_memory_suites_refuse_non_finite_numbers_and_booleans(tmp_path: Path) -> None:
    """A suite built in memory never meets the YAML loader: the models refuse ``inf``, ``nan`` and ``True``."""
    host = PluginHost(autoload=False)
    write_onnx(tmp_path / "m.onnx")
    suite = {"name": "s", "models": [{"source": "onnx", "path": "m.onnx"}], "backends": [{"name": "onnxruntime"}]}
    assert in_memory({**suite, "measure": {"max_time": math.inf}}, host, tmp_path) == [
        "measure.max_time: non-finite number inf is not allowed"
    ]
    zoo = {"source": "zoo", "arch": "resnet", "width": math.inf, "depth": math.nan}
    assert in_memory({**suite, "models": [zoo]}, host, tmp_path) == [
        "models[0].width: non-finite number inf is not allowed",
        "models[0].depth: non-finite number nan is not allowed",
    ]
    python = {
        "source": "python",
        "factory": "m:f",
        "kwargs": {"eps": [1.0, -math.inf]},
        "inputs": [{"name": "x", "shape": ["batch", 4]}],
    }
    assert in_memory({**suite, "models": [python]}, host, tmp_path) == [
        "models[0].kwargs.eps[1]: non-finite number -inf is not allowed"
    ]
    assert in_memory({**suite, "backends": [{"name": "onnxruntime", "threads": True}]}, host, tmp_path) == [
        f"backends[0].threads: {BOOL}"
    ]
    with pytest.raises(ValidationError, match="non-finite number inf is not allowed"):
        MeasureSettings(timeout=math.inf)


def test_in_memory_options_that_cannot_become_json_are_refused(tmp_path: Path) -> None:
    host = PluginHost(autoload=False)
    python = {
        "source": "python",
        "factory": "m:f",
        "kwargs": {"raw": b"\xff"},
        "inputs": [{"name": "x", "shape": ["batch", 4]}],
    }
    suite = {"name": "s", "models": [python], "backends": [{"name": "torch"}]}
    [line] = in_memory(suite, host, tmp_path)
    assert line.startswith("models[0]: cannot be sent to a worker as JSON: ")


def test_backend_options_base_refuses_what_a_worker_would() -> None:
    with pytest.raises(ValidationError) as info:
        BackendOptions.model_validate({"threads": True})
    assert info.value.errors()[0]["type"] == "bool_for_number"


# ------------------------------------------------------------------ size limits


def _limited_subprocess(*args: str, cwd: Path, timeout: float = 30) -> tuple[subprocess.CompletedProcess[str], float]:
    """``benchharness`` in a process with 4 GiB of address space at most: a limit missing fails, never hangs."""

    def cap_memory() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    env = {**os.environ, "BENCHHARNESS_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONWARNINGS": "ignore"}
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchharness", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=timeout,
            preexec_fn=cap_memory,  # noqa: PLW1509 - no threads are running here
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"benchharness {' '.join(args)} ran past {timeout} s")
    return proc, time.monotonic() - start


def alias_bomb(levels: int) -> str:
    """A 'billion laughs' suite: ``levels`` lines of ten aliases each expand to 10**levels nodes."""
    lines = ["name: s", "models: [{source: onnx, path: m.onnx}]", "backends: [{name: onnxruntime}]"]
    lines.append("a0: &a0 [" + ", ".join(["lol"] * 10) + "]")
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_within_seconds(tmp_path: Path) -> None:
    """10**8 nodes ran for minutes and ended in a MemoryError traceback; now one line, at once."""
    path = write(tmp_path, alias_bomb(8), "bomb.yaml")
    proc, elapsed = _limited_subprocess("validate", path.name, cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    [line] = proc.stderr.splitlines()
    assert line.startswith("bomb.yaml:4 a4[")  # the lol list on line 4, reached through line 5's aliases
    assert line.endswith(
        f": more than {MAX_SUITE_NODES} YAML nodes (keys, values and list items, aliases expanded), "
        "the limit for a suite"
    )
    assert elapsed < 20


def test_node_limit_boundary(tmp_path: Path) -> None:
    """Exactly MAX_SUITE_NODES nodes load; one more is refused (root, key and list are three of them)."""
    path = tmp_path / "s.yaml"
    path.write_text("x: [" + "0, " * (MAX_SUITE_NODES - 4) + "0]\n")
    assert len(load_yaml(path).data["x"]) == MAX_SUITE_NODES - 3
    path.write_text("x: [" + "0, " * (MAX_SUITE_NODES - 3) + "0]\n")
    with pytest.raises(SuiteError) as info:
        load_yaml(path)
    assert info.value.problems == [
        f"{path}:1: more than {MAX_SUITE_NODES} YAML nodes (keys, values and list items, aliases expanded), "
        "the limit for a suite"
    ]


def test_a_shared_anchor_counts_once_per_use(tmp_path: Path) -> None:
    """Nodes are counted as aliases expand them: few nodes written, too many once expanded."""
    fan = 400
    text = "a: &a [" + ", ".join(["0"] * fan) + "]\nb: [" + ", ".join(["*a"] * (MAX_SUITE_NODES // fan)) + "]\n"
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError) as info:
        load_yaml(path)
    [line] = info.value.problems
    assert line.startswith(f"{path}:1 b[") and "aliases expanded" in line


def test_a_suite_over_the_size_limit_is_refused_before_it_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1 MiB suite loads; one byte more is refused by its size alone (it was parsed for minutes before)."""
    path = write(tmp_path, BASE)
    path.write_text(BASE + "#" * (MAX_SUITE_BYTES - len(BASE) - 1) + "\n")
    assert path.stat().st_size == MAX_SUITE_BYTES
    accepted(capsys, path)
    path.write_text(BASE + "#" * (MAX_SUITE_BYTES - len(BASE)) + "\n")
    assert refused(capsys, path) == [
        f"{path}: {MAX_SUITE_BYTES + 1} bytes, over the limit of {MAX_SUITE_BYTES} bytes (1 MiB) for a suite"
    ]


def test_a_huge_flat_suite_is_cut_off_while_composing(tmp_path: Path) -> None:
    """Under 1 MiB but 350,000 list items: refused once the composer passes the limit, not after building all."""
    path = tmp_path / "s.yaml"
    path.write_text("x: [" + "1, " * 349_000 + "1]\n")
    assert path.stat().st_size <= MAX_SUITE_BYTES
    start = time.monotonic()
    with pytest.raises(SuiteError) as info:
        load_yaml(path)
    assert time.monotonic() - start < 10  # SafeLoader alone took 10-16 s here; this takes under a second
    assert info.value.problems[0].startswith(f"{path}:1: more than {MAX_SUITE_NODES} YAML nodes")


@pytest.mark.parametrize("depth", [MAX_SUITE_DEPTH + 1, 900, 5000])
def test_deep_nesting_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], depth: int) -> None:
    """900 nested lists were a RecursionError traceback; MAX_SUITE_DEPTH levels (the root is one) load."""
    path = write(tmp_path, BASE + "x: " + "[" * depth + "]" * depth + "\n")
    [line] = refused(capsys, path)
    assert line.startswith(f"{path}:7") and line.endswith(
        f": nested more than {MAX_SUITE_DEPTH} levels deep, the limit for a suite"
    )
    path.write_text("x: " + "[" * (MAX_SUITE_DEPTH - 1) + "]" * (MAX_SUITE_DEPTH - 1) + "\n")
    assert load_yaml(path).data["x"] is not None


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_suite_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    """A FIFO blocked ``validate`` for ever and ``/dev/zero`` read until memory ran out: now one line each."""
    if kind == "fifo":
        os.mkfifo(tmp_path / "pipe.yaml")
        arg, what = "pipe.yaml", "a FIFO (named pipe)"
    else:
        arg, what = "/dev/zero", "a character device"
    proc, _ = _limited_subprocess("validate", arg, cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", f"{arg}: is {what}, expected a YAML file\n")


# ------------------------------------------------------------------ model paths


def test_a_model_path_says_what_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A directory or a device as a model read "model file not found"; validate now says what is there."""
    (tmp_path / "models").mkdir()
    path = write(
        tmp_path,
        """\
        name: s
        models:
          - {source: onnx, name: a, path: models}
          - {source: onnx, name: b, path: /dev/zero}
          - {source: onnx, name: c, path: missing.onnx}
          - {source: torchscript, name: d, path: models, inputs: [{name: x, shape: [batch, 4]}]}
        backends: [{name: onnxruntime}]
        """,
    )
    assert refused(capsys, path) == [
        f"{path}:3 models[0].path: model path is a directory, expected a model file: {tmp_path / 'models'}",
        f"{path}:4 models[1].path: model path is a character device, not a model file: /dev/zero",
        f"{path}:5 models[2].path: model file not found: {tmp_path / 'missing.onnx'}",
        f"{path}:6 models[3].path: model path is a directory, expected a model file: {tmp_path / 'models'}",
    ]


def test_model_context_resolve_names_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.onnx")
    ctx = ModelContext(base_dir=tmp_path, cache_dir=tmp_path, seed=0)
    with pytest.raises(BenchError, match=r"^model path is a FIFO \(named pipe\), not a model file: .*pipe\.onnx$"):
        ctx.resolve("pipe.onnx")
