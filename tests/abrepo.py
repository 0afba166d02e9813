"""A toy project in a git repository with two commits, for tests of ``benchharness ab`` and the CI recipe.

Commit A holds ``benchmarks/suite.yaml`` and a small ONNX model ``benchmarks/m.onnx``; commit B replaces
the model with one that does the same, then multiplies by a chain of matrices: the "pull request" that
made the model slower.  The suite measures briefly, on ONNX Runtime, on one case.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

SUITE = """\
name: toy
models: [{source: onnx, path: m.onnx}]
backends: [{name: onnxruntime}]
metrics: [latency]
measure: {min_samples: 10, min_time: 0, max_time: 0.15, warmup: {max_time: 0.05, min_time: 0, min_iterations: 3}}
"""


def write_model(path: Path, matmuls: int) -> None:
    """An ONNX model with input ``x`` [1, 64] and ``matmuls`` chained 64x64 MatMuls (0: an Identity)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, last = [], [], "x"
    if not matmuls:
        nodes.append(helper.make_node("Identity", ["x"], ["y"]))
    for i in range(matmuls):
        weight = (rng.standard_normal((64, 64)) / 8).astype(np.float32)
        inits.append(numpy_helper.from_array(weight, f"w{i}"))
        out = "y" if i == matmuls - 1 else f"h{i}"
        nodes.append(helper.make_node("MatMul", [last, f"w{i}"], [out]))
        last = out
    graph = helper.make_graph(
        nodes, "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity; return its output."""
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(root: Path, slow_matmuls: int = 400) -> tuple[Path, str, str]:
    """The toy repository under ``root``; returns it with its two commits (fast, then slow)."""
    repo = root / "project"
    (repo / "benchmarks").mkdir(parents=True)
    (repo / "benchmarks" / "suite.yaml").write_text(SUITE)
    write_model(repo / "benchmarks" / "m.onnx", 0)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "a fast model")
    fast = git(repo, "rev-parse", "HEAD")
    write_model(repo / "benchmarks" / "m.onnx", slow_matmuls)
    git(repo, "commit", "-q", "-am", "a slower model")
    slow = git(repo, "rev-parse", "HEAD")
    return repo, fast, slow
