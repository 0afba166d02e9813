"""What runs on a Ray node for one case: fetch the case's files once, then the ``process`` launcher, as locally.

Everything here runs inside a Ray task on the node that took the case.  The
task holds the node's slot for its whole life, so the worker process it
starts is the only timed case on that node.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchharness_launchers import ProcessLauncher

from benchharness.api import BenchError, CaseResult, Job, WorkerPayload, Workspace
from benchharness.worker import failed_result, utc_now

#: Variables Ray sets in its worker processes that a case's worker must not inherit: it would run with
#: ``OMP_NUM_THREADS=1`` (Ray's default for a task) and a Ray debugger hook, unlike a local run.
RAY_VARIABLES = ("OMP_NUM_THREADS", "PYTHONBREAKPOINT")


def precise_now() -> str:
    """The current UTC time, ISO 8601, to the microsecond: when a node's slot was taken and given back."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def worker_environment(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` without what Ray put there for its own worker (``RAY_*``, ``OMP_NUM_THREADS``, its breakpoint hook).

    The case's target sets its own thread variables on top, as it does locally.
    """
    return {k: v for k, v in environ.items() if not k.startswith("RAY_") and k not in RAY_VARIABLES}


class NodeProcessLauncher(ProcessLauncher):
    """The ``process`` launcher as a Ray node runs it: recorded as ``ray``, without Ray's own variables."""

    name = "ray"

    def base_environment(self) -> dict[str, str]:
        """The node's environment less what Ray set for its worker (see :func:`worker_environment`)."""
        return worker_environment(dict(os.environ))


@functools.lru_cache(maxsize=8)
def _host(extra: tuple[str, ...], blocked: tuple[str, ...], autoload: bool) -> Any:
    from benchharness.plugins import PluginHost

    return PluginHost(list(extra), blocked=list(blocked), autoload=autoload)


@functools.lru_cache(maxsize=8)
def node_machine(extra: tuple[str, ...], blocked: tuple[str, ...], autoload: bool) -> dict[str, Any]:
    """This node's machine facts with the versions of the frameworks these plugins use, as JSON; once per process.

    No git commit: the node runs no checkout of the suite.
    """
    from benchharness.machine import machine_info

    frameworks = _host(extra, blocked, autoload).framework_versions()
    return machine_info(frameworks, git=False).model_dump(mode="json")


def fetch_files(files: dict[str, tuple[str, Any]], cache_dir: Path) -> tuple[dict[str, Path], dict[str, bool]]:
    """Each file the case reads, from this node's cache, fetched from the object store only when missing there.

    ``files`` maps a path relative to the suite's folder to ``(sha256, ObjectRef)``.
    Returns the cached path of each, and for each sha256 whether it was fetched
    now (``True``) or found in the cache.  The cache is
    ``<cache>/ray-files/<sha256>``, written once under a lock and verified on
    every use, as conversions are.
    """
    import ray

    from benchharness.models import build_cached

    paths, fetched = {}, {}
    for rel, (sha, ref) in files.items():
        out = cache_dir / "ray-files" / sha

        def build(tmp: Path, ref: Any = ref) -> None:
            tmp.write_bytes(ray.get(ref))

        digest, hit, _ = build_cached(out, build, {"source": "ray object store"}, suffix="", producer="the fetch")
        if digest != sha:
            out.unlink(missing_ok=True)
            raise BenchError(f"{rel}: the copy fetched from the driver has sha256 {digest[:12]}, expected {sha[:12]}")
        paths[rel] = out
        fetched[sha] = fetched.get(sha, False) or not hit
    return paths, fetched


def mirror(paths: dict[str, Path], folder: Path) -> Path:
    """The suite's folder as this case sees it on the node: each file linked at its relative path under ``folder``.

    A path that climbs out of the suite's folder (``../models/m.onnx``) is
    kept inside ``folder`` by nesting the returned base folder as deep as it climbs.
    """
    depth = max((Path(os.path.normpath(rel)).parts.count("..") for rel in paths), default=0)
    base = folder.joinpath(*["up"] * depth) if depth else folder
    base.mkdir(parents=True, exist_ok=True)
    for rel, cached in paths.items():
        link = Path(os.path.normpath(base / rel))
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(cached, link)  # a hard link: a library that resolves links still sees the suite's file name
        except OSError:
            link.symlink_to(cached)
    return base


def run_on_node(
    payload_json: str, files: dict[str, tuple[str, Any]], timeout: float, python_path: list[str], process: int
) -> dict[str, Any]:
    """The Ray task of one case: returns ``{"result": CaseResult JSON, "node": facts}``; never raises for the case.

    The target is asked here whether this node has it and for its
    environment (:func:`benchharness.runner.machine_job`), then the case runs
    in a fresh worker process with the timeout and crash containment of the
    ``process`` launcher.
    """
    import ray

    from benchharness.models import default_cache_dir
    from benchharness.runner import machine_job

    slot_start = precise_now()
    t0 = time.perf_counter()
    prepared_s = 0.0
    python_path = [p for p in python_path if os.path.isdir(p)]  # the driver's folders that this node has too
    for folder in reversed(python_path):  # so a -p module found there loads here, as in the case's worker
        if folder not in sys.path:
            sys.path.insert(0, folder)
    payload = WorkerPayload.model_validate_json(payload_json)
    selection = (tuple(payload.plugins.extra), tuple(payload.plugins.blocked), payload.plugins.autoload)
    host = _host(*selection)
    cache_dir = default_cache_dir()
    fetched: dict[str, bool] = {}
    work = Path(tempfile.mkdtemp(prefix="case-", dir=_work_root(cache_dir)))
    try:
        paths, fetched = fetch_files(files, cache_dir)
        workspace = Workspace(
            base_dir=mirror(paths, work / "suite"), cache_dir=cache_dir, python_path=python_path
        )  # fmt: skip
        job = Job(payload=payload, workspace=workspace, environment={}, timeout=timeout, process=process)
        done = machine_job(job, host, "ray")
        if isinstance(done, CaseResult):
            result = done
        else:
            launcher = NodeProcessLauncher(NodeProcessLauncher.Options())
            prepared_s = time.perf_counter() - t0
            result = launcher.launch(done)
    except BenchError as exc:
        result = failed_result(payload.case, "error", str(exc), started_at=utc_now(), duration_s=0.0, launcher="ray")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    niceness = os.nice(0) if hasattr(os, "nice") else 0
    if niceness:  # the worker inherited it: every other process on the node came first
        result.warnings.append(f"the case's worker ran at niceness {niceness} (Ray's worker_niceness), not 0")
    node = {
        "hostname": socket.gethostname(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "machine": node_machine(*selection),
        "details": {
            "ray": ray.__version__,
            "slot_start": slot_start,
            "prepare_s": round(prepared_s, 6),
            "slot_end": precise_now(),
            "fetched": sorted(sha for sha, now in fetched.items() if now),
            "cached": sorted(sha for sha, now in fetched.items() if not now),
        },
    }
    return {"result": result.model_dump_json(), "node": node}


def _work_root(cache_dir: Path) -> Path:
    root = cache_dir / "ray-work"  # beside ray-files: a hard link needs one file system
    root.mkdir(parents=True, exist_ok=True)
    return root
