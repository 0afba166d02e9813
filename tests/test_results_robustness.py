"""Malformed results files: one line naming the first problem, exit 2; whatever loads, ``show`` renders."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchharness.cli import main
from benchharness.results import MAX_SAMPLE_COUNT, SCHEMA_VERSION, load_results
from benchharness.table import build, completeness_note

DATA = Path(__file__).parent / "data"
V1 = json.loads((DATA / "results-v1-models.json").read_text())
V2 = json.loads((DATA / "results-v2-models.json").read_text())
V2_FAILURES = json.loads((DATA / "results-v2-failures.json").read_text())
FORMATS = ("table", "markdown", "csv", "json")

Edit = Callable[[dict[str, Any]], object]


def _edited(tmp_path: Path, doc: dict[str, Any], edit: Edit) -> Path:
    data = copy.deepcopy(doc)
    edit(data)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data, indent=1))
    return path


def _show(path: Path, capsys: pytest.CaptureFixture[str], fmt: str = "table") -> tuple[int, str, str]:
    rc = main(["show", str(path), "--format", fmt])
    out, err = capsys.readouterr()
    return rc, out, err


def _latency(data: dict[str, Any]) -> dict[str, Any]:
    return data["cases"][0]["metrics"]["latency"]


# Each edit, and the problem the error line must name (after "FILE: invalid results file (schema version 2): ").
V2_EDITS: dict[str, tuple[Edit, str]] = {
    "no model": (lambda d: d["cases"][0]["config"].pop("model"), "cases.0.config.model: Field required"),
    "no p95": (lambda d: _latency(d)["summary"].pop("p95"), "cases.0.metrics.latency.summary.p95: Field required"),
    "no suite data": (lambda d: d["suite"].pop("data"), "suite.data: Field required"),
    "suite data a list": (lambda d: d["suite"].update(data=[1]), "suite.data: Input should be a valid dictionary"),
    "no machine": (lambda d: d.pop("machine"), "machine: Field required"),
    "machine null": (
        lambda d: d.update(machine=None),
        "machine: Input should be a valid dictionary or instance of Machine",
    ),
    "plugins a string": (lambda d: d.update(plugins="torch"), "plugins: Input should be a valid list"),
    "metric a number": (
        lambda d: d["cases"][0]["metrics"].update(latency=3),
        "cases.0.metrics.latency: Input should be a valid dictionary or instance of MetricValue",
    ),
    "value a string": (
        lambda d: _latency(d).update(value="1.5"),
        "cases.0.metrics.latency.value: Input should be a valid number",
    ),
    "value too big for a float": (
        lambda d: _latency(d).update(value=10**400),
        "cases.0.metrics.latency.value: Input should be a valid number",
    ),
    "summary count 0": (
        lambda d: _latency(d)["summary"].update(count=0),
        f"cases.0.metrics.latency.summary: count must be 1 to {MAX_SAMPLE_COUNT}, not 0",
    ),
    "summary count huge": (
        lambda d: _latency(d)["summary"].update(count=2**62),
        f"cases.0.metrics.latency.summary: count must be 1 to {MAX_SAMPLE_COUNT}, not {2**62}",
    ),
    "summary ci_level 5": (
        lambda d: _latency(d)["summary"].update(ci_level=5),
        "cases.0.metrics.latency.summary: ci_level must be between 0 and 1, not 5.0",
    ),
    "status unknown": (
        lambda d: d["cases"][0].update(status="fine"),
        "cases.0.status: Input should be 'ok', 'error', 'timeout', 'crashed', 'oom' or 'skipped'",
    ),
    "batch 0": (
        lambda d: d["cases"][0]["config"].update(batch=0),
        "cases.0.config.batch: Input should be greater than 0",
    ),
    "a key with a newline": (
        lambda d: d["cases"][0]["metrics"].update({"a\nb": 1}),
        "cases.0.metrics.'a\\nb': Input should be a valid dictionary or instance of MetricValue",
    ),
}


@pytest.mark.parametrize("name", V2_EDITS)
def test_a_malformed_file_is_one_line_naming_the_field(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    edit, problem = V2_EDITS[name]
    path = _edited(tmp_path, V2, edit)
    rc, out, err = _show(path, capsys)
    assert (rc, out) == (2, "")
    assert err == f"benchharness: error: {path}: invalid results file (schema version 2): {problem}\n"


V1_EDITS: dict[str, tuple[Edit, str]] = {
    "no scenario": (lambda d: d["cases"][0]["config"].pop("scenario"), "cases.0.config.scenario: Field required"),
    "scenario a number": (
        lambda d: d["cases"][1]["config"].update(scenario=3),
        "cases.1.config.scenario: Input should be a valid string",
    ),
    "metrics a string": (
        lambda d: d["cases"][0]["config"].update(metrics="latency"),
        "cases.0.config.metrics: Input should be a valid list",
    ),
    "a metric name null": (
        lambda d: d["cases"][0]["config"]["metrics"].__setitem__(1, None),
        "cases.0.config.metrics.1: Input should be a valid string",
    ),
    "runtime a list": (
        lambda d: d["cases"][0].update(runtime=[]),
        "cases.0.runtime: Input should be a valid dictionary",
    ),
    "target a string": (
        lambda d: d["cases"][0]["runtime"].update(target="cpu"),
        "cases.0.runtime.target: Input should be a valid dictionary",
    ),
    "target without device": (
        lambda d: d["cases"][0]["runtime"]["target"].pop("device"),
        "cases.0.runtime.target.device: Field required",
    ),
    "model without content_hash": (
        lambda d: d["cases"][2]["runtime"]["model"].pop("content_hash"),
        "cases.2.runtime.model.content_hash: Field required",
    ),
    "no config": (lambda d: d["cases"][0].pop("config"), "cases.0.config: Field required"),
    "no status": (lambda d: d["cases"][0].pop("status"), "cases.0.status: Field required"),
    "a case a string": (
        lambda d: d["cases"].__setitem__(0, "case"),
        "cases.0: Input should be a valid dictionary or instance of CaseResult",
    ),
    "plugins an object": (lambda d: d.update(plugins={}), "plugins: Input should be a valid list"),
}


@pytest.mark.parametrize("name", V1_EDITS)
def test_a_broken_version_1_file_names_the_field(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """The upgrade reshapes version 1 data; what it cannot read it names, as the models would."""
    edit, problem = V1_EDITS[name]
    path = _edited(tmp_path, V1, edit)
    rc, out, err = _show(path, capsys)
    assert (rc, out) == (2, "")
    assert err == f"benchharness: error: {path}: invalid results file (schema version 1): {problem}\n"


def _replace_once(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text
        return text.replace(old, new, 1)

    return edit


TEXT_EDITS: dict[str, tuple[Callable[[str], str], str]] = {
    "NaN": (_replace_once('"value": 1', '"value": NaN'), "not a results file: invalid JSON: NaN is not a JSON number"),
    "Infinity": (
        _replace_once('"count": ', '"count": -Infinity, "x": '),
        "not a results file: invalid JSON: -Infinity is not a JSON number",
    ),
    "a repeated key": (
        _replace_once('"complete": true', '"complete": true, "complete": false'),
        "not a results file: invalid JSON: duplicate key 'complete' in an object",
    ),
    "an integer of 5000 digits": (
        _replace_once('"memory_bytes": ', '"memory_bytes": ' + "9" * 5000 + ', "x": '),
        "not a results file: invalid JSON: Exceeds the limit (4300 digits) for integer string conversion: "
        "value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit",
    ),
    "nested 100000 deep": (
        _replace_once('"data": {', '"data": {"deep": ' + "[" * 100_000 + "]" * 100_000 + ", "),
        "not a results file: invalid JSON: nested too deeply",
    ),
    "a version in quotes": (
        _replace_once('"schema_version": 2', '"schema_version": "2"'),
        f"results schema version '2' is not supported; this benchharness reads versions 1 to {SCHEMA_VERSION} "
        "(a newer benchharness wrote it?)",
    ),
}


@pytest.mark.parametrize("name", TEXT_EDITS)
def test_text_that_is_not_strict_json_is_one_line(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """The harness writes strict JSON; NaN, Infinity, repeated keys and absurd numbers or depths are refused."""
    edit, problem = TEXT_EDITS[name]
    path = tmp_path / "results.json"
    path.write_text(edit((DATA / "results-v2-models.json").read_text()))
    rc, out, err = _show(path, capsys)
    assert (rc, out) == (2, "")
    assert err == f"benchharness: error: {path}: {problem}\n"


def test_a_folder_is_not_a_results_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    rc, out, err = _show(tmp_path, capsys)
    assert (rc, out, err) == (2, "", f"benchharness: error: {tmp_path}: is a directory, not a results file\n")


# Free-form parts the table reads (the suite as written, a figure's details): an edit there still shows.
FREE_FORM_EDITS: dict[str, tuple[dict[str, Any], Edit, str]] = {
    "suite data empty": (V2_FAILURES, lambda d: d["suite"].update(data={}), "speedup vs backend=fine"),
    "backends not a list": (V2_FAILURES, lambda d: d["suite"]["data"].update(backends=7), "speedup vs backend=fine"),
    "backends empty": (V2_FAILURES, lambda d: d["suite"]["data"].update(backends=[]), "speedup vs backend=fine"),
    "a backend without a name": (
        V2_FAILURES,
        lambda d: d["suite"]["data"]["backends"].__setitem__(0, {}),
        "speedup vs backend=fine",
    ),
    "a backend null": (
        V2_FAILURES,
        lambda d: d["suite"]["data"]["backends"].__setitem__(0, None),
        "speedup vs backend=fine",
    ),
    "baseline not a selector": (V2, lambda d: d["suite"]["data"].update(baseline={"bogus": 1}), "backend=torch"),
    "baseline a number": (V2, lambda d: d["suite"]["data"].update(baseline=3), "backend=torch"),
    "warmup details a number": (V2, lambda d: _latency(d)["details"].update(warmup=3), "backend=torch"),
    "warmup details a list": (V2, lambda d: _latency(d)["details"].update(warmup=[False]), "backend=torch"),
    "noisy a string": (V2, lambda d: _latency(d)["details"].update(noisy="very"), "backend=torch"),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", FREE_FORM_EDITS)
def test_free_form_data_never_breaks_show(name: str, fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    doc, edit, header = FREE_FORM_EDITS[name]
    path = _edited(tmp_path, doc, edit)
    rc, out, err = _show(path, capsys, fmt)
    assert (rc, err) == (0, "")
    assert header in out
    assert all(c["case_id"].split("/")[0] in out for c in doc["cases"])


def test_an_unreadable_baseline_falls_back_to_the_first_backend_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = _edited(tmp_path, V2, lambda d: d["suite"]["data"].update(baseline={"bogus": 1}))
    table = build(load_results(path))
    assert table.baseline == "backend=torch"
    assert table.notes[0] == "the file's baseline is not a valid selector; speedups are against the default"
    assert table.notes[1].startswith("CI95: within one process only")  # a version-2 file: one process per case
    assert [row["speedup"] for row in table.rows][0] == 1.0
    assert main(["show", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [f"note: {note}" for note in table.notes]


def test_extreme_figures_that_load_still_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    def edit(d: dict[str, Any]) -> None:
        first, second = d["cases"][0]["metrics"], d["cases"][1]["metrics"]
        first["latency"]["value"] = 1e308
        first["latency"]["summary"].update(count=1, p95=-1e308, median=0.0, ci_low=1e308)
        second["latency"]["value"] = 5e-324
        second["latency"]["summary"].update(count=MAX_SAMPLE_COUNT, ci_level=1e-300, iqr=1e308)
        first["throughput"]["value"] = None

    path = _edited(tmp_path, V2, edit)
    for fmt in FORMATS:
        rc, out, err = _show(path, capsys, fmt)
        assert (rc, err) == (0, ""), fmt
        assert "squeezenet" in out


def test_completeness_note_says_what_the_file_holds_and_how_to_go_on(tmp_path: Path):
    complete = _edited(tmp_path, V2_FAILURES, lambda d: None)
    assert completeness_note(load_results(complete), complete) is None
    path = _edited(tmp_path, V2_FAILURES, lambda d: d.update(complete=False))
    assert completeness_note(load_results(path), path) == (
        f"incomplete run: it stopped with 7 cases saved (3 failed); continue with: "
        f"benchharness run failures.yaml --resume {path}"
    )


def test_completeness_note_of_an_empty_run_quotes_odd_paths(tmp_path: Path):
    def edit(d: dict[str, Any]) -> None:
        d.update(complete=False, cases=[])
        d["suite"]["path"] = "my suites/a\nb.yaml"

    path = _edited(tmp_path, V2, edit)
    results = load_results(path)
    assert completeness_note(results, path) == (
        f"incomplete run: it stopped with 0 cases saved; continue with: "
        f"benchharness run 'my suites/a\\nb.yaml' --resume {path}"
    )
    assert build(results).rows == []
