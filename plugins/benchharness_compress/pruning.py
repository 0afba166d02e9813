"""Pruning compressions: ``prune-magnitude`` (unstructured, zeros in dense weights) and ``prune-channels``
(structured: whole channels removed and smaller layers rebuilt, so the model really gets cheaper).

Both take and give an in-memory torch module (:class:`~benchharness_torch.TorchCompression`), which the
``torch-onnx`` converter exports for ONNX Runtime and OpenVINO.  Both may fine-tune on the model's digits
training split afterwards (``finetune_epochs``).  torch is imported inside functions only.

Why ``prune-channels`` has its own dependency analysis instead of torch-pruning's ``DependencyGraph``:
torch-pruning 1.6.1 installs here without another torch and prunes the zoo's MobileNetV2, ResNet and
SqueezeNet, but building its graph for the zoo's ShuffleNetV2 fails (``ZeroDivisionError`` in
``update_reshape_index_mapping``, on the channel shuffle written as ``unflatten``/``transpose``/``flatten``).
The analysis below traces the model with ``torch.fx`` and follows every channel through the graph.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from benchharness_torch import TorchCompression, module_artifact
from pydantic import BaseModel, Field

from benchharness.api import BenchError, CompressionContext, CompressionOptions, ModelArtifact

if TYPE_CHECKING:
    import numpy as np

# --------------------------------------------------------------------------- options


class FinetuneOptions(CompressionOptions):
    """Fine-tuning options shared by the pruning compressions."""

    finetune_epochs: int = Field(
        0, ge=0, le=1000, description="Epochs of training on the model's dataset (train split) after pruning; 0: none."
    )
    lr: float = Field(1e-3, gt=0, le=1.0, description="Learning rate of the fine-tuning (AdamW, cosine decay).")
    batch_size: int = Field(64, ge=1, le=65536, description="Samples per fine-tuning step.")


class MagnitudeOptions(FinetuneOptions):
    """Options of ``prune-magnitude``."""

    amount: float = Field(0.5, gt=0, lt=1, description="Fraction of the Conv2d and Linear weights set to zero.")
    scope: Literal["global", "layer"] = Field(
        "global",
        description="global: the smallest |w| over all pruned layers together; layer: the same fraction in each layer.",
    )


class ChannelOptions(FinetuneOptions):
    """Options of ``prune-channels``."""

    amount: float = Field(
        0.5, gt=0, lt=1, description="Fraction of the prunable channels removed in each group of coupled layers."
    )


# --------------------------------------------------------------------------- shared helpers


def _example_inputs(torch: Any, artifact: ModelArtifact) -> tuple[Any, ...]:
    """Seeded example tensors shaped as the case's inputs (batch fixed by the core)."""
    if not artifact.inputs:
        raise BenchError("pruning needs the model's input shapes; the model artifact has none")
    generator = torch.Generator().manual_seed(0)
    tensors = []
    for spec in artifact.inputs:
        shape = [int(d) for d in spec.shape]
        dtype = getattr(torch, str(spec.dtype))
        if dtype.is_floating_point:
            tensors.append(torch.randn(shape, generator=generator).to(dtype))
        else:
            tensors.append(torch.zeros(shape, dtype=dtype))
    return tuple(tensors)


def _accuracy(torch: Any, model: Any, x: Any, y: Any) -> float:
    """Top-1 (%) of ``model`` on ``x``/``y``, in eval mode, in chunks of 256."""
    model.eval()
    with torch.inference_mode():
        predicted = torch.cat([model(chunk).argmax(1) for chunk in x.split(256)])
    return round(100.0 * float((predicted == y).float().mean()), 3)


def _training_split(torch: Any, artifact: ModelArtifact, ctx: CompressionContext) -> tuple[Any, Any]:
    """The model's training split as float32 tensors: its one fed input and its labels."""
    import numpy as np

    if len(artifact.inputs) != 1:
        raise BenchError(
            f"finetune_epochs needs a model with one input; {ctx.model_label!r} has {len(artifact.inputs)}"
        )
    data = ctx.dataset("train")
    x = torch.from_numpy(np.ascontiguousarray(data.inputs[data.fed], dtype=np.float32))
    y = torch.from_numpy(np.asarray(data.labels, dtype=np.int64))
    return x, y


def finetune(model: Any, x: Any, y: Any, options: FinetuneOptions, seed: int) -> dict[str, Any]:
    """Train ``model`` on ``x``/``y`` for ``options.finetune_epochs`` epochs; return the facts to record.

    AdamW at ``options.lr`` with cosine decay, shuffled batches of ``options.batch_size``
    (whole batches only, so BatchNorm never sees a batch of one), seeded by ``seed``.  The facts
    are the epochs, the samples and the train-split top-1 (%) before and after.  Leaves ``model``
    in eval mode.
    """
    import torch

    torch.manual_seed(seed)
    before = _accuracy(torch, model, x, y)
    batch = min(options.batch_size, len(x))
    steps = max(1, len(x) // batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=options.finetune_epochs * steps)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(options.finetune_epochs):
        order = torch.randperm(len(x), generator=generator)
        for step in range(steps):
            index = order[step * batch : (step + 1) * batch]
            loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    after = _accuracy(torch, model, x, y)
    return {
        "finetune_epochs": options.finetune_epochs,
        "finetune_samples": int(len(x)),
        "train_top1_before_finetune": before,
        "train_top1_after_finetune": after,
    }


def count_macs(model: Any, example: tuple[Any, ...]) -> int:
    """Multiply-accumulates of one forward pass over ``example`` by Conv2d and Linear layers, per sample."""
    import torch

    total = [0]

    def conv_hook(module: Any, args: Any, out: Any) -> None:
        kernel = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
        total[0] += out[0].numel() * kernel

    def linear_hook(module: Any, args: Any, out: Any) -> None:
        total[0] += out[0].numel() * module.in_features

    hooks = []
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, torch.nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
    try:
        model.eval()
        with torch.inference_mode():
            model(*(t[:1] for t in example))
    finally:
        for hook in hooks:
            hook.remove()
    return int(total[0])


# --------------------------------------------------------------------------- prune-magnitude


class _FineTunable(TorchCompression):
    """A pruning that fine-tunes on the training split when ``finetune_epochs`` asks, and reads no data otherwise."""

    uses_dataset = True

    def reads_data(self, options: BaseModel) -> bool:
        """Only fine-tuning reads data: without it the cache key leaves the dataset entry out."""
        return bool(getattr(options, "finetune_epochs", 0))


class MagnitudePruning(_FineTunable):
    """Unstructured L1 magnitude pruning of every Conv2d and Linear weight (``torch.nn.utils.prune``).

    Options: ``amount`` (fraction of those weights zeroed, in (0, 1)), ``scope`` (``global``: the
    smallest magnitudes over all the layers together, so layers lose different fractions;
    ``layer``: ``amount`` of each layer), and the fine-tuning options (the masks stay on while
    fine-tuning, so pruned weights stay zero).  The pruning is made permanent (``prune.remove``):
    the module keeps its structure and ``state_dict`` keys, with zeros in its dense weights.

    Records the sparsity of the pruned weights and over all parameters.  Limit: dense kernels
    (torch, ONNX Runtime, OpenVINO on CPU) do the same work on zeros, so latency does not drop;
    only compressed storage of the file would shrink.  Biases and BatchNorm are not pruned.
    """

    name = "prune-magnitude"
    description = "unstructured L1 magnitude pruning of Conv2d/Linear weights (zeros; no speed-up on dense kernels)"
    Options: ClassVar[type[BaseModel]] = MagnitudeOptions

    def apply(self, artifact: ModelArtifact, options: MagnitudeOptions, ctx: CompressionContext) -> ModelArtifact:  # type: ignore[override]
        """Zero ``amount`` of the Conv2d/Linear weights by magnitude, fine-tune if asked, make it permanent."""
        import torch
        from torch.nn.utils import prune

        model = copy.deepcopy(artifact.obj)  # the input model may serve other variants in this process
        layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        if not layers:
            raise BenchError(f"prune-magnitude: model {ctx.model_label!r} has no Conv2d or Linear layer to prune")
        if options.scope == "global":
            prune.global_unstructured(
                [(m, "weight") for m in layers], pruning_method=prune.L1Unstructured, amount=options.amount
            )
        else:
            for module in layers:
                prune.l1_unstructured(module, "weight", amount=options.amount)
        facts: dict[str, Any] = {"scope": options.scope, "amount": options.amount, "layers_pruned": len(layers)}
        if options.finetune_epochs:
            x, y = _training_split(torch, artifact, ctx)
            facts.update(finetune(model, x, y, options, ctx.seed))
        for module in layers:
            prune.remove(module, "weight")
        model.eval()
        pruned = sum(m.weight.numel() for m in layers)
        zeros = sum(int((m.weight == 0).sum()) for m in layers)
        all_params = sum(p.numel() for p in model.parameters())
        all_zeros = sum(int((p == 0).sum()) for p in model.parameters())
        facts.update(
            weights_pruned=pruned,
            zeros=zeros,
            sparsity=round(zeros / pruned, 6),
            sparsity_all_parameters=round(all_zeros / all_params, 6),
        )
        ctx.record(**facts)
        return module_artifact(model, identity=f"{artifact.content_hash}:prune-magnitude:{options.model_dump_json()}")


# --------------------------------------------------------------------------- prune-channels: the analysis

#: Modules that keep each channel where it is (elementwise or spatial only).
_PASS_MODULES = (
    "ReLU ReLU6 LeakyReLU SiLU Hardswish Hardsigmoid Sigmoid Tanh GELU ELU Mish Identity Dropout Dropout2d "
    "MaxPool2d AvgPool2d AdaptiveAvgPool2d AdaptiveMaxPool2d"
).split()
#: Functions and tensor methods that keep each channel where it is.
_PASS_NAMES = set(
    "relu relu_ relu6 leaky_relu silu hardswish hardsigmoid sigmoid tanh gelu elu dropout contiguous clone "
    "max_pool2d avg_pool2d adaptive_avg_pool2d adaptive_max_pool2d".split()
)
_BINARY = {operator.add, operator.mul, operator.sub, operator.iadd, "add", "mul", "sub", "add_", "mul_"}


@dataclass
class _Channels:
    """Union-find over channel ids, with what each id touches (module, role, index) and which ids are fixed."""

    parent: list[int] = field(default_factory=list)
    members: list[list[tuple[str, str, int]]] = field(default_factory=list)
    fixed: set[int] = field(default_factory=set)

    def fresh(self, shape: tuple[int, ...], *, fixed: bool = False) -> np.ndarray:
        """New ids for a tensor's channel axes; ``fixed`` ones are never pruned."""
        import numpy as np

        start = len(self.parent)
        count = int(np.prod(shape)) if shape else 0
        self.parent.extend(range(start, start + count))
        self.members.extend([] for _ in range(count))
        if fixed:
            self.fixed.update(range(start, start + count))
        return np.arange(start, start + count, dtype=np.int64).reshape(shape)

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        """Couple ``a[k]`` with ``b[k]`` for every k: those channels are kept or removed together."""
        for x, y in zip(a.reshape(-1).tolist(), b.reshape(-1).tolist(), strict=True):
            rx, ry = self.find(x), self.find(y)
            if rx != ry:
                self.parent[ry] = rx

    def fix(self, ids: Any) -> None:
        """Mark channels that must stay (network inputs and outputs, what an unknown op touches)."""
        import numpy as np

        for value in ids if isinstance(ids, list) else [ids]:
            if isinstance(value, np.ndarray):
                self.fixed.update(value.reshape(-1).tolist())

    def touch(self, ids: np.ndarray, module: str, role: str) -> None:
        """Note that channel ``k`` of ``ids`` is index ``k`` of ``module``'s ``role`` (in, out, dw, bn, lin_in)."""
        for index, i in enumerate(ids.reshape(-1).tolist()):
            self.members[i].append((module, role, index))


def _couple_rows(channels: _Channels, ids: np.ndarray) -> None:
    """For a split of the channels into equal rows (chunk, unflatten), couple each column across the rows.

    Pruning then removes the same columns of every row, so the rows stay equal and aligned: what
    ``chunk`` and a channel shuffle need to compute the same function on fewer channels.
    """
    for row in ids[1:]:
        channels.union(ids[0], row)


def _arg_dim(node: Any, position: int, name: str, default: Any) -> Any:
    if len(node.args) > position:
        return node.args[position]
    return node.kwargs.get(name, default)


def _analyse(torch: Any, model: Any, example: tuple[Any, ...]) -> _Channels:
    """Trace ``model`` with torch.fx and couple its channels; see :class:`ChannelPruning` for the rules."""
    import numpy as np
    from torch.fx import symbolic_trace
    from torch.fx.node import map_arg
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        graph_module = symbolic_trace(model)
        ShapeProp(graph_module).propagate(*example)
    except Exception as exc:  # noqa: BLE001 - any tracing failure is the user's model: say so in one line
        first = (str(exc).strip().splitlines() or [""])[0]
        raise BenchError(f"prune-channels: torch.fx cannot trace the model: {type(exc).__name__}: {first}") from None
    channels = _Channels()
    ids: dict[Any, Any] = {}

    def shape_of(node: Any) -> tuple[int, ...] | None:
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    def opaque(node: Any) -> Any:
        """An op the analysis does not know: its inputs' and output's channels stay as they are."""
        for arg in node.all_input_nodes:
            channels.fix(ids.get(arg))
        shape = shape_of(node)
        return channels.fresh((shape[1],), fixed=True) if shape is not None and len(shape) >= 2 else None

    for node in graph_module.graph.nodes:
        args = list(map_arg(node.args, lambda a: ids.get(a)))
        first = args[0] if args else None
        shape = shape_of(node)
        target = node.target
        name = target if isinstance(target, str) else getattr(target, "__name__", "")
        out: Any = None
        if node.op in ("placeholder", "get_attr"):
            out = channels.fresh((shape[1],), fixed=True) if shape is not None and len(shape) >= 2 else None
        elif node.op == "output":
            for arg in node.all_input_nodes:
                channels.fix(ids.get(arg))
        elif node.op == "call_module":
            module = graph_module.get_submodule(target)
            kind = type(module).__name__
            flat = isinstance(first, np.ndarray) and first.ndim == 1
            if isinstance(module, torch.nn.Conv2d) and flat and len(first) == module.in_channels:
                if module.groups == 1:
                    channels.touch(first, target, "in")
                    out = channels.fresh((module.out_channels,))
                    channels.touch(out, target, "out")
                elif module.groups == module.in_channels == module.out_channels:
                    channels.touch(first, target, "dw")  # depthwise: its channels are its input's
                    out = first
                else:
                    out = opaque(node)
            elif isinstance(module, torch.nn.BatchNorm2d) and flat and len(first) == module.num_features:
                channels.touch(first, target, "bn")
                out = first
            elif isinstance(module, torch.nn.Linear) and flat and len(first) == module.in_features:
                channels.touch(first, target, "lin_in")
                out = channels.fresh((shape[-1],), fixed=True)  # Linear outputs (the classifier's) are kept
            elif kind == "Flatten" and isinstance(first, np.ndarray):
                out = _flatten(first, shape_of(node.args[0]), module.start_dim, module.end_dim)
                out = opaque(node) if out is None else out
            elif kind in _PASS_MODULES and isinstance(first, np.ndarray):
                out = first
            else:
                out = opaque(node)
        elif node.op in ("call_function", "call_method"):
            out = _call(torch, channels, node, name, target, args, shape_of)
            if out is NotImplemented:
                out = opaque(node)
        ids[node] = out
    return channels


def _flatten(ids: np.ndarray, shape: tuple[int, ...] | None, start: int, end: int) -> np.ndarray | None:
    """Channel ids after ``flatten(start, end)`` of a tensor of ``shape`` whose axes 1.. carry ``ids``' axes."""
    import numpy as np

    if shape is None:
        return None
    rank = len(shape)
    start, end = start % rank, end % rank
    k = ids.ndim  # tensor axes 1..k are channel axes
    if start > k:
        return ids  # only spatial axes merge
    if start == 1 and end >= k:
        return np.repeat(ids.reshape(-1), int(np.prod(shape[k + 1 : end + 1], dtype=np.int64)))
    if start >= 1 and end <= k:
        new = ids.shape[: start - 1] + (-1,) + ids.shape[end:]
        return ids.reshape(new)
    return None


def _call(torch: Any, channels: _Channels, node: Any, name: str, target: Any, args: list[Any], shape_of: Any) -> Any:
    """Channel ids of a function or method call's output, or ``NotImplemented`` for an op left opaque."""
    import numpy as np

    first = args[0] if args else None
    if name == "cat":
        dim = _arg_dim(node, 1, "dim", 0)
        pieces = list(first) if isinstance(first, tuple) else []
        shape = shape_of(node)
        if (
            pieces
            and shape
            and dim % len(shape) == 1
            and all(isinstance(p, np.ndarray) and p.ndim == 1 for p in pieces)
        ):
            return np.concatenate(pieces)
        return NotImplemented
    if isinstance(first, list):  # a chunk's pieces
        if target is operator.getitem and isinstance(args[1], int):
            return first[args[1]]
        return NotImplemented
    if not isinstance(first, np.ndarray):
        if name in ("add", "mul", "sub") and len(args) == 2 and isinstance(args[1], np.ndarray):
            return args[1]  # scalar op tensor
        return NotImplemented
    if name in _PASS_NAMES:
        return first
    if target in _BINARY or name in _BINARY:
        other = args[1] if len(args) > 1 else None
        if isinstance(other, np.ndarray) and other.shape == first.shape:
            channels.union(first, other)
            return first
        if isinstance(other, (int, float)):
            return first  # tensor op scalar
        return NotImplemented
    if name == "chunk":
        count = _arg_dim(node, 1, "chunks", None)
        dim = _arg_dim(node, 2, "dim", 0)
        shape = shape_of(node.args[0])
        if shape and dim % len(shape) == 1 and first.ndim == 1 and count and len(first) % count == 0:
            rows = first.reshape(count, -1)
            _couple_rows(channels, rows)
            return list(rows)
        return NotImplemented
    if name == "unflatten":
        dim, sizes = _arg_dim(node, 1, "dim", None), _arg_dim(node, 2, "sizes", None)
        shape = shape_of(node.args[0])
        if shape and dim is not None and dim % len(shape) == 1 and first.ndim == 1 and sizes and len(sizes) == 2:
            try:
                rows = first.reshape(tuple(sizes))
            except ValueError:
                return NotImplemented
            _couple_rows(channels, rows)
            return rows
        return NotImplemented
    if name == "transpose":
        shape = shape_of(node.args[0])
        a, b = _arg_dim(node, 1, "dim0", None), _arg_dim(node, 2, "dim1", None)
        if shape is None or a is None or b is None:
            return NotImplemented
        a, b = a % len(shape), b % len(shape)
        if 1 <= a <= first.ndim and 1 <= b <= first.ndim:
            return np.swapaxes(first, a - 1, b - 1)
        if a > first.ndim and b > first.ndim:
            return first
        return NotImplemented
    if name == "flatten":
        shape = shape_of(node.args[0])
        out = _flatten(first, shape, _arg_dim(node, 1, "start_dim", 0), _arg_dim(node, 2, "end_dim", -1))
        return NotImplemented if out is None or _arg_dim(node, 1, "start_dim", 0) == 0 else out
    return NotImplemented


# --------------------------------------------------------------------------- prune-channels: choosing and cutting


def _plan(torch: Any, model: Any, channels: _Channels, amount: float) -> dict[tuple[str, str], set[int]]:
    """Which indices of which (module, role) to remove: ``amount`` of the channels of each group, by L1 norm.

    A *channel* is a class of coupled ids; it is prunable when no id of it is fixed and some conv
    produces it.  A *group* gathers the channels that touch the same set of (module, role): the
    output of one conv with its BatchNorm, depthwise conv and consumers, or the channels a chain of
    residual additions ties together.  Each group loses ``int(amount * n)`` of its ``n`` channels
    (at least one is kept): the ones whose producing filters have the smallest L1 norm, summed over
    the coupled convs.
    """
    import numpy as np

    classes: dict[int, list[int]] = {}
    for i in range(len(channels.parent)):
        classes.setdefault(channels.find(i), []).append(i)
    fixed_roots = {channels.find(i) for i in channels.fixed}
    groups: dict[frozenset[tuple[str, str]], list[list[tuple[str, str, int]]]] = {}
    for root, members_ids in classes.items():
        members = [m for i in members_ids for m in channels.members[i]]
        if root in fixed_roots or not any(role == "out" for _, role, _ in members):
            continue
        groups.setdefault(frozenset((module, role) for module, role, _ in members), []).append(members)
    remove: dict[tuple[str, str], set[int]] = {}
    for members_of in groups.values():
        count = min(int(amount * len(members_of)), len(members_of) - 1)
        if count <= 0:
            continue
        scores = []
        for members in members_of:
            score = 0.0
            for module_name, role, index in members:
                if role in ("out", "dw"):
                    score += float(model.get_submodule(module_name).weight[index].detach().abs().sum())
            scores.append(score)
        for position in np.argsort(np.asarray(scores), kind="stable")[:count].tolist():
            for module_name, role, index in members_of[position]:
                remove.setdefault((module_name, role), set()).add(index)
    return remove


def _keep(torch: Any, size: int, removed: set[int]) -> Any:
    return torch.tensor([i for i in range(size) if i not in removed], dtype=torch.long)


def _cut(torch: Any, model: Any, remove: dict[tuple[str, str], set[int]]) -> None:
    """Rebuild every touched layer in place with the kept channels only (same module classes)."""
    nn = torch.nn
    names = {module_name for module_name, _ in remove}
    with torch.no_grad():
        for module_name in sorted(names):
            module = model.get_submodule(module_name)
            if isinstance(module, nn.Conv2d):
                if (module_name, "dw") in remove:
                    keep = _keep(torch, module.out_channels, remove[(module_name, "dw")])
                    module.weight = nn.Parameter(module.weight[keep].clone())
                    module.in_channels = module.out_channels = module.groups = len(keep)
                    if module.bias is not None:
                        module.bias = nn.Parameter(module.bias[keep].clone())
                    continue
                keep_out = _keep(torch, module.out_channels, remove.get((module_name, "out"), set()))
                keep_in = _keep(torch, module.in_channels, remove.get((module_name, "in"), set()))
                module.weight = nn.Parameter(module.weight[keep_out][:, keep_in].clone())
                if module.bias is not None:
                    module.bias = nn.Parameter(module.bias[keep_out].clone())
                module.out_channels, module.in_channels = len(keep_out), len(keep_in)
            elif isinstance(module, nn.BatchNorm2d):
                keep = _keep(torch, module.num_features, remove[(module_name, "bn")])
                if module.affine:
                    module.weight = nn.Parameter(module.weight[keep].clone())
                    module.bias = nn.Parameter(module.bias[keep].clone())
                if module.track_running_stats:
                    module.running_mean = module.running_mean[keep].clone()
                    module.running_var = module.running_var[keep].clone()
                module.num_features = len(keep)
            elif isinstance(module, nn.Linear):
                keep = _keep(torch, module.in_features, remove[(module_name, "lin_in")])
                module.weight = nn.Parameter(module.weight[:, keep].clone())
                module.in_features = len(keep)


def prune_channels(model: Any, example: tuple[Any, ...], amount: float) -> dict[str, Any]:
    """Remove ``amount`` of the prunable channels of each group of ``model`` in place; return the facts.

    See :class:`ChannelPruning` for what is followed and what is kept.  The facts: channels (conv
    outputs) before and removed, groups pruned, parameters and per-sample MACs before and after.
    Raises :class:`BenchError` when the model cannot be traced, or when the pruned model no longer
    gives outputs of the original shapes.
    """
    import torch

    model.eval()
    with torch.inference_mode():
        reference = model(*example)
    parameters_before = sum(p.numel() for p in model.parameters())
    macs_before = count_macs(model, example)
    conv_channels = sum(m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == 1)
    channels = _analyse(torch, model, example)
    remove = _plan(torch, model, channels, amount)
    _cut(torch, model, remove)
    with torch.inference_mode():
        pruned = model(*example)
    if _shapes(reference) != _shapes(pruned):
        raise BenchError(
            f"prune-channels: the pruned model's outputs have shapes {_shapes(pruned)}, not {_shapes(reference)}"
        )
    removed = sum(len(indices) for (_, role), indices in remove.items() if role == "out")
    return {
        "amount": amount,
        "channels_before": conv_channels,
        "channels_removed": removed,
        "groups_pruned": len({module for module, role in remove if role == "out"}),
        "parameters_before": parameters_before,
        "parameters_after": sum(p.numel() for p in model.parameters()),
        "macs_before": macs_before,
        "macs_after": count_macs(model, example),
    }


def _shapes(output: Any) -> list[list[int]]:
    items = output if isinstance(output, (tuple, list)) else [output]
    return [list(item.shape) for item in items]


class ChannelPruning(_FineTunable):
    """Structured channel pruning: whole conv output channels are removed and the layers rebuilt smaller.

    The model is traced with ``torch.fx`` and every channel followed through the graph: a conv
    (groups 1) produces channels and consumes its input's; BatchNorm, activations, pooling and
    dropout keep them; a depthwise conv keeps them and its groups follow its input; additions
    (residuals) couple the channels they add, so they are removed together; ``cat`` along the
    channels concatenates them (SqueezeNet's fire expands, ShuffleNet's branches); ``chunk`` and
    a channel shuffle (``unflatten``/``transpose``/``flatten``) couple each channel with its
    counterparts in the other pieces, so the pieces stay equal and aligned; a ``flatten`` before a
    Linear maps each channel to its features.  The network's inputs, its outputs and Linear
    outputs (the classifier) are never pruned, nor any channel an unknown op (a ``view``, a
    grouped non-depthwise conv) touches.

    Options: ``amount`` (fraction of each group's prunable channels removed, in (0, 1)), and the
    fine-tuning options.  Importance: the L1 norm of the producing filters, summed over coupled
    convs.  Records the channels removed, parameters and MACs before and after.  Limits: Conv2d,
    BatchNorm2d and Linear layers only; a model torch.fx cannot trace is a one-line error.
    """

    name = "prune-channels"
    description = "structured channel pruning: removes conv channels through BN, depthwise, concat, shuffle, residuals"
    Options: ClassVar[type[BaseModel]] = ChannelOptions

    def apply(self, artifact: ModelArtifact, options: ChannelOptions, ctx: CompressionContext) -> ModelArtifact:  # type: ignore[override]
        """Remove channels, fine-tune if asked, and record what changed."""
        import torch

        model = copy.deepcopy(artifact.obj)  # the input model may serve other variants in this process
        facts = prune_channels(model, _example_inputs(torch, artifact), options.amount)
        if options.finetune_epochs:
            x, y = _training_split(torch, artifact, ctx)
            facts.update(finetune(model, x, y, options, ctx.seed))
        model.eval()
        ctx.record(**facts)
        return module_artifact(model, identity=f"{artifact.content_hash}:prune-channels:{options.model_dump_json()}")


COMPRESSIONS = (MagnitudePruning, ChannelPruning)
