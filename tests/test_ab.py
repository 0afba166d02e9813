"""``benchharness ab``: interleaved rounds of two git revisions, merged per side, judged on paired ratios."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from abrepo import git, make_repo

from benchharness.ab import python_sides, revision_sides, round_order
from benchharness.cli import main
from benchharness.compare import compare_results, render
from benchharness.errors import BenchError
from benchharness.results import load_results


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    return make_repo(tmp_path_factory.mktemp("ab"))


def test_rounds_alternate_which_side_goes_first():
    assert [round_order(i) for i in range(4)] == [
        ("base", "head"), ("head", "base"), ("base", "head"), ("head", "base"),
    ]  # fmt: skip


def test_revisions_are_checked_out_in_worktrees_that_are_removed(repo, tmp_path):
    project, fast, slow = repo
    suite = project / "benchmarks" / "suite.yaml"
    with revision_sides(suite, fast, slow, tmp_path) as sides:
        base, head = sides["base"], sides["head"]
        assert (base.commit, head.commit) == (fast, slow)
        assert base.suite == base.cwd / "benchmarks" / "suite.yaml" and base.suite.is_file()
        assert base.suite.with_name("m.onnx").stat().st_size < head.suite.with_name("m.onnx").stat().st_size
        assert base.environment["PYTHONPATH"].split(":")[0] == str(base.cwd)
    assert not base.cwd.exists() and not head.cwd.exists()
    assert len(git(project, "worktree", "list").splitlines()) == 1  # only the repository's own
    with revision_sides(suite, fast, None, tmp_path) as sides:  # no head: the working tree as it is
        assert sides["head"].suite == suite.resolve() and sides["head"].commit == slow


def test_bad_revisions_and_folders_are_one_line_errors(repo, tmp_path):
    project, fast, _ = repo
    suite = project / "benchmarks" / "suite.yaml"
    with pytest.raises(BenchError, match=r"^--base nope: no such revision in "):
        with revision_sides(suite, "nope", None, tmp_path):
            pass
    git(project, "mv", "benchmarks/suite.yaml", "benchmarks/moved.yaml")
    git(project, "commit", "-q", "-m", "move")
    try:
        with pytest.raises(BenchError, match=r"^--base HEAD~1: benchmarks/moved.yaml does not exist at "):
            with revision_sides(project / "benchmarks" / "moved.yaml", "HEAD~1", None, tmp_path):
                pass
    finally:
        git(project, "reset", "-q", "--hard", "HEAD~1")
    outside = tmp_path / "elsewhere" / "s.yaml"
    outside.parent.mkdir()
    outside.write_text("name: s\n")
    with pytest.raises(BenchError, match="not in a git repository.*--base-python"):
        with revision_sides(outside, "HEAD", None, tmp_path):
            pass


@pytest.fixture(scope="module")
def slower(repo: tuple[Path, str, str]) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One A/B job of 3 rounds: the fast commit against the slow one; its output and its folder."""
    project, fast, slow = repo
    done = _ab(project, "--base", fast, "--head", slow, "--format", "json", "-o", "out")
    (folder,) = (project / "out").glob("ab-suite-*")
    return done, folder


def _ab(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchharness", "ab", "benchmarks/suite.yaml", "--rounds", "3", *args],
        cwd=project, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_slower_head_is_a_regression_judged_on_paired_rounds(slower):
    done, _ = slower
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    (row,) = [r for r in report["rows"] if r["metric"] == "latency"]
    assert row["verdict"] == "slower" and row["regression"] and row["ratio"] > 5
    assert "paired" in row["test"]
    order = re.findall(r"^\[round (\d)/3\] (base|head):", done.stderr, re.M)
    assert order == [("1", "base"), ("1", "head"), ("2", "head"), ("2", "base"), ("3", "base"), ("3", "head")]


def test_each_side_is_merged_with_its_rounds_as_processes(slower):
    _, folder = slower
    base, head = load_results(folder / "base.json"), load_results(folder / "head.json")
    (b,), (h,) = base.cases, head.cases
    assert b.case_id == h.case_id and len(b.processes) == len(h.processes) == 3
    # process k of each side is round k: the pairs the paired test uses
    for side, case in (("base", b), ("head", h)):
        for k, round_folder in enumerate(sorted((folder / side).glob("round-*"))):
            (one,) = load_results(next(round_folder.glob("*.json"))).cases
            assert case.processes[k].metrics["latency"].value == one.metrics["latency"].value
    assert h.metrics["latency"].value > 5 * b.metrics["latency"].value  # 400 MatMuls against an Identity
    # a side against itself, paired round by round: every ratio is 1, no change, exit 0
    same = compare_results(base, base, paired=True)
    assert {r.verdict for r in same.rows} == {"no significant change"} and same.exit_code == 0
    assert render(same, "markdown").splitlines()[0].startswith("**benchharness")


def test_bad_input_is_one_line(repo, tmp_path):
    project, fast, _ = repo
    done = _ab(project, "--base", fast, "--head-python", sys.executable)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "benchharness: error: give revisions (--base/--head) or environments (--base-python/--head-python), not both"
    )
    done = _ab(project, "--base", "no-such-ref")
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith(
        "benchharness: error: --base no-such-ref: no such revision in"
    )
    assert main(["ab", str(tmp_path / "none.yaml")]) == 2
    with pytest.raises(SystemExit):
        main(["ab", "s.yaml", "--rounds", "1"])


def test_two_environments_are_two_interpreters_running_the_same_suite(repo, tmp_path):
    project, _, _ = repo
    suite = project / "benchmarks" / "suite.yaml"
    sides = python_sides(suite, sys.executable, sys.executable)
    assert [s.python for s in sides.values()] == [sys.executable, sys.executable]
    assert all(s.suite == suite.resolve() and "benchharness" in s.description for s in sides.values())
    with pytest.raises(BenchError, match=r"^--head-python /nonexistent/python: cannot start it: "):
        python_sides(suite, sys.executable, "/nonexistent/python")
    bare = tmp_path / "bare-python"  # an interpreter without benchharness: a script that fails as python would
    bare.write_text("#!/bin/sh\necho 'No module named benchharness' >&2\nexit 1\n")
    bare.chmod(0o755)
    with pytest.raises(BenchError, match=r"^--base-python .*bare-python: benchharness is not installed there"):
        python_sides(suite, str(bare), sys.executable)


def test_same_core_runs_both_sides_at_once_pinned_to_one_core_in_turn(repo, tmp_path):
    import os

    project, fast, slow = repo
    done = _ab(project, "--base", fast, "--head", slow, "--same-core", "--format", "json", "-o", str(tmp_path))
    assert done.returncode == 1, done.stderr
    (row,) = [r for r in json.loads(done.stdout)["rows"] if r["metric"] == "latency"]
    assert row["verdict"] == "slower" and row["ratio"] > 5
    cores = sorted(os.sched_getaffinity(0))
    announced = re.findall(r"^\[round (\d)/3\] base and head together on core (\d+) \.\.\.$", done.stderr, re.M)
    assert announced == [(str(k + 1), str(cores[k % len(cores)])) for k in range(3)]
    assert done.stderr.strip().splitlines()[-1].startswith("note: both sides ran at the same time on one core")
    (folder,) = tmp_path.glob("ab-suite-*")
    for k in range(3):
        runs = [load_results(next((folder / side / f"round-{k + 1:02d}").glob("*.json"))) for side in ("base", "head")]
        # each side's run was pinned to the round's core, and the two runs overlapped in time
        assert [r.machine.cpu_affinity for r in runs] == [[cores[k % len(cores)]]] * 2
        (b_start, b_end), (h_start, h_end) = [(r.started_at, r.finished_at) for r in runs]
        assert b_start < h_end and h_start < b_end
        assert (folder / "head" / f"round-{k + 1:02d}" / "stderr.log").is_file()


def test_same_core_needs_sched_setaffinity(monkeypatch):
    import os

    from benchharness import ab

    monkeypatch.delattr(os, "sched_setaffinity")
    with pytest.raises(BenchError, match=r"^--same-core pins both sides to one core, which needs os.sched_setaffinity"):
        ab._cores_for_same_core()
