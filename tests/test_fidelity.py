"""The fidelity metric: figures of identical and perturbed outputs, and the reference a case is compared with."""

from __future__ import annotations

import math

import numpy as np
import pytest
from benchharness_datasets.scoring import comparison, pick_output
from conftest import write_onnx
from onnx import TensorProto

from benchharness.errors import BenchError
from benchharness.testing import run_case


def reference_scores(n: int = 200, classes: int = 10, seed: int = 3) -> np.ndarray:
    """Scores with a clear winner per row: the top score leads the runner-up by at least 1."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(-1.0, 1.0, size=(n, classes))
    scores[np.arange(n), rng.integers(0, classes, n)] = 3.0
    return scores


def test_identical_outputs_are_perfect():
    ref = reference_scores()
    figures = comparison(ref.copy(), ref)
    assert figures["top1_agreement"] == 100.0
    assert figures["max_abs_diff"] == figures["mean_abs_diff"] == figures["mean_rel_diff"] == 0.0
    assert figures["cosine_mean"] == pytest.approx(1.0, abs=1e-12)
    assert figures["cosine_min"] == pytest.approx(1.0, abs=1e-12)
    assert (figures["samples"], figures["values_per_sample"]) == (200, 10)


def test_outputs_scaled_by_one_percent():
    ref = reference_scores()
    figures = comparison(ref * 1.01, ref)
    assert figures["top1_agreement"] == 100.0  # a positive scale keeps every argmax
    assert figures["mean_rel_diff"] == pytest.approx(0.01, rel=1e-9)
    assert figures["max_abs_diff"] == pytest.approx(0.01 * np.abs(ref).max(), rel=1e-9)
    assert figures["mean_abs_diff"] == pytest.approx(0.01 * np.abs(ref).mean(), rel=1e-9)
    assert figures["cosine_min"] == pytest.approx(1.0, abs=1e-12)


def test_swapped_winners_lower_agreement_and_cosine_by_known_amounts():
    # Each row is [3, 1, 0, ...]; in 25 of 100 rows the first two swap: agreement 75%, and those rows have
    # cosine (3*1 + 1*3) / (3^2 + 1^2) = 0.6, the others 1.
    ref = np.zeros((100, 10))
    ref[:, 0], ref[:, 1] = 3.0, 1.0
    out = ref.copy()
    out[:25, 0], out[:25, 1] = 1.0, 3.0
    figures = comparison(out, ref)
    assert figures["top1_agreement"] == 75.0
    assert figures["max_abs_diff"] == 2.0
    assert figures["mean_abs_diff"] == pytest.approx(25 * 4.0 / 1000)
    assert figures["mean_rel_diff"] == pytest.approx(25 * 4.0 / (100 * 4.0))
    assert figures["cosine_min"] == pytest.approx(0.6)
    assert figures["cosine_mean"] == pytest.approx((75 * 1.0 + 25 * 0.6) / 100)


def test_orthogonal_noise_gives_its_cosine():
    # Adding e orthogonal to r with |e| = |r| gives cos = |r| / sqrt(|r|^2 + |e|^2) = 1 / sqrt(2).
    ref = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]])
    noise = np.array([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 2.0]])
    figures = comparison(ref + noise, ref)
    assert figures["cosine_mean"] == pytest.approx(1 / math.sqrt(2))
    assert figures["top1_agreement"] == 100.0  # ties go to the first index: the reference's winner


def test_zero_rows_and_single_values():
    zero = np.zeros((3, 4))
    both = comparison(zero, zero)
    assert both["cosine_mean"] == 1.0 and both["mean_rel_diff"] is None
    one = comparison(np.ones((3, 4)), zero)
    assert one["cosine_mean"] == 0.0 and one["max_abs_diff"] == 1.0
    scalar = comparison(np.array([1.0, 2.0]), np.array([1.0, 2.5]))  # one value per sample: no top-1
    assert scalar["top1_agreement"] is None and scalar["max_abs_diff"] == 0.5


def test_shape_mismatch_and_output_position_are_errors():
    with pytest.raises(BenchError, match="the outputs have 10 values per sample for 4 samples, the reference's 5"):
        comparison(np.zeros((4, 10)), np.zeros((4, 5)))
    assert pick_output({"a": np.zeros(1), "b": np.ones(1)}, 1)[0] == "b"
    with pytest.raises(BenchError, match=r"output 2 does not exist; the model has 2: a, b"):
        pick_output({"a": np.zeros(1), "b": np.ones(1)}, 2)


# ------------------------------------------------------------------ through a run


def identity_model(tmp_path, width: int = 6):
    return write_onnx(tmp_path / "m.onnx", {"x": (["N", width], TensorProto.FLOAT)})


def test_an_onnx_model_is_its_own_reference_on_onnxruntime(tmp_path):
    """No torch form: the reference is ONNX Runtime, and the case (uncompressed, default options) is it."""
    identity_model(tmp_path)
    result = run_case(
        model={"source": "onnx", "path": "m.onnx"},
        backend="onnxruntime",
        metrics=["latency", {"name": "fidelity", "samples": 10}],
        batch=4,
        base_dir=tmp_path,
    )
    fidelity = result.metrics["fidelity"]
    assert fidelity.value == 100.0
    assert fidelity.details["reference_backend"] == "onnxruntime"
    assert fidelity.details["reference_is_case"] is True
    assert fidelity.details["samples"] == 10  # 3 chunks of 4, the last padded
    assert fidelity.details["max_abs_diff"] == 0.0
    assert "the case itself" in fidelity.method and "10 seeded random samples" in fidelity.method


def test_a_reference_on_another_backend_runs_beside_the_case(tmp_path):
    """The reference loads in the same worker when the case is not it: here OpenVINO for an ONNX Runtime case."""
    pytest.importorskip("openvino")
    identity_model(tmp_path)
    result = run_case(
        model={"source": "onnx", "path": "m.onnx"},
        backend="onnxruntime",
        metrics=[{"name": "fidelity", "reference": ["no-such-backend", "openvino"], "samples": 6}],
        batch=4,
        base_dir=tmp_path,
    )
    fidelity = result.metrics["fidelity"]
    assert fidelity.details["reference_backend"] == "openvino"
    assert fidelity.details["reference_is_case"] is False
    assert fidelity.details["reference"]["runtime"]["framework"] == "openvino"
    assert fidelity.details["max_abs_diff"] == 0.0 and fidelity.value == 100.0
    assert {(p.kind, p.name) for p in result.provenance} >= {("backends", "openvino"), ("metrics", "fidelity")}


def test_no_reference_backend_is_that_figures_error(tmp_path):
    identity_model(tmp_path)
    result = run_case(
        model={"source": "onnx", "path": "m.onnx"},
        backend="onnxruntime",
        metrics=["latency", {"name": "fidelity", "reference": ["torch"]}],
        base_dir=tmp_path,
        check=False,
    )
    assert result.status == "ok" and "latency" in result.metrics
    assert result.metric_errors == {
        "fidelity": "metric 'fidelity' failed: BenchError: no reference backend can run model 'm' (onnx): "
        "tried torch (takes torch, torchscript; no converter from onnx)"
    }
