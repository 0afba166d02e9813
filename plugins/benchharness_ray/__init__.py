"""The ``ray`` launcher: a suite's cases across a Ray cluster, one timed case per node at a time.

``benchharness run SUITE --launcher ray [--address auto|HOST:PORT]`` connects
to a running cluster (never starts one) and makes each case a Ray task.  The
task needs the node's slot (a custom resource, ``benchharness_slot: 1`` on
every node), whatever its target needs (``Target.node_needs``: ``GPU`` for
``cuda``) and the target's ``node_labels``; on the node it runs the case in a
fresh worker process exactly as the ``process`` launcher does locally.  See
docs/scale-out.md.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, ValidationError

from benchharness.api import BenchError, CaseResult, Job, Launcher, Node, Options
from benchharness.hookspecs import hookimpl
from benchharness.worker import failed_result, utc_now

INSTALL = "pip install 'benchharness[ray]'"
#: How much of a label a case asks for: a node advertises ``hw:h200: 1``, and its slot, not the label, limits
#: how many cases run there at once.
LABEL_AMOUNT = 0.001
#: Resources every Ray node has that are not labels a suite pins a target to.
NOT_LABELS = ("CPU", "memory", "object_store_memory")
#: Set for the node's task, and so for the case's worker it starts: Ray runs its workers at niceness 15 (any other
#: process on the node would come first) and narrows CUDA_VISIBLE_DEVICES to the GPUs it granted; a local run
#: does neither.
TASK_VARIABLES = {"RAY_worker_niceness": "0", "RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}
#: How often, in seconds, a wait for results looks again at which nodes are alive.
POLL_S = 1.0


class RayOptions(Options):
    """How the ``ray`` launcher reaches the cluster (``--address`` sets ``address``)."""

    address: str = Field(
        "auto",
        description="The cluster: 'auto' (the one 'ray start' runs on this machine, or RAY_ADDRESS), or HOST:PORT "
        "of its head node, or ray://HOST:10001 for Ray Client.",
    )
    slot: str = Field(
        "benchharness_slot",
        min_length=1,
        description="The custom resource each node offers once ('ray start --resources' '{\"benchharness_slot\": 1}'): "
        "a case holds it while it runs, so a node runs one timed case at a time.",
    )


def needs_text(needs: dict[str, float]) -> str:
    """``GPU, hw:h200``: what a case needs, as a user labels nodes (amounts shown only above one)."""
    return ", ".join(name if amount <= 1 else f"{name}: {amount:g}" for name, amount in sorted(needs.items()))


def node_labels(resources: dict[str, float], slot: str) -> dict[str, float]:
    """A node's labels: its resources less CPU, memory, its ``node:`` address and the slot."""
    return {
        name: amount
        for name, amount in sorted(resources.items())
        if name not in NOT_LABELS and name != slot and not name.startswith("node:")
    }


def satisfies(resources: dict[str, float], needs: dict[str, float]) -> bool:
    """Whether a node with these total resources can ever run a case with these needs."""
    return all(resources.get(name, 0.0) >= amount - 1e-9 for name, amount in needs.items())


def case_files(case: Any, base_dir: Path) -> dict[str, Path]:
    """The files under ``base_dir`` a case reads: every string in its model and dataset options naming one.

    A relative path to a file takes the files beside it with the same stem
    (an OpenVINO IR's ``.bin``, an ONNX model's external data); a folder takes
    every file in it.  Absolute paths are left alone: they must exist on each
    node (a shared file system).
    """
    found: dict[str, Path] = {}
    options: list[Any] = [case.model.options]
    if case.model.dataset is not None:
        options.append(case.model.dataset.options())
    for text in _strings(options):
        if os.path.isabs(text) or "\n" in text or len(text) > 4096:
            continue
        path = base_dir / text
        try:
            if path.is_file():
                for sibling in [path, *sorted(path.parent.glob(f"{_glob_escape(path.stem)}.*"))]:
                    if sibling.is_file():
                        found[os.path.relpath(sibling, base_dir)] = sibling
            elif path.is_dir() and text not in (".", ""):
                for inner in sorted(p for p in path.rglob("*") if p.is_file()):
                    found[os.path.relpath(inner, base_dir)] = inner
        except OSError:
            continue
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


class RayLauncher(Launcher):
    """Each case a Ray task on a node that has what its target needs, one timed case per node at a time.

    The connection is made when the launcher is created, before the results
    file is: without a cluster the run stops with how to start one.  Files a
    case reads go to the object store once per content (sha256), and each
    node caches them (``<cache>/ray-files``).  A case's later processes
    (``--repeat``) run on the node that ran its first one.  A node lost while
    running a case makes that case ``crashed`` (node lost); the other cases go
    on.  Ctrl-C cancels every task not yet back.
    """

    name = "ray"
    description = "each case a Ray task on a cluster node with the hardware it needs (one timed case per node)"
    requires = ("ray",)
    install_hint = INSTALL
    Options: ClassVar[type[BaseModel]] = RayOptions
    local = False
    concurrent = True

    def __init__(self, options: RayOptions) -> None:  # type: ignore[override]
        super().__init__(options)
        self.options: RayOptions = options
        self._connected_here = False
        self._running: dict[Any, tuple[Job, dict[str, float], float]] = {}  # task ref -> job, needs, submitted
        self._decided: list[tuple[Job, CaseResult]] = []  # results known at submission (no node can run it)
        self._objects: dict[str, Any] = {}  # sha256 -> ObjectRef of the file's bytes, put once per run
        self._hashes: dict[tuple[str, int, int], str] = {}  # (path, mtime_ns, size) -> sha256
        self._first_node: dict[str, str] = {}  # case id -> node that ran its first process
        self._task: Any = None  # the node's task as a Ray remote function, made once
        self._address = options.address  # the cluster's own address, once joined
        self._connect()

    # ------------------------------------------------------------------ the cluster

    def _connect(self) -> None:
        import ray

        if ray.is_initialized():  # a program that already joined a cluster (a notebook, a test) keeps its own
            self._address = ray.get_runtime_context().gcs_address
            return
        address = self.options.address
        probe = os.environ.get("RAY_ADDRESS", "auto") if address == "auto" else address
        if probe != "auto" and not _listening(probe):  # ray.init would wait minutes for a head that is not there
            raise self._no_cluster(address)
        try:
            ray.init(
                address=address, logging_level=logging.ERROR, log_to_driver=False, configure_logging=False,
                namespace="benchharness",
            )  # fmt: skip
        except ConnectionError:
            raise self._no_cluster(address) from None
        except (ValueError, RuntimeError) as exc:
            raise BenchError(f"cannot join the Ray cluster at {address}: {str(exc).strip().splitlines()[0]}") from None
        self._connected_here = True
        self._address = ray.get_runtime_context().gcs_address
        if not any(self.options.slot in node["Resources"] for node in self.nodes().values()):
            self.close()  # leave the cluster: this run will not use it
            raise BenchError(
                f"no node of the Ray cluster at {address} offers the resource {self.options.slot!r}, so none may run "
                f"a timed case: start each node with --resources '{{\"{self.options.slot}\": 1}}' (one case at a "
                "time per node; see docs/scale-out.md)"
            )

    def _no_cluster(self, address: str) -> BenchError:
        where = "on this machine (or at RAY_ADDRESS)" if address == "auto" else f"at {address}"
        slot = f"'{{\"{self.options.slot}\": 1}}'"
        return BenchError(
            f"no Ray cluster is running {where}: start one with `ray start --head --resources {slot}` and join "
            f"other machines with `ray start --address=HEAD:6379 --resources {slot}`, or pass --address HOST:PORT "
            "(benchharness never starts a cluster itself; see docs/scale-out.md)"
        )

    def nodes(self) -> dict[str, dict[str, Any]]:
        """The cluster's live nodes by id, as ``ray.nodes()`` describes them."""
        import ray

        return {node["NodeID"]: node for node in ray.nodes() if node.get("Alive")}

    def needs(self, job: Job) -> dict[str, float]:
        """What a node must offer to run ``job``: the target's needs, its ``node_labels``, and the slot."""
        case = job.payload.case
        if job.host is None:
            raise BenchError("the ray launcher needs the run's plugin host to read the target's needs")
        target = job.host.get("targets", case.target.name)
        options = target.cls.Options.model_validate(case.target.options)
        needs = {str(k): float(v) for k, v in target.cls.node_needs(options).items()}
        for label in getattr(options, "node_labels", []):
            needs.setdefault(label, LABEL_AMOUNT)
        needs[self.options.slot] = 1.0
        return needs

    def _unplaceable(self, needs: dict[str, float], nodes: dict[str, dict[str, Any]]) -> str | None:
        if any(satisfies(node["Resources"], needs) for node in nodes.values()):
            return None
        offered = sorted(
            {needs_text(node_labels(n["Resources"], self.options.slot)) or "no labels" for n in nodes.values()}
        )
        missing = {name: amount for name, amount in needs.items() if name != self.options.slot}
        return (
            f"no node of the Ray cluster has {needs_text(missing) or 'the slot ' + repr(self.options.slot)} "
            f"({len(nodes)} node(s), labelled: {'; '.join(offered) or 'none alive'})"
        )

    # ------------------------------------------------------------------ files

    def _file_refs(self, job: Job) -> dict[str, tuple[str, Any]]:
        import ray

        refs = {}
        for rel, path in case_files(job.payload.case, job.workspace.base_dir).items():
            stat = path.stat()
            key = (str(path), stat.st_mtime_ns, stat.st_size)
            if key not in self._hashes:
                data = path.read_bytes()
                self._hashes[key] = sha = hashlib.sha256(data).hexdigest()
                if sha not in self._objects:
                    self._objects[sha] = ray.put(data)  # once per content, however many cases read it
            sha = self._hashes[key]
            refs[rel] = (sha, self._objects[sha])
        return refs

    # ------------------------------------------------------------------ the launcher

    def submit(self, job: Job) -> None:
        """Place ``job`` as a task, or decide it at once when no live node could ever run it."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from benchharness_ray.node import run_on_node

        if self._task is None:
            self._task = ray.remote(run_on_node)
        case = job.payload.case
        needs = self.needs(job)
        nodes = self.nodes()
        pinned = self._first_node.get(case.id) if job.process > 1 else None
        strategy: Any = "DEFAULT"
        if pinned is not None:
            if pinned not in nodes:
                self._decided.append((job, self._lost(job, pinned, "before the case's next process could start")))
                return
            strategy = NodeAffinitySchedulingStrategy(pinned, soft=False)
        reason = self._unplaceable(needs, nodes)
        if reason is not None:
            self._decided.append((job, self._skipped(job, reason)))
            return
        resources = {k: v for k, v in needs.items() if k not in ("GPU", "CPU")}
        task = self._task.options(
            num_cpus=needs.get("CPU", 0), num_gpus=needs.get("GPU", 0), resources=resources,
            max_retries=0, retry_exceptions=False, scheduling_strategy=strategy,
            runtime_env={"env_vars": TASK_VARIABLES},
            name=f"benchharness {case.id}",
        )  # fmt: skip
        python_path = [str(p) for p in job.workspace.python_path]
        ref = task.remote(job.payload.model_dump_json(), self._file_refs(job), job.timeout, python_path, job.process)
        self._running[ref] = (job, needs, time.perf_counter())

    def next_result(self) -> tuple[Job, CaseResult]:
        """The next case to come back from any node; a case no live node can run any more is given up."""
        import ray

        while not self._decided:
            ready, _ = ray.wait(list(self._running), num_returns=1, timeout=POLL_S)
            if ready:
                ref = ready[0]
                job, _needs, submitted = self._running.pop(ref)
                return job, self._collect(ref, job, submitted)
            self._give_up_unplaceable()
        return self._decided.pop(0)

    def launch(self, job: Job) -> CaseResult:
        """Run one case through the cluster and wait for it (what ``submit`` and ``next_result`` do for many)."""
        self.submit(job)
        while True:
            done, result = self.next_result()
            if done is job:
                return result
            self._decided.append((done, result))

    def close(self) -> None:
        """Cancel every task not yet back (its worker is killed with it), then leave the cluster."""
        import ray

        if not ray.is_initialized():
            return
        for ref in list(self._running):
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001, S110 - a task that ended meanwhile, or a node gone: nothing to cancel
                pass
        self._running.clear()
        self._objects.clear()
        if self._connected_here:
            ray.shutdown()
            self._connected_here = False

    # ------------------------------------------------------------------ results

    def _collect(self, ref: Any, job: Job, submitted: float) -> CaseResult:
        import ray
        from ray import exceptions as rex

        try:
            out = ray.get(ref)
        except rex.NodeDiedError as exc:
            return self._lost(job, _node_of(exc), "while running the case")
        except rex.TaskUnschedulableError as exc:
            return self._failed(job, "crashed", f"node lost: {_first_line(exc)}", submitted)
        except rex.WorkerCrashedError as exc:
            return self._failed(job, "crashed", f"the Ray worker running the case died: {_first_line(exc)}", submitted)
        except rex.TaskCancelledError:
            return self._failed(job, "error", "cancelled", submitted)
        except rex.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            return self._failed(job, "error", f"the ray launcher failed on the node: {_first_line(cause)}", submitted)
        try:
            result = CaseResult.model_validate_json(out["result"])
            facts = out["node"]
            node_id = facts["node_id"]
            resources = self.nodes().get(node_id, {}).get("Resources", {})
            result.node = Node(
                hostname=facts["hostname"], node_id=node_id, labels=node_labels(resources, self.options.slot),
                machine=facts["machine"], details={**facts["details"], "cluster": self._address},
            )  # fmt: skip
        except (ValidationError, KeyError, TypeError) as exc:  # a node with another benchharness, say
            where = out.get("node", {}).get("hostname", "its node") if isinstance(out, dict) else "its node"
            message = f"the result from {where} is invalid ({_first_line(exc)}): is the same benchharness installed?"
            return self._failed(job, "error", message, submitted)
        if job.process == 1 and result.status == "ok":
            self._first_node[job.payload.case.id] = node_id
        return result

    def _give_up_unplaceable(self) -> None:
        """Decide the queued tasks that no live node can run any more (the only ones that could were lost)."""
        import ray

        nodes = self.nodes()
        for ref, (job, needs, _) in list(self._running.items()):
            reason = self._unplaceable(needs, nodes)
            if reason is None:
                continue
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001, S110 - it may have ended meanwhile: its own result is then lost too
                pass
            del self._running[ref]
            self._decided.append((job, self._skipped(job, f"{reason}, after the node(s) that had it were lost")))

    def _skipped(self, job: Job, reason: str) -> CaseResult:
        return self._failed(job, "skipped", reason)

    def _lost(self, job: Job, node_id: str | None, when: str) -> CaseResult:
        which = f"Ray node {node_id}" if node_id else "its Ray node"
        return self._failed(job, "crashed", f"node lost: {which} died {when}")

    def _failed(self, job: Job, status: str, message: str, submitted: float | None = None) -> CaseResult:
        """The case's result when no node gave one; ``submitted`` (``perf_counter``) times it, else 0 s."""
        duration = 0.0 if submitted is None else time.perf_counter() - submitted
        return failed_result(
            job.payload.case, status, message, started_at=utc_now(), duration_s=duration,  # type: ignore[arg-type]
            launcher="ray",
        )  # fmt: skip


def _listening(address: str, timeout: float = 5.0) -> bool:
    """Whether something accepts connections at ``HOST:PORT`` (a ``ray://`` address is left to Ray)."""
    if "://" in address:
        return True
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return True  # not HOST:PORT: Ray says what is wrong with it
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _node_of(exc: BaseException) -> str | None:
    text = str(exc)
    marker = "node ID: "
    if marker in text:
        return text.split(marker, 1)[1].split()[0].rstrip(".,")
    return None


@hookimpl
def benchharness_register_launchers(register):  # type: ignore[no-untyped-def]
    """Register the ray launcher."""
    register(RayLauncher)
