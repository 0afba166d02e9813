"""The accuracy metric: a perfect classifier, a random one, failures that cost only the figure, and real digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from benchharness_datasets.scoring import classification, top_k_correct
from conftest import write_onnx
from onnx import TensorProto
from scipy.stats import binom

from benchharness.errors import BenchError
from benchharness.testing import run_case

CLASSES = 10


def one_hot(labels: np.ndarray, classes: int = CLASSES) -> np.ndarray:
    scores = np.zeros((len(labels), classes), dtype=np.float32)
    scores[np.arange(len(labels)), labels] = 1.0
    return scores


def binomial_bounds(n: int, p: float, tail: float = 1e-4) -> tuple[float, float]:
    """Percentages between which a Binomial(n, p) count falls but with probability ``2 * tail``."""
    return 100 * binom.ppf(tail, n, p) / n, 100 * binom.isf(tail, n, p) / n


def test_a_perfect_classifier_scores_100():
    labels = np.random.default_rng(0).integers(0, CLASSES, 500)
    figures = classification(one_hot(labels), labels)
    assert figures == {
        "samples": 500,
        "classes": 10,
        "correct_top1": 500,
        "top1": 100.0,
        "correct_top5": 500,
        "top5": 100.0,
    }


def test_a_random_classifier_scores_chance_within_its_binomial_bounds():
    # 5000 samples: top-1 of random scores is Binomial(5000, 0.1), top-5 Binomial(5000, 0.5).  The bounds leave
    # out 1e-4 at each end; with this seed the test is deterministic, and it fails for a scorer that is biased by
    # more than about 1.6 points (top-1).
    rng = np.random.default_rng(7)
    n = 5000
    labels = rng.integers(0, CLASSES, n)
    figures = classification(rng.normal(size=(n, CLASSES)), labels)
    low, high = binomial_bounds(n, 0.1)
    assert low <= figures["top1"] <= high, (figures["top1"], low, high)
    low5, high5 = binomial_bounds(n, 0.5)
    assert low5 <= figures["top5"] <= high5, (figures["top5"], low5, high5)
    assert (low, high) == pytest.approx((8.46, 11.62), abs=0.01)  # the bounds themselves


def test_top_k_counts_and_small_class_counts():
    scores = np.array([[0.1, 0.9, 0.5], [0.8, 0.1, 0.7], [0.2, 0.3, 0.1]])
    labels = np.array([2, 2, 2])  # second, second and last of each row
    assert [top_k_correct(scores, labels, k) for k in (1, 2, 3, 5)] == [0, 2, 3, 3]
    small = classification(scores, labels)
    assert small["top5"] is None and small["correct_top5"] is None  # 3 classes: every label is in a top 5


def test_labels_beyond_the_scores_are_an_error_but_more_scores_are_fine():
    labels = np.array([0, 5, 999])
    with pytest.raises(BenchError, match="the dataset's labels go up to 999 but the output scores 10 classes"):
        classification(np.zeros((3, 10)), labels)
    wide = classification(one_hot(np.array([0, 5, 9]), 1000), np.array([0, 5, 9]))  # 10 labels, 1000 logits
    assert wide["top1"] == 100.0 and wide["classes"] == 1000
    with pytest.raises(BenchError, match="4 outputs for 3 labels"):
        classification(np.zeros((4, 10)), labels)


# ------------------------------------------------------------------ through a run, on a model that returns its input


def scorer(tmp_path: Path, scores: np.ndarray, labels: np.ndarray) -> dict:
    """An identity ONNX model (scores in, scores out) with an npz dataset of scores: its accuracy is theirs."""
    write_onnx(tmp_path / "m.onnx", {"x": (["N", scores.shape[1]], TensorProto.FLOAT)})
    np.savez(tmp_path / "scores.npz", inputs=scores.astype(np.float32), labels=labels)
    return {"source": "onnx", "path": "m.onnx", "dataset": {"name": "npz", "path": "scores.npz"}}


def test_a_perfect_classifier_through_a_run_scores_100_with_a_padded_last_batch(tmp_path):
    labels = np.random.default_rng(1).integers(0, CLASSES, 103)  # 103 = 12 batches of 8 and 7 samples
    model = scorer(tmp_path, one_hot(labels), labels)
    result = run_case(model=model, backend="onnxruntime", metrics=["latency", "accuracy"], batch=8, base_dir=tmp_path)
    accuracy = result.metrics["accuracy"]
    assert (accuracy.value, accuracy.unit) == (100.0, "%")
    assert accuracy.details["samples"] == 103 and accuracy.details["correct_top1"] == 103
    assert accuracy.details["dataset"]["name"] == "npz"
    assert accuracy.details["dataset"]["fed_input"] == "x"
    assert "top-1 on npz (103 samples)" in accuracy.method
    assert ("datasets", "npz") in {(p.kind, p.name) for p in result.provenance}


def test_a_random_classifier_through_a_run_scores_what_its_scores_score(tmp_path):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, CLASSES, 400)
    scores = rng.normal(size=(400, CLASSES)).astype(np.float32)
    model = scorer(tmp_path, scores, labels)
    model["dataset"]["limit"] = 300
    result = run_case(model=model, backend="onnxruntime", metrics=["accuracy"], batch=4, base_dir=tmp_path)
    expected = classification(scores[:300], labels[:300])
    assert result.metrics["accuracy"].value == pytest.approx(expected["top1"])
    assert result.metrics["accuracy"].details["top5"] == pytest.approx(expected["top5"])
    low, high = binomial_bounds(300, 0.1)
    assert low <= result.metrics["accuracy"].value <= high


def test_failures_cost_only_the_accuracy_figure(tmp_path):
    labels = np.arange(20) % CLASSES
    model = scorer(tmp_path, one_hot(labels), labels)
    missing = dict(model, dataset={"name": "npz", "path": "gone.npz"})
    result = run_case(
        model=missing, backend="onnxruntime", metrics=["latency", "accuracy"], base_dir=tmp_path, check=False
    )
    assert result.status == "ok" and "latency" in result.metrics
    assert result.metric_errors == {
        "accuracy": f"metric 'accuracy' failed: BenchError: dataset file not found: {tmp_path / 'gone.npz'}"
    }
    np.savez(tmp_path / "wide.npz", inputs=one_hot(labels), labels=labels * 100)  # labels up to 900, 10 scores
    wide = dict(model, dataset={"name": "npz", "path": "wide.npz"})
    result = run_case(model=wide, backend="onnxruntime", metrics=["accuracy"], base_dir=tmp_path, check=False)
    assert result.metric_errors == {
        "accuracy": "metric 'accuracy' failed: BenchError: the dataset's labels go up to 900 but the output "
        "scores 10 classes"
    }
    np.savez(tmp_path / "narrow.npz", inputs=np.zeros((20, 4), np.float32), labels=labels)  # 4 values, input takes 10
    narrow = dict(model, dataset={"name": "npz", "path": "narrow.npz"})
    result = run_case(model=narrow, backend="onnxruntime", metrics=["accuracy"], base_dir=tmp_path, check=False)
    assert result.metric_errors == {
        "accuracy": "metric 'accuracy' failed: BenchError: the dataset's samples have shape [4]; input 'x' [20, 10] "
        "takes [10] each"
    }
    plain = {"source": "onnx", "path": "m.onnx"}
    result = run_case(model=plain, backend="onnxruntime", metrics=["accuracy"], base_dir=tmp_path, check=False)
    assert result.metric_errors == {
        "accuracy": "metric 'accuracy' failed: BenchError: model 'm' has no dataset: give it one under 'dataset' in "
        "the suite"
    }
