"""Tests for the zoo's CNN architectures: shapes, scaling knobs, ONNX parity and errors."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from benchharness_zoo import models
from benchharness_zoo.models import ACTIVATIONS, ARCHITECTURES, build_model, min_input_size
from torch import nn

ARCHS = sorted(ARCHITECTURES)
ACTIVATION_TYPES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "swish": nn.SiLU,
    "hardswish": nn.Hardswish,
}

# The repeated block of each architecture and the base repeat count of each of its stages.
BLOCKS: dict[str, tuple[type[nn.Module], list[int]]] = {
    "mobilenet_v2": (models.InvertedResidual, [n for _, _, n, _ in models.MobileNetV2.STAGES]),
    "shufflenet_v2": (models.ShuffleUnit, [n for _, n in models.ShuffleNetV2.STAGES]),
    "squeezenet": (models.Fire, [n for _, _, n, _ in models.SqueezeNet.GROUPS]),
    "resnet": (models.BasicBlock, [n for _, n, _ in models.ResNet.STAGES]),
}


# The zoo is exported with the TorchScript exporter (dynamo=False), which torch marks deprecated.
LEGACY_EXPORTER = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Run torch on one thread: the test models are tiny, and on a busy 2-core
    machine OpenMP spin-waits made threaded runs of this file 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _session(path: Path) -> Any:
    """Open an ONNX Runtime CPU session on one thread, for the same reason."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _params(model: nn.Module) -> int:
    """Count a model's parameters."""
    return sum(p.numel() for p in model.parameters())


def test_public_names() -> None:
    """The zoo offers exactly the four architectures and four activations."""
    assert set(ARCHITECTURES) == {"mobilenet_v2", "shufflenet_v2", "squeezenet", "resnet"}
    assert ACTIVATIONS == ("relu", "leaky_relu", "swish", "hardswish")


@pytest.mark.parametrize("arch", ARCHS)
def test_output_shape_and_scale(arch: str) -> None:
    """A batch of two gives (2, num_classes) logits of order one, in eval mode."""
    torch.manual_seed(0)
    model = build_model(arch, width=0.25, input_size=64, num_classes=7)
    assert not model.training
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    # Calibration keeps logits away from both vanishing and exploding.
    assert 1e-2 < out.std().item() < 1e2


@pytest.mark.parametrize("arch", ARCHS)
def test_other_input_sizes_and_channels(arch: str) -> None:
    """The model takes in_channels and any size from the minimum up, square or not."""
    minimum = min_input_size(arch)
    model = build_model(arch, width=0.25, input_size=minimum, num_classes=5, in_channels=1)
    with torch.no_grad():
        for height, width in [(minimum, minimum), (minimum + 5, minimum + 5), (minimum, 2 * minimum + 3)]:
            assert model(torch.randn(1, 1, height, width)).shape == (1, 5)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_is_the_only_nonlinearity(arch: str, activation: str) -> None:
    """The chosen activation replaces every nonlinearity, and only it appears."""
    model = build_model(arch, width=0.25, input_size=32, num_classes=4, activation=activation)
    present = {type(m) for m in model.modules()} & set(ACTIVATION_TYPES.values())
    assert present == {ACTIVATION_TYPES[activation]}
    if activation == "leaky_relu":
        assert all(m.negative_slope == 0.1 for m in model.modules() if isinstance(m, nn.LeakyReLU))


def test_mobilenet_projection_is_linear_and_residual_when_shapes_match() -> None:
    """Each inverted residual ends in conv + BN with no activation; same-shape blocks add their input."""
    model = build_model("mobilenet_v2", input_size=32, num_classes=4)
    blocks = [m for m in model.modules() if isinstance(m, models.InvertedResidual)]
    for block in blocks:
        projection = block.block[-1]
        assert [type(m) for m in projection] == [nn.Conv2d, nn.BatchNorm2d]
    # Stages 2-6 repeat blocks at stride 1 with equal channels: 1 + 2 + 3 + 2 + 2.
    assert sum(block.use_residual for block in blocks) == 10


@pytest.mark.parametrize("arch", ARCHS)
def test_width_grows_parameters(arch: str) -> None:
    """A larger width gives strictly more parameters."""
    # The raw constructors skip calibration, which changes no shapes, to keep the test fast.
    counts = [_params(ARCHITECTURES[arch](width=w, num_classes=10)) for w in (0.25, 0.5, 1.0, 1.5)]
    assert counts == sorted(set(counts))


@pytest.mark.parametrize("arch", ARCHS)
def test_depth_scales_blocks_per_stage(arch: str) -> None:
    """depth multiplies each stage's block count (ceil, at least 1) and grows parameters."""
    block_type, repeats = BLOCKS[arch]
    counts = []
    for depth in (0.01, 0.5, 1.0, 1.5, 2.0):
        model = ARCHITECTURES[arch](width=0.25, depth=depth, num_classes=10)
        blocks = sum(isinstance(m, block_type) for m in model.modules())
        assert blocks == sum(max(1, math.ceil(n * depth)) for n in repeats)
        counts.append(_params(model))
    # 0.01 and 0.5 both give one block per stage where every stage repeats twice.
    assert counts == sorted(counts)
    assert counts[0] < counts[2] < counts[4]


@pytest.mark.parametrize("arch", ARCHS)
def test_same_seed_same_weights(arch: str) -> None:
    """The same torch.manual_seed gives identical weights and statistics; another seed does not."""

    def state(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return build_model(arch, width=0.25, input_size=32, num_classes=4).state_dict()

    first, again, other = state(1), state(1), state(2)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


@LEGACY_EXPORTER
@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_export_matches_torch(arch: str, tmp_path: Path) -> None:
    """The exported graph, run by ONNX Runtime, gives torch's logits within 1e-4."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    model = build_model(arch, width=0.25, input_size=48, num_classes=10)
    x = torch.randn(2, 3, 48, 48)
    path = tmp_path / f"{arch}.onnx"
    torch.onnx.export(
        model, (x,), str(path), dynamo=False, opset_version=17, input_names=["input"], output_names=["logits"]
    )
    session = _session(path)
    (got,) = session.run(["logits"], {"input": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


@LEGACY_EXPORTER
@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_export_with_dynamic_shapes(arch: str, tmp_path: Path) -> None:
    """With dynamic batch and spatial axes the graph runs at shapes other than the traced one."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = build_model(arch, width=0.25, input_size=32, num_classes=3)
    path = tmp_path / f"{arch}.onnx"
    torch.onnx.export(
        model,
        (torch.randn(1, 3, 32, 32),),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}},
    )
    session = _session(path)
    x = torch.randn(3, 3, 40, 56)
    (got,) = session.run(["logits"], {"input": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


@LEGACY_EXPORTER
@pytest.mark.parametrize("activation", ["leaky_relu", "swish", "hardswish"])
def test_onnx_export_keeps_the_activation(activation: str, tmp_path: Path) -> None:
    """Each non-ReLU activation exports to its own ONNX op and ONNX Runtime gives torch's logits within 1e-4."""
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    torch.manual_seed(0)
    model = build_model("mobilenet_v2", width=0.25, input_size=32, num_classes=10, activation=activation)
    x = torch.randn(2, 3, 32, 32)
    path = tmp_path / f"{activation}.onnx"
    torch.onnx.export(
        model, (x,), str(path), dynamo=False, opset_version=17, input_names=["input"], output_names=["logits"]
    )
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    # SiLU has no ONNX op below opset 24: the exporter writes x * Sigmoid(x).
    expected = {"leaky_relu": "LeakyRelu", "swish": "Sigmoid", "hardswish": "HardSwish"}[activation]
    assert expected in ops and "Relu" not in ops
    (got,) = _session(path).run(["logits"], {"input": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_unknown_architecture_lists_known_ones() -> None:
    """An unknown arch names itself and every known architecture."""
    with pytest.raises(ValueError, match="unknown architecture 'vgg16'") as excinfo:
        build_model("vgg16")
    assert all(name in str(excinfo.value) for name in ARCHITECTURES)
    with pytest.raises(ValueError, match="unknown architecture"):
        min_input_size("vgg16")


def test_unknown_activation_lists_known_ones() -> None:
    """An unknown activation names itself and every known activation."""
    with pytest.raises(ValueError, match="unknown activation 'gelu'") as excinfo:
        build_model("resnet", activation="gelu")
    assert all(name in str(excinfo.value) for name in ACTIVATIONS)


@pytest.mark.parametrize("arch", ARCHS)
def test_too_small_input_names_the_minimum(arch: str) -> None:
    """An input below the total stride is refused with the minimum in the message."""
    minimum = min_input_size(arch)
    with pytest.raises(ValueError, match=f"input_size {minimum - 1} is too small for {arch}: the minimum is {minimum}"):
        build_model(arch, input_size=minimum - 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0.0}, "width must be > 0"),
        ({"width": -1.0}, "width must be > 0"),
        ({"width": float("nan")}, "width must be > 0"),
        ({"depth": 0.0}, "depth must be > 0"),
        ({"num_classes": 0}, "num_classes must be >= 1"),
        ({"in_channels": 0}, "in_channels must be >= 1"),
    ],
)
def test_bad_scaling_arguments(kwargs: dict[str, float], message: str) -> None:
    """Non-positive sizes and multipliers are refused with a message naming the argument."""
    with pytest.raises(ValueError, match=message):
        build_model("squeezenet", **kwargs)
