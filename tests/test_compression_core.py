"""The core's side of compressions: each variant computed once and cached, chains, conversion before a step,
the model's training data, a variant its backend cannot run as a skip, and failures as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchharness.cli import main
from benchharness.results import load_results

QUICK = "measure: {min_samples: 5, max_time: 0.05, warmup: {max_time: 0.02, min_iterations: 2}}\n"
MODEL = """\
name: c
models:
  - source: python
    factory: bh_compress:digit_net
    name: net
    inputs: [{name: x, shape: [batch, 1, 8, 8]}]
    dataset: {name: digits}
"""
#: The tests after the first run their cases in this process: a worker per case imports torch again each time,
#: and crossing processes (a variant computed in one worker, restored in the next) is the first test's subject.
INLINE = ("--launcher", "inline")


def _run(suite: Path, out: Path, *extra: str) -> list:
    code = main(["run", str(suite), "-p", "bh_compress", "-o", str(out), "-q", *extra])
    assert code in (0, 1)
    newest = max(out.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return load_results(newest).cases


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "applied.log"
    monkeypatch.setenv("BH_COMPRESS_LOG", str(path))
    monkeypatch.setenv("BENCHHARNESS_CACHE", str(tmp_path / "cache"))
    return path


def _applied(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_a_variant_is_computed_once_for_every_backend_and_batch_and_then_comes_from_the_cache(
    write_suite, tmp_path, log
):
    suite = write_suite(
        MODEL
        + "compressions: [{name: scale, factor: 0.5}, [{name: scale, factor: 0.5}, onnx-copy], torch-only]\n"
        + "backends: [{name: torch}, {name: onnxruntime}]\nbatch_sizes: [1, 2]\nmetrics: [latency]\n"
        + QUICK
    )
    assert main(["validate", str(suite), "-p", "bh_compress"]) == 0  # unrunnable pairs are skips, not errors
    cases = {c.case_id: c for c in _run(suite, tmp_path / "out")}
    assert len(cases) == 12
    # worker processes: scale ran once for four cases and the chain; onnx-copy once per exported batch size
    assert sorted(_applied(log)) == ["onnx-copy", "onnx-copy", "scale 0.5", "torch-only"]
    ok = cases["net/scale/onnxruntime/cpu/latency/b2"]
    assert ok.status == "ok", ok.error
    (step,) = ok.runtime.model.info["compressions"]
    assert step["name"] == "scale" and step["factor"] == 0.5 and step["layers_scaled"] == 1
    assert step["compression"] == "scale" and step["seconds"] >= 0 and isinstance(step["cache_hit"], bool)
    assert ok.runtime.model.info["converted_by"] == "torch-onnx"  # the scaled module, exported for ORT
    chained = cases["net/scale+onnx-copy/onnxruntime/cpu/latency/b1"]
    assert chained.status == "ok", chained.error
    assert [s["name"] for s in chained.runtime.model.info["compressions"]] == ["scale", "onnx-copy"]
    assert chained.runtime.model.info["compressions"][1]["bytes"] > 0
    # what a backend cannot run is a skip with its reason, decided before any worker started
    skipped = cases["net/torch-only/onnxruntime/cpu/latency/b1"]
    assert skipped.status == "skipped" and skipped.error == (
        "compression 'torch-only': its layers have no ONNX export, so only the torch backend runs it"
    )
    onnx_on_torch = cases["net/scale+onnx-copy/torch/cpu/latency/b2"]
    assert onnx_on_torch.status == "skipped" and onnx_on_torch.error == (
        "variant 'scale+onnx-copy' is a onnx model; backend 'torch' takes torch, torchscript models and no "
        "installed converter turns it into one of them"
    )
    assert cases["net/torch-only/torch/cpu/latency/b1"].status == "ok"
    assert sum(c.status == "skipped" for c in cases.values()) == 4
    # a second run computes nothing: every step is restored from the cache (in-process: the cache is on disk)
    again = {c.case_id: c for c in _run(suite, tmp_path / "out", *INLINE)}
    assert len(_applied(log)) == 4
    for case in again.values():
        if case.status == "ok":
            assert all(s["cache_hit"] for s in case.runtime.model.info["compressions"])
    assert again[ok.case_id].runtime.model.content_hash == ok.runtime.model.content_hash


def test_a_tampered_cached_variant_is_rebuilt_with_a_warning(write_suite, tmp_path, log):
    suite = write_suite(MODEL + "compressions: [{name: scale, factor: 2}]\nbackends: [{name: torch}]\n"
                        "metrics: [latency]\n" + QUICK)  # fmt: skip
    (first,) = _run(suite, tmp_path / "out", *INLINE)
    assert first.status == "ok" and _applied(log) == ["scale 2.0"]
    (folder,) = [p for p in (tmp_path / "cache" / "compressed").iterdir() if p.is_dir()]
    record = json.loads((folder / "record.json").read_text())
    assert record["format"] == "torch" and record["facts"] == {"factor": 2.0, "layers_scaled": 1}
    with (folder / record["main"]).open("ab") as fh:
        fh.write(b"\0")
    (second,) = _run(suite, tmp_path / "out", *INLINE)
    assert second.status == "ok" and _applied(log) == ["scale 2.0", "scale 2.0"]
    assert any(w.startswith("compression cache: ") and "model.pt differs" in w and w.endswith("rebuilt it")
               for w in second.warnings), second.warnings  # fmt: skip


def test_a_compression_reads_the_training_split_and_a_failing_one_is_that_cases_error(write_suite, tmp_path, log):
    suite = write_suite(MODEL + "compressions: [calibrate, broken]\nbackends: [{name: torch}]\nmetrics: [latency]\n"
                        + QUICK)  # fmt: skip
    calibrated, broken = _run(suite, tmp_path / "out", *INLINE)
    assert calibrated.status == "ok", calibrated.error
    (step,) = calibrated.runtime.model.info["compressions"]
    assert step["samples"] == 1347 and step["split"] == "train" and step["fed"] == "x"  # 75% of 1,797 digits
    assert broken.status == "error"
    assert broken.error == "compressing net with broken failed: RuntimeError: the pruner found no channels"


def test_a_compression_that_needs_data_says_so_when_the_model_has_none(write_suite, tmp_path, log):
    suite = write_suite(MODEL.replace("    dataset: {name: digits}\n", "")
                        + "compressions: [calibrate]\nbackends: [{name: torch}]\nmetrics: [latency]\n" + QUICK)  # fmt: skip
    (case,) = _run(suite, tmp_path / "out", *INLINE)
    assert case.status == "error"
    assert case.error.startswith("compressing net with calibrate: model 'net' has no dataset: this compression needs")


def test_the_dataset_entry_keys_only_the_variants_that_read_data(write_suite, tmp_path, log):
    def run(dataset: str) -> None:
        suite = write_suite(MODEL.replace("{name: digits}", dataset)
                            + "compressions: [{name: scale, factor: 3}, calibrate]\nbackends: [{name: torch}]\n"
                            "metrics: [latency]\n" + QUICK)  # fmt: skip
        assert all(c.status == "ok" for c in _run(suite, tmp_path / "out", *INLINE))

    run("{name: digits}")
    run("{name: digits, limit: 100}")  # another entry: calibrate reads data again, scale reads none
    assert sorted(_applied(log)) == ["calibrate 1347", "calibrate 1347", "scale 3.0"]


def test_pruning_reads_data_only_to_fine_tune():
    from benchharness_compress.pruning import COMPRESSIONS

    for cls in COMPRESSIONS:
        assert cls.uses_dataset
        assert cls().reads_data(cls.Options(finetune_epochs=2)) is True
        assert cls().reads_data(cls.Options()) is False
