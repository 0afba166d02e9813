"""The memory observer: a known allocation during the measured phase, and during the load, measured within 10%."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchharness import procmem
from benchharness.cli import main
from benchharness.results import load_results

MB = 1_000_000
SUITE = (
    "name: mem\nmodels: [{{source: dummy, name: m}}]\nbackends: [{backend}]\nscenarios: [{{name: fixed, iterations: 5}}]\n"
    "metrics: [memory]\nmeasure: {{timeout: 60}}\n"
)


def run_one(write_suite, tmp_path: Path, backend: str, *extra: str):  # type: ignore[no-untyped-def]
    suite = write_suite(SUITE.format(backend=backend))
    out = tmp_path / "out"
    code = main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", *extra])
    (case,) = load_results(next(out.glob("*.json"))).cases
    assert code == 0, case.error or case.metric_errors
    return case


needs_clear_refs = pytest.mark.skipif(not procmem.reset_peak(), reason="the kernel does not let the peak be reset")


@needs_clear_refs
def test_an_allocation_while_inferring_is_measured_within_10_percent(write_suite, tmp_path):
    size = 200 * MB
    case = run_one(write_suite, tmp_path, f"{{name: scripted, allocate: {size}, allocate_in: infer}}")
    memory = case.metrics["memory"]
    assert memory.unit == "MB" and memory.method.startswith("VmHWM reset when the measured phase started")
    details = memory.details
    assert details["inference_growth_bytes"] == pytest.approx(size, rel=0.10)
    assert memory.value == pytest.approx(details["inference_peak_bytes"] / MB)
    # The load allocated nothing of the kind: the load's figures do not contain it.
    assert details["after_load_rss_bytes"] - details["before_load_rss_bytes"] < size / 10
    # The cross-check: getrusage's lifetime peak bounds it from above (within the page or two it lags behind).
    # It is only a bound: Linux starts a process's ru_maxrss from its parent's at the fork that made it.
    assert details["process_peak_bytes"] >= 0.95 * details["inference_peak_bytes"]


@needs_clear_refs
def test_an_allocation_while_loading_is_after_load_not_inference_growth(write_suite, tmp_path):
    size = 150 * MB
    case = run_one(write_suite, tmp_path, f"{{name: scripted, allocate: {size}, allocate_in: load}}")
    details = case.metrics["memory"].details
    assert details["after_load_rss_bytes"] - details["before_load_rss_bytes"] == pytest.approx(size, rel=0.10)
    assert details["load_peak_bytes"] >= details["after_load_rss_bytes"]
    assert details["load_peak_method"] == "VmHWM reset before the load"
    assert details["inference_growth_bytes"] < size / 10


def test_where_the_peak_cannot_be_reset_the_figure_says_it_is_the_process_peak(write_suite, tmp_path, monkeypatch):
    monkeypatch.setattr(procmem, "CLEAR_REFS", tmp_path / "no" / "clear_refs")
    case = run_one(write_suite, tmp_path, "{name: scripted}", "--launcher", "inline")
    memory = case.metrics["memory"]
    assert "the process's peak since it started (load included" in memory.method
    assert memory.details["phase_peak_reset"] is False and memory.details["inference_growth_bytes"] is None
    assert memory.details["load_peak_method"].endswith("(process peak so far)")


@needs_clear_refs
def test_procmem_reset_then_read_follows_an_allocation():
    procmem.reset_peak()
    before, source = procmem.peak_bytes()
    assert source == "VmHWM" and before == pytest.approx(procmem.rss_bytes(), rel=0.05)
    block = bytearray(b"\x01") * (64 * MB)
    after, _ = procmem.peak_bytes()
    assert after - before == pytest.approx(64 * MB, rel=0.10)
    del block
    procmem.reset_peak()
    assert procmem.peak_bytes()[0] < after - 32 * MB  # the peak followed the free
