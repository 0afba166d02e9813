"""Shared fixtures: the test plugins on sys.path, and suite writers."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PLUGIN_DIR = Path(__file__).parent / "plugins"
if str(PLUGIN_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGIN_DIR))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Conversions are cached per test session, never in the user's home; one worker process per case.

    Repeats across processes multiply every run's time, and the environment running the tests may ask for
    them; the tests of repeats ask for them (``--repeat``, ``measure.repeat``) or drop the variable.
    """
    monkeypatch.setenv("BENCHHARNESS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("BENCHHARNESS_REPEAT", "1")


@contextmanager
def torch_on_one_thread() -> Iterator[None]:
    """torch on one intra-op thread inside the block, then back, as a worker with ``threads: 1`` runs.

    With torch's default (one thread per core) a small zoo model trained in 5-6 s on 2 idle cores but in 40-150 s
    while other processes kept the cores busy (threads spin-waiting on each other); with one thread, 6-8 s either way.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """:func:`torch_on_one_thread` for the test."""
    with torch_on_one_thread():
        yield


@pytest.fixture
def write_suite(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a suite YAML (dedented) into the test's folder and return its path."""

    def write(text: str, name: str = "suite.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


#: A six-line suite of one ONNX model on ONNX Runtime; tests append lines from line 7 or replace parts of it.
ONNX_SUITE = """\
name: s
models:
  - source: onnx
    path: m.onnx
backends:
  - name: onnxruntime
"""


def write_suite_and_model(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    """Write a suite (dedented) into ``tmp_path``, and ``m.onnx`` (input ``x`` [N, 4]) beside it for suites naming it."""
    if not (tmp_path / "m.onnx").exists():
        write_onnx(tmp_path / "m.onnx")
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def write_onnx(path: Path, inputs: dict[str, tuple[list[int | str | None], int]] | None = None) -> Path:
    """A small valid ONNX model at ``path``: each input goes through Identity to an output.

    ``inputs`` maps names to (shape, onnx element type); a string dim is a dim_param, ``None`` an unnamed
    dynamic dim.  Default: one float input ``x`` of shape [N, 4].
    """
    import onnx
    from onnx import TensorProto, helper

    inputs = inputs or {"x": (["N", 4], TensorProto.FLOAT)}
    graph_inputs, graph_outputs, nodes = [], [], []
    for name, (shape, elem) in inputs.items():
        dims = [d if d is not None else None for d in shape]
        value = helper.make_tensor_value_info(name, elem, dims)
        for dim, given in zip(value.type.tensor_type.shape.dim, shape):
            if given is None:
                dim.Clear()
        graph_inputs.append(value)
        graph_outputs.append(helper.make_tensor_value_info(f"{name}_out", elem, None))
        nodes.append(helper.make_node("Identity", [name], [f"{name}_out"]))
    model = helper.make_model(
        helper.make_graph(nodes, "test", graph_inputs, graph_outputs), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
