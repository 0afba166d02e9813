"""Built-in launchers: each case in a fresh process (``process``, the default), or in this one (``inline``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from benchharness.api import CaseResult, CaseRuntime, Job, Launcher
from benchharness.hookspecs import hookimpl
from benchharness.inputs import check_input_memory
from benchharness.worker import failed_result, memory_text, oom_killed, release_memory_limit, run_case, utc_now

#: How much of a failed worker's output is kept in its result.
LOG_TAIL_CHARS = 4000


class ProcessLauncher(Launcher):
    """A fresh interpreter per case, in a process group of its own, killed with the group after the timeout.

    The worker runs ``python -m benchharness.worker``; its output (and, after a
    segfault, faulthandler's Python stack) is kept for a failed case, and the
    stage it reached is read back from a checkpoint file.
    """

    name = "process"
    description = "each case in a fresh Python process (isolated; killed after the timeout)"

    def launch(self, job: Job) -> CaseResult:
        """Start the worker, wait for it, and turn whatever happened into a result.

        A case whose inputs alone exceed the memory available is refused
        (``BenchError``, recorded as the case's error) before a worker starts.
        A worker the kernel's OOM killer ended in its target's cgroup, or one
        that aborted on ``std::bad_alloc``, is ``oom``; the cgroup is removed
        once the worker has ended.
        """
        check_input_memory(job.payload.case)
        result = self._launch(job)
        memory = result.runtime.target.memory if result.runtime.target else None
        release_memory_limit(memory)
        if result.status == "timeout" and memory is not None and memory.method == "RLIMIT_AS":
            # Measured: under a 1 GiB RLIMIT_AS, OpenBLAS retried a failed allocation until the timeout.
            result.error = (
                f"{result.error}; it ran under {memory_text(memory)}, and a library that retries a failed "
                "allocation (OpenBLAS does) hangs instead of failing: memory_method 'cgroup' caps real use"
            )
        return result

    def base_environment(self) -> dict[str, str]:
        """The environment the worker starts from, before the target's variables: this process's."""
        return dict(os.environ)

    def _launch(self, job: Job) -> CaseResult:
        env = self.base_environment()
        env.update(job.environment)
        env["PYTHONUNBUFFERED"] = "1"
        path = [*job.workspace.python_path, *filter(None, [os.environ.get("PYTHONPATH")])]
        if path:
            env["PYTHONPATH"] = os.pathsep.join(path)
        started = utc_now()
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="benchharness-") as tmp:
            payload_file, result_file = Path(tmp, "case.json"), Path(tmp, "result.json")
            log_file, checkpoint = Path(tmp, "log"), Path(tmp, "runtime.json")
            payload_file.write_text(job.payload.model_dump_json(), encoding="utf-8")
            command = [
                sys.executable,
                "-m",
                "benchharness.worker",
                str(payload_file),
                str(result_file),
                "--base-dir",
                str(job.workspace.base_dir),
                "--cache-dir",
                str(job.workspace.cache_dir),
                "--checkpoint",
                str(checkpoint),
                "--launcher",
                self.name,
            ]
            # The worker watches the read end of this pipe: when the runner dies, even by SIGKILL, the kernel
            # closes the write end and the worker removes this folder and kills its own group.
            watch_read, watch_write = os.pipe()
            command += ["--parent-pipe", str(watch_read), "--owned-dir", tmp]
            try:
                with log_file.open("wb") as log:
                    # A session of its own: Ctrl-C reaches only the runner, which then kills the worker's whole group.
                    try:
                        proc = subprocess.Popen(
                            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, pass_fds=(watch_read,),
                        )  # fmt: skip
                    finally:
                        os.close(watch_read)
                    try:
                        returncode = proc.wait(timeout=job.timeout)
                    except subprocess.TimeoutExpired:
                        _kill_group(proc)
                        message = f"no result after {job.timeout:g} s; the worker was killed"
                        return self._failed(job, "timeout", message, started, t0, log_file, checkpoint)
                    except BaseException:
                        _kill_group(proc)
                        raise
                    _kill_group(proc)  # whatever the worker left running goes with it
            finally:
                os.close(watch_write)
            if returncode == 0 and result_file.exists():
                try:
                    return CaseResult.model_validate_json(result_file.read_text(encoding="utf-8"))
                except ValidationError as exc:
                    message = f"the worker's result is invalid: {str(exc).splitlines()[0]}"
                    return self._failed(job, "error", message, started, t0, log_file, checkpoint)
            if returncode < 0:
                name = _signal_name(-returncode)
                failed = self._failed(
                    job, "crashed", f"worker killed by signal {name}", started, t0, log_file, checkpoint
                )
                failed.runtime.signal = name
            else:
                message = f"worker exited with code {returncode} and no result"
                failed = self._failed(job, "crashed", message, started, t0, log_file, checkpoint)
            return _oom_or_crash(failed, returncode)

    def _failed(
        self, job: Job, status: str, message: str, started: str, t0: float, log_file: Path, checkpoint: Path
    ) -> CaseResult:
        tail = log_file.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:] if log_file.exists() else ""
        runtime = CaseRuntime()
        if checkpoint.exists():
            with contextlib.suppress(ValidationError, OSError):
                runtime = CaseRuntime.model_validate_json(checkpoint.read_text(encoding="utf-8"))
        return failed_result(
            job.payload.case,
            status,  # type: ignore[arg-type]
            message,
            started_at=started,
            duration_s=time.perf_counter() - t0,
            log_tail=tail,
            runtime=runtime,
            launcher=self.name,
        )


def _oom_or_crash(failed: CaseResult, returncode: int) -> CaseResult:
    """A crashed worker's result, made ``oom`` when memory ran out: the kernel's OOM killer, or ``std::bad_alloc``.

    The OOM killer sends SIGKILL; it is told from any other SIGKILL by the
    ``oom_kill`` count of the cgroup the target made, which must have grown.
    An uncaught ``std::bad_alloc`` aborts the worker, and the C++ runtime says
    so in its output.
    """
    memory = failed.runtime.target.memory if failed.runtime.target else None
    cap = memory_text(memory)
    if returncode == -signal.SIGKILL and oom_killed(memory):
        failed.status = "oom"
        failed.error = f"the kernel's OOM killer ended the worker, which went over {cap}"
    elif "std::bad_alloc" in (failed.traceback or ""):
        failed.status = "oom"
        under = f" under {cap}" if cap else ""
        failed.error = f"out of memory{under}: the worker ended on std::bad_alloc ({failed.error})"
    return failed


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        if proc.poll() is None:
            proc.kill()
    proc.wait()


class InlineLauncher(Launcher):
    """Each case in the CLI process: no isolation and no timeout, for tests and for debugging with pdb.

    The target's environment variables are set for the case and restored
    afterwards, and so is the CPU affinity a target may pin; a framework
    already imported by an earlier case keeps the thread settings it read
    then.
    """

    name = "inline"
    description = "each case in this process (no isolation, no timeout): for tests and debugging"

    def launch(self, job: Job) -> CaseResult:
        """Run the case here, with the run's own plugin host."""
        with _environment(job.environment), _affinity_restored():
            return run_case(job.payload, job.workspace, host=job.host, launcher=self.name)


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _affinity_restored() -> Iterator[None]:
    getter = getattr(os, "sched_getaffinity", None)
    saved = getter(0) if getter else None
    try:
        yield
    finally:
        if saved is not None:
            os.sched_setaffinity(0, saved)


@hookimpl
def benchharness_register_launchers(register):  # type: ignore[no-untyped-def]
    """Register the process and inline launchers."""
    register(ProcessLauncher)
    register(InlineLauncher)
