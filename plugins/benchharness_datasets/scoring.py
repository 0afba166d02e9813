"""The figures of the ``accuracy`` and ``fidelity`` metrics, from plain arrays.

Kept apart from the metrics so they can be checked on known outputs: a
perfect classifier, a random one, identical and perturbed outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchharness.api import BenchError

if TYPE_CHECKING:
    import numpy as np


def pick_output(outputs: dict[str, np.ndarray], position: int) -> tuple[str, np.ndarray]:
    """The output at ``position`` (0: the first) with its name.

    Outputs are picked by position, not name: frameworks name the same
    output differently (torch ``output0``, an ONNX export the graph's name).
    """
    names = list(outputs)
    if not 0 <= position < len(names):
        raise BenchError(f"output {position} does not exist; the model has {len(names)}: {', '.join(names) or 'none'}")
    return names[position], outputs[names[position]]


def rows(array: np.ndarray) -> np.ndarray:
    """``array`` as ``[N, values per sample]`` float64."""
    import numpy as np

    array = np.asarray(array)
    return array.reshape(len(array), -1).astype(np.float64)


def top_k_correct(scores: np.ndarray, labels: np.ndarray, k: int) -> int:
    """How many samples have their label among their ``k`` highest scores (``scores``: ``[N, classes]``)."""
    import numpy as np

    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.arange(scores.shape[1])[None]
    return int((top == labels[:, None]).any(axis=1).sum())


def classification(scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Top-1 and top-5 of class ``scores`` (one row per sample) against ``labels``.

    Returns ``samples``, ``classes`` (scores per sample), ``correct_top1``,
    ``top1`` (%), and ``correct_top5``/``top5`` (``None`` with 5 classes or
    fewer, where every label is in the top 5).  More scores than the labels
    use is fine (10 labels, 1000 scores); a label beyond the scores is a
    :class:`BenchError`.
    """
    import numpy as np

    labels = np.asarray(labels)
    flat = rows(scores)
    if len(flat) != len(labels):
        raise BenchError(f"{len(flat)} outputs for {len(labels)} labels")
    classes = flat.shape[1]
    if classes < 2:
        raise BenchError(f"the output has {classes} value per sample; class scores need at least 2")
    if int(labels.max()) >= classes:
        raise BenchError(f"the dataset's labels go up to {int(labels.max())} but the output scores {classes} classes")
    correct1 = top_k_correct(flat, labels, 1)
    figures: dict[str, Any] = {
        "samples": int(len(labels)),
        "classes": classes,
        "correct_top1": correct1,
        "top1": 100.0 * correct1 / len(labels),
        "correct_top5": None,
        "top5": None,
    }
    if classes > 5:
        correct5 = top_k_correct(flat, labels, 5)
        figures.update(correct_top5=correct5, top5=100.0 * correct5 / len(labels))
    return figures


def comparison(outputs: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """How far ``outputs`` are from ``reference`` (one row per sample, same shapes).

    - ``top1_agreement`` (%): samples whose highest output is at the same
      index in both; ``None`` with one value per sample.
    - ``max_abs_diff``: the largest ``|out - ref|`` of any element.
    - ``mean_abs_diff``: the mean ``|out - ref|``.
    - ``mean_rel_diff``: ``sum |out - ref| / sum |ref|``, the mean difference
      relative to the mean size of the reference: 0.01 when every element is
      1% off; ``None`` when the reference is all zeros.
    - ``cosine_mean``, ``cosine_min``: the cosine similarity of each sample's
      outputs with its reference, averaged and at its lowest (1 when a
      sample and its reference are both zero, 0 when only one is).
    """
    import numpy as np

    out, ref = rows(outputs), rows(reference)
    if out.shape != ref.shape:
        raise BenchError(
            f"the outputs have {out.shape[1]} values per sample for {len(out)} samples, the reference's "
            f"{ref.shape[1]} for {len(ref)}"
        )
    if len(out) == 0:
        raise BenchError("no samples to compare")
    diff = np.abs(out - ref)
    scale = float(np.abs(ref).sum())
    dot = (out * ref).sum(axis=1)
    norms = np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1)
    both_zero = (np.linalg.norm(out, axis=1) == 0) & (np.linalg.norm(ref, axis=1) == 0)
    cosine = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), np.where(both_zero, 1.0, 0.0))
    agreement = None
    if out.shape[1] > 1:
        agreement = 100.0 * float((out.argmax(axis=1) == ref.argmax(axis=1)).mean())
    return {
        "samples": int(len(out)),
        "values_per_sample": int(out.shape[1]),
        "top1_agreement": agreement,
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "mean_rel_diff": float(diff.sum() / scale) if scale > 0 else None,
        "cosine_mean": float(cosine.mean()),
        "cosine_min": float(cosine.min()),
    }


__all__ = ["classification", "comparison", "pick_output", "rows", "top_k_correct"]
