"""Runs that are stopped, killed, starved of disk or started twice lose nothing and leave nothing behind.

The signal and orphan tests start a real ``benchharness run`` in a session of
its own, with ``TMPDIR`` pointing into the test's folder, and look for its
worker processes (``ps``, through psutil) and temporary folders afterwards.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from benchharness.cli import main
from benchharness.results import load_results

PLUGIN_DIR = Path(__file__).parent / "plugins"

MEASURE = "measure: {min_samples: 20, max_time: 0.1, timeout: 120, warmup: {max_time: 0.1}}\n"
#: For the tests of results files and resume, whose cases need no worker process of their own.
INLINE = ("--launcher", "inline")


def suite_text(*backends: str) -> str:
    listed = "".join(f"  - {b}\n" for b in backends)
    return f"name: t\nmodels: [{{source: dummy, name: m}}]\nbackends:\n{listed}" + MEASURE


def env_for(tmpdir: Path, **extra: str) -> dict[str, str]:
    tmpdir.mkdir(exist_ok=True)
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]),
        TMPDIR=str(tmpdir),
        **extra,
    )


def start_run(suite: Path, out: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    """``benchharness run`` in a session of its own, as a CI job or a terminal would start it."""
    cmd = [sys.executable, "-m", "benchharness", "run", str(suite), "-p", "bh_testplugin", "-o", str(out), *extra]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def workers_under(tmpdir: Path) -> list[psutil.Process]:
    """Live worker processes whose files are in ``tmpdir`` (so: started by this test's run)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if "benchharness.worker" in cmdline and any(str(tmpdir) in part for part in cmdline):
            found.append(proc)
    return found


def ended(proc: psutil.Process) -> bool:
    """Whether ``proc`` has exited (gone, or a zombie its parent has not reaped)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def saved_cases(out: Path) -> Path | None:
    """The results file once it holds at least one case."""
    for path in out.glob("*.json") if out.exists() else []:
        with contextlib.suppress(ValueError, OSError):
            if json.loads(path.read_text())["cases"]:
                return path
    return None


@contextlib.contextmanager
def no_orphans_left(tmpdir: Path) -> Iterator[None]:
    """Kill whatever worker a failing test left, so one failure does not leave processes behind."""
    try:
        yield
    finally:
        for proc in workers_under(tmpdir):
            with contextlib.suppress(psutil.Error):
                proc.kill()


def running_hang_case(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, Path, Path]:
    """A run whose first case finished and whose second case's worker hangs: (process, suite, out, tmpdir)."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(suite_text("{name: scripted, label: fine}", "{name: scripted, label: hang, mode: hang}"))
    out, tmpdir = tmp_path / "out", tmp_path / "tmp"
    proc = start_run(suite, out, env_for(tmpdir))
    wait_for("the first case to be saved", lambda: saved_cases(out))
    wait_for("the hanging case's worker", lambda: workers_under(tmpdir))
    return proc, suite, out, tmpdir


def test_sigterm_stops_the_run_like_ctrl_c(tmp_path):
    proc, suite, out, tmpdir = running_hang_case(tmp_path)
    with no_orphans_left(tmpdir):
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 143, stderr
        assert "Traceback" not in stderr
        path = saved_cases(out)
        assert f"stopped by SIGTERM: 1 of 2 cases saved in {path}; " in stderr
        assert f"continue with: benchharness run {suite} --resume {path}" in stderr
        assert workers_under(tmpdir) == []  # the worker's group was killed before the runner exited
        assert list(tmpdir.iterdir()) == []  # no benchharness-* folder left
        results = load_results(path)
        assert [c.case_id.split("/")[2] for c in results.cases] == ["fine"]
        assert not results.complete


def test_a_worker_whose_runner_is_killed_exits_by_itself(tmp_path):
    proc, _, out, tmpdir = running_hang_case(tmp_path)
    with no_orphans_left(tmpdir):
        (worker,) = workers_under(tmpdir)
        proc.kill()  # SIGKILL to the runner alone: the worker is in a session of its own and gets no signal
        proc.communicate(timeout=30)
        wait_for("the orphaned worker to exit", lambda: not workers_under(tmpdir), timeout=15)
        # A process tearing itself down has lost its command line but may still be in disk sleep for a moment.
        wait_for("the orphaned worker to be gone", lambda: ended(worker), timeout=15)
        wait_for("the worker's temporary folder to go", lambda: not list(tmpdir.iterdir()), timeout=5)
        assert [c.case_id.split("/")[2] for c in load_results(saved_cases(out)).cases] == ["fine"]


def test_two_runs_started_in_the_same_second_write_two_files(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(suite_text("{name: scripted}"))
    out = tmp_path / "out"
    env = env_for(tmp_path / "tmp")
    runs = [start_run(suite, out, env, "-q", *INLINE) for _ in range(2)]
    errs = [run.communicate(timeout=120)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errs
    paths = sorted(line.split("results: ", 1)[1] for err in errs for line in err.splitlines() if "results: " in line)
    assert len(set(paths)) == 2, errs
    assert sorted(str(p) for p in out.glob("*.json")) == paths
    for path in paths:
        assert [c.status for c in load_results(path).cases] == ["ok"]


def test_a_results_file_name_is_claimed_by_creating_it(tmp_path):
    """Within one second every call gets a new file, which holds the document from the moment it exists."""
    from benchharness.runner import create_results_file, safe_file_stem

    results = load_results(Path(__file__).parent / "data" / "results-v2-models.json")
    (tmp_path / "out").mkdir()
    paths = [create_results_file(tmp_path / "out", "../../escape/me", results) for _ in range(3)]
    assert len(set(paths)) == 3
    for path in paths:
        assert path.parent == tmp_path / "out"  # a suite's name never puts its file elsewhere
        assert path.name.startswith("_.._escape_me-")
        assert load_results(path).run_id == results.run_id
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)  # no staging file
    assert safe_file_stem("mobile v2/ß") == "mobile_v2__"


def test_resume_runs_failed_cases_again(tmp_path, monkeypatch, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        suite_text("{name: scripted, label: fine}", "{name: scripted, label: flaky, fail_if_env: BH_FAIL}")
    )
    out = tmp_path / "out"
    monkeypatch.setenv("BH_FAIL", "1")
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", *INLINE]) == 1
    (path,) = out.glob("*.json")
    first = load_results(path)
    assert [c.status for c in first.cases] == ["ok", "error"]
    monkeypatch.delenv("BH_FAIL")
    capsys.readouterr()
    assert main(["run", str(suite), "-p", "bh_testplugin", "--resume", str(path), "-q", *INLINE]) == 0
    final = load_results(path)
    assert final.complete
    assert [c.case_id for c in final.cases] == [c.case_id for c in first.cases]  # the retry took the failure's place
    assert final.cases[0] == first.cases[0]  # the case that was ok is not run again
    retried = final.cases[1]
    assert retried.status == "ok"
    assert retried.warnings[-1] == (
        "run again by --resume; the earlier attempt ended error: RuntimeError: failing because BH_FAIL is set"
    )


def test_a_full_disk_stops_the_run_with_the_resume_line(tmp_path, monkeypatch, capsys):
    """The second write of the results file fails with ENOSPC.

    The cases run inline, in this process, and fsync no file of their own, so the count below is of results-file
    writes only.
    """
    suite = tmp_path / "suite.yaml"
    suite.write_text(suite_text("{name: scripted, label: a}", "{name: scripted, label: b}"))
    out = tmp_path / "out"
    real_fsync, calls = os.fsync, []

    def fsync(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # files, not the folder a rename is made durable in
            calls.append(fd)
            if len(calls) == 3:  # 1: the new file, 2: after case a, 3: after case b
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", *INLINE]) == 2
    (path,) = out.glob("*.json")
    err = capsys.readouterr().err.strip()
    assert err == (
        f"benchharness: error: cannot write results to {path}: No space left on device; the run stopped with 1 of 2 "
        f"cases saved in it; once it can be written, continue with: benchharness run {suite} --resume {path}"
    )
    assert sorted(p.name for p in out.iterdir()) == [path.name]  # no temporary file left
    assert [c.case_id.split("/")[2] for c in load_results(path).cases] == ["a"]
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert main(["run", str(suite), "-p", "bh_testplugin", "--resume", str(path), "-q", *INLINE]) == 0
    assert [c.case_id.split("/")[2] for c in load_results(path).cases] == ["a", "b"]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root; skipped elsewhere, where the ENOSPC test above still runs)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk(tmp_path, tiny_disk):
    suite = tmp_path / "suite.yaml"
    suite.write_text(suite_text(*(f"{{name: scripted, label: b{i}, sleep_us: 100}}" for i in range(3))))
    out = tiny_disk / "out"
    env = env_for(tmp_path / "tmp")
    proc = start_run(suite, out, env, "-q")
    path = wait_for("the first case to be saved", lambda: saved_cases(out))
    filler = tiny_disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as fh:
        while True:
            fh.write(b"\0" * 4096)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert f"cannot write results to {path}: No space left on device; the run stopped with " in stderr
    assert f"continue with: benchharness run {suite} --resume {path}" in stderr
    assert sorted(p.name for p in out.iterdir()) == [path.name]  # no .tmp file
    kept = load_results(path).cases
    assert 1 <= len(kept) < 3
    filler.unlink()
    resume = [sys.executable, "-m", "benchharness", "run", str(suite), "-p", "bh_testplugin", "--resume", str(path)]
    resumed = subprocess.run(
        [*resume, "-q", *INLINE],  # which cases the resumed run adds is checked, not their workers
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [c.case_id.split("/")[2] for c in load_results(path).cases] == ["b0", "b1", "b2"]


def test_an_unwritable_cache_folder_stops_before_the_first_case(tmp_path, monkeypatch, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text(suite_text("{name: scripted}"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("BENCHHARNESS_CACHE", str(blocker / "cache"))
    out = tmp_path / "out"
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"benchharness: error: the conversion cache folder {blocker / 'cache'} is not writable: Not a directory; "
        "set BENCHHARNESS_CACHE to a folder you can write"
    )
    assert not out.exists()  # refused before any results file was made


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_a_read_only_cache_folder_is_refused(tmp_path, monkeypatch, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text(suite_text("{name: scripted}"))
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o500)
    monkeypatch.setenv("BENCHHARNESS_CACHE", str(cache))
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(tmp_path / "out"), "-q"]) == 2
    assert "is not writable: Permission denied" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["nan", "0", "-1", "inf", "soon"])
def test_a_timeout_must_be_a_finite_positive_number(tmp_path, capsys, value):
    suite = tmp_path / "suite.yaml"
    suite.write_text(suite_text("{name: scripted}"))
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(suite), "-p", "bh_testplugin", "-o", str(tmp_path / "out"), "--timeout", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --timeout: expected a" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_inputs_larger_than_memory_are_refused_before_the_worker_starts(tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text(suite_text("{name: scripted}") + "batch_sizes: [1000000000000]\n")
    out = tmp_path / "out"
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q"]) == 1
    (case,) = load_results(next(out.glob("*.json"))).cases
    available = psutil.virtual_memory().available
    assert case.status == "error"
    assert case.error.startswith(
        "the inputs at batch 1000000000000 need 14.6 TiB (largest: 'x' float32 [1000000000000, 4]), more than the "
    )
    assert case.error.endswith(" of memory available")
    assert available < 16 * 10**12
    assert case.runtime.stage is None  # no worker ran: it would have recorded its first stage


def test_random_inputs_are_drawn_in_their_own_dtype():
    """Peak memory of generating a float32 input is the input itself, not a float64 copy as well."""
    from benchharness.inputs import make_inputs
    from benchharness.signature import InputSpec

    n = 1 << 22
    make_inputs([InputSpec(name="x", shape=[1])], seed=0)  # imports numpy's generator code before tracing
    for dtype, itemsize in (("float32", 4), ("float16", 2), ("int8", 1), ("bool", 1)):
        spec = InputSpec(name="x", shape=[n], dtype=dtype, range=(-1, 1) if dtype == "int8" else None)
        tracemalloc.start()
        try:
            array = make_inputs([spec], seed=0)["x"]
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert array.dtype == dtype and array.nbytes == n * itemsize
        assert peak < 1.3 * n * itemsize, (dtype, peak)


def test_a_closed_pipe_ends_show_quietly(tmp_path):
    """``benchharness show FILE | head -1``: exit 0, nothing on stderr, whatever the size of the output."""
    data = json.loads((Path(__file__).parent / "data" / "results-v2-models.json").read_text())
    # 600 cases: the table prints ~109 KB and the json ~207 KB, beyond what a pipe (64 KiB) and the reader's one
    # buffered read (8 KiB) can take before the reader closes, so the writer meets the closed pipe.  (1,200 cases
    # printed twice that, and loading them took 5 s a format.)
    data["cases"] = data["cases"] * 150
    big = tmp_path / "big.json"
    big.write_text(json.dumps(data))
    for fmt in ("table", "json"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchharness", "show", str(big), "--format", fmt],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        proc.stdout.readline()
        proc.stdout.close()  # as head does after its first line
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(timeout=60) == 0, stderr
        assert stderr == ""


def test_results_files_honour_the_umask(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(suite_text("{name: scripted}"))
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", *INLINE]) == 0
    finally:
        os.umask(old)
    (path,) = out.glob("*.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_show_says_a_run_is_incomplete(tmp_path, capsys):
    data = json.loads((Path(__file__).parent / "data" / "results-v2-models.json").read_text())
    data["complete"] = False
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(data))
    assert main(["show", str(path)]) == 0
    captured = capsys.readouterr()
    assert "model" in captured.out  # the table of what finished is still shown
    assert captured.err == (
        f"incomplete run: it stopped with {len(data['cases'])} cases saved; "
        f"continue with: benchharness run {data['suite']['path']} --resume {path}\n"
    )
    data["complete"] = True
    path.write_text(json.dumps(data))
    assert main(["show", str(path)]) == 0
    assert capsys.readouterr().err == ""
