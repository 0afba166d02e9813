"""Zoo models trained on the digits: validation, the cached training, and a real run on two backends."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from benchharness_zoo import ZooOptions, ZooSource
from pydantic import ValidationError

from benchharness.api import ModelContext
from benchharness.models import default_cache_dir
from benchharness.results import load_results
from benchharness.testing import SuiteError, validate_suite

#: The model every test here trains (once per test session, into the session's cache): small, so it trains in
#: seconds, and well above 90% top-1.
DIGITS_MODEL = {
    "source": "zoo",
    "arch": "resnet",
    "width": 0.25,
    "depth": 0.5,
    "input_size": 32,
    "num_classes": 10,
    "weights": "digits",
    "dataset": {"name": "digits"},
}
OPTIONS = {k: v for k, v in DIGITS_MODEL.items() if k not in ("source", "dataset")}


def test_digits_weights_need_ten_classes():
    with pytest.raises(ValidationError, match="weights 'digits' train 10 classes; set num_classes: 10, not 100"):
        ZooOptions(**{**OPTIONS, "num_classes": 100})
    with pytest.raises(SuiteError) as info:
        validate_suite({"name": "s", "models": [{**DIGITS_MODEL, "num_classes": 100}], "backends": [{"name": "torch"}]})
    assert info.value.problems == ["models[0]: weights 'digits' train 10 classes; set num_classes: 10, not 100"]


VALIDATE = """
import sys
from benchharness.cli import main
code = main(["validate", sys.argv[1]])
print("HEAVY", sorted(m for m in ("torch", "onnxruntime", "sklearn") if m in sys.modules), "CODE", code)
"""


def test_validating_a_digits_suite_imports_no_framework(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(
        f"name: s\nmodels: [{json.dumps(DIGITS_MODEL)}]\nbackends: [{{name: torch}}, {{name: onnxruntime}}]\n"
    )
    proc = subprocess.run([sys.executable, "-c", VALIDATE, str(suite)], capture_output=True, text=True, timeout=60)
    assert "HEAVY [] CODE 0" in proc.stdout, proc.stdout + proc.stderr


def test_digits_weights_are_trained_once_and_then_read_from_the_cache(tmp_path, one_torch_thread):
    pytest.importorskip("sklearn")
    source, options = ZooSource(), ZooOptions(**OPTIONS)
    ctx = ModelContext(base_dir=tmp_path, cache_dir=default_cache_dir(), seed=0)
    first, second = source.load(options, ctx), source.load(options, ctx)
    assert second.info["training"]["cache_hit"] is True
    assert first.content_hash == second.content_hash  # the same weights
    training = second.info["training"]
    assert training["test_top1"] >= 90.0 and training["train_samples"] == 1347 and training["test_samples"] == 450
    cached = Path(training["cache_file"])
    record = json.loads(cached.with_name(cached.name + ".json").read_text())
    assert record["size"] == cached.stat().st_size and record["recipe"] == training["recipe"]["version"]
    other_seed = ModelContext(base_dir=tmp_path, cache_dir=tmp_path / "empty", seed=1)
    from benchharness_zoo.train import cache_key

    assert cache_key(options, 0) != cache_key(options, other_seed.seed)
    assert cache_key(options, 0) != cache_key(ZooOptions(**{**OPTIONS, "activation": "swish"}), 0)


def test_the_training_command_prints_its_report_or_one_line(tmp_path, capsys, one_torch_thread):
    pytest.importorskip("sklearn")
    import torch
    from benchharness_zoo.train import main as train_main

    arguments = ["--arch", "squeezenet", "--width", "0.25"]
    # The training run in this process (a subprocess spent ~8 s importing torch, sklearn and torch._dynamo for a
    # second of training); the command line itself runs below.  From 2 threads: --threads must set them.
    torch.set_num_threads(2)
    assert train_main([*arguments, "--epochs", "1", "--threads", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["epochs"] == 1 and report["threads"] == 1 and 0 <= report["test_top1"] <= 100
    assert torch.get_num_threads() == 1
    command = [sys.executable, "-m", "benchharness_zoo.train", *arguments]
    proc = subprocess.run([*command, "--input-size", "0"], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (2, "benchharness_zoo.train: input_size: Input should be greater than 0\n")


def test_a_digits_trained_model_scores_the_same_on_torch_and_onnxruntime(tmp_path):
    """``benchharness run`` end to end: trained on first use (cached for the session), scored on both backends.

    The same fed arrays go to both (their sha256 is compared); the two frameworks round differently, so a sample
    whose top two scores are nearly equal may flip: the tolerance is 2 of the 450 test samples.  Each case runs in
    a worker process, as a user's run does: the only run in the tests that loads a dataset and a fidelity reference
    in workers.
    """
    pytest.importorskip("sklearn")
    suite = tmp_path / "digits.yaml"
    model = json.dumps(DIGITS_MODEL)
    suite.write_text(
        textwrap.dedent(
            f"""\
            name: digits
            models: [{model}]
            backends: [{{name: torch}}, {{name: onnxruntime}}]
            targets: [{{name: cpu, threads: 1}}]
            metrics: [latency, accuracy, fidelity]
            measure: {{max_time: 0.2, min_time: 0, min_samples: 5, warmup: {{max_time: 0.1, min_iterations: 2}}}}
            """
        )
    )
    exe = Path(sys.executable).with_name("benchharness")
    proc = subprocess.run(
        [str(exe), "run", str(suite), "-o", str(tmp_path / "out"), "-q"], capture_output=True, text=True, timeout=280
    )
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "out").glob("*.json")
    torch_case, ort_case = load_results(path).cases
    accuracy = {case.config.backend.name: case.metrics["accuracy"] for case in (torch_case, ort_case)}
    assert accuracy["torch"].details["samples"] == accuracy["onnxruntime"].details["samples"] == 450
    fed = {name: a.details["dataset"]["fed_sha256"] for name, a in accuracy.items()}
    assert fed["torch"] == fed["onnxruntime"]
    counts = {name: a.details["correct_top1"] for name, a in accuracy.items()}
    assert abs(counts["torch"] - counts["onnxruntime"]) <= 2, counts
    assert accuracy["torch"].value >= 90.0, accuracy["torch"].value
    training = torch_case.runtime.model.info["training"]
    assert training["test_top1"] == pytest.approx(accuracy["torch"].value, abs=0.5)
    torch_fidelity, ort_fidelity = torch_case.metrics["fidelity"], ort_case.metrics["fidelity"]
    assert torch_fidelity.details["reference_is_case"] and torch_fidelity.value == 100.0
    assert not ort_fidelity.details["reference_is_case"] and ort_fidelity.details["reference_backend"] == "torch"
    assert ort_fidelity.value >= 99.5 and ort_fidelity.details["max_abs_diff"] < 1e-3
    assert ort_fidelity.details["cosine_min"] > 0.9999
