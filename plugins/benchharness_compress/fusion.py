"""Operator fusion for torch eager: BatchNorm folded into the convolution before it, and channels_last.

Inference-mode BatchNorm is an affine map per channel, so ``bn(conv(x))`` is
one convolution with rescaled weights and a bias
(``torch.nn.utils.fusion.fuse_conv_bn_eval``).  The pairs are found by
tracing the module with ``torch.fx`` (a conv whose output feeds only a
BatchNorm, each called once), which covers Sequential conv-bn(-act) blocks and
the residual and branching blocks of the zoo alike.  A module fx cannot trace
falls back to pairs that follow each other in an ``nn.Sequential``.  Each
folded conv is replaced in place by the fused one and its BatchNorm by
``nn.Identity``, so the module keeps its own classes and ``forward``: it
pickles with ``torch.save`` and exports with ``torch.onnx.export`` as the
original does.  torch is imported inside functions.
"""

from __future__ import annotations

from typing import Any, ClassVar

from benchharness_torch import TorchCompression
from pydantic import BaseModel, Field

from benchharness.api import CompressionContext, CompressionOptions, ModelArtifact


class FuseOptions(CompressionOptions):
    """Options of the ``fuse`` compression."""

    channels_last: bool = Field(
        False, description="Also convert the module's 4-D weights to the channels_last memory format."
    )


def _conv_bn_types(torch: Any) -> tuple[tuple[type, type], ...]:
    nn = torch.nn
    return ((nn.Conv1d, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d), (nn.Conv3d, nn.BatchNorm3d))


def _foldable(torch: Any, conv: Any, bn: Any) -> bool:
    """Whether ``bn`` follows ``conv`` of the same dimensionality and has running statistics to fold."""
    return (
        any(type(conv) is c and type(bn) is b for c, b in _conv_bn_types(torch))
        and bn.track_running_stats
        and bn.running_mean is not None
        and conv.out_channels == bn.num_features
    )


def traced_pairs(module: Any) -> list[tuple[str, str]]:
    """(conv, bn) qualified names where fx shows the conv's only consumer is the BatchNorm, each called once.

    Raises whatever ``torch.fx.symbolic_trace`` raises for a module it cannot trace.
    """
    import torch

    graph = torch.fx.symbolic_trace(module).graph
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    modules = dict(module.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or len(node.args) != 1 or not isinstance(node.args[0], torch.fx.Node):
            continue
        source = node.args[0]
        if source.op != "call_module" or len(source.users) != 1:
            continue
        conv, bn = modules[source.target], modules[node.target]
        if calls[source.target] == 1 and calls[node.target] == 1 and _foldable(torch, conv, bn):
            pairs.append((source.target, node.target))
    return pairs


def sequential_pairs(module: Any) -> list[tuple[str, str]]:
    """(conv, bn) qualified names of a conv directly followed by its BatchNorm inside an ``nn.Sequential``."""
    import torch

    pairs = []
    for prefix, seq in module.named_modules():
        if not isinstance(seq, torch.nn.Sequential):
            continue
        children = list(seq.named_children())
        for (a, conv), (b, bn) in zip(children, children[1:], strict=False):
            if _foldable(torch, conv, bn):
                pairs.append((f"{prefix}.{a}" if prefix else a, f"{prefix}.{b}" if prefix else b))
    return pairs


def fold_batchnorms(module: Any) -> tuple[int, str]:
    """Fold every conv-BatchNorm pair of ``module`` (eval mode) in place; return the count and the method used.

    The method is ``"fx"`` when the module traced, else ``"sequential"``.
    """
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    module.eval()
    try:
        pairs, method = traced_pairs(module), "fx"
    except Exception:  # noqa: BLE001 - any trace failure (data-dependent control flow): the safe subset
        pairs, method = sequential_pairs(module), "sequential"
    for conv_name, bn_name in pairs:
        fused = fuse_conv_bn_eval(module.get_submodule(conv_name), module.get_submodule(bn_name))
        module.set_submodule(conv_name, fused)
        module.set_submodule(bn_name, torch.nn.Identity())
    return len(pairs), method


class Fuse(TorchCompression):
    """Folds each BatchNorm into the conv before it (torch eager), optionally converting to channels_last.

    Options: ``channels_last`` (default false).  Records ``conv_bn_folded``,
    the ``method`` that found the pairs (``fx`` or ``sequential``), the
    BatchNorms left and the parameters removed.  Outputs equal the original's
    up to float rounding (the tests check 1e-4 relative on the zoo).  Limits:
    only Conv1d/2d/3d followed by a BatchNorm of the same dimension with
    running statistics; a BatchNorm fed by anything else (an addition, a
    concatenation, a conv used twice) stays as it is.
    """

    name = "fuse"
    description = "folds BatchNorm into the preceding conv (torch eager); optional channels_last"
    Options: ClassVar[type[BaseModel]] = FuseOptions

    def apply(self, artifact: ModelArtifact, options: FuseOptions, ctx: CompressionContext) -> ModelArtifact:  # type: ignore[override]
        """Fold a deep copy of the module (the input artifact is left as it was)."""
        import copy

        import torch
        from benchharness_torch import module_artifact

        module = copy.deepcopy(artifact.obj).eval()
        before = sum(p.numel() for p in module.parameters())
        folded, method = fold_batchnorms(module)
        if options.channels_last:
            module = module.to(memory_format=torch.channels_last)
        batchnorms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
        ctx.record(
            conv_bn_folded=folded,
            method=method,
            batchnorms_left=sum(isinstance(m, batchnorms) for m in module.modules()),
            parameters_removed=before - sum(p.numel() for p in module.parameters()),
            channels_last=options.channels_last,
        )
        identity = f"fuse:{artifact.content_hash}:channels_last={options.channels_last}"
        return module_artifact(module, identity=identity)


COMPRESSIONS = (Fuse,)
