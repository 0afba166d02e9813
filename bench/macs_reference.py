"""The zoo's MACs and parameters at ImageNet size, next to the published figures of the architectures they follow.

Builds each zoo architecture as the harness runs it (``build_model``, width
1.0, 1000 classes), counts its multiply-accumulates for one 3 x SIZE x SIZE
image with the ``macs`` metric's counter (``benchharness_metrics.macs``: the
module exported to ONNX in memory, shapes inferred by onnx) and its
parameters (``nn.Module.parameters()``), and prints them beside the published
figure and the gap.  SqueezeNet has no published figure to compare with: the
zoo's head differs from the paper's by design, so torchvision's SqueezeNet 1.1
layout is rebuilt here and counted the same way, to show where the gap comes
from.  About a minute on a 2-core VM (each build calibrates at 224 in float64).

    python bench/macs_reference.py [--size 224] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

#: Published MACs (multiply-adds) and parameters at 224 x 224, 1000 classes, with where each comes from.
PUBLISHED: dict[str, tuple[float | None, float | None, str]] = {
    "mobilenet_v2": (300.8e6, 3_504_872, "torchvision mobilenet_v2 (the paper: 300 M, 3.4 M)"),
    "shufflenet_v2": (146e6, 2_278_604, "ShuffleNetV2 1.0x paper (146 M FLOPs = multiply-adds); torchvision params"),
    "resnet": (1.814e9, 11_689_512, "ResNet-18: torchvision 1.81 G (the paper: 1.8 G)"),
    "squeezenet": (None, 1_235_496, "torchvision squeezenet1_1 params; its MACs counted below from its layout"),
}


def torchvision_squeezenet1_1() -> object:
    """torchvision's SqueezeNet 1.1 layout (unpadded stem, ceil-mode pools, 1x1 conv classifier), random weights."""
    from torch import nn

    class Fire(nn.Module):
        def __init__(self, inplanes: int, squeeze: int, expand: int) -> None:
            super().__init__()
            self.squeeze = nn.Conv2d(inplanes, squeeze, 1)
            self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
            self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)

        def forward(self, x):  # type: ignore[no-untyped-def]
            import torch

            s = torch.relu(self.squeeze(x))
            return torch.cat((torch.relu(self.expand1x1(s)), torch.relu(self.expand3x3(s))), 1)

    def pool() -> nn.Module:
        return nn.MaxPool2d(3, 2, ceil_mode=True)

    features = nn.Sequential(
        nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(), pool(), Fire(64, 16, 64), Fire(128, 16, 64), pool(),
        Fire(128, 32, 128), Fire(256, 32, 128), pool(), Fire(256, 48, 192), Fire(384, 48, 192),
        Fire(384, 64, 256), Fire(512, 64, 256),
    )  # fmt: skip
    head = nn.Sequential(nn.Conv2d(512, 1000, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return nn.Sequential(features, head).eval()


def main() -> int:
    """Count every zoo architecture and print the comparison table (and ``--json OUT``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()

    import torch
    from benchharness_metrics.macs import count_torch_module
    from benchharness_zoo.models import ARCHITECTURES, build_model

    image = torch.zeros(1, 3, args.size, args.size)
    rows = []
    for arch in ARCHITECTURES:
        print(f"building and counting {arch} ...", file=sys.stderr)
        module = build_model(arch, width=1.0, input_size=args.size, num_classes=1000)
        count = count_torch_module(module, [image], ["x"])
        macs, params = count.total, sum(p.numel() for p in module.parameters())
        published_macs, published_params, source = PUBLISHED[arch]
        if arch == "squeezenet":
            published_macs = count_torch_module(torchvision_squeezenet1_1(), [image], ["x"]).total
            source = "torchvision squeezenet1_1 layout, counted here"
        rows.append(
            {
                "arch": arch,
                "size": args.size,
                "macs": macs,
                "by_op": count.by_op,
                "not_counted": count.not_counted,
                "parameters": params,
                "reference_macs": published_macs,
                "reference_parameters": published_params,
                "reference": source,
            }
        )

    print(f"zoo at {args.size}x{args.size}, width 1.0, 1000 classes (MACs per image)")
    print(f"{'arch':<14} {'MACs (M)':>10} {'ref (M)':>9} {'gap':>7} {'params (M)':>11} {'ref (M)':>8}  reference")
    for row in rows:
        ref = row["reference_macs"]
        gap = f"{(row['macs'] - ref) / ref:+.1%}" if ref and args.size == 224 else "-"
        ref_text = f"{ref / 1e6:.1f}" if ref else "-"
        ref_params = row["reference_parameters"]
        params_text = f"{ref_params / 1e6:.3f}" if ref_params else "-"
        print(
            f"{row['arch']:<14} {row['macs'] / 1e6:>10.1f} {ref_text:>9} {gap:>7} "
            f"{row['parameters'] / 1e6:>11.3f} {params_text:>8}  {row['reference']}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
