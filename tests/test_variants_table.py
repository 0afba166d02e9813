"""The variant columns of the table: each variant against its uncompressed twin (speedup, size, accuracy),
its fidelity, what its compression did, the Pareto marks, and rows grouped by model; single-variant tables
keep their shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchharness.cli import main
from benchharness.results import MetricValue, ModelRecord, RunResults, load_results, save_results
from benchharness.table import build, pareto_optimal

SUITE = """\
name: v
models: [{source: dummy, name: m}]
compressions: [none, tag, {name: tag, label: t2}]
backends:
  - {name: scripted, label: a}
  - {name: scripted, label: b}
metrics: [latency]
measure: {min_samples: 5, max_time: 0.02, min_time: 0, warmup: {max_time: 0.01, min_time: 0, min_iterations: 2}}
"""


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> RunResults:
    """A real run of 6 cases (variants none, tag, t2 on backends a and b), in plan order."""
    folder = tmp_path_factory.mktemp("variants")
    suite = folder / "v.yaml"
    suite.write_text(SUITE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCHHARNESS_CACHE", str(folder / "cache"))
        args = ["run", str(suite), "-p", "bh_testplugin", "-o", str(folder / "out"), "-q", "--launcher", "inline"]
        assert main([*args, "--repeat", "1"]) == 0
    results = load_results(next((folder / "out").glob("*.json")))
    assert [c.case_id.split("/")[1:3] for c in results.cases] == [
        ["none", "a"], ["none", "b"], ["tag", "a"], ["tag", "b"], ["t2", "a"], ["t2", "b"],
    ]  # fmt: skip
    return results


def ms(value: float) -> MetricValue:
    return MetricValue(value=value, unit="ms", better="lower")


def pct(value: float, **details: Any) -> MetricValue:
    return MetricValue(value=value, unit="%", better="higher", details=details)


def edited(results: RunResults, figures: dict[str, dict[str, MetricValue]], **status: str) -> RunResults:
    """A copy whose case ``variant/backend`` has ``figures`` (replacing its own) and ``status``."""
    cases = []
    for case in results.cases:
        key = "/".join(case.case_id.split("/")[1:3])
        update: dict[str, Any] = {"metrics": figures.get(key, {})}
        if key in status:
            update.update(status=status[key], error="it broke")
        cases.append(case.model_copy(update=update, deep=True))
    return results.model_copy(update={"cases": cases})


def rows_by_case(results: RunResults) -> dict[str, dict[str, Any]]:
    table = build(results)
    return {f"{row['variant']}/{row['backend']}": row for row in table.rows}


def headers(results: RunResults) -> list[str]:
    return [c.header for c in build(results).columns]


def test_speedup_against_the_uncompressed_twin_and_a_slower_variant_says_so(ran):
    figures = {
        "none/a": {"latency": ms(2.0)}, "tag/a": {"latency": ms(1.0)}, "t2/a": {"latency": ms(40.0)},
        "none/b": {"latency": ms(10.0)}, "tag/b": {"latency": ms(8.0)}, "t2/b": {"latency": ms(10.0)},
    }  # fmt: skip
    rows = rows_by_case(edited(ran, figures))
    assert rows["none/a"]["vs_none"] == "baseline"
    assert rows["tag/a"]["vs_none"] == "2.00x"
    assert rows["t2/a"]["vs_none"] == "0.05x (slower)"
    assert rows["tag/b"]["vs_none"] == "1.25x"  # against b's own none, not a's
    assert rows["t2/b"]["vs_none"] == "1.00x"  # equal is not slower
    assert "speedup vs none" in headers(edited(ran, figures))


def test_size_reduction_uses_model_size_and_says_when_a_row_falls_back_to_parameters(ran):
    size = {"none/a": 4.0, "tag/a": 1.0, "t2/a": 8.0}
    figures = {k: {"latency": ms(1.0), "model_size": MetricValue(value=v, unit="MB")} for k, v in size.items()}
    rows = rows_by_case(edited(ran, figures))
    assert rows["tag/a"]["size_reduction"] == "4.00x"
    assert rows["t2/a"]["size_reduction"] == "0.50x (larger)"
    assert rows["tag/b"].get("size_reduction") is None  # b has no size figure: blank, not 0
    assert "size reduction vs none (model_size)" in headers(edited(ran, figures))

    params = {"none/b": 1000.0, "tag/b": 250.0}
    figures.update({k: {"parameters": MetricValue(value=v, unit="")} for k, v in params.items()})
    mixed = edited(ran, figures)
    rows = rows_by_case(mixed)
    assert rows["tag/a"]["size_reduction"] == "4.00x (model_size)"
    assert rows["tag/b"]["size_reduction"] == "4.00x (parameters)"
    assert "size reduction vs none" in headers(mixed)


def test_accuracy_delta_in_points_with_its_sign(ran):
    accuracy = {"none/a": 90.0, "tag/a": 89.6, "t2/a": 91.0}
    figures = {k: {"latency": ms(1.0), "accuracy": pct(v)} for k, v in accuracy.items()}
    rows = rows_by_case(edited(ran, figures))
    assert rows["tag/a"]["accuracy_delta"] == "-0.4 pt"
    assert rows["t2/a"]["accuracy_delta"] == "+1.0 pt"
    assert rows["none/a"].get("accuracy_delta") is None
    assert rows["tag/b"].get("accuracy_delta") is None  # no accuracy on b at all


def test_missing_figures_are_blank_in_every_format(ran, tmp_path, capsys):
    figures = {"none/a": {"latency": ms(2.0), "accuracy": pct(90.0)}, "tag/a": {"latency": ms(1.0)}}
    path = tmp_path / "r.json"
    save_results(path, edited(ran, figures))
    assert main(["show", str(path), "--format", "csv", "-p", "bh_testplugin"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split(",")
    tag_a = next(line.split(",") for line in lines[1:] if line.startswith("m,tag,a,"))
    assert tag_a[header.index("speedup vs none")] == "2.00x"
    assert tag_a[header.index("accuracy Δ vs none")] == ""  # the variant has no accuracy: blank, never 0
    assert tag_a[header.index("accuracy (%)")] == ""


def test_no_uncompressed_variant_is_said_once_and_no_deltas_are_shown(ran):
    figures = {k: {"latency": ms(1.0), "accuracy": pct(90.0)} for k in ("tag/a", "t2/a", "tag/b", "t2/b")}
    without = edited(ran, figures)
    without.cases = [c for c in without.cases if c.config.variant != "none"]
    table = build(without)
    keys = [c.key for c in table.columns]
    assert not {"vs_none", "size_reduction", "accuracy_delta"} & set(keys)
    said = [n for n in table.notes if "no uncompressed variant" in n]
    assert said == ["variants: this run has no uncompressed variant (none), so no speedup, size or accuracy deltas"]
    assert not any("twin" in row["note"] for row in table.rows)


def test_a_failed_baseline_leaves_its_variants_cells_blank_with_a_note(ran):
    figures = {k: {"latency": ms(1.0)} for k in ("none/a", "tag/a", "none/b", "tag/b")}
    rows = rows_by_case(edited(ran, figures, **{"none/b": "failed"}))
    assert rows["tag/a"]["vs_none"] == "1.00x"
    assert rows["tag/b"].get("vs_none") is None and "baseline none failed" in rows["tag/b"]["note"]
    assert rows["none/b"].get("vs_none") is None  # a failed baseline is no "baseline"


def test_a_row_that_did_not_run_gets_no_baseline_note_and_a_variant_skip_is_named_as_one(ran):
    figures = {k: {"latency": ms(1.0)} for k in ("none/a", "tag/a")}
    results = edited(ran, figures, **{"none/b": "failed", "tag/b": "skipped", "t2/b": "skipped"})
    results.cases[3].error = "variant 'tag' is a onnx model; backend 'b' takes torch models and no installed ..."
    results.cases[5].error = "no such device on this machine"
    table = build(results)
    rows = {f"{row['variant']}/{row['backend']}": row for row in table.rows}
    assert "baseline" not in rows["tag/b"]["note"] and "baseline" not in rows["t2/b"]["note"]
    assert "1 case skipped: this machine lacks the target (not a failure)" in table.notes
    assert (
        "1 case skipped: the variant's model cannot run on that backend (the row's note says why; not a failure)"
        in (table.notes)
    )


def test_rows_are_grouped_by_model_then_backend_with_the_baseline_first(ran):
    table = build(edited(ran, {}))
    assert [(row["backend"], row["variant"]) for row in table.rows] == [
        ("a", "none"), ("a", "tag"), ("a", "t2"), ("b", "none"), ("b", "tag"), ("b", "t2"),
    ]  # fmt: skip


def test_fidelity_shows_top1_agreement_and_the_largest_difference(ran):
    figures = {
        "none/a": {"latency": ms(1.0), "fidelity": pct(100.0, max_abs_diff=0.0)},
        "tag/a": {"latency": ms(1.0), "fidelity": pct(96.25, max_abs_diff=0.01234)},
        "t2/a": {"latency": ms(1.0), "fidelity": MetricValue(value=None, unit="%", details={"max_abs_diff": 2.5})},
    }
    results = edited(ran, figures)
    rows = rows_by_case(results)
    assert rows["tag/a"]["fidelity_text"] == "96.2% / 0.012"
    assert rows["none/a"]["fidelity_text"] == "100.0% / 0"
    assert rows["t2/a"]["fidelity_text"] == "- / 2.5"
    assert rows["tag/b"].get("fidelity_text") is None
    shown = headers(results)
    assert "fidelity (top-1 / max abs diff)" in shown and "fidelity (%)" not in shown  # one column, not two


def test_what_the_compression_did_comes_from_the_recorded_steps(ran):
    results = edited(ran, {})
    steps = [
        {"name": "prune-channels", "compression": "prune-channels", "sparsity": 0.4999, "channels_removed": 48,
         "seconds": 1.5, "cache_hit": True, "per_layer": [1, 2]},
        {"name": "int8", "compression": "quantize-ort-static", "layers_quantized": 12, "seconds": 0.2},
    ]  # fmt: skip
    tag_a = results.cases[2]
    tag_a.runtime.model = ModelRecord(format="dummy", content_hash="x", info={"compressions": steps})
    tag_b = results.cases[3]
    tag_b.runtime.model = ModelRecord(format="dummy", content_hash="y", info={"compressions": steps})
    notes = [n for n in build(results).notes if n.startswith("what ")]
    # once per model and variant (tag on a and b noted the same), none of the bookkeeping; t2 noted no facts
    assert notes == ["what m/tag did: prune-channels: sparsity=0.5, channels_removed=48; int8: layers_quantized=12"]
    other = [{**steps[0], "channels_removed": 50}, steps[1]]  # the same variant noting other facts elsewhere
    tag_b.runtime.model = ModelRecord(format="dummy", content_hash="y", info={"compressions": other})
    assert [n for n in build(results).notes if n.startswith("what ")] == [
        "what m/tag did: prune-channels: sparsity=0.5, channels_removed=48; int8: layers_quantized=12",
        "what m/tag did: prune-channels: sparsity=0.5, channels_removed=50; int8: layers_quantized=12",
    ]


def test_pareto_marks_the_variants_no_other_beats_on_both(ran):
    figures = {
        # group a: tag is faster and as accurate as none (none dominated); t2 slower but more accurate (kept)
        "none/a": {"latency": ms(2.0), "accuracy": pct(90.0)},
        "tag/a": {"latency": ms(1.0), "accuracy": pct(90.0)},
        "t2/a": {"latency": ms(3.0), "accuracy": pct(95.0)},
        # group b: none and tag tie exactly (neither dominates); t2 is slower and less accurate
        "none/b": {"latency": ms(5.0), "accuracy": pct(80.0)},
        "tag/b": {"latency": ms(5.0), "accuracy": pct(80.0)},
        "t2/b": {"latency": ms(6.0), "accuracy": pct(79.0)},
    }
    table = build(edited(ran, figures))
    marks = {f"{row['variant']}/{row['backend']}": row.get("pareto") for row in table.rows}
    # across both backends, a's tag and t2 beat everything on b: they get **, b's ties keep their group's *
    assert marks == {"none/a": None, "tag/a": "**", "t2/a": "**", "none/b": "*", "tag/b": "*", "t2/b": None}
    legend = [n for n in table.notes if n.startswith("Pareto:")]
    assert len(legend) == 1 and "**" in legend[0] and "equal figures do not dominate" in legend[0]


def test_no_pareto_column_without_accuracy(ran):
    table = build(edited(ran, {k: {"latency": ms(1.0)} for k in ("none/a", "tag/a")}))
    assert "pareto" not in [c.key for c in table.columns]
    assert not any(n.startswith("Pareto:") for n in table.notes)


@pytest.mark.parametrize(
    "points, expected",
    [
        ([(1.0, 80.0), (2.0, 80.0)], [True, False]),  # slower, no more accurate: dominated
        ([(1.0, 80.0), (2.0, 90.0)], [True, True]),  # a trade-off: both kept
        ([(1.0, 80.0), (1.0, 80.0)], [True, True]),  # a tie: neither dominates
        ([(1.0, 80.0), (1.0, 79.0)], [True, False]),  # as fast, less accurate
        ([(3.0, 70.0), (1.0, 90.0), (2.0, 85.0)], [False, True, False]),
        ([], []),
    ],
)
def test_pareto_optimal(points, expected):
    assert pareto_optimal(points) == expected


def test_a_single_variant_table_is_unchanged(ran):
    only = edited(ran, {})
    only.cases = [c for c in only.cases if c.config.variant == "none"]
    table = build(only)
    assert [c.key for c in table.columns] == ["model", "backend", "status", "speedup", "note"]
    assert [row["backend"] for row in table.rows] == ["a", "b"]
    assert not any(n.startswith(("variants:", "vs none:", "Pareto:")) for n in table.notes)


def test_the_markdown_table_carries_the_variant_columns_and_legend(ran, tmp_path, capsys):
    figures = {
        "none/a": {"latency": ms(2.0), "accuracy": pct(90.0)},
        "tag/a": {"latency": ms(40.0), "accuracy": pct(90.5)},
    }
    path = tmp_path / "r.json"
    save_results(path, edited(ran, figures))
    assert main(["show", str(path), "--format", "markdown", "-p", "bh_testplugin"]) == 0
    out = capsys.readouterr().out
    assert "| speedup vs none " in out and "0.05x (slower)" in out and "+0.5 pt" in out
    assert "note: Pareto: * no other variant" in out
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert len(table) == 8 and len({line.count("|") for line in table}) == 1  # no stray | in a header or cell
    assert Path(path).exists()
