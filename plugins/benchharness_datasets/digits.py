"""scikit-learn's bundled handwritten digits, with a fixed, seeded, stratified train/test split.

1,797 greyscale images of 8x8 pixels (values 0 to 16), ten classes, shipped
inside scikit-learn (no download).  The split is drawn here with numpy, not
with scikit-learn's ``train_test_split``, so it stays the same whatever
scikit-learn's version: per class, the samples (in the file's order) are
permuted by a generator seeded with :data:`SPLIT_SEED`, and the first
``round(TEST_FRACTION * n)`` go to the test split; each split is then
shuffled by the same generator, so its first samples mix every class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchharness.api import LabelledData

if TYPE_CHECKING:
    import numpy as np

#: Seed of the train/test split; fixed, so the zoo's digits weights never see the test split.
SPLIT_SEED = 0
#: Share of each class that goes to the test split.
TEST_FRACTION = 0.25
#: The images' peak value (they hold 0 to 16).
PEAK = 16.0
SPLITS = ("train", "test")


def split_indices(
    labels: np.ndarray, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED
) -> dict[str, np.ndarray]:
    """Indices of a stratified ``train``/``test`` split of ``labels``: each class split by ``test_fraction``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(test_fraction * len(members)))
        parts["test"].append(members[:n_test])
        parts["train"].append(members[n_test:])
    return {split: rng.permutation(np.concatenate(chunks)) for split, chunks in parts.items()}


def load_split(split: str) -> LabelledData:
    """The ``train`` or ``test`` split as ``[N, 8, 8, 1]`` images in [0, 1] with their labels (0 to 9)."""
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)[..., None] / np.float32(PEAK)
    labels = np.asarray(bunch.target, dtype=np.int64)
    splits = split_indices(labels)
    index = splits[split]
    info = {
        "source": "sklearn.datasets.load_digits",
        "split": split,
        "split_seed": SPLIT_SEED,
        "test_fraction": TEST_FRACTION,
        "split_sizes": {name: int(len(part)) for name, part in splits.items()},
        "image_size": [8, 8],
    }
    return LabelledData(
        inputs=np.ascontiguousarray(images[index]),
        labels=labels[index],
        classes=[str(c) for c in range(10)],
        info=info,
    )


__all__ = ["PEAK", "SPLITS", "SPLIT_SEED", "TEST_FRACTION", "load_split", "split_indices"]
