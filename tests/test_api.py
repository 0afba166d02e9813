"""The plugin base classes' own behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchharness.api import Backend, BackendOptions, ModelArtifact, ModelContext, TargetContext
from benchharness.errors import BenchError


class Echo(Backend):
    name = "echo"
    formats = ("x",)

    def load(self, artifact):  # type: ignore[no-untyped-def]
        self.calls = 0

    def prepare(self, inputs):  # type: ignore[no-untyped-def]
        return inputs

    def infer(self, feed):  # type: ignore[no-untyped-def]
        self.calls += 1
        return feed

    def to_numpy(self, outputs):  # type: ignore[no-untyped-def]
        return outputs


def test_default_submit_runs_synchronously_and_calls_back():
    backend = Echo(BackendOptions(), TargetContext(device="cpu", threads=2))
    backend.load(ModelArtifact(format="x", content_hash="h"))
    seen = []
    for i in range(3):
        backend.submit({"i": i}, seen.append)
    backend.wait_all()
    assert seen == [{"i": 0}, {"i": 1}, {"i": 2}] and backend.calls == 3


def test_backend_threads_default_to_the_target():
    target = TargetContext(device="cpu", threads=2)
    assert Echo(BackendOptions(), target).threads == 2
    assert Echo(BackendOptions(threads=1), target).threads == 1


def test_artifact_size_prefers_the_file(tmp_path: Path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"x" * 10)
    assert ModelArtifact(format="x", content_hash="h", path=model, info={"size_bytes": 99}).size_bytes() == 10
    assert ModelArtifact(format="x", content_hash="h", info={"size_bytes": 99}).size_bytes() == 99
    assert ModelArtifact(format="x", content_hash="h").size_bytes() is None


def test_model_context_resolves_paths_against_the_suite(tmp_path: Path):
    (tmp_path / "m.onnx").write_bytes(b"")
    ctx = ModelContext(base_dir=tmp_path, cache_dir=tmp_path, seed=0)
    assert ctx.resolve("m.onnx") == tmp_path / "m.onnx"
    with pytest.raises(BenchError, match=r"^model file not found: .*missing\.onnx$"):
        ctx.resolve("missing.onnx")


def test_unavailable_reason_names_the_missing_module_and_the_fix():
    class Needs(Echo):
        requires = ("benchharness_no_such_module", "json")

    assert Needs.missing_requirements() == ["benchharness_no_such_module"]
    assert Needs.unavailable_reason() == "needs benchharness_no_such_module: pip install benchharness_no_such_module"
    assert Echo.unavailable_reason() is None
