"""Compressions for testing the core's compression plumbing: caching, chaining, conversion first, data, skips.

Each ``apply`` appends a line to the file named by ``BH_COMPRESS_LOG`` (when set), so a test sees how many
times a variant was really computed, across worker processes.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, ClassVar

import torch
from benchharness_torch import TorchCompression
from pydantic import BaseModel, Field

from benchharness.api import Compression, CompressionContext, CompressionOptions, ModelArtifact, hookimpl


def _log(line: str) -> None:
    path = os.environ.get("BH_COMPRESS_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def digit_net() -> torch.nn.Module:
    """An 8x8 one-channel classifier of ten classes, seeded (the digits data feed it)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10),
    )  # fmt: skip


class ScaleOptions(CompressionOptions):
    factor: float = Field(0.5, gt=0)


class Scale(TorchCompression):
    """Multiplies the last Linear layer's weights by ``factor`` (a stand-in for a real compression)."""

    name = "scale"
    description = "scales the last Linear layer (test)"
    Options: ClassVar[type[BaseModel]] = ScaleOptions

    def apply(self, artifact: ModelArtifact, options: ScaleOptions, ctx: CompressionContext) -> ModelArtifact:  # type: ignore[override]
        from benchharness_torch import module_artifact

        _log(f"scale {options.factor}")
        module = artifact.obj
        last = [m for m in module.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            last.weight.mul_(options.factor)
            last.bias.mul_(options.factor)
        ctx.record(factor=options.factor, layers_scaled=1)
        return module_artifact(module, identity=f"{artifact.content_hash}:scale={options.factor}")


class OnnxCopy(Compression):
    """Takes ONNX only, and gives the file back unchanged: the core must convert a torch model first."""

    name = "onnx-copy"
    description = "copies an ONNX model (test)"
    formats = ("onnx",)

    def apply(self, artifact: ModelArtifact, options: BaseModel, ctx: CompressionContext) -> ModelArtifact:
        _log("onnx-copy")
        out = ctx.cache_dir / "onnx-copy-scratch.onnx"
        shutil.copyfile(artifact.path, out)
        ctx.record(bytes=out.stat().st_size)
        return ModelArtifact(format="onnx", content_hash="", path=out)


class TorchOnly(TorchCompression):
    """Gives a torch model that only the torch backend may run (as a torch dynamic-int8 model is)."""

    name = "torch-only"
    description = "a variant only the torch backend runs (test)"

    def apply(self, artifact: ModelArtifact, options: BaseModel, ctx: CompressionContext) -> ModelArtifact:
        _log("torch-only")
        return artifact

    def unsupported_backend(self, backend: str, options: BaseModel) -> str | None:
        return None if backend == "torch" else "its layers have no ONNX export, so only the torch backend runs it"


class Calibrate(TorchCompression):
    """Reads the model's training split (as a calibrating quantizer does) and records what it saw."""

    name = "calibrate"
    description = "reads the training split (test)"
    uses_dataset = True

    def apply(self, artifact: ModelArtifact, options: BaseModel, ctx: CompressionContext) -> ModelArtifact:
        data = ctx.dataset("train")
        _log(f"calibrate {data.count}")
        ctx.record(samples=data.count, split=data.info.get("split"), fed=data.fed)
        return artifact


class Broken(TorchCompression):
    name = "broken"
    description = "fails (test)"

    def apply(self, artifact: ModelArtifact, options: BaseModel, ctx: CompressionContext) -> ModelArtifact:
        raise RuntimeError("the pruner found no channels\nsecond line")


@hookimpl
def benchharness_register_compressions(register: Any) -> None:
    for cls in (Scale, OnnxCopy, TorchOnly, Calibrate, Broken):
        register(cls)
