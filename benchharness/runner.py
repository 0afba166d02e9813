"""Run a suite's cases through a launcher and keep the results file up to date after each one."""

from __future__ import annotations

import datetime as _dt
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchharness import __version__
from benchharness.api import Job, Launcher, PluginSelection, WorkerPayload, Workspace
from benchharness.case import Case
from benchharness.errors import BenchError, PluginError
from benchharness.models import default_cache_dir
from benchharness.plugins import PluginHost, plugin_code
from benchharness.results import CaseResult, RunResults, SuiteRecord, ToolInfo, load_results, save_results
from benchharness.suite import LoadedSuite
from benchharness.worker import failed_result, utc_now

DEFAULT_LAUNCHER = "process"


class Interrupted(Exception):
    """The run was stopped by the user; every finished case is already on disk."""

    def __init__(self, path: Path, done: int, total: int) -> None:
        super().__init__(f"interrupted after {done} of {total} cases")
        self.path = path
        self.done = done
        self.total = total


@dataclass
class Progress:
    """Callbacks the runner reports to; the CLI prints them."""

    start: Callable[[int, int, Case], None] = lambda index, total, case: None
    finish: Callable[[int, int, Case, CaseResult], None] = lambda index, total, case, result: None
    skip: Callable[[Case], None] = lambda case: None


@dataclass
class RunSettings:
    """Where results go, which plugins workers load, and how they are started."""

    output_dir: Path = Path("results")
    resume: Path | None = None
    plugins: PluginSelection = field(default_factory=PluginSelection)
    launcher: str = DEFAULT_LAUNCHER
    cache_dir: Path = field(default_factory=default_cache_dir)
    timeout: float | None = None  # overrides every case's measure.timeout


def new_results(loaded: LoadedSuite, host: PluginHost) -> RunResults:
    """An empty results document for a fresh run of ``loaded``."""
    from benchharness.machine import machine_info

    return RunResults(
        tool=ToolInfo(name="benchharness", version=__version__),
        run_id=uuid.uuid4().hex[:12],
        started_at=utc_now(),
        suite=SuiteRecord(path=str(loaded.path), name=loaded.suite.name, hash=loaded.hash, data=loaded.raw),
        machine=machine_info(host.framework_versions(), cwd=loaded.path.resolve().parent),
        plugins=[p.model_copy(deep=True) for p in host.plugins],
    )


def results_path(output_dir: Path, suite_name: str) -> Path:
    """A new file name: ``<suite>-<UTC timestamp>.json``, never overwriting another run."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = output_dir / f"{suite_name}-{stamp}.json"
    n = 1
    while path.exists():
        n += 1
        path = output_dir / f"{suite_name}-{stamp}-{n}.json"
    return path


def local_python_path() -> list[str]:
    """Folders on this process's import path that a fresh interpreter would not have.

    The current folder (``-p`` modules next to the suite) and anything added
    at run time or by a path file, but not the interpreter's own library
    folders; a local worker puts them on its ``PYTHONPATH``.
    """
    prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    out = [os.getcwd()]
    for entry in sys.path:
        if entry and not entry.startswith(prefixes) and entry not in out:
            out.append(entry)
    return out


def run_suite(
    loaded: LoadedSuite, cases: list[Case], host: PluginHost, settings: RunSettings, progress: Progress | None = None
) -> tuple[RunResults, Path]:
    """Run every case not already in the results; save after each one.

    Raises :class:`Interrupted` on Ctrl-C, after saving.
    """
    progress = progress or Progress()
    launcher_item = host.get("launchers", settings.launcher)
    with plugin_code(launcher_item, "__init__"):
        launcher: Launcher = launcher_item.cls(launcher_item.cls.Options())
    if settings.resume is not None:
        path = settings.resume
        results = load_results(path)
        if results.suite.hash != loaded.hash:
            raise BenchError(
                f"{path}: was written for a different version of {loaded.path} (suite hash differs); "
                "run without --resume to start a new results file"
            )
    else:
        path = results_path(settings.output_dir, loaded.suite.name)
        results = new_results(loaded, host)
    results.complete = False
    save_results(path, results)
    done = {c.case_id for c in results.cases}
    todo = [c for c in cases if c.id not in done]
    for case in cases:
        if case.id in done:
            progress.skip(case)
    workspace = Workspace(
        base_dir=loaded.path.resolve().parent, cache_dir=settings.cache_dir, python_path=local_python_path()
    )
    try:
        for index, case in enumerate(todo, start=1):
            progress.start(index, len(todo), case)
            try:
                result = run_one(case, host, launcher, launcher_item.name, workspace, settings)
            except KeyboardInterrupt:
                raise Interrupted(path, len(results.cases), len(cases)) from None
            results.cases.append(result)
            save_results(path, results)
            progress.finish(index, len(todo), case, result)
    finally:
        launcher.close()
    results.finished_at = utc_now()
    results.complete = True
    save_results(path, results)
    return results, path


def run_one(
    case: Case, host: PluginHost, launcher: Launcher, launcher_name: str, workspace: Workspace, settings: RunSettings
) -> CaseResult:
    """Hand one case to the launcher; a plugin failing in this process is that case's error, not the run's."""
    started = utc_now()
    t0 = time.perf_counter()
    try:
        target = host.get("targets", case.target.name)
        with plugin_code(target, "environment"):
            environment = target.cls().environment(target.cls.Options.model_validate(case.target.options))
        job = Job(
            payload=WorkerPayload(case=case, plugins=settings.plugins),
            workspace=workspace,
            environment={str(k): str(v) for k, v in (environment or {}).items()},
            timeout=settings.timeout or case.measure.timeout,
            host=host,
        )
        with plugin_code(host.get("launchers", launcher_name), "launch"):
            result = launcher.launch(job)
        if not isinstance(result, CaseResult):
            raise PluginError(f"launcher {launcher_name!r} returned {type(result).__name__}, not CaseResult")
        return result
    except BenchError as exc:
        return failed_result(
            case, "error", str(exc), started_at=started, duration_s=time.perf_counter() - t0, launcher=launcher_name
        )
