"""suites/design.yaml: its models are bench/design_configs.py's, whose parameters and MACs match as stated.

The suite itself is not run here (it trains nine digits models); these tests
re-derive the configurations' counts from the zoo's code and check the suite
file against them, so a careless edit of either fails.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from benchharness.api import BenchError

ROOT = Path(__file__).parents[1]
SUITE = ROOT / "suites" / "design.yaml"

pytest.importorskip("torch")
pytest.importorskip("onnx")


def _load_configs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("design_configs", ROOT / "bench" / "design_configs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["design_configs"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


design = _load_configs()


@pytest.fixture(scope="module")
def table() -> dict:
    """The configurations counted once for the whole file, on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return design.derive()
    finally:
        torch.set_num_threads(threads)


def test_width_depth_models_match_parameters_not_depth(table):
    rows = table["width-depth"]
    parameters = [row.parameters for row in rows]
    assert max(parameters) / min(parameters) - 1 < 0.10, parameters
    # The same budget spent three ways: 1, 2 and 4 basic blocks per stage, ever narrower.
    assert [row.config.depth for row in rows] == [1.0, 0.5, 2.0]
    assert [row.config.width for row in rows] == [0.25, 0.375, 0.17]


def test_block_families_match_macs_within_15_percent(table):
    rows = table["blocks"]
    assert {row.config.arch for row in rows} == {"resnet", "mobilenet_v2", "shufflenet_v2", "squeezenet"}
    reference = rows[0].macs
    assert all(abs(row.macs / reference - 1) <= 0.15 for row in rows), [(r.config.label, r.macs) for r in rows]
    # MACs are matched, parameters are not: fire modules spend far fewer weights per MAC than basic blocks.
    squeezenet = next(row for row in rows if row.config.arch == "squeezenet")
    assert squeezenet.parameters < 0.5 * rows[0].parameters


def test_activations_change_neither_parameters_nor_macs(table):
    rows = table["activation"]
    assert {row.config.activation for row in rows} == {"relu", "leaky_relu", "swish", "hardswish"}
    assert len({(row.parameters, row.macs) for row in rows}) == 1
    assert design.tolerance_problems(table) == []


def test_a_mismatched_configuration_is_reported(table):
    too_deep = design.count(design.Config("resnet", 0.25, 2.0))  # twice the blocks at the reference's width
    broken = {**table, "width-depth": [table["width-depth"][0], too_deep]}
    (problem,) = design.tolerance_problems(broken)
    assert problem.startswith("width-depth: resnet-w0.25-d2 has parameters 1,487,098, +111.9% from resnet-w0.25")


def test_the_suite_lists_exactly_the_design_configurations():
    assert design.suite_problems(SUITE) == []
    labels = {config.label for config in design.suite_configs(SUITE)}
    assert "mobilenet_v2-w0.55-hardswish" in labels and len(labels) == 9


def test_a_careless_edit_of_the_suite_fails(tmp_path):
    text = SUITE.read_text()
    edited = tmp_path / "design.yaml"
    edited.write_text(text.replace("width: 0.17, depth: 2.0", "width: 0.25, depth: 2.0", 1))
    assert design.suite_problems(edited) == [
        f"{edited}: missing resnet-w0.17-d2 (Config(arch='resnet', width=0.17, depth=2.0, activation='relu'))",
        f"{edited}: resnet-w0.25-d2 is not a design configuration",
    ]
    edited.write_text(text.replace("input_size: 32, in_channels: 1", "input_size: 64, in_channels: 1", 1))
    with pytest.raises(BenchError, match=r"models\[0\] is not a design model: expected source zoo"):
        design.suite_configs(edited)


def test_the_configurations_script_prints_the_table_and_checks_the_suite(table, monkeypatch, capsys, tmp_path):
    import torch

    monkeypatch.setattr(design, "derive", lambda: table)  # counted once, by the fixture
    threads = torch.get_num_threads()
    try:
        assert design.main(["--check-suite", str(SUITE)]) == 0
        out = capsys.readouterr().out
        assert "| blocks | squeezenet-w0.5625 | 278,778 | 2,552,640 | macs +7.9% |" in out
        assert design.main(["--check-suite", str(tmp_path / "absent.yaml")]) == 1
        assert "absent.yaml" in capsys.readouterr().err
    finally:
        torch.set_num_threads(threads)


VALIDATE = """
import sys
from benchharness.cli import main
code = main(["validate", sys.argv[1]])
print("HEAVY", sorted(m for m in ("torch", "onnxruntime", "sklearn") if m in sys.modules), "CODE", code)
"""


def test_validating_the_design_suite_imports_no_framework():
    proc = subprocess.run([sys.executable, "-c", VALIDATE, str(SUITE)], capture_output=True, text=True, timeout=120)
    assert "HEAVY [] CODE 0" in proc.stdout, proc.stdout + proc.stderr
    assert "(18 cases)" in proc.stdout


def test_latency_ratios_pair_the_same_round():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from design_guide import paired_ratio
    finally:
        sys.path.remove(str(ROOT / "bench"))
    # Round 4 ran only for the numerator: it has no partner and is left out.
    ratio = paired_ratio({1: 2.0, 2: 3.0, 3: 4.0, 4: 100.0}, {1: 1.0, 2: 2.0, 3: 2.0})
    assert (ratio["median"], ratio["low"], ratio["high"], ratio["rounds"]) == (2.0, 1.5, 2.0, 3)
    assert paired_ratio({1: 1.0}, {2: 1.0}) is None


def test_the_guide_shows_the_tables_of_the_recorded_figures():
    """docs/design-guide.md's tables are what design_guide.py makes of the committed figures, line for line."""
    import json

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from design_guide import cpu_markdown, markdown
    finally:
        sys.path.remove(str(ROOT / "bench"))
    figures = sorted((ROOT / "bench" / "results").glob("design-*Z.json"))
    assert figures, "no bench/results/design-*.json"
    data = json.loads(figures[-1].read_text())
    tables = markdown(data) + "\n" + cpu_markdown(data["cpu_time"])
    assert tables == figures[-1].with_suffix(".md").read_text()
    guide = (ROOT / "docs" / "design-guide.md").read_text()
    rows = [line for line in tables.splitlines() if line.startswith("| ") and "|---" not in line]
    assert len(rows) == 2 * (3 + 11)  # two measures: a header and 3, 4 and 4 models per question
    assert [row for row in rows if row not in guide] == []
    assert figures[-1].name in guide
