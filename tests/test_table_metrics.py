"""The table with many figures: every figure with its unit, accuracy beside latency, estimates marked, and
``show --metrics`` picking the columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchharness.api import MetricValue
from benchharness.cli import main
from benchharness.results import RunResults, load_results, save_results
from benchharness.table import build

SUITE = (
    "name: t\nmodels: [{source: dummy, name: m}]\n"
    "backends:\n  - {name: scripted}\n  - {name: scripted, label: slow, sleep_us: 50}\n"
    "metrics: [latency, throughput, model_size]\n"
    "measure: {min_samples: 20, max_time: 0.1, timeout: 30, warmup: {max_time: 0.05}}\n"
)


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> RunResults:
    folder = tmp_path_factory.mktemp("ran")
    suite = folder / "t.yaml"
    suite.write_text(SUITE)
    args = ["run", str(suite), "-p", "bh_testplugin", "-o", str(folder / "out"), "-q", "--launcher", "inline"]
    assert main([*args, "--repeat", "1"]) == 0  # module-scoped: the autouse BENCHHARNESS_REPEAT is not set yet
    return load_results(next((folder / "out").glob("*.json")))


def with_figures(results: RunResults, per_case: list[dict[str, MetricValue]]) -> RunResults:
    cases = [c.model_copy(update={"metrics": {**c.metrics, **extra}}) for c, extra in zip(results.cases, per_case)]
    return results.model_copy(update={"cases": cases})


def energy(value: float, estimate: bool) -> MetricValue:
    method = "cpu-time-model: CPU seconds x TDP / cores" if estimate else "rapl: package energy counter"
    return MetricValue(value=value, unit="mJ", method=method, details={"estimate": estimate})


ACCURACY = MetricValue(value=97.5, unit="%", method="top-1 on digits test split")


def test_accuracy_stands_right_after_latency_and_every_figure_has_its_unit(ran):
    table = build(with_figures(ran, [{"accuracy": ACCURACY, "energy": energy(1.5, False)}] * 2))
    headers = [c.header for c in table.columns]
    assert headers[headers.index("throughput, 1 stream (items/s)") + 1] == "accuracy (%)"
    assert "model_size (MB)" in headers and "energy (mJ)" in headers
    assert [row["accuracy"] for row in table.rows] == [97.5, 97.5]
    assert not any("estimate" in note for note in table.notes)


def test_an_estimate_is_marked_in_the_header_when_every_row_is_one(ran):
    table = build(with_figures(ran, [{"energy": energy(1.5, True)}, {"energy": energy(2.5, True)}]))
    assert "energy (mJ, cpu-time-model estimate)" in [c.header for c in table.columns]
    assert "energy: every figure is an estimate (cpu-time-model), not a measurement; the results give the method" in (
        table.notes
    )
    assert not any("estimate" in row["note"] for row in table.rows)


def test_in_a_mixed_column_each_estimated_row_says_so(ran):
    table = build(with_figures(ran, [{"energy": energy(1.5, False)}, {"energy": energy(2.5, True)}]))
    assert "energy (mJ)" in [c.header for c in table.columns]
    measured, estimated = table.rows
    assert "estimate" not in measured["note"]
    assert "energy: cpu-time-model estimate" in estimated["note"]
    assert any(note.startswith("energy: rows noted 'estimate' are estimates (cpu-time-model)") for note in table.notes)


def test_show_metrics_picks_the_columns(ran, tmp_path, capsys):
    path = tmp_path / "r.json"
    save_results(path, with_figures(ran, [{"accuracy": ACCURACY}] * 2))
    assert main(["show", str(path), "--metrics", "latency,accuracy", "--format", "csv", "-p", "bh_testplugin"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header == (
        "model,backend,status,latency median (ms),p95 (ms),CI95 ±% (1 process),accuracy (%),"
        "speedup vs backend=scripted,note"
    )
    assert main(["show", str(path), "--metrics", "accuracy", "--format", "csv", "-p", "bh_testplugin"]) == 0
    assert (
        capsys.readouterr().out.splitlines()[0] == "model,backend,status,accuracy (%),speedup vs backend=scripted,note"
    )


@pytest.mark.parametrize(
    "names, message",
    [
        ("latency,acuracy", "no figure 'acuracy' in {p}; it has: latency, throughput, model_size, accuracy"),
        (" , ", "name at least one figure; it has: latency, throughput, model_size, accuracy"),
    ],
)
def test_show_metrics_refuses_a_figure_the_file_lacks(ran, tmp_path, capsys, names, message):
    path = tmp_path / "r.json"
    save_results(path, with_figures(ran, [{"accuracy": ACCURACY}] * 2))
    assert main(["show", str(path), "--metrics", names, "-p", "bh_testplugin"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"benchharness: error: --metrics: {message.format(p=Path(path))}"
