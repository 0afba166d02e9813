"""Repeats across worker processes: round-robin order, combined figures, failures, resume and the CI's kind."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from benchharness.cli import main
from benchharness.repeats import between_ci, process_runs, process_values
from benchharness.results import RunResults, load_results

SUITE = """\
name: rep
models: [{source: dummy, name: m}]
backends:
  - {name: scripted, label: a, sleep_us: 30}
  - {name: scripted, label: b, sleep_us: 60}
metrics: [latency, throughput]
measure: {min_samples: 10, max_time: 0.05, min_time: 0, warmup: {max_time: 0.02, min_time: 0, min_iterations: 2}}
"""


def run(tmp_path: Path, *extra: str, suite: str = SUITE) -> tuple[int, RunResults | None, Path]:
    path = tmp_path / "rep.yaml"
    path.write_text(suite)
    out = tmp_path / "out"
    code = main(["run", str(path), "-p", "bh_testplugin", "-o", str(out), "-q", "--launcher", "inline", *extra])
    files = sorted(out.glob("*.json"), key=lambda f: f.stat().st_mtime_ns)
    return code, (load_results(files[-1]) if files else None), path


def test_repeat_runs_each_case_in_n_processes_round_robin(tmp_path: Path):
    code, results, _ = run(tmp_path, "--repeat", "3")
    assert code == 0 and results is not None
    a, b = results.cases
    assert [len(a.processes), len(b.processes)] == [3, 3]
    assert [p.index for p in a.processes] == [1, 2, 3]
    # a1 < b1 < a2 < b2 < a3 < b3: drift between rounds hits both cases alike
    starts = [p.started_at for pair in zip(a.processes, b.processes) for p in pair]
    assert starts == sorted(starts)
    for case in (a, b):
        medians = [p.metrics["latency"].value for p in case.processes]
        latency = case.metrics["latency"]
        assert latency.value == statistics.median(medians)
        assert latency.between is not None and latency.between.values == medians
        assert latency.between.ci_low < latency.value < latency.between.ci_high
        # each process keeps its own raw samples; the headline summary pools them
        assert all(p.metrics["latency"].samples for p in case.processes)
        assert latency.samples is None
        assert latency.summary.count == sum(len(p.metrics["latency"].samples) for p in case.processes)
        assert process_values(case, "latency") == medians


def test_metrics_that_repeats_cannot_change_are_collected_in_the_first_process_only(tmp_path: Path):
    code, results, _ = run(tmp_path, "--repeat", "3", suite=SUITE.replace("[latency, throughput]", "[latency, model_size]"))
    assert code == 0
    for case in results.cases:
        assert [sorted(p.metrics) for p in case.processes] == [
            ["latency", "model_size", "throughput"], ["latency", "throughput"], ["latency", "throughput"],
        ]  # fmt: skip
        size = case.metrics["model_size"]
        assert size.value == case.processes[0].metrics["model_size"].value and size.between.values == [size.value]
        assert [m.name for m in case.config.metrics] == ["latency", "model_size"]  # the case as the suite has it


def test_measure_repeat_in_the_suite_and_the_flag_overrides_it(tmp_path: Path):
    suite = SUITE.replace("measure: {", "measure: {repeat: 2, ")
    code, results, _ = run(tmp_path, suite=suite)
    assert code == 0 and [len(c.processes) for c in results.cases] == [2, 2]
    code, results, _ = run(tmp_path, "--repeat", "1", suite=suite)
    assert code == 0 and [len(c.processes) for c in results.cases] == [0, 0]
    assert [len(process_runs(c)) for c in results.cases] == [1, 1]


def test_the_environment_sets_the_default_and_a_bad_value_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCHHARNESS_REPEAT", "2")
    code, results, _ = run(tmp_path)
    assert code == 0 and [len(c.processes) for c in results.cases] == [2, 2]
    monkeypatch.setenv("BENCHHARNESS_REPEAT", "many")
    capsys.readouterr()
    code, _, _ = run(tmp_path)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "benchharness: error: BENCHHARNESS_REPEAT='many': expected a whole number of processes from 1 to 1000"
    ]


@pytest.mark.parametrize("value", ["0", "-1", "2.5", "1001"])
def test_a_bad_repeat_flag_is_a_usage_error(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        run(tmp_path, "--repeat", value)
    assert exit_.value.code == 2
    assert "expected a whole number of processes from 1 to 1000" in capsys.readouterr().err


def test_a_failing_process_is_recorded_with_the_others_kept_and_resume_completes_it(tmp_path: Path, capsys):
    marker = tmp_path / "marker"
    suite = SUITE.replace("sleep_us: 60}", f"sleep_us: 60, fail_once_exists: {marker}}}")
    code, results, path = run(tmp_path, "--repeat", "3", suite=suite)
    assert code == 1
    a, b = results.cases
    assert a.status == "ok" and len(a.processes) == 3
    # b's second process failed: the case failed, its first process's figures are kept, no third was started
    assert b.status == "error" and [p.status for p in b.processes] == ["ok", "error"]
    assert b.error.startswith("process 2: RuntimeError: failing because marker exists")
    assert b.metrics["latency"].value == b.processes[0].metrics["latency"].value
    marker.unlink()
    files = list((tmp_path / "out").glob("*.json"))
    assert (
        main(
            [
                "run",
                str(path),
                "-p",
                "bh_testplugin",
                "--resume",
                str(files[-1]),
                "-q",
                "--launcher",
                "inline",
                "--repeat",
                "3",
            ]
        )
        == 1
    )  # fmt: skip  (the third process finds the marker the second one made)
    marker.unlink()
    assert main(["run", str(path), "-p", "bh_testplugin", "--resume", str(files[-1]), "-q", "--launcher", "inline",
                 "--repeat", "3"]) == 0  # fmt: skip
    done = load_results(files[-1])
    assert done.cases[0].processes == a.processes  # untouched: it was complete
    b2 = done.cases[1]
    assert b2.status == "ok" and len(b2.processes) == 3 and [p.index for p in b2.processes] == [1, 2, 3]
    assert b2.processes[0] == b.processes[0]  # the ok process of the first attempt is kept
    assert any(w.startswith("run again by --resume; the earlier attempt ended error") for w in b2.warnings)


def test_the_table_says_which_kind_of_ci_it_shows(tmp_path: Path, capsys):
    run(tmp_path, "--repeat", "1", "--format", "table")
    out = capsys.readouterr().out
    assert "CI95 ±% (1 process)" in out
    assert "CI95: within one process only" in out
    run(tmp_path, "--repeat", "3")
    results = max((tmp_path / "out").glob("*.json"), key=lambda f: f.stat().st_mtime_ns)
    assert main(["show", str(results)]) == 0
    out = capsys.readouterr().out
    assert "CI95 ±% (3 processes)" in out
    assert "from the spread between 3 worker processes per case" in out


def test_between_ci_is_a_t_interval_on_the_logs():
    spread = between_ci([1.0, 2.0, 4.0])
    assert math.isclose(math.sqrt(spread.ci_low * spread.ci_high), 2.0)  # centred on the geometric mean
    from scipy import stats

    half = stats.t.ppf(0.975, 2) * math.log(2) / math.sqrt(3)
    assert math.isclose(spread.ci_high, 2.0 * math.exp(half))
    assert between_ci([3.0]).ci_low is None and "one process" in between_ci([3.0]).method
    assert between_ci([1.0, 0.0]).ci_low is None
    assert between_ci([2.0, 2.0, 2.0]).ci_rel_halfwidth == 0
