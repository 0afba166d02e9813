"""The results file: upgrades from every older schema version, checked on files those versions really wrote."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchharness.cli import main
from benchharness.errors import BenchError
from benchharness.results import SCHEMA_VERSION, UPGRADES, RunResults, load_results, save_results

DATA = Path(__file__).parent / "data"
GOLDEN = sorted(DATA.glob("results-v*-*.json"))


def _version(path: Path) -> int:
    return int(re.match(r"results-v(\d+)-", path.name).group(1))  # type: ignore[union-attr]


def test_every_old_version_has_an_upgrade_and_a_golden_file():
    assert set(UPGRADES) == set(range(1, SCHEMA_VERSION))
    assert {_version(p) for p in GOLDEN} == set(range(1, SCHEMA_VERSION + 1))


@pytest.mark.parametrize("path", GOLDEN, ids=[p.name for p in GOLDEN])
def test_golden_files_load_and_round_trip(path: Path, tmp_path: Path):
    results = load_results(path)
    assert results.schema_version == SCHEMA_VERSION
    raw = json.loads(path.read_text())
    assert [c.case_id for c in results.cases] == [c["case_id"] for c in raw["cases"]]
    copy = tmp_path / "copy.json"
    save_results(copy, results)
    assert load_results(copy) == results


def test_version_1_figures_and_runtime_survive_the_upgrade():
    path = DATA / "results-v1-models.json"
    raw = json.loads(path.read_text())
    results = load_results(path)
    for case, old in zip(results.cases, raw["cases"]):
        latency = case.metrics["latency"]
        assert latency.value == old["metrics"]["latency"]["value"]
        assert latency.summary.median == old["metrics"]["latency"]["summary"]["median"]
        assert latency.samples == old["metrics"]["latency"]["samples"]
        assert case.metrics["throughput"].value == old["metrics"]["throughput"]["value"]
        assert case.config.scenario.name == case.config.scenario.label == "latency"
        assert [m.name for m in case.config.metrics] == ["latency", "throughput", "model_size"]
        assert case.config.axes().case_id() == case.case_id
        assert case.runtime.target.threads == old["runtime"]["target"]["threads"]
        assert case.runtime.target.details["env"] == old["runtime"]["target"]["env"]
        assert case.runtime.model.content_hash == old["runtime"]["model"]["content_hash"]
        assert case.runtime.model.info["parameters"] == old["runtime"]["model"]["parameters"]
        assert case.runtime.stage == "done"
    ids = [c.case_id for c in results.cases]
    assert ids[2] == "tokens/none/torch/cpu/latency/b1"
    tokens = results.cases[2].runtime.model.inputs
    assert [(i.name, i.shape, i.dtype) for i in tokens] == [("ids", [1, 8], "int64"), ("scale", [], "float32")]


def test_version_1_failures_keep_their_status_and_signal():
    results = load_results(DATA / "results-v1-failures.json")
    status = {c.config.backend.label: c for c in results.cases if c.config.variant == "none"}
    assert {label: c.status for label, c in status.items()} == {
        "fine": "ok",
        "crash": "crashed",
        "error": "error",
        "hang": "timeout",
    }
    assert status["crash"].runtime.signal == "SIGSEGV"
    assert status["crash"].runtime.stage is None and status["crash"].runtime.model is None
    assert status["error"].error == "RuntimeError: scripted failure while loading"


def test_show_renders_an_old_file(capsys):
    assert main(["show", str(DATA / "results-v1-models.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["model", "backend", "status", "latency"]
    rows = [line for line in lines[2:] if not line.startswith("note:")]
    assert [line.split()[:3] for line in rows] == [
        ["squeezenet-w0.25", "torch", "ok"],
        ["squeezenet-w0.25", "onnxruntime", "ok"],
        ["tokens", "torch", "ok"],
        ["tokens", "onnxruntime", "ok"],
    ]


def test_a_newer_or_broken_file_is_one_line(tmp_path: Path):
    data = json.loads((DATA / "results-v1-models.json").read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(data))
    with pytest.raises(BenchError, match=rf"^{re.escape(str(newer))}: results schema version {SCHEMA_VERSION + 1} "):
        load_results(newer)
    data["schema_version"] = 1
    del data["cases"][0]["config"]["scenario"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(BenchError) as err:
        load_results(broken)
    assert (
        str(err.value) == f"{broken}: invalid results file (schema version 1): cases.0.config.scenario: Field required"
    )
    assert not isinstance(err.value.__context__, RunResults)


def test_version_2_keeps_figure_errors_observers_and_scenarios():
    results = load_results(DATA / "results-v2-failures.json")
    fixed = next(c for c in results.cases if c.case_id == "m/none/fine/virtual/fixed/b1")
    assert set(fixed.metrics) == {"calls", "mean_call", "phase_time", "model_size"}
    assert fixed.metrics["calls"].value == 20.0
    assert fixed.metric_errors == {"bogus": "metric 'bogus' failed: MetricValue: value: Input should be a valid number"}
    crash = next(c for c in results.cases if c.status == "crashed")
    assert (crash.runtime.stage, crash.runtime.signal, crash.runtime.model.content_hash) == (
        "backend",
        "SIGSEGV",
        "dummy-4",
    )
    assert "Fatal Python error: Segmentation fault" in crash.traceback
