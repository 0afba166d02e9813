"""Run a suite's cases through a launcher and keep the results file up to date after each one."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchharness import __version__
from benchharness.api import Job, Launcher, PluginSelection, WorkerPayload, Workspace
from benchharness.case import Case
from benchharness.errors import BenchError, PluginError
from benchharness.models import default_cache_dir
from benchharness.plugins import PluginHost, plugin_code
from benchharness.repeats import as_process, case_repeat, combine, process_ok, process_runs
from benchharness.results import (
    CaseResult,
    ProcessRun,
    RunResults,
    SuiteRecord,
    ToolInfo,
    load_results,
    save_results,
)
from benchharness.suite import LoadedSuite
from benchharness.worker import failed_result, utc_now

DEFAULT_LAUNCHER = "process"


class Interrupted(Exception):
    """The run was stopped by a signal (Ctrl-C, SIGTERM, SIGHUP); every finished case is already on disk."""

    def __init__(self, path: Path, done: int, total: int, signum: int = signal.SIGINT) -> None:
        super().__init__(f"interrupted after {done} of {total} cases")
        self.path = path
        self.done = done
        self.total = total
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """``128 + signal``, as a shell reports a process the signal killed: 130 for Ctrl-C, 143 for SIGTERM."""
        return 128 + self.signum


class SaveFailed(BenchError):
    """The results file could not be written (a full disk, a folder made read-only); the run stops.

    ``saved`` cases are in ``path`` from its last successful write (``None``:
    no file was written), so the run can be resumed once the cause is fixed.
    """

    def __init__(self, path: Path, error: OSError, saved: int | None, total: int) -> None:
        super().__init__(f"cannot write results to {path}: {error.strerror or error}")
        self.path = path
        self.error = error
        self.saved = saved
        self.total = total


class _Stopped(BaseException):
    """Raised in the main thread by a SIGTERM or SIGHUP handler, so the run stops as on Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: Signals that stop a run the way Ctrl-C does: the worker's group is killed and finished cases are kept.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """While running, SIGTERM and SIGHUP raise :class:`_Stopped` in the main thread (once: a second is ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread; a library caller keeps its own
        return

    def stop(signum: int, frame: object) -> None:
        for sig in STOP_SIGNALS:  # cleaning up (killing the worker, saving) must not be cut short by a second one
            signal.signal(sig, signal.SIG_IGN)
        raise _Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class Progress:
    """Callbacks the runner reports to; the CLI prints them."""

    #: ``(index, total, case, process, processes)``: the ``index``-th of ``total`` worker processes starts;
    #: it is process ``process`` of the ``processes`` its case runs in.
    start: Callable[[int, int, Case, int, int], None] = lambda index, total, case, process, processes: None
    finish: Callable[[int, int, Case, CaseResult], None] = lambda index, total, case, result: None
    skip: Callable[[Case], None] = lambda case: None


@dataclass
class RunSettings:
    """Where results go, which plugins workers load, and how they are started."""

    output_dir: Path = Path("results")
    resume: Path | None = None
    plugins: PluginSelection = field(default_factory=PluginSelection)
    launcher: str = DEFAULT_LAUNCHER
    #: The launcher's options (``--address`` is ``{"address": ...}``), validated by its ``Options``.
    launcher_options: dict[str, Any] = field(default_factory=dict)
    cache_dir: Path = field(default_factory=default_cache_dir)
    timeout: float | None = None  # overrides every case's measure.timeout
    repeat: int | None = None  # overrides every case's measure.repeat (worker processes per case)


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


def safe_file_stem(name: str) -> str:
    """``name`` as a file name stem: characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``.

    A suite's name is free text; ``../x`` or ``a/b`` must not put its results file outside the output folder.
    """
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return stem[:100] or "suite"


def create_results_file(output_dir: Path, suite_name: str, results: RunResults) -> Path:
    """Write ``results`` to a new file ``<suite>-<UTC timestamp>[-N].json`` that no other run can have.

    The name is taken by creating the file, not by checking that it does not
    exist, so two runs of one suite started in the same second get two files:
    the document is written to a temporary file, then hard-linked to the first
    free name (a link fails if the name exists), so the file never exists
    empty.  Where hard links are not supported, the name is claimed with
    ``O_EXCL`` and the document written over it.
    """
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    stem = f"{safe_file_stem(suite_name)}-{stamp}"
    staging = output_dir / f".{stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.new"
    save_results(staging, results)
    try:
        for n in range(1, 10_000):
            path = output_dir / (f"{stem}.json" if n == 1 else f"{stem}-{n}.json")
            try:
                os.link(staging, path)
            except FileExistsError:
                continue
            except OSError:  # no hard links here (some network or FAT file systems)
                try:
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                except FileExistsError:
                    continue
                save_results(path, results)
            return path
    finally:
        staging.unlink(missing_ok=True)
    raise BenchError(f"{output_dir}: no free results file name for {stem}.json")


def check_writable(folder: Path, what: str, hint: str = "") -> None:
    """Refuse, as one line, a folder this run must write to but cannot (created when missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise BenchError(f"{what} {folder} is not writable: {reason}{hint}") from None


def failed_before(result: CaseResult) -> bool:
    """Whether ``--resume`` runs this case again: it did not end ok, or one of its figures failed.

    That includes ``oom`` (a failure like any other) and ``skipped``: whether
    this machine has the target is asked again, at no cost if it still lacks it.
    """
    return result.status != "ok" or bool(result.metric_errors)


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
    """Run every case not already done in the results; save after each one.

    With ``settings.resume``, cases that ended ok are skipped and failed ones
    (see :func:`failed_before`) run again, each replacing its earlier result.
    Raises :class:`Interrupted` on Ctrl-C, SIGTERM or SIGHUP, after killing
    the running worker; :class:`SaveFailed` when the results file cannot be
    written.  Both leave every case finished before them in the file.
    """
    progress = progress or Progress()
    check_writable(
        settings.cache_dir, "the conversion cache folder", "; set BENCHHARNESS_CACHE to a folder you can write"
    )
    repeat = {case.id: case_repeat(case, settings.repeat) for case in cases}
    launcher = start_launcher(host, settings)
    launcher_item = host.get("launchers", settings.launcher)
    if settings.resume is not None:
        path = settings.resume
        results = load_results(path)
        check_writable(path.parent, "the results folder")
        if results.suite.hash != loaded.hash:
            raise BenchError(
                f"{path}: was written for a different version of {loaded.path} (suite hash differs); "
                "run without --resume to start a new results file"
            )
    else:
        check_writable(settings.output_dir, "the results folder")
        results = new_results(loaded, host)
        try:
            path = create_results_file(settings.output_dir, loaded.suite.name, results)
        except OSError as exc:
            raise SaveFailed(settings.output_dir, exc, None, len(cases)) from None
    on_disk = len(results.cases)

    def save() -> None:
        nonlocal on_disk
        try:
            save_results(path, results)
        except OSError as exc:
            raise SaveFailed(path, exc, on_disk, len(cases)) from None
        on_disk = len(results.cases)

    earlier = {c.case_id for c in results.cases}  # cases of the file being resumed
    position = {case.id: i for i, case in enumerate(cases)}
    kept: dict[str, list[ProcessRun]] = {}  # processes of an earlier attempt that a resumed case keeps
    done = set()
    for old in results.cases:
        runs = [r for r in process_runs(old) if process_ok(r)] if old.status != "skipped" else []
        if old.case_id in repeat and len(runs) >= repeat[old.case_id] and not failed_before(old):
            done.add(old.case_id)
        elif repeat.get(old.case_id, 1) > 1:
            kept[old.case_id] = [r.model_copy(update={"index": i}) for i, r in enumerate(runs, start=1)]
    if results.complete:
        results.complete = False
        save()
    todo = [c for c in cases if c.id not in done]
    for case in cases:
        if case.id in done:
            progress.skip(case)
    workspace = Workspace(
        base_dir=loaded.path.resolve().parent, cache_dir=settings.cache_dir, python_path=local_python_path()
    )
    # Round-robin: every case's first process, then every case's second, ..., so drift hits every case alike.
    needed = {c.id: repeat[c.id] - len(kept.get(c.id, [])) for c in todo}
    total = sum(needed.values())
    order = [(case, n) for n in range(max(needed.values(), default=0)) for case in todo if n < needed[case.id]]
    by_id = {case.id: case for case in todo}
    ended: set[str] = set()  # a case that failed or was skipped gets no more processes
    busy: set[str] = set()  # cases with a process submitted and not yet back: a case's next process waits for it
    retried: dict[str, str] = {}  # the warning each case run again by --resume carries
    started = finished = 0

    def record(case: Case, one: CaseResult) -> None:
        nonlocal finished
        runs = kept.setdefault(case.id, [])
        finished += 1
        if one.status != "ok":
            ended.add(case.id)
            dropped = [item for item in order if item[0].id == case.id]  # its remaining processes will not run
            for item in dropped:
                order.remove(item)
            finished += len(dropped)
        if repeat[case.id] == 1 or (one.status == "skipped" and not runs):
            result = one  # one process (or a target this machine lacks): nothing to combine
        else:
            runs.append(as_process(one, len(runs) + 1))
            result = combine(case, runs, one.provenance)
        where = next((i for i, c in enumerate(results.cases) if c.case_id == case.id), None)
        if where is not None:  # a retry replaces the failed result it retries, in place
            old = results.cases[where]
            if case.id in earlier and case.id not in retried and failed_before(old):
                retried[case.id] = f"run again by --resume; the earlier attempt ended {_outcome(old)}"
            if case.id in retried:
                result.warnings.append(retried[case.id])
            results.cases[where] = result
        else:  # in the suite's order, whatever order a concurrent launcher returns cases in
            results.cases.append(result)
            results.cases.sort(key=lambda c: position.get(c.case_id, len(position)))
        save()
        progress.finish(finished, total, case, result)

    try:
        with _stop_on_signals():
            while order or busy:
                for item in list(order):  # submit every process that may start now (one, unless concurrent)
                    case = item[0]
                    if case.id in busy or item not in order:
                        continue
                    if busy and not launcher.concurrent:
                        break
                    order.remove(item)
                    started += 1
                    process = len(kept.get(case.id, [])) + 1
                    progress.start(started, total, case, process, repeat[case.id])
                    which = case if process == 1 else timed_only(case, host)  # the first collects every figure
                    job = prepare_job(which, host, launcher, launcher_item.name, workspace, settings, process)
                    if isinstance(job, CaseResult):  # decided here: a skip, or an error of the case's plugins
                        record(case, job)
                        continue
                    try:
                        with plugin_code(launcher_item, "submit"):
                            launcher.submit(job)
                    except BenchError as exc:
                        record(case, _failed_here(which, exc, launcher_item.name))
                        continue
                    busy.add(case.id)
                if not busy:
                    continue
                try:
                    with plugin_code(launcher_item, "next_result"):
                        job, one = launcher.next_result()
                except BenchError as exc:
                    if len(busy) > 1:  # which case failed is unknown: stop, with every finished case on disk
                        raise
                    (case_id,) = busy
                    busy.clear()
                    record(by_id[case_id], _failed_here(by_id[case_id], exc, launcher_item.name))
                    continue
                case = by_id.get(job.payload.case.id) if isinstance(job, Job) else None
                if case is None or case.id not in busy:
                    raise PluginError(f"launcher {launcher_item.name!r} returned a result for a case it was not given")
                busy.discard(case.id)
                if not isinstance(one, CaseResult):
                    msg = f"launcher {launcher_item.name!r} returned {type(one).__name__}, not CaseResult"
                    one = _failed_here(job.payload.case, PluginError(msg), launcher_item.name)
                record(case, one)
    except KeyboardInterrupt:
        raise Interrupted(path, on_disk or 0, len(cases)) from None
    except _Stopped as stop:
        raise Interrupted(path, on_disk or 0, len(cases), stop.signum) from None
    finally:
        launcher.close()
    results.finished_at = utc_now()
    results.complete = True
    save()
    return results, path


def start_launcher(host: PluginHost, settings: RunSettings) -> Launcher:
    """The run's launcher, made with its options: an option it does not take is one line naming the flag."""
    from pydantic import ValidationError

    item = host.get("launchers", settings.launcher)
    try:
        options = item.cls.Options.model_validate(settings.launcher_options)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        flag = f"--{field.replace('_', '-')}"
        if first["type"] == "extra_forbidden":
            raise BenchError(f"{flag}: launcher {settings.launcher!r} takes no {field!r} option") from None
        raise BenchError(f"{flag}: {first['msg']} (launcher {settings.launcher!r})") from None
    with plugin_code(item, "__init__"):
        return item.cls(options)  # type: ignore[no-any-return]


def timed_only(case: Case, host: PluginHost) -> Case:
    """``case`` as its second and later worker processes run it: without the metrics repeats cannot change.

    Repeats sample the noise between processes, which only figures measured around the timed loop
    (the scenario's, the observers') have.  A metric that depends on no other figure (accuracy,
    fidelity, parameters, size, MACs: its own untimed pass, or static) gives the same value in every
    process, so only the first one collects it; a metric that depends on a figure is collected in each.
    """
    metrics = host.items["metrics"]
    keep = [m for m in case.metrics if m.name not in metrics or metrics[m.name].cls.depends_on]
    return case if len(keep) == len(case.metrics) else case.model_copy(update={"metrics": keep})


def _outcome(result: CaseResult) -> str:
    if result.status != "ok":
        return f"{result.status}: {result.error}" if result.error else result.status
    return "ok but " + "; ".join(f"{name} failed: {error}" for name, error in result.metric_errors.items())


def prepare_job(
    case: Case,
    host: PluginHost,
    launcher: Launcher,
    launcher_name: str,
    workspace: Workspace,
    settings: RunSettings,
    process: int = 1,
) -> Job | CaseResult:
    """The job that hands ``case`` to the launcher, or the case's result when it is decided here.

    A variant its backend cannot run is a skip with the reason.  For a
    ``local`` launcher this machine is the one that runs the case, so
    :func:`machine_job` asks the target here too; a launcher that is not
    local does that where the case runs.  A plugin failing in this process
    is that case's error, not the run's.
    """
    t0 = time.perf_counter()
    started = utc_now()
    try:
        job = Job(
            payload=WorkerPayload(case=case, plugins=settings.plugins),
            workspace=workspace,
            environment={},
            timeout=settings.timeout or case.measure.timeout,
            host=host,
            process=process,
        )
        if launcher.local:
            done = machine_job(job, host, launcher_name, check_variant=True)
            if isinstance(done, CaseResult):
                return done
        elif case.compressions:
            from benchharness.models import variant_blocker

            missing = variant_blocker(case, host)
            if missing:
                return _skip(case, host, missing, started, t0, launcher_name)
        return job
    except BenchError as exc:
        return _failed_here(case, exc, launcher_name, started, time.perf_counter() - t0)


def machine_job(job: Job, host: PluginHost, launcher_name: str, *, check_variant: bool = False) -> Job | CaseResult:
    """Complete ``job`` on the machine that will run it: the target's check that it is there, and its environment.

    Asks the case's target whether this machine has it (``unavailable_here``);
    a reason is the case's ``skipped`` result.  Otherwise sets
    ``job.environment`` from the target's ``environment``, computed here, as
    this machine's cores and devices make it, and returns the job.  The
    runner calls it for a ``local`` launcher; a launcher that runs cases on
    other machines calls it there, with a plugin host loaded there.
    ``check_variant`` also skips a variant the case's backend cannot run.
    Raises :class:`BenchError` (a :class:`PluginError` for a plugin's bug).
    """
    case = job.payload.case
    t0 = time.perf_counter()
    started = utc_now()
    target = host.get("targets", case.target.name)
    options = target.cls.Options.model_validate(case.target.options)
    with plugin_code(target, "unavailable_here"):
        missing = target.cls.unavailable_here(options)
    if not missing and check_variant and case.compressions:
        from benchharness.models import variant_blocker

        missing = variant_blocker(case, host)  # a variant its backend cannot run: a skip too, decided here
    if missing:  # this machine lacks the target: a skip with its reason, and no worker is started
        return _skip(case, host, str(missing), started, t0, launcher_name)
    with plugin_code(target, "environment"):
        environment = target.cls().environment(options)
    job.environment = {str(k): str(v) for k, v in (environment or {}).items()}
    return job


def _skip(case: Case, host: PluginHost, reason: str, started: str, t0: float, launcher_name: str) -> CaseResult:
    skipped = failed_result(
        case, "skipped", reason, started_at=started, duration_s=time.perf_counter() - t0, launcher=launcher_name
    )
    skipped.provenance.append(host.get("targets", case.target.name).provenance())
    return skipped


def _failed_here(
    case: Case, exc: BenchError, launcher_name: str, started: str | None = None, duration_s: float = 0.0
) -> CaseResult:
    return failed_result(
        case, "error", str(exc), started_at=started or utc_now(), duration_s=duration_s, launcher=launcher_name
    )
