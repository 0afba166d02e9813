"""The conversion cache is never trusted blindly: every read is verified, every write atomic and locked.

The end-to-end tests run a zoo model on ONNX Runtime (torch→onnx conversion)
in this process; the others drive ``convert_cached`` with the framework-free
``slow-copy`` converter of ``tests/plugins/bh_slowconvert.py``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchharness.api import ModelArtifact, file_hash
from benchharness.errors import BenchError
from benchharness.models import convert_cached
from benchharness.results import CaseResult
from benchharness.testing import make_host, run_case

PLUGIN_DIR = Path(__file__).parent / "plugins"
TINY = {"source": "zoo", "arch": "mobilenet_v2", "width": 0.25, "input_size": 32, "num_classes": 10}
#: The same network twice as wide: a valid model with the same inputs and outputs, so it runs in TINY's place.
OTHER = dict(TINY, width=0.5)
SHORT = {"min_samples": 3, "max_time": 0.05, "warmup": {"max_time": 0.05}}


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process's umask after a test that sets it."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield
    os.umask(saved)


# --------------------------------------------------------------------------- a real model, end to end


def zoo_run(cache: Path, model: dict = TINY) -> CaseResult:
    """One quick case of ``model`` on ONNX Runtime, converted through ``cache``."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    return run_case(
        model=model, backend={"name": "onnxruntime", "threads": 1}, metrics=["latency"], measure=SHORT, cache_dir=cache
    )


def cached_onnx(cache: Path) -> Path:
    (path,) = (cache / "converted").glob("*.onnx")
    return path


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Build and export the zoo model on one torch thread, for the rest of this module, restored at its end.

    The conversions only have to agree with each other; on a busy 2-core machine OpenMP spin-waits made the
    threaded build (its calibration pass) and export several times slower.
    """
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> tuple[Path, CaseResult, bytes]:
    """A cache holding TINY's conversion, the run that filled it, and the bytes of OTHER's conversion."""
    root = tmp_path_factory.mktemp("seeded")
    first = zoo_run(root / "cache")
    zoo_run(root / "other", OTHER)
    return root / "cache", first, cached_onnx(root / "other").read_bytes()


@pytest.fixture
def cache(seeded: tuple[Path, CaseResult, bytes], tmp_path: Path) -> Path:
    """A private copy of the seeded cache."""
    return Path(shutil.copytree(seeded[0], tmp_path / "cache"))


def test_a_cached_model_replaced_by_another_valid_model_is_rebuilt_not_measured(seeded, cache):
    _, first, other = seeded
    assert first.runtime.model.info["conversion_cache_hit"] is False
    assert "conversion_cache_rebuilt" not in first.runtime.model.info
    cached_onnx(cache).write_bytes(other)  # what the users did: another valid model, same inputs and outputs

    again = zoo_run(cache)
    info = again.runtime.model.info
    assert info["conversion_cache_hit"] is False
    assert "differs from the one recorded when it was written" in info["conversion_cache_rebuilt"]
    assert again.runtime.model.content_hash == first.runtime.model.content_hash
    assert file_hash(cached_onnx(cache)) == first.runtime.model.content_hash
    (warning,) = [w for w in again.warnings if w.startswith("conversion cache: ")]  # in the results file too
    assert warning.startswith(f"conversion cache: {cached_onnx(cache)} (mobilenet_v2-w0.25, torch-onnx): ")
    assert re.search(r" differs from the one recorded when it was written \(\d+ bytes\); rebuilt it$", warning)
    # The rebuilt file is trusted again: the next run is a plain, verified hit.
    third = zoo_run(cache).runtime.model
    assert third.info["conversion_cache_hit"] is True and "conversion_cache_rebuilt" not in third.info
    assert third.content_hash == first.runtime.model.content_hash


def test_b_a_truncated_cached_model_is_rebuilt_and_the_run_succeeds(seeded, cache):
    _, first, _ = seeded
    path = cached_onnx(cache)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    again = zoo_run(cache)  # raises, naming the failure, if the case did not end ok
    info = again.runtime.model.info
    assert info["conversion_cache_hit"] is False
    assert info["conversion_cache_rebuilt"] == (
        f"the cached file's size ({len(data) // 2} bytes) differs from the one recorded when it was written "
        f"({len(data)} bytes)"
    )
    assert again.runtime.model.content_hash == first.runtime.model.content_hash


def test_c_a_cached_model_without_its_record_is_rebuilt(seeded, cache):
    _, first, _ = seeded
    path = cached_onnx(cache)
    path.with_name(path.name + ".json").unlink()

    info = zoo_run(cache).runtime.model.info
    assert info["conversion_cache_hit"] is False
    assert info["conversion_cache_rebuilt"].startswith(f"the cached file has no record ({path.name}.json)")
    record = json.loads(path.with_name(path.name + ".json").read_text())
    assert record["sha256"] == first.runtime.model.content_hash == file_hash(path)
    assert record["size"] == path.stat().st_size
    assert record["converter"] == "torch-onnx"


# --------------------------------------------------------------------------- convert_cached directly


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """``convert(content_hash, warn=None)``: slow-copy a ``slow`` model into ``tmp_path/cache``; log in ``.log``."""
    log = tmp_path / "conversions.log"
    monkeypatch.setenv("BH_SLOW_LOG", str(log))
    provided = make_host("bh_slowconvert").get("converters", "slow-copy")

    def convert(content_hash: str = "m1", warn=None) -> ModelArtifact:  # type: ignore[no-untyped-def]
        artifact = ModelArtifact(format="slow", content_hash=content_hash)
        return convert_cached(provided, artifact, tmp_path / "cache", "m", **({"warn": warn} if warn else {}))

    convert.log = log  # type: ignore[attr-defined]
    return convert


def conversions(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_rebuild_warns_in_one_line_naming_the_file_and_the_reason(slow):
    first = slow()
    data = first.path.read_bytes()
    first.path.write_bytes(data[:-2] + b"X\n")  # same size, other bytes: only the hash can tell

    lines: list[str] = []
    again = slow(warn=lines.append)
    assert lines == [
        f"conversion cache: {first.path} (m, slow-copy): the cached file's sha256 differs from the one recorded "
        "when it was written; rebuilt it"
    ]
    assert again.info["conversion_cache_rebuilt"] == (
        "the cached file's sha256 differs from the one recorded when it was written"
    )
    assert again.content_hash == first.content_hash == file_hash(first.path)
    assert conversions(slow.log) == 2
    quiet: list[str] = []
    assert slow(warn=quiet.append).info["conversion_cache_hit"] is True and quiet == []
    assert conversions(slow.log) == 2


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("record-garbage", "the cached file's record {record} is unreadable: JSONDecodeError"),
        ("record-fields", "the cached file's record {record} lacks its sha256 or size"),
        ("artefact-gone", "the cached file is missing but its record {record} exists"),
    ],
    ids=["record-garbage", "record-fields", "artefact-gone"],
)
def test_a_damaged_record_or_a_lost_file_is_rebuilt(slow, damage, reason):
    first = slow()
    record = first.path.with_name(first.path.name + ".json")
    if damage == "record-garbage":
        record.write_text('{"sha256": "abc", "si')
    elif damage == "record-fields":
        record.write_text('{"sha256": "abc"}')
    else:
        first.path.unlink()
    again = slow()
    assert again.info["conversion_cache_hit"] is False
    assert again.info["conversion_cache_rebuilt"] == reason.format(record=record.name)
    assert json.loads(record.read_text())["sha256"] == again.content_hash == file_hash(again.path)
    assert conversions(slow.log) == 2


def test_files_of_an_interrupted_conversion_are_never_read_and_are_cleared(slow):
    first = slow()
    key = first.path.name.split(".")[0]
    folder = first.path.parent
    # What a conversion killed mid-write leaves: temporary files under the key's prefix.
    (folder / f".{key}.k1ll3d.slow2").write_text("half a mod")
    (folder / f".{key}.k1ll3d.json.tmp").write_text("{")
    first.path.unlink()
    first.path.with_name(first.path.name + ".json").unlink(missing_ok=True)

    again = slow()
    assert again.path == first.path and again.content_hash == first.content_hash
    assert sorted(p.name for p in folder.iterdir()) == [f"{key}.slow2", f"{key}.slow2.json", f"{key}.slow2.lock"]


def test_a_converter_that_writes_nothing_fails_and_caches_nothing(slow, monkeypatch):
    monkeypatch.setenv("BH_SLOW_EMPTY", "1")
    with pytest.raises(BenchError) as err:
        slow()
    assert str(err.value) == (
        "converting m (slow) to slow2 with slow-copy failed: BenchError: the converter wrote nothing to its output path"
    )
    folder = slow.log.parent / "cache" / "converted"
    assert [p.name for p in folder.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)], ids=oct)
def test_e_cached_files_honour_the_umask(slow, umask, mask, mode):
    os.umask(mask)
    out = slow().path
    for path in (out, out.with_name(out.name + ".json"), out.with_name(out.name + ".lock")):
        assert oct(path.stat().st_mode & 0o777) == oct(mode), path.name


def test_d_two_processes_converting_one_model_at_once_convert_it_once(tmp_path):
    """Both wait at a barrier, then convert the same model with a 1 s converter into one cache."""
    script = textwrap.dedent(
        """
        import json, os, sys, time
        from pathlib import Path
        from benchharness.api import ModelArtifact
        from benchharness.models import convert_cached
        from benchharness.testing import make_host

        provided = make_host("bh_slowconvert").get("converters", "slow-copy")
        barrier = Path(sys.argv[2])
        (barrier / str(os.getpid())).touch()
        deadline = time.monotonic() + 60
        while len(list(barrier.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        art = convert_cached(provided, ModelArtifact(format="slow", content_hash="same"), Path(sys.argv[1]), "m")
        print(json.dumps({"hit": art.info["conversion_cache_hit"], "hash": art.content_hash, "path": str(art.path)}))
        """
    )
    cache, barrier, log = tmp_path / "cache", tmp_path / "barrier", tmp_path / "conversions.log"
    barrier.mkdir()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]),
        BH_SLOW_LOG=str(log),
        BH_SLOW_SECONDS="1.0",
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(cache), str(barrier)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outputs]
    got = [json.loads(out) for out, _ in outputs]

    assert conversions(log) == 1  # the second waited for the lock, then found the first one's file
    assert sorted(g["hit"] for g in got) == [False, True]
    assert got[0]["hash"] == got[1]["hash"] and got[0]["path"] == got[1]["path"]
    path = Path(got[0]["path"])
    record = json.loads(path.with_name(path.name + ".json").read_text())
    assert record["sha256"] == file_hash(path) == got[0]["hash"] and record["size"] == path.stat().st_size
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, f"{path.name}.json", f"{path.name}.lock"]


# --------------------------------------------------------------------------- benchharness.fileio


def test_current_umask_reads_the_umask_without_changing_it(umask):
    from benchharness.fileio import current_umask, default_file_mode

    for mask in (0o027, 0o002):
        os.umask(mask)
        assert current_umask() == mask and default_file_mode() == 0o666 & ~mask
        assert os.umask(mask) == mask  # unchanged by the call


def test_atomic_path_leaves_the_target_untouched_and_no_temporary_file_on_failure(tmp_path, umask):
    from benchharness.fileio import atomic_path, atomic_write_text

    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]

    os.umask(0o022)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    assert target.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(("code", "locked"), [(errno.ENOLCK, False), (errno.EBADF, None)])
def test_exclusive_lock_goes_without_where_the_file_system_has_no_locks(tmp_path, monkeypatch, code, locked):
    fcntl = pytest.importorskip("fcntl")
    from benchharness.fileio import exclusive_lock

    def refuse(fd: int, operation: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "flock", refuse)
    if locked is None:  # any other failure is a real one
        with pytest.raises(OSError):
            with exclusive_lock(tmp_path / "x.lock"):
                pass
    else:
        with exclusive_lock(tmp_path / "x.lock") as got:
            assert got is locked
