"""Train a zoo model on the digits training split: seeded, reproducible, a minute or less on 2 CPU cores.

The zoo's ``weights: digits`` option calls :func:`digits_weights`, which
trains on first use and caches the weights (``ModelContext.cached_file``,
keyed by every option that shapes the model, the seed, the recipe and the
torch version), so a fresh machine gets real accuracy without a network and
each configuration is trained once, even by workers that ask at the same time.

The images are fed exactly as a suite's ``dataset: {name: digits}`` entry
feeds them when a case is scored (``benchharness.api.feed_dataset``: 8x8
greyscale resized bilinearly to the input size, repeated to the input's
channels, values in [0, 1], NCHW), so training and scoring see the same
preprocessing.  The test split is never trained on; its top-1 is measured
after training and kept with the weights.

Run it by hand to see the time and accuracy, or to fill the cache before a run::

    python -m benchharness_zoo.train --arch resnet --width 0.25 --input-size 32

Same seed, same weights, on the same machine with the same thread count;
elsewhere floating-point sums may round differently, and the accuracy agrees
to a fraction of a percent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchharness.api import BenchError, DatasetSpec, InputSpec, ModelContext, feed_dataset

if TYPE_CHECKING:
    from benchharness_zoo import ZooOptions


@dataclass(frozen=True)
class Recipe:
    """How the zoo trains on digits; a change of any field is a new ``version`` (and so a new cache key)."""

    version: int = 1
    epochs: int = 12
    #: Architectures that train for another number of epochs: SqueezeNet has no BatchNorm and learns more slowly
    #: (91% after 12 epochs, 97% after 24, in 20 s).
    epochs_by_arch: tuple[tuple[str, int], ...] = (("squeezenet", 24),)
    batch_size: int = 64
    #: Peak learning rate of the one-cycle schedule (AdamW).
    lr: float = 4e-3
    weight_decay: float = 5e-4
    #: Random shifts of up to this many input pixels per axis (per image, per epoch), filled with zeros.
    shift: int = 2
    #: Gradients are scaled down to at most this norm, which keeps SqueezeNet (no BatchNorm) from diverging.
    clip: float = 5.0

    def epochs_for(self, arch: str) -> int:
        """Epochs for ``arch``."""
        return dict(self.epochs_by_arch).get(arch, self.epochs)


RECIPE = Recipe()


def _fed(split: str, in_channels: int, input_size: int) -> tuple[Any, Any]:
    """The digits split as the model's input (float32 NCHW) and its labels, fed as a suite's dataset entry feeds it."""
    try:
        from benchharness_datasets.digits import load_split
    except ImportError as exc:  # pragma: no cover - the built-in datasets plugin ships with the zoo
        raise BenchError(f"weights 'digits' need the built-in datasets plugin: {exc}") from None
    try:
        data = load_split(split)
    except ImportError:
        raise BenchError(
            "weights 'digits' train on scikit-learn's digits: pip install scikit-learn  "
            "(or: pip install 'benchharness[data]')"
        ) from None
    spec = InputSpec(name="input", shape=["batch", in_channels, input_size, input_size], dtype="float32")
    return feed_dataset(data, DatasetSpec(name="digits"), spec), data.labels


def _shifted(torch: Any, images: Any, shift: int, generator: Any) -> Any:
    """Each image moved by a random whole number of pixels in [-shift, shift] per axis, zeros filling in."""
    n, channels, height, width = images.shape
    padded = torch.nn.functional.pad(images, (shift, shift, shift, shift))
    rows = torch.randint(0, 2 * shift + 1, (n, 1), generator=generator) + torch.arange(height)
    cols = torch.randint(0, 2 * shift + 1, (n, 1), generator=generator) + torch.arange(width)
    return padded[
        torch.arange(n)[:, None, None, None],
        torch.arange(channels)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


def train(
    options: ZooOptions,
    *,
    seed: int = 0,
    recipe: Recipe = RECIPE,
    log: Callable[[str], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train the zoo model ``options`` describe on the digits training split; return it (eval mode) and its report.

    The report has the test split's top-1 (%), the seconds spent training,
    the sample counts, the threads torch used and the recipe.
    """
    import torch

    from benchharness_zoo import build_kwargs
    from benchharness_zoo.models import build_model

    train_x, train_y = _fed("train", options.in_channels, options.input_size)
    test_x, test_y = _fed("test", options.in_channels, options.input_size)
    torch.manual_seed(seed)
    model = build_model(options.arch, **build_kwargs(options))
    x, y = torch.from_numpy(train_x), torch.from_numpy(train_y)
    epochs = recipe.epochs_for(options.arch)
    steps_per_epoch = len(x) // recipe.batch_size  # whole batches only: BatchNorm on 3 samples is noise
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        images = _shifted(torch, x, recipe.shift, generator) if recipe.shift else x
        total = 0.0
        for step in range(steps_per_epoch):
            index = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            loss = torch.nn.functional.cross_entropy(model(images[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.clip)
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}: loss {total / steps_per_epoch:.4f}")
    seconds = time.perf_counter() - started
    model.eval()
    with torch.inference_mode():
        predicted = torch.cat([model(chunk).argmax(1) for chunk in torch.from_numpy(test_x).split(256)])
    correct = int((predicted == torch.from_numpy(test_y)).sum())
    report = {
        "dataset": "digits",
        "train_samples": int(len(x)),
        "test_samples": int(len(test_y)),
        "test_top1": round(100.0 * correct / len(test_y), 3),
        "epochs": epochs,
        "train_seconds": round(seconds, 2),
        "threads": torch.get_num_threads(),
        "torch": str(torch.__version__),
        "seed": seed,
        "recipe": asdict(recipe),
    }
    return model, report


def cache_key(options: ZooOptions, seed: int, recipe: Recipe = RECIPE) -> str:
    """What the trained weights depend on, hashed: the model's options, the seed, the recipe and torch's version."""
    import torch
    from benchharness_datasets.digits import SPLIT_SEED, TEST_FRACTION

    from benchharness_zoo import build_kwargs

    facts = {
        "arch": options.arch,
        **build_kwargs(options),
        "seed": seed,
        "recipe": asdict(recipe),
        "split": [SPLIT_SEED, TEST_FRACTION],
        "torch": str(torch.__version__).split("+")[0],
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:32]


def digits_weights(options: ZooOptions, ctx: ModelContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """The digits-trained weights (a ``state_dict``) and their training report, trained once into the cache."""
    import torch

    def build(tmp: Path) -> None:
        model, report = train(options, seed=ctx.seed)
        torch.save({"state_dict": model.state_dict(), "report": report}, tmp)

    cached = ctx.cached_file(f"zoo-digits/{cache_key(options, ctx.seed)}.pt", build, {"recipe": RECIPE.version})
    try:
        saved = torch.load(cached.path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a file that verified but does not load: say which
        first = (str(exc).strip().splitlines() or [""])[0]
        raise BenchError(f"cached digits weights {cached.path} do not load: {type(exc).__name__}: {first}") from None
    report = dict(saved["report"], cache_hit=cached.hit, cache_file=str(cached.path))
    if cached.rebuilt:
        report["cache_rebuilt"] = cached.rebuilt
    return saved["state_dict"], report


def main(argv: list[str] | None = None) -> int:
    """Train one configuration and print its training time and test top-1 (nothing is cached)."""
    from benchharness_zoo import ACTIVATION_NAMES, ARCH_NAMES, ZooOptions

    parser = argparse.ArgumentParser(prog="python -m benchharness_zoo.train", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=ARCH_NAMES, required=True)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--depth", type=float, default=1.0)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--activation", choices=ACTIVATION_NAMES, default="relu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs (for trying; nothing is cached)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each epoch's loss")
    args = parser.parse_args(argv)
    import torch
    from pydantic import ValidationError

    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = RECIPE
    if args.epochs is not None:
        recipe = Recipe(**{**asdict(RECIPE), "epochs": args.epochs, "epochs_by_arch": ()})
    try:
        options = ZooOptions(
            arch=args.arch,
            width=args.width,
            depth=args.depth,
            input_size=args.input_size,
            in_channels=args.in_channels,
            activation=args.activation,
            num_classes=10,
            weights="digits",
        )
        _, report = train(
            options,
            seed=args.seed,
            recipe=recipe,
            log=(lambda line: print(line, file=sys.stderr)) if args.verbose else None,
        )
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"])
        print(f"benchharness_zoo.train: {where + ': ' if where else ''}{error['msg']}", file=sys.stderr)
        return 2
    except (BenchError, ValueError) as exc:
        print(f"benchharness_zoo.train: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


__all__ = ["RECIPE", "Recipe", "cache_key", "digits_weights", "main", "train"]

if __name__ == "__main__":
    sys.exit(main())
