"""Run a suite's cases, each in its own worker process, and keep the results file up to date."""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from benchharness import __version__
from benchharness.errors import BenchError
from benchharness.plan import Case
from benchharness.plugins import PluginHost
from benchharness.results import CaseResult, RunResults, SuiteRecord, load_results, save_results
from benchharness.suite import LoadedSuite
from benchharness.worker import make_payload

LOG_TAIL_CHARS = 2000


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


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
    """Where results go and how workers are started."""

    output_dir: Path = Path("results")
    resume: Path | None = None
    extra_plugins: list[str] = field(default_factory=list)
    autoload: bool = True
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    timeout: float | None = None  # overrides every case's measure.timeout


def default_cache_dir() -> Path:
    """``$BENCHHARNESS_CACHE``, else ``~/.cache/benchharness``."""
    env = os.environ.get("BENCHHARNESS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "benchharness"


def new_results(loaded: LoadedSuite, host: PluginHost) -> RunResults:
    """An empty results document for a fresh run of ``loaded``."""
    from benchharness.machine import machine_info

    frameworks = host.framework_versions()
    return RunResults(
        tool={"name": "benchharness", "version": __version__},
        run_id=uuid.uuid4().hex[:12],
        started_at=_now(),
        suite=SuiteRecord(path=str(loaded.path), name=loaded.suite.name, hash=loaded.hash, data=loaded.raw),
        machine=machine_info(frameworks, cwd=loaded.path.resolve().parent),
        plugins=[p.to_dict() for p in host.plugins],
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


def run_suite(
    loaded: LoadedSuite, cases: list[Case], host: PluginHost, settings: RunSettings, progress: Progress | None = None
) -> tuple[RunResults, Path]:
    """Run every case not already in the results; save after each one.

    Raises :class:`Interrupted` on Ctrl-C, after saving.
    """
    progress = progress or Progress()
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
    for index, case in enumerate(todo, start=1):
        progress.start(index, len(todo), case)
        try:
            result = run_in_worker(case, loaded, host, settings)
        except KeyboardInterrupt:
            raise Interrupted(path, len(results.cases), len(cases)) from None
        results.cases.append(result)
        save_results(path, results)
        progress.finish(index, len(todo), case, result)
    results.finished_at = _now()
    results.complete = True
    save_results(path, results)
    return results, path


def run_in_worker(case: Case, loaded: LoadedSuite, host: PluginHost, settings: RunSettings) -> CaseResult:
    """Run one case in a fresh interpreter, with its target's environment and a timeout."""
    target = host.get("targets", case.target.name).cls
    env = dict(os.environ)
    env.update(target().environment(target.Options.model_validate(case.target.options)))
    env["PYTHONUNBUFFERED"] = "1"
    timeout = settings.timeout or case.measure.timeout
    payload = make_payload(
        case.model_dump(mode="json"),
        extra_plugins=settings.extra_plugins,
        autoload=settings.autoload,
        base_dir=loaded.path.resolve().parent,
        cache_dir=settings.cache_dir,
    )
    started = _now()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="benchharness-") as tmp:
        payload_file, result_file, log_file = Path(tmp, "case.json"), Path(tmp, "result.json"), Path(tmp, "log")
        payload_file.write_text(json.dumps(payload), encoding="utf-8")
        with log_file.open("wb") as log:
            # A session of its own: Ctrl-C reaches only the runner, which then kills the worker's whole group.
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchharness.worker", str(payload_file), str(result_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            try:
                returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                return _failed(
                    case, "timeout", f"no result after {timeout:g} s; the worker was killed", started, t0, log_file
                )
            except BaseException:
                _kill_group(proc)
                raise
        if returncode == 0 and result_file.exists():
            try:
                return CaseResult.model_validate(json.loads(result_file.read_text(encoding="utf-8")))
            except (ValueError, ValidationError) as exc:  # a plugin put something odd into its result
                message = f"the worker's result is invalid: {str(exc).splitlines()[0]}"
                return _failed(case, "error", message, started, t0, log_file)
        if returncode < 0:
            name = _signal_name(-returncode)
            return _failed(case, "crashed", f"worker killed by signal {name}", started, t0, log_file, signal=name)
        return _failed(case, "crashed", f"worker exited with code {returncode} and no result", started, t0, log_file)


def _failed(
    case: Case, status: str, message: str, started: str, t0: float, log_file: Path, **runtime: Any
) -> CaseResult:
    tail = log_file.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:] if log_file.exists() else ""
    return CaseResult(
        case_id=case.id,
        config=case.model_dump(mode="json"),
        status=status,  # type: ignore[arg-type]
        error=message,
        traceback=tail or None,
        started_at=started,
        duration_s=round(time.perf_counter() - t0, 6),
        runtime=runtime,
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()
