"""Interleaved A/B: a suite run on two versions of a project, alternating, compared round by round.

Fresh processes on a shared machine differ by far more than the change a pull request makes, and the
machine drifts over minutes (docs/regressions.md has the figures).  So ``benchharness ab`` runs the
base and the head in alternating rounds within one job, in the order base-head, head-base, base-head,
..., each round a full ``benchharness run`` of the suite with one process per case.  Each case then
gives one ratio head/base per round, taken a few seconds apart, so slow drift cancels in the ratio;
:func:`benchharness.compare.judge_paired` tests those paired ratios.

A side is a git revision of the repository the suite lives in (checked out in a temporary worktree;
the head defaults to the working tree as it is) or another Python environment with benchharness
installed (``--base-python``), running the same suite file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchharness.errors import BenchError
from benchharness.repeats import as_process, combine
from benchharness.results import CaseResult, RunResults, load_results, save_results

#: Rounds when ``--rounds`` is not given: ten paired ratios give a t-test with 9 degrees of freedom.
DEFAULT_ROUNDS = 10
SIDES = ("base", "head")


@dataclass
class Side:
    """One version under test: how to start ``benchharness run`` for it, and what it is."""

    name: str  # "base" or "head"
    python: str
    cwd: Path
    suite: Path
    description: str
    environment: dict[str, str] = field(default_factory=dict)
    commit: str | None = None


@dataclass
class Round:
    """One side's run in one round: its results file (``None`` when the run wrote none) and exit status."""

    side: str
    index: int
    returncode: int
    path: Path | None
    stderr_tail: str


@dataclass
class ABRun:
    """Everything an A/B job produced: per-round runs, and each side's rounds merged into one results file."""

    sides: dict[str, Side]
    rounds: list[Round]
    merged: dict[str, RunResults]
    paths: dict[str, Path]
    folder: Path


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["git failed"])[-1]
        raise BenchError(f"git {' '.join(args[:2])}: {detail}")
    return done.stdout.strip()


def repository_of(path: Path) -> Path:
    """The top folder of the git repository holding ``path``; a one-line error when there is none."""
    try:
        return Path(_git(path.resolve().parent, "rev-parse", "--show-toplevel"))
    except (BenchError, FileNotFoundError):
        raise BenchError(
            f"{path}: not in a git repository, so --base/--head cannot name revisions; "
            "use --base-python/--head-python to compare two environments"
        ) from None


def _pythonpath_for(root: Path, checkout: Path) -> str:
    """``PYTHONPATH`` for a side checked out in ``checkout``: its root first, entries inside ``root`` moved there.

    A user's ``PYTHONPATH`` that points into the repository (``src/``, a plugin folder) must reach the
    side's own copy, not the working tree's.
    """
    entries = [str(checkout)]
    for entry in filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)):
        resolved = Path(entry).resolve()
        if resolved == root or root in resolved.parents:
            entries.append(str(checkout / resolved.relative_to(root)))
        else:
            entries.append(entry)
    return os.pathsep.join(dict.fromkeys(entries))


@contextlib.contextmanager
def revision_sides(suite: Path, base: str, head: str | None, folder: Path) -> Iterator[dict[str, Side]]:
    """Sides for two git revisions of the suite's repository (``head=None``: the working tree as it is).

    Each revision is checked out with ``git worktree add --detach`` under ``folder`` and removed afterwards.
    """
    root = repository_of(suite)
    relative = suite.resolve().relative_to(root)
    added: list[Path] = []
    try:
        sides = {}
        for name, ref in (("base", base), ("head", head)):
            if ref is None:
                commit = _git(root, "rev-parse", "HEAD")
                dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
                sides[name] = Side(
                    name, sys.executable, Path.cwd(), suite.resolve(),
                    f"working tree ({commit[:10]}{', with uncommitted changes' if dirty else ''})", commit=commit,
                )  # fmt: skip
                continue
            try:
                commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
            except BenchError:
                raise BenchError(f"--{name} {ref}: no such revision in {root}") from None
            checkout = folder / f"{name}-{commit[:10]}"
            _git(root, "worktree", "add", "--detach", "--quiet", str(checkout), commit)
            added.append(checkout)
            side_suite = checkout / relative
            if not side_suite.is_file():
                raise BenchError(f"--{name} {ref}: {relative} does not exist at {commit[:10]}")
            what = commit[:10] if commit.startswith(ref) else f"{ref} ({commit[:10]})"
            sides[name] = Side(
                name, sys.executable, checkout, side_suite, what,
                environment={"PYTHONPATH": _pythonpath_for(root, checkout)}, commit=commit,
            )  # fmt: skip
        yield sides
    finally:
        for checkout in added:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(checkout)],
                           capture_output=True, timeout=120)  # fmt: skip
        if added:
            subprocess.run(["git", "-C", str(root), "worktree", "prune"], capture_output=True, timeout=120)


def python_sides(suite: Path, base_python: str, head_python: str) -> dict[str, Side]:
    """Sides for two Python environments with benchharness installed, running the same suite file."""
    sides = {}
    for name, python in (("base", base_python), ("head", head_python)):
        exe = shutil.which(python) or python
        try:
            done = subprocess.run([exe, "-m", "benchharness", "--version"], capture_output=True, text=True, timeout=120)
        except OSError as exc:
            raise BenchError(f"--{name}-python {python}: cannot start it: {exc.strerror or exc}") from None
        if done.returncode != 0:
            raise BenchError(f"--{name}-python {python}: benchharness is not installed there (python -m benchharness)")
        sides[name] = Side(name, exe, Path.cwd(), suite.resolve(), f"{python} ({done.stdout.strip()})")
    return sides


def round_order(index: int) -> tuple[str, str]:
    """The sides in round ``index`` (0-based): base first in even rounds, head first in odd ones.

    Alternating who goes first cancels the advantage of going first (a warm page cache, a cooler CPU)
    along with linear drift.
    """
    return SIDES if index % 2 == 0 else SIDES[::-1]


def run_rounds(
    sides: dict[str, Side],
    rounds: int,
    folder: Path,
    run_args: Sequence[str] = (),
    progress: Callable[[str], None] = lambda line: None,
    same_core: bool = False,
) -> list[Round]:
    """Run ``rounds`` interleaved rounds; each side's run of round k writes into ``folder/<side>/round-k``.

    ``same_core``: in each round the two sides run at the same time, both pinned to one core (the
    cores this process may use, in turn from round to round), so that every slow spell of that core
    hits both alike (see :data:`SAME_CORE_NOTE`).  A side's run that fails for bad input (exit 2) in
    the first round stops the job with its message; a case that fails (exit 1) is recorded in that
    round's results and the job goes on.
    """
    cores = _cores_for_same_core() if same_core else []
    done: list[Round] = []
    for index in range(rounds):
        if same_core:
            core = cores[index % len(cores)]
            progress(f"[round {index + 1}/{rounds}] base and head together on core {core} ...")
            started = [(name, _start(sides[name], folder, index, run_args, core)) for name in round_order(index)]
            try:
                done.extend(_finish(sides[name], index, run) for name, run in started)
            finally:
                for _, run in started:
                    if run.proc.poll() is None:  # the other side failed or Ctrl-C: do not leave this one running
                        run.proc.kill()
                        run.proc.wait()
            continue
        for name in round_order(index):
            progress(f"[round {index + 1}/{rounds}] {name}: {sides[name].description} ...")
            done.append(_finish(sides[name], index, _start(sides[name], folder, index, run_args)))
    return done


#: What ``--same-core`` trades: why it cancels the machine's noise, and what its figures are not.
SAME_CORE_NOTE = (
    "both sides ran at the same time on one core, sharing it: a ratio of their latencies, not a latency to quote"
)


def _cores_for_same_core() -> list[int]:
    if not hasattr(os, "sched_setaffinity"):
        raise BenchError("--same-core pins both sides to one core, which needs os.sched_setaffinity (Linux has it)")
    return sorted(os.sched_getaffinity(0))


def _start(side: Side, folder: Path, index: int, run_args: Sequence[str], core: int | None = None) -> _Started:
    """Start ``benchharness run`` of ``side`` for round ``index`` (pinned to ``core`` when given)."""
    out = folder / side.name / f"round-{index + 1:02d}"
    out.mkdir(parents=True, exist_ok=True)
    command = [side.python, "-m", "benchharness", "run", str(side.suite), "-q", "-o", str(out),
               "--repeat", "1", "--format", "json", *run_args]  # fmt: skip
    log = open(out / "stderr.log", "w+", encoding="utf-8")  # noqa: SIM115 (closed in _finish)
    pin = None if core is None else (lambda: os.sched_setaffinity(0, {core}))
    proc = subprocess.Popen(
        command, cwd=side.cwd, env={**os.environ, **side.environment}, stdout=subprocess.DEVNULL, stderr=log,
        text=True, preexec_fn=pin,
    )  # fmt: skip
    return _Started(proc, out, log)


@dataclass
class _Started:
    """A side's run in progress: the process, its output folder, and the file its stderr goes to."""

    proc: subprocess.Popen
    out: Path
    log: Any


def _finish(side: Side, index: int, started: _Started) -> Round:
    """Wait for a side's run of round ``index``; its :class:`Round`, or the error that stops the job."""
    returncode = started.proc.wait()
    started.log.seek(0)
    stderr = started.log.read()
    started.log.close()
    files = sorted(started.out.glob("*.json"))
    if returncode == 130 or returncode < 0:
        raise KeyboardInterrupt
    if returncode not in (0, 1) or not files:
        lines = stderr.strip().splitlines() or ["(no message)"]
        first = next((ln for ln in lines if "error" in ln), lines[-1])
        raise BenchError(f"{side.name} ({side.description}): benchharness run exited {returncode}: {first}")
    return Round(side.name, index + 1, returncode, files[-1], stderr.strip()[-2000:])


def merge_rounds(rounds: list[Round], side: str) -> RunResults:
    """One side's rounds as one results document: each case's rounds become its processes, in round order.

    The figures combine as for ``--repeat`` (median of the rounds, spread between them), so the merged
    file can be shown, compared or reported like any other.
    """
    mine = [r for r in rounds if r.side == side and r.path is not None]
    loaded = [load_results(r.path) for r in mine]  # type: ignore[arg-type]
    merged = loaded[0].model_copy(deep=True)
    order: dict[str, CaseResult] = {}
    runs: dict[str, list] = {}
    for results in loaded:
        for case in results.cases:
            order.setdefault(case.case_id, case)
            runs.setdefault(case.case_id, []).append(as_process(case, len(runs.get(case.case_id, [])) + 1))
    merged.cases = [
        case if case.status == "skipped" else combine(case.config, runs[case.case_id], case.provenance)
        for case in order.values()
    ]
    merged.finished_at = loaded[-1].finished_at
    merged.complete = all(r.complete for r in loaded)
    return merged


def ab_folder(output_dir: Path, suite_name: str) -> Path:
    """A new folder ``<output>/ab-<suite>-<UTC timestamp>`` for one A/B job's files."""
    from benchharness.runner import safe_file_stem

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        folder = output_dir / f"ab-{safe_file_stem(suite_name)}-{stamp}{'' if n == 1 else f'-{n}'}"
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise BenchError(f"{output_dir}: no free folder name for this A/B job")


def run_ab(
    suite: Path,
    *,
    suite_name: str,
    base: str | None,
    head: str | None,
    base_python: str | None,
    head_python: str | None,
    rounds: int,
    output_dir: Path,
    run_args: Sequence[str] = (),
    progress: Callable[[str], None] = lambda line: None,
    same_core: bool = False,
) -> ABRun:
    """Run the A/B job; return its rounds and the merged results of each side (also saved in its folder)."""
    folder = ab_folder(output_dir.resolve(), suite_name)  # absolute: each side's runs start in its own folder
    with tempfile.TemporaryDirectory(prefix="benchharness-ab-") as scratch:
        if base_python or head_python:
            sides_cm: contextlib.AbstractContextManager[dict[str, Side]] = contextlib.nullcontext(
                python_sides(suite, base_python or sys.executable, head_python or sys.executable)
            )
        else:
            sides_cm = revision_sides(suite, base or "HEAD", head, Path(scratch))
        with sides_cm as sides:
            done = run_rounds(sides, rounds, folder, run_args, progress, same_core)
    merged = {side: merge_rounds(done, side) for side in SIDES}
    paths = {}
    for side, results in merged.items():
        paths[side] = folder / f"{side}.json"
        save_results(paths[side], results)
    return ABRun(sides=sides, rounds=done, merged=merged, paths=paths, folder=folder)
