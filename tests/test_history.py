"""benchharness history: runs in commit order, each case's series, and persistent steps (not one-run blips)."""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchharness.cli import main
from benchharness.errors import BenchError
from benchharness.history import (
    _segment_costs,
    case_steps,
    detect_steps,
    figure_ci,
    load_history,
    series,
    verdict,
)
from benchharness.machine import git_commit
from benchharness.results import MetricValue, Spread, load_results

SUITE = """\
name: hist
models: [{source: dummy, name: m}]
backends:
  - {name: scripted, label: a, sleep_us: 30}
  - {name: scripted, label: b, sleep_us: 60}
metrics: [latency, throughput]
measure: {min_samples: 10, max_time: 0.05, min_time: 0, warmup: {max_time: 0.02, min_time: 0, min_iterations: 2}}
"""


def noisy(n: int, seed: int, spread: float = 0.05) -> list[float]:
    """``n`` values of 1.0 with uniform noise of ±``spread``, seeded."""
    rng = random.Random(seed)
    return [1.0 + rng.uniform(-spread, spread) for _ in range(n)]


# ----------------------------------------------------------------------------- step detection


@pytest.mark.parametrize("seed", range(8))
def test_a_persistent_20_percent_step_in_noise_is_found_at_its_index(seed: int):
    values = [v * (1.2 if i >= 18 else 1.0) for i, v in enumerate(noisy(30, seed))]
    steps = detect_steps(values)
    assert [s.index for s in steps] == [18]
    step = steps[0]
    assert (step.runs_before, step.runs_after) == (18, 12)
    assert step.ratio == pytest.approx(1.2, rel=0.05)
    assert step.ratio == step.after / step.before
    assert step.before == statistics.median(values[:18]) and step.after == statistics.median(values[18:])


@pytest.mark.parametrize("where", [0, 3, 12, 23])
@pytest.mark.parametrize("factor", [1.6, 3.0])
def test_a_one_run_spike_is_not_a_step(where: int, factor: float):
    values = noisy(24, seed=where)
    values[where] *= factor
    assert detect_steps(values) == []
    # what absorbs it is min_run: a level may not stand on one run (with min_run=1 a large spike is one)
    if factor == 3.0:
        edges = [i for i in (where, where + 1) if 0 < i < 24]
        assert [s.index for s in detect_steps(values, min_run=1)] == edges


def test_the_latest_run_alone_is_not_a_step_until_the_next_confirms_it():
    values = [*noisy(15, seed=3), 1.3]
    assert detect_steps(values) == []
    steps = detect_steps([*values, 1.31])
    assert [(s.index, s.runs_after) for s in steps] == [(15, 2)]


@pytest.mark.parametrize("n", [8, 30, 100, 300])
def test_pure_noise_of_5_percent_gives_no_step_at_a_5_percent_threshold(n: int):
    for seed in range(10):
        assert detect_steps(noisy(n, seed=100 * n + seed), threshold=0.05) == []


def test_two_steps_up_then_down_are_both_found():
    values = [v * (1.3 if 15 <= i < 25 else 1.0) for i, v in enumerate(noisy(40, seed=7))]
    steps = detect_steps(values)
    assert [s.index for s in steps] == [15, 25]
    assert [(s.runs_before, s.runs_after) for s in steps] == [(15, 10), (10, 15)]
    assert steps[0].ratio == pytest.approx(1.3, rel=0.05)
    assert steps[1].ratio == pytest.approx(1 / 1.3, rel=0.05)


def test_a_change_below_the_threshold_is_merged_away_and_a_larger_one_stays():
    values = [1.0] * 10 + [1.03] * 10  # noiseless: the fit splits, the threshold decides
    assert detect_steps(values, threshold=0.05) == []
    assert [s.index for s in detect_steps(values, threshold=0.02)] == [10]
    assert [s.index for s in detect_steps([1.0] * 10 + [1.06] * 10, threshold=0.05)] == [10]


def test_short_or_odd_series():
    assert detect_steps([]) == [] and detect_steps([1.0]) == [] and detect_steps([1.0, 2.0, 2.0]) == []
    assert [s.index for s in detect_steps([1.0, 1.0, 2.0, 2.0])] == [2]
    # a value that is not positive: levels compared on the raw scale, and a ratio from 0 is infinite
    steps = detect_steps([0.0] * 5 + [1.0] * 5)
    assert [s.index for s in steps] == [5] and steps[0].ratio == math.inf
    with pytest.raises(ValueError):
        detect_steps([1.0, math.nan, 1.0])
    with pytest.raises(ValueError):
        detect_steps([1.0, 1.0], min_run=0)


def test_segment_costs_are_the_sum_of_absolute_deviations_from_the_median():
    rng = random.Random(5)
    for _ in range(40):
        y = [rng.choice([rng.random(), 0.5, 0.25]) for _ in range(rng.randint(1, 12))]  # ties too
        costs = _segment_costs(y)
        for s in range(len(y)):
            for e in range(s, len(y)):
                segment = y[s : e + 1]
                median = statistics.median(segment)
                assert costs[s][e - s] == pytest.approx(sum(abs(v - median) for v in segment), abs=1e-12)


def test_verdicts():
    assert verdict(1.2, "lower", True) == "slower" and verdict(0.8, "lower", True) == "faster"
    assert verdict(1.2, "lower", False) == "worse" and verdict(0.8, "lower", False) == "better"
    assert verdict(0.8, "higher", True) == "worse" and verdict(1.2, "higher", False) == "better"
    assert verdict(1.2, None, False) == "up" and verdict(0.8, None, False) == "down"


def test_a_figure_ci_comes_from_between_processes_else_from_the_summary_scaled_to_the_value():
    from benchharness.stats import summarize

    samples = [1000 + (i % 7) for i in range(50)]  # ns
    summary = summarize(samples, 0.95)
    single = MetricValue(value=summary.median / 1e6, unit="ms", summary=summary)
    low, high = figure_ci(single)
    assert low == pytest.approx(summary.ci_low / 1e6) and high == pytest.approx(summary.ci_high / 1e6)
    spread = Spread(values=[1.0, 1.1, 0.9], ci_low=0.8, ci_high=1.2, method="t")
    assert figure_ci(single.model_copy(update={"between": spread})) == (0.8, 1.2)
    assert figure_ci(MetricValue(value=3.0, unit="MB")) == (None, None)


# ----------------------------------------------------------------------------- results files


@pytest.fixture(scope="module")
def real_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real results file of the test plugin's two scripted cases, as JSON data (made once per module)."""
    folder = tmp_path_factory.mktemp("history-source")
    suite = folder / "hist.yaml"
    suite.write_text(SUITE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BENCHHARNESS_CACHE", str(folder / "cache"))
        patch.setenv("BENCHHARNESS_REPEAT", "1")
        argv = ["run", str(suite), "-p", "bh_testplugin", "-o", str(folder / "out"), "-q", "--launcher", "inline"]
        assert main(argv) == 0
    (path,) = (folder / "out").glob("*.json")
    load_results(path)
    return json.loads(path.read_text())


Writer = Callable[..., Path]


@pytest.fixture
def write_run(real_results: dict[str, Any]) -> Writer:
    """Write an edited copy of the real results file: its run id, start, commit and figures scaled by ``factor``."""

    def write(
        path: Path,
        run_id: str,
        started_at: str,
        commit: str | None = None,
        committed_at: str | None = None,
        factor: float = 1.0,
        failed: str | None = None,
        status: str = "error",
        hostname: str | None = None,
    ) -> Path:
        doc = json.loads(json.dumps(real_results))
        doc["run_id"] = run_id
        doc["started_at"] = started_at
        doc["machine"]["git"] = None if commit is None else {"commit": commit, "dirty": False}
        if hostname is not None:
            doc["machine"]["hostname"] = hostname
        if committed_at is not None:
            doc["machine"]["git"]["committed_at"] = committed_at
        for case in doc["cases"]:
            case["metrics"]["latency"]["value"] *= factor
            case["metrics"]["throughput"]["value"] /= factor
            if failed and failed in case["case_id"]:
                case.update(status=status, error="RuntimeError: scripted failure\nsecond line")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))
        return path

    return write


def commit_of(i: int) -> str:
    return f"c{i:06d}" + "0" * 33


def test_runs_are_ordered_by_commit_date_then_start_time(tmp_path: Path, write_run: Writer):
    # written in an order the sort must undo; file names sort the wrong way too
    write_run(tmp_path / "1.json", "late-start", "2026-11-10T10:00:00+00:00", commit_of(3), "2026-11-03T09:00:00+00:00")
    write_run(tmp_path / "2.json", "oldest", "2026-11-12T10:00:00+00:00", commit_of(1), "2026-11-01T09:00:00+00:00")
    write_run(
        tmp_path / "3.json", "early-start", "2026-11-09T10:00:00+00:00", commit_of(3), "2026-11-03T09:00:00+00:00"
    )
    write_run(tmp_path / "4.json", "no-git", "2026-11-02T10:00:00+00:00")
    # a file from before committed_at was recorded: placed by its start time
    write_run(tmp_path / "5.json", "old-file", "2026-11-04T00:00:00+02:00", commit_of(9))
    # another zone: 2026-11-03T08:30 in UTC, before 09:00 UTC
    write_run(tmp_path / "6.json", "zoned", "2026-11-20T10:00:00+00:00", commit_of(2), "2026-11-03T10:30:00+02:00")
    history = load_history([tmp_path])
    assert [r.results.run_id for r in history.runs] == [
        "oldest",
        "no-git",
        "zoned",
        "early-start",
        "late-start",
        "old-file",
    ]
    assert history.warnings == []
    labels = [r.label for r in history.runs]
    assert labels[0] == "c000001" and labels[1] == "2026-11-02 10:00"
    assert history.runs[5].committed_at is None and history.runs[5].commit == commit_of(9)


def test_files_that_are_not_results_are_skipped_with_a_warning(tmp_path: Path, write_run: Writer, capsys):
    write_run(tmp_path / "r1.json", "r1", "2026-11-01T10:00:00+00:00")
    write_run(tmp_path / "r2.json", "r2", "2026-11-02T10:00:00+00:00")
    (tmp_path / "package.json").write_text('{"name": "not a run"}')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.json").write_text("{")
    (tmp_path / "notes.txt").write_text("not JSON, not looked at")
    history = load_history([tmp_path])
    assert [r.results.run_id for r in history.runs] == ["r1", "r2"]
    assert len(history.warnings) == 2
    assert history.warnings[0].startswith(f"skipped {tmp_path / 'package.json'}: not a benchharness results file")
    assert history.warnings[1].startswith(f"skipped {tmp_path / 'sub' / 'broken.json'}:1: not a results file")
    assert main(["history", str(tmp_path)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("benchharness: warning: skipped ") for line in err)


def test_a_folder_without_results_is_a_one_line_error(tmp_path: Path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "package.json").write_text("{}")
    with pytest.raises(BenchError, match="no results files in this folder"):
        load_history([tmp_path / "empty"])
    assert main(["history", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"benchharness: error: {tmp_path / 'other'}: no results files in this folder (none of its 1 JSON file is one)"
    )
    assert main(["history", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"benchharness: error: {tmp_path / 'missing'}: no such results file or folder"
    ]


def test_baseline_copies_count_once(tmp_path: Path, write_run: Writer):
    results = tmp_path / "results"
    for i in range(3):
        write_run(results / f"hist-{i}.json", f"run{i}", f"2026-11-0{i + 1}T10:00:00+00:00")
    (results / "baselines").mkdir()
    shutil.copy(results / "hist-1.json", results / "baselines" / "aaa.json")  # sorts before the original
    history = load_history([results, results / "hist-2.json"])  # a file named twice counts once too
    assert [r.results.run_id for r in history.runs] == ["run0", "run1", "run2"]
    assert history.runs[1].path == results / "hist-1.json"
    assert all(len(points) == 3 for points in series(history).values())


def test_older_files_without_committed_at_load(write_run: Writer, tmp_path: Path):
    path = write_run(tmp_path / "r.json", "r", "2026-11-01T10:00:00+00:00", commit_of(1))
    assert load_results(path).machine.git.committed_at is None


def test_git_commit_records_the_committer_date(tmp_path: Path):
    env = {
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@example.com",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@example.com",
        "GIT_AUTHOR_DATE": "2026-01-02T03:04:05+01:00",
        "GIT_COMMITTER_DATE": "2026-02-03T04:05:06+01:00",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(tmp_path),
    }
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=tmp_path, check=True, env=env)
    git = git_commit(tmp_path)
    assert git is not None and git.committed_at == "2026-02-03T04:05:06+01:00"


# ----------------------------------------------------------------------------- the command


@pytest.fixture
def ten_runs(tmp_path: Path, write_run: Writer) -> Path:
    """Ten runs, one per commit, latency ×1.2 from the seventh on, noise of ±2%; case b failed in the third."""
    rng = random.Random(11)
    folder = tmp_path / "results"
    for i in range(10):
        factor = (1.2 if i >= 6 else 1.0) * (1 + rng.uniform(-0.02, 0.02))
        write_run(
            folder / f"hist-{9 - i}.json",  # file names in the reverse order
            f"run{i}",
            f"2026-11-{i + 1:02d}T12:00:00+00:00",
            commit_of(i),
            f"2026-11-{i + 1:02d}T10:00:00+00:00",
            factor,
            failed="/b/" if i == 2 else None,
        )
    return folder


def test_the_command_shows_each_case_with_its_step(ten_runs: Path, capsys):
    assert main(["history", str(ten_runs)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("m/")}
    assert set(lines) == {"m/none/a/cpu/latency/b1", "m/none/b/cpu/latency/b1"}
    assert re.search(
        r"  10  .*1\.\d\d× slower at c000006 \(2026-11-07\), 6 runs before, 4 after", lines["m/none/a/cpu/latency/b1"]
    )
    # b's failed run is a gap: 9 values, the step counted over them
    assert re.search(
        r"9 \(1 failed\).*1\.\d\d× slower at c000006 \(2026-11-07\), 5 runs before, 4 after",
        lines["m/none/b/cpu/latency/b1"],
    )
    assert "latest latency (ms)" in out and "note: 10 runs from c000000 (2026-11-01) to c000009 (2026-11-10)" in out

    assert main(["history", str(ten_runs), "--case", "/a/", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| case ") and "m/none/b/" not in out and "| m/none/a/cpu/latency/b1 |" in out


def test_the_command_json_gives_every_point_gap_and_step(ten_runs: Path, capsys):
    assert main(["history", str(ten_runs), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in data["runs"]] == [f"run{i}" for i in range(10)]
    b = data["cases"]["m/none/b/cpu/latency/b1"]
    assert [p["run"] for p in b["points"]] == list(range(10))
    gap = b["points"][2]
    assert gap["value"] is None and gap["status"] == "error" and gap["error"] == "RuntimeError: scripted failure"
    for point in b["points"]:
        if point["value"] is not None:
            assert point["status"] == "ok" and point["ci_low"] <= point["value"] <= point["ci_high"]
    (step,) = b["steps"]
    assert step["run"] == 6 and step["index"] == 5 and step["verdict"] == "slower" and step["unit"] == "ms"
    assert step["commit"] == commit_of(6) and step["committed_at"] == "2026-11-07T10:00:00+00:00"
    assert step["ratio"] == pytest.approx(1.2, rel=0.05) and step["text"].startswith("1.")
    assert b["better"] == "lower"


def test_a_higher_is_better_figure_that_drops_is_worse(ten_runs: Path, capsys):
    assert main(["history", str(ten_runs), "--metric", "throughput", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (step,) = data["cases"]["m/none/a/cpu/latency/b1"]["steps"]
    assert step["verdict"] == "worse" and step["ratio"] == pytest.approx(1 / 1.2, rel=0.05)
    assert re.fullmatch(r"-1\d\.\d% \(worse\) at c000006 \(2026-11-07\), 6 runs before, 4 after", step["text"])
    # a file from before figures named their direction: the unit (items/s) says it
    for path in ten_runs.glob("*.json"):
        doc = json.loads(path.read_text())
        for case in doc["cases"]:
            case["metrics"]["throughput"]["better"] = None
        path.write_text(json.dumps(doc))
    history = load_history([ten_runs])
    steps = case_steps(history, "throughput", threshold=0.05, min_run=2)
    assert [s.verdict for s in steps["m/none/a/cpu/latency/b1"]] == ["worse"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "5"], "--threshold '5': a fraction is below 1 (did you mean 5%?)"),
        (["--threshold", "abc"], "--threshold 'abc': expected a fraction such as 0.05 or a percentage such as 5%"),
        (["--min-run", "0"], "--min-run '0': expected a whole number of runs, 1 or more"),
        (["--metric", "nope"], "no case has the figure 'nope' in these 10 runs; they have: latency, throughput"),
        (["--case", "zzz"], "--case 'zzz': no case id contains it"),
    ],
)
def test_bad_input_is_one_line(ten_runs: Path, capsys, args: list[str], message: str):
    assert main(["history", str(ten_runs), *args]) == 2
    assert capsys.readouterr().err.splitlines() == [f"benchharness: error: {message}"]


def test_the_table_counts_skips_apart_and_notes_runs_from_other_machines(tmp_path: Path, write_run: Writer, capsys):
    for i in range(4):
        skip = "/b/" if i == 1 else None
        write_run(tmp_path / f"{i}.json", f"r{i}", f"2026-11-0{i + 1}T10:00:00+00:00", failed=skip, status="skipped")
    assert main(["history", str(tmp_path), "--case", "/b/"]) == 0
    out = capsys.readouterr().out
    assert "  3 (1 skipped)  " in out and "failed" not in out and "machines" not in out
    write_run(tmp_path / "4.json", "r4", "2026-11-05T10:00:00+00:00", hostname="elsewhere")
    assert main(["history", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "the runs come from 2 machines (" in out and "elsewhere): a step may be a change of machine" in out
