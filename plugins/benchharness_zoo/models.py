"""A small zoo of lightweight CNNs written in plain PyTorch.

The zoo gives the harness models to benchmark without downloading weights or
depending on torchvision. Each architecture follows the shape of its paper
(MobileNetV2, ShuffleNetV2, SqueezeNet 1.1, ResNet-18) and can be scaled in
width and depth, so one family spans a range of sizes and costs.

This module imports torch at import time; the plugin should import it only
inside the hooks that build a model, so that loading plugins stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "swish", "hardswish")

# Downsampling factor from the input to the last feature map. An input smaller
# than this would be padded down to a 1x1 map before the last stage and
# benchmark a degenerate network, so build_model refuses it.
_TOTAL_STRIDE: dict[str, int] = {
    "mobilenet_v2": 32,
    "shufflenet_v2": 32,
    "squeezenet": 16,
    "resnet": 32,
}


def _make_activation(name: str) -> nn.Module:
    """Return a fresh activation module for one of ACTIVATIONS."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.1)
    if name == "swish":
        return nn.SiLU()
    if name == "hardswish":
        # MobileNetV3's piecewise-linear swish, x * relu6(x + 3) / 6: no exponential.
        return nn.Hardswish()
    raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")


def _channels(base: int, width: float) -> int:
    """Scale a channel count by width, rounded to a multiple of 8 (at least 8).

    Multiples of 8 keep vectorised kernels and int8 packing efficient; never
    rounding down by more than 10% keeps small widths from collapsing.
    """
    scaled = base * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    if rounded < 0.9 * scaled:
        rounded += 8
    return rounded


def _repeats(base: int, depth: float) -> int:
    """Scale a stage's block count by depth, keeping at least one block."""
    return max(1, math.ceil(base * depth))


def _conv_bn(
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    activation: str | None = None,
) -> nn.Sequential:
    """Conv (no bias, BN supplies it) + BN, followed by an activation if named."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if activation is not None:
        layers.append(_make_activation(activation))
    return nn.Sequential(*layers)


# The size the architectures were designed for (ImageNet); see _calibrate.
_CALIBRATION_SIZE = 224


def _calibrate(model: nn.Module, in_channels: int) -> None:
    """Scale every conv to unit output std on random input and set BatchNorm statistics.

    With random weights and default BatchNorm statistics (mean 0, var 1) the
    signal shrinks or grows layer by layer (MobileNetV2 with the usual init
    gives logits near 1e-9), which makes fidelity and quantization results
    meaningless. One eval-mode pass, like data-dependent init (LSUV), fixes
    that layer by layer: a hook divides each conv's weights by its output std
    and passes the rescaled output on, so later layers see calibrated inputs,
    and a pre-hook sets each BatchNorm's running mean and variance to those of
    its input. Activations then stay near unit scale, including in SqueezeNet,
    which has no BatchNorm, and folding BatchNorm into convs is a real
    transformation, as for a trained model.

    The pass uses _CALIBRATION_SIZE whatever the input size: the weights do
    not depend on input_size, and statistics from a small input, where the
    last feature maps are 1x1 and convs see mostly padding, make activations
    explode (1e4 and more) at every larger size. Calibrated at 224, logits
    stay between about 0.05 and 1.5 from 32 px to 320 px.

    The pass runs in float64 on a private generator: rounded back to float32
    the result is the same for any thread count, and the global RNG is left
    as the weights left it.
    """

    def rescale_conv(conv: nn.Conv2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        scale = output.std()
        conv.weight.div_(scale)
        if conv.bias is not None:
            conv.bias.div_(scale)
        return output / scale

    def set_statistics(bn: nn.BatchNorm2d, inputs: tuple[torch.Tensor, ...]) -> None:
        mean = inputs[0].mean((0, 2, 3))
        var = inputs[0].var((0, 2, 3))
        # A BatchNorm fed by zero-mean channels has a mean of exactly 0; float64
        # gives +-1e-16 noise instead, whose float32 value depends on the thread count.
        mean[mean.abs() < 1e-9 * var.sqrt()] = 0.0
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)

    hooks = [
        *(m.register_forward_hook(rescale_conv) for m in model.modules() if isinstance(m, nn.Conv2d)),
        *(m.register_forward_pre_hook(set_statistics) for m in model.modules() if isinstance(m, nn.BatchNorm2d)),
    ]
    generator = torch.Generator().manual_seed(0)
    size = _CALIBRATION_SIZE
    x = torch.randn(4, in_channels, size, size, generator=generator, dtype=torch.float64)
    model.double().eval()
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    model.float()


class _Classifier(nn.Module):
    """Global average pooling + Linear; adaptive pooling accepts any input size."""

    def __init__(self, in_ch: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, H, W) features to (N, num_classes) logits."""
        return self.fc(torch.flatten(self.pool(x), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, linear 1x1 projection."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int, activation: str) -> None:
        super().__init__()
        hidden = in_ch * expand
        layers: list[nn.Module] = []
        # With expansion 1 the expand conv would be an identity-sized 1x1 conv,
        # which the paper drops.
        if expand != 1:
            layers.append(_conv_bn(in_ch, hidden, 1, activation=activation))
        layers.append(_conv_bn(hidden, hidden, 3, stride, groups=hidden, activation=activation))
        # The projection stays linear: a nonlinearity in the narrow space loses information.
        layers.append(_conv_bn(hidden, out_ch, 1))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block, adding the input when shapes allow."""
        out = self.block(x)
        return x + out if self.use_residual else out


class _ZooNet(nn.Module):
    """A feature extractor followed by the pooled linear classifier, as every zoo network is."""

    def _set_body(self, layers: list[nn.Module], out_channels: int, num_classes: int) -> None:
        self.features = nn.Sequential(*layers)
        self.classifier = _Classifier(out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits of shape (N, num_classes)."""
        return self.classifier(self.features(x))


class MobileNetV2(_ZooNet):
    """MobileNetV2 (Sandler et al., 2018) with width and depth multipliers."""

    # (expansion, base channels, repeats, first stride) per stage, as in the paper.
    STAGES: tuple[tuple[int, int, int, int], ...] = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(
        self,
        *,
        width: float = 1.0,
        depth: float = 1.0,
        num_classes: int = 1000,
        activation: str = "relu",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        stem = _channels(32, width)
        # The paper keeps the last conv at 1280 for widths below 1, which helps accuracy.
        last = _channels(1280, max(1.0, width))
        layers: list[nn.Module] = [_conv_bn(in_channels, stem, 3, 2, activation=activation)]
        in_ch = stem
        for expand, base, n, stride in self.STAGES:
            out_ch = _channels(base, width)
            for i in range(_repeats(n, depth)):
                layers.append(InvertedResidual(in_ch, out_ch, stride if i == 0 else 1, expand, activation))
                in_ch = out_ch
        layers.append(_conv_bn(in_ch, last, 1, activation=activation))
        self._set_body(layers, last, num_classes)


def _channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave channels across groups so information crosses the two branches.

    unflatten/flatten keep N, H and W symbolic, so the ONNX graph accepts any size.
    """
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit; stride 2 is the two-branch downsampling unit."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, activation: str) -> None:
        super().__init__()
        self.stride = stride
        branch = out_ch // 2
        # A stride-1 unit only sees half of the channels (the other half passes through).
        branch_in = in_ch if stride == 2 else branch
        if stride == 2:
            self.branch1: nn.Module = nn.Sequential(
                _conv_bn(in_ch, in_ch, 3, 2, groups=in_ch),
                _conv_bn(in_ch, branch, 1, activation=activation),
            )
        else:
            self.branch1 = nn.Identity()
        self.branch2 = nn.Sequential(
            _conv_bn(branch_in, branch, 1, activation=activation),
            _conv_bn(branch, branch, 3, stride, groups=branch),
            _conv_bn(branch, branch, 1, activation=activation),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run both branches, concatenate and shuffle the channels."""
        if self.stride == 1:
            left, right = x.chunk(2, dim=1)
            out = torch.cat((left, self.branch2(right)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return _channel_shuffle(out, 2)


class ShuffleNetV2(_ZooNet):
    """ShuffleNetV2 (Ma et al., 2018) with width and depth multipliers.

    Stage widths are the 1.0x ones (116, 232, 464) scaled by width and rounded
    to a multiple of 8, so width 1.0 is close to, not identical with, the paper.
    """

    # (base channels, repeats) per stage; each stage starts with a downsampling unit.
    STAGES: tuple[tuple[int, int], ...] = ((116, 4), (232, 8), (464, 4))

    def __init__(
        self,
        *,
        width: float = 1.0,
        depth: float = 1.0,
        num_classes: int = 1000,
        activation: str = "relu",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        stem = _channels(24, width)
        # As in the paper, the last conv stays at 1024 for widths below 1.
        last = _channels(1024, max(1.0, width))
        layers: list[nn.Module] = [
            _conv_bn(in_channels, stem, 3, 2, activation=activation),
            nn.MaxPool2d(3, 2, 1),
        ]
        in_ch = stem
        for base, n in self.STAGES:
            out_ch = _channels(base, width)
            for i in range(_repeats(n, depth)):
                layers.append(ShuffleUnit(in_ch, out_ch, 2 if i == 0 else 1, activation))
                in_ch = out_ch
        layers.append(_conv_bn(in_ch, last, 1, activation=activation))
        self._set_body(layers, last, num_classes)


class Fire(nn.Module):
    """SqueezeNet fire module: 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""

    def __init__(self, in_ch: int, squeeze: int, expand: int, activation: str) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(in_ch, squeeze, 1), _make_activation(activation))
        self.expand1x1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), _make_activation(activation))
        self.expand3x3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), _make_activation(activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the two expand outputs stacked along channels (2 * expand)."""
        s = self.squeeze(x)
        return torch.cat((self.expand1x1(s), self.expand3x3(s)), dim=1)


class SqueezeNet(_ZooNet):
    """SqueezeNet 1.1 (Iandola et al., 2016) with width and depth multipliers.

    Like the paper it has no batch norm. Unlike it, the stem conv and the pools
    are padded so every feature map is ceil(H / stride), and it ends with a
    Linear head like the rest of the zoo instead of a 1x1 conv classifier.
    """

    # (squeeze, expand, repeats, max-pool before the group) per group of fire modules.
    GROUPS: tuple[tuple[int, int, int, bool], ...] = (
        (16, 64, 2, True),
        (32, 128, 2, True),
        (48, 192, 2, True),
        (64, 256, 2, False),
    )

    def __init__(
        self,
        *,
        width: float = 1.0,
        depth: float = 1.0,
        num_classes: int = 1000,
        activation: str = "relu",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        stem = _channels(64, width)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, stem, 3, 2, 1), _make_activation(activation)]
        in_ch = stem
        for squeeze, expand, n, pool in self.GROUPS:
            if pool:
                layers.append(nn.MaxPool2d(3, 2, 1))
            sq, ex = _channels(squeeze, width), _channels(expand, width)
            for _ in range(_repeats(n, depth)):
                layers.append(Fire(in_ch, sq, ex, activation))
                in_ch = 2 * ex
        self._set_body(layers, in_ch, num_classes)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv + BN, identity or 1x1 projection shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, activation: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(in_ch, out_ch, 3, stride, activation=activation),
            _conv_bn(out_ch, out_ch, 3),
        )
        # Project only when the shape changes; otherwise the identity is free.
        self.shortcut: nn.Module = (
            _conv_bn(in_ch, out_ch, 1, stride) if stride != 1 or in_ch != out_ch else nn.Identity()
        )
        self.act = _make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return act(body(x) + shortcut(x))."""
        return self.act(self.body(x) + self.shortcut(x))


class ResNet(_ZooNet):
    """ResNet-18-style baseline (He et al., 2016) with width and depth multipliers."""

    # (base channels, repeats, first stride) per stage.
    STAGES: tuple[tuple[int, int, int], ...] = ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2))

    def __init__(
        self,
        *,
        width: float = 1.0,
        depth: float = 1.0,
        num_classes: int = 1000,
        activation: str = "relu",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        stem = _channels(64, width)
        layers: list[nn.Module] = [
            _conv_bn(in_channels, stem, 7, 2, activation=activation),
            nn.MaxPool2d(3, 2, 1),
        ]
        in_ch = stem
        for base, n, stride in self.STAGES:
            out_ch = _channels(base, width)
            for i in range(_repeats(n, depth)):
                layers.append(BasicBlock(in_ch, out_ch, stride if i == 0 else 1, activation))
                in_ch = out_ch
        self._set_body(layers, in_ch, num_classes)


# Raw constructors taking the keyword arguments of build_model except input_size.
# They neither check arguments nor calibrate the weights: use build_model.
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "mobilenet_v2": MobileNetV2,
    "shufflenet_v2": ShuffleNetV2,
    "squeezenet": SqueezeNet,
    "resnet": ResNet,
}


def min_input_size(arch: str) -> int:
    """Return the smallest input_size build_model accepts for arch (its total stride)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    return _TOTAL_STRIDE[arch]


def build_model(
    arch: str,
    *,
    width: float = 1.0,
    depth: float = 1.0,
    input_size: int = 224,
    num_classes: int = 1000,
    activation: str = "relu",
    in_channels: int = 3,
) -> nn.Module:
    """Build a randomly initialised zoo model, in eval mode, after checking every argument.

    Weights and BatchNorm statistics are calibrated on random input (see
    _calibrate), so activations and logits are of order one. The model takes
    (N, in_channels, H, W) float input with H, W >= the minimum input size and
    returns (N, num_classes) logits. input_size is only checked, not baked in:
    adaptive pooling lets the model take other sizes, and the weights are the
    same whatever input_size is.

    Example: ``build_model("mobilenet_v2", width=0.5, input_size=96, num_classes=10)``.

    Raises ValueError for an unknown arch or activation, a non-positive width,
    depth, num_classes or in_channels, or an input_size below the minimum.
    """
    minimum = min_input_size(arch)
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
    # "not > 0" also rejects NaN.
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    if not depth > 0:
        raise ValueError(f"depth must be > 0, got {depth}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    if input_size < minimum:
        raise ValueError(
            f"input_size {input_size} is too small for {arch}: the minimum is {minimum} (its total stride)"
        )
    model = ARCHITECTURES[arch](
        width=width, depth=depth, num_classes=num_classes, activation=activation, in_channels=in_channels
    )
    _calibrate(model, in_channels)
    return model.eval()
