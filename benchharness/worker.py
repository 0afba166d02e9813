"""Run one case: a :class:`WorkerPayload` in, a :class:`CaseResult` out.

:func:`run_case` does the work and assumes no local parent: the payload is
portable (no local path, no ``sys.path``), and the :class:`Workspace` says
where this machine keeps the suite's files and the conversion cache.  A
distributed engine calls it on another machine; ``python -m
benchharness.worker PAYLOAD RESULT`` is the entry point the ``process``
launcher spawns, with ``faulthandler`` on so a segfault leaves the Python
stack in the log, and a checkpoint file so a crashed case keeps what was
known when it died.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import faulthandler
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchharness.api import (
    PROTOCOL,
    CaseContext,
    CompressionContext,
    DatasetContext,
    DatasetInputs,
    LabelledData,
    ModelArtifact,
    ModelContext,
    PluginSelection,
    ReferenceOutputs,
    TargetContext,
    WorkerPayload,
    Workspace,
    _describe_error,
    checked_value,
    feed_dataset,
)
from benchharness.case import Case, ItemSpec
from benchharness.errors import BenchError
from benchharness.fileio import atomic_write_text
from benchharness.results import CaseResult, CaseRuntime, MemoryLimit, MetricValue, Provenance, Stage, Status

Checkpoint = Callable[[CaseRuntime], None]

__all__ = [
    "Checkpoint",
    "dataset_loader",
    "failed_result",
    "in_own_process",
    "main",
    "memory_text",
    "oom_killed",
    "open_backend",
    "out_of_memory",
    "prepare_model",
    "reference_runner",
    "release_memory_limit",
    "run_case",
    "utc_now",
]

#: Words with which frameworks report a failed allocation: C++'s ``std::bad_alloc``, ONNX Runtime's "Failed to
#: allocate memory", numpy's "Unable to allocate", torch's "DefaultCPUAllocator: can't allocate memory" and
#: "not enough memory", CUDA's "out of memory".  Matched case-insensitively in an exception's text.
OOM_WORDS = ("bad_alloc", "failed to allocate", "unable to allocate", "can't allocate memory", "not enough memory",
             "out of memory")  # fmt: skip


#: True in a process started for one case (``python -m benchharness.worker``); see :func:`in_own_process`.
_OWN_PROCESS = False


def in_own_process() -> bool:
    """Whether this process was started for one case and ends with it (``python -m benchharness.worker``).

    Limits that would outlive a case, such as a memory cap, are safe to set
    only then: the ``inline`` launcher runs cases in the CLI process.
    """
    return _OWN_PROCESS


class _Skipped(Exception):
    """This machine lacks the case's target: the case is ``skipped`` with this reason."""


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a failed allocation.

    A ``MemoryError`` (Python, numpy), or an exception whose text names a C++
    allocation failure (:data:`OOM_WORDS`), as ONNX Runtime and torch raise
    them.  A :class:`BenchError` is the harness's own refusal, never an OOM.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError):
            return True
        if not isinstance(current, BenchError) and any(word in str(current).lower() for word in OOM_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False


def memory_text(memory: MemoryLimit | None) -> str:
    """``the memory cap of 2 GiB (RLIMIT_AS)``, or ``""`` when no cap was in force."""
    if memory is None:
        return ""
    from benchharness.inputs import byte_size

    return f"the memory cap of {byte_size(memory.limit_bytes)} ({memory.method})"


def oom_killed(memory: MemoryLimit | None) -> bool:
    """Whether the kernel's OOM killer killed a process in the cgroup of ``memory`` since its cap was set.

    Reads the ``oom_kill N`` line of ``memory.oom_kill_file`` (cgroup v2
    ``memory.events``, v1 ``memory.oom_control``); ``False`` when there is
    none or it cannot be read.
    """
    if memory is None or not memory.oom_kill_file:
        return False
    try:
        text = Path(memory.oom_kill_file).read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value) > memory.oom_kills_at_start
    return False


def release_memory_limit(memory: MemoryLimit | None, *, timeout: float = 2.0) -> None:
    """Remove the cgroup a target made for a worker that has ended (a launcher calls this); quiet on failure.

    Only a folder named ``benchharness-*`` is removed.  The kernel lets a
    cgroup go once its last process has exited, which may lag the worker's
    exit by a moment, so removal is retried for up to ``timeout`` seconds.
    """
    if memory is None or not memory.cgroup:
        return
    folder = Path(memory.cgroup)
    if not folder.name.startswith("benchharness-"):
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.02)


def utc_now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def run_case(
    payload: WorkerPayload,
    workspace: Workspace,
    *,
    host: Any = None,
    checkpoint: Checkpoint | None = None,
    launcher: str | None = None,
) -> CaseResult:
    """Run the payload's case and return its result; never raises for a failure of the case.

    ``host`` reuses a loaded :class:`~benchharness.plugins.PluginHost` (the
    ``inline`` launcher, tests); by default the plugins are loaded as the
    payload selects them.  ``checkpoint`` is called with the runtime record
    each time the case reaches a new stage.
    """
    case = payload.case
    t0 = time.perf_counter()
    result = CaseResult(case_id=case.id, config=case, status="ok", started_at=utc_now(), duration_s=0.0)
    result.launcher = launcher
    try:
        _run(case, payload.plugins, workspace, host, result, checkpoint)
    except _Skipped as skip:
        result.status = "skipped"
        result.error = str(skip)
    except Exception as exc:  # noqa: BLE001 - a failing case is recorded, whatever failed
        result.status = "error"
        text, kind = str(exc).strip(), type(exc).__name__
        result.error = text if isinstance(exc, BenchError) else f"{kind}: {text}" if text else kind
        result.traceback = traceback.format_exc()
        if out_of_memory(exc):
            result.status = "oom"
            cap = memory_text(result.runtime.target.memory if result.runtime.target else None)
            result.error = f"out of memory{' under ' + cap if cap else ''}: {result.error}"
    result.duration_s = round(time.perf_counter() - t0, 6)
    return result


def _run(
    case: Case,
    plugins: PluginSelection,
    workspace: Workspace,
    host: Any,
    result: CaseResult,
    checkpoint: Checkpoint | None,
) -> None:
    from benchharness.plugins import PluginHost

    if host is None:
        host = PluginHost(
            plugins.extra, blocked=plugins.blocked, autoload=plugins.autoload, warn=result.warnings.append
        )
    runtime = result.runtime
    used = result.provenance

    def reached(stage: Stage) -> None:
        runtime.stage = stage
        if checkpoint is not None:
            checkpoint(runtime)

    def item(kind: str, name: str) -> type:
        provided = host.get(kind, name)
        used.append(provided.provenance())
        return provided.cls

    # The target goes first: thread limits and pinning must precede any framework import.
    reached("target")
    target_cls = item("targets", case.target.name)
    target_options = target_cls.Options.model_validate(case.target.options)
    missing = target_cls.unavailable_here(target_options)  # again here: a launcher may run this on another machine
    if missing:
        raise _Skipped(missing)
    target = target_cls()
    target_ctx = target.apply(target_options)
    if not isinstance(target_ctx, TargetContext):
        raise BenchError(
            f"target {case.target.name!r} returned {type(target_ctx).__name__} from apply, not TargetContext"
        )
    runtime.target = target_ctx
    reached("target")  # the checkpoint now names the cap: a launcher needs it if the kernel kills this worker
    snapshots = _Snapshots(case.target.name, target, target_options, target_ctx, result.warnings)
    snapshots.take("applied")
    try:
        _run_on_target(case, host, workspace, result, item, reached, target_ctx, snapshots)
    finally:
        snapshots.take("end")
        snapshots.check()


def _run_on_target(
    case: Case,
    host: Any,
    workspace: Workspace,
    result: CaseResult,
    item: Callable[[str, str], type],
    reached: Callable[[Stage], None],
    target_ctx: TargetContext,
    snapshots: _Snapshots,
) -> None:
    """The case after its target applied: backend, model, scenario and metrics."""
    runtime = result.runtime
    used = result.provenance

    backend_cls = item("backends", case.backend.name)
    reason = backend_cls.unavailable_reason()
    if reason:
        raise BenchError(f"backend {case.backend.name!r} is unavailable: {reason}")
    if target_ctx.device not in backend_cls.devices:
        raise BenchError(
            f"backend {case.backend.name!r} cannot drive device {target_ctx.device!r} "
            f"(it drives {', '.join(backend_cls.devices)})"
        )
    missing = backend_cls.unavailable_on(target_ctx)
    if missing:
        raise _Skipped(missing)

    item("model_sources", case.model.source)
    for step in case.compressions:
        item("compressions", step.name)

    def model_stage(stage: Stage, artifact: ModelArtifact | None) -> None:
        if artifact is not None:
            runtime.model = artifact.record()
        reached(stage)

    from benchharness.inputs import check_input_memory

    check_input_memory(case)  # before anything is loaded: a batch of 1e8 images is refused, not attempted
    artifact = prepare_model(case, host, workspace, backend_cls, model_stage, warn=result.warnings.append)
    for converter in artifact.info.get("conversions", []):
        used.append(host.get("converters", converter).provenance())
    with open_backend(case, backend_cls, target_ctx, artifact) as ctx:
        ctx.on_phase.append(snapshots.take)

        def record(provenance: Provenance) -> None:
            if provenance not in used:
                used.append(provenance)

        ctx.dataset_loader = dataset_loader(case, host, workspace, record)
        ctx.reference_runner = reference_runner(ctx, host, workspace, target_ctx, record, result.warnings.append)
        runtime.backend = _backend_info(ctx.backend, result.warnings)

        reached("scenario")
        scenario_cls = item("scenarios", case.scenario.name)
        scenario = scenario_cls(scenario_cls.Options.model_validate(case.scenario.options))
        produced = set(scenario_cls.produces)
        other_outputs = {out for p in host.items["scenarios"].values() for out in p.cls.produces} - produced
        for spec in case.metrics:
            if spec.name in host.items["observers"] and spec.name not in produced:
                observer_cls = item("observers", spec.name)
                ctx.observers[spec.name] = observer_cls(observer_cls.Options.model_validate(spec.options))
        figures = scenario.run(ctx)
        _check_affinity(target_ctx, result.warnings)
        scenario_figures = _scenario_figures(case.scenario.name, scenario_cls.produces, figures, ctx)
        if ctx.observers and ctx.phase == "before":
            for name in ctx.observers:
                ctx.errors[name] = (
                    f"observer {name!r} never ran: scenario {case.scenario.name!r} did not enter ctx.measured()"
                )

        reached("metrics")
        for spec in case.metrics:
            name = spec.name
            if name in produced or name in ctx.observers or name in other_outputs:
                continue
            metric_cls = item("metrics", name)
            with ctx.figure(name, f"metric {name!r} failed"):
                value = metric_cls(metric_cls.Options.model_validate(spec.options)).collect(ctx)
                ctx.collected[name] = checked_value(value)
        runtime.backend = _backend_info(ctx.backend, result.warnings)
    result.metrics = {**scenario_figures, **{k: v for k, v in ctx.collected.items() if k not in scenario_figures}}
    for name, value in result.metrics.items():  # the direction a comparison judges by, from the plugin's class
        kind = "observers" if name in host.items["observers"] else "metrics"
        if value.better is None and name in host.items[kind]:
            value.better = "higher" if host.items[kind][name].cls.better == "higher" else "lower"
    result.metric_errors = ctx.errors
    reached("done")


def prepare_model(
    case: Case,
    host: Any,
    workspace: Workspace,
    backend_cls: type,
    progress: Callable[[Stage, ModelArtifact | None], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> ModelArtifact:
    """The case's model as its backend will load it: loaded, compressed and converted (cached).

    ``progress(stage, artifact)`` is called as each stage begins, with the
    artifact so far (``None`` before the model is loaded); ``warn`` gets a
    line for each cached conversion that failed its check and was rebuilt.
    """
    from benchharness.models import apply_compressions, load_model, to_backend_format

    def stage(name: Stage, artifact: ModelArtifact | None) -> None:
        if progress is not None:
            progress(name, artifact)

    model_ctx = ModelContext(base_dir=workspace.base_dir, cache_dir=workspace.cache_dir, seed=case.measure.seed)
    stage("model", None)
    artifact = load_model(case, host, model_ctx)
    stage("compress", artifact)
    if case.compressions:
        compress_ctx = CompressionContext(
            base_dir=workspace.base_dir, cache_dir=workspace.cache_dir, seed=case.measure.seed,
            model_label=case.model.label,
            dataset_loader=(lambda split: dataset_loader(case, host, workspace, split=split)())
            if case.model.dataset is not None else None,
        )  # fmt: skip
        artifact = apply_compressions(case, artifact, host, compress_ctx, warn)
    stage("convert", artifact)
    artifact = to_backend_format(
        artifact, backend_cls.formats, case.backend.name, host, workspace.cache_dir, case.model.label, warn=warn
    )
    stage("backend", artifact)
    return artifact


def dataset_loader(
    case: Case,
    host: Any,
    workspace: Workspace,
    record: Callable[[Provenance], None] | None = None,
    split: str | None = None,
) -> Callable[[], DatasetInputs]:
    """What :meth:`CaseContext.dataset` calls: load the model's dataset and feed it to the model's inputs.

    ``split`` (for :meth:`CompressionContext.dataset`) replaces the dataset's
    ``split`` option and drops the suite's ``limit``.

    The dataset plugin's ``load`` runs once; its samples feed the input the
    ``dataset`` entry names (:func:`~benchharness.api.feed_dataset`), and every
    other input gets the case's seeded values for that many samples.  The
    ``limit`` keeps the first samples.  ``record`` receives the dataset
    plugin's provenance.  Any failure is a :class:`BenchError`.
    """

    def load() -> DatasetInputs:
        import hashlib

        from benchharness.feeding import fed_input
        from benchharness.inputs import fixed_specs, make_inputs

        spec = case.model.dataset
        if spec is None:
            raise BenchError(f"model {case.model.label!r} has no dataset: give it one under 'dataset' in the suite")
        provided = host.get("datasets", spec.name)
        if record is not None:
            record(provided.provenance())
        reason = provided.cls.unavailable_reason()
        if reason:
            raise BenchError(f"dataset {spec.name!r} is unavailable: {reason}")
        given = spec.options() if split is None else {**spec.options(), "split": split}
        if split is not None and "split" not in provided.cls.Options.model_fields:
            raise BenchError(f"dataset {spec.name!r} has no 'split' option, so it has no {split!r} split to give")
        options = provided.cls.Options.model_validate(given)
        ctx = DatasetContext(base_dir=workspace.base_dir, cache_dir=workspace.cache_dir, seed=case.measure.seed)
        try:
            data = provided.cls().load(options, ctx)
        except BenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - the plugin's failure, on one line
            raise BenchError(f"dataset {spec.name!r} failed to load: {_describe_error(exc)}") from exc
        if not isinstance(data, LabelledData):
            raise BenchError(f"dataset {spec.name!r} returned {type(data).__name__}, not LabelledData")
        data = data.checked(spec.name)
        if split is None and spec.limit is not None and spec.limit < len(data.labels):
            data = replace(data, inputs=data.inputs[: spec.limit], labels=data.labels[: spec.limit])
        specs = case.model.inputs or []
        target = fed_input(spec, specs, case.model.label)
        count = len(data.labels)
        fed = feed_dataset(data, spec, target, case.model.dims)
        inputs = make_inputs(fixed_specs([s for s in specs if s.name != target.name], count, case.model.dims),
                             case.measure.seed)  # fmt: skip
        inputs[target.name] = fed
        feeding = spec.model_dump(exclude={"name"}, exclude_none=True)
        feeding = {k: v for k, v in feeding.items() if k not in spec.options()}
        info = {
            **data.info,
            "samples": count,
            "feeding": feeding,
            "fed_input": target.name,
            "fed_sha256": hashlib.sha256(fed.tobytes()).hexdigest(),
        }
        return DatasetInputs(
            name=spec.name,
            inputs=inputs,
            labels=data.labels.astype("int64"),
            fed=target.name,
            classes=data.classes,
            info=info,
        )

    return load


def reference_runner(
    ctx: CaseContext,
    host: Any,
    workspace: Workspace,
    target: TargetContext,
    record: Callable[[Provenance], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Callable[[dict[str, Any], tuple[str, ...]], ReferenceOutputs]:
    """What :meth:`CaseContext.reference_outputs` calls: run the case's uncompressed model on a reference backend.

    The first of the backends asked for that is installed and reaches the
    source's format through converters is used, with its default options, on
    the CPU with the target's threads.  When that is the case itself (no
    compression, that backend with default options, on the CPU), the case's
    own backend runs the inputs once.  Otherwise the model is prepared as for
    a case (cached conversions) and loaded in this process beside the case's.
    """
    case = ctx.case

    def run(inputs: dict[str, Any], backends: tuple[str, ...]) -> ReferenceOutputs:
        from benchharness.feeding import infer_in_batches

        name, backend_cls = _reference_backend(case, host, backends)
        if record is not None:
            record(host.get("backends", name).provenance())
        if _is_reference(case, backend_cls, name, target):
            details = {"content_hash": ctx.artifact.content_hash}
            return ReferenceOutputs(backend=name, outputs=ctx.infer_all(inputs), is_case=True, details=details)
        ref_case = case.model_copy(
            update={"compressions": [], "variant": "none", "backend": ItemSpec(name=name, label=name)}
        )
        artifact = prepare_model(ref_case, host, workspace, backend_cls, warn=warn)
        for converter in artifact.info.get("conversions", []):
            if record is not None:
                record(host.get("converters", converter).provenance())
        cpu = TargetContext(device="cpu", threads=target.threads, cores=target.cores)
        backend = backend_cls(backend_cls.Options.model_validate({}), cpu)
        try:
            backend.load(artifact)
            outputs = infer_in_batches(backend, inputs, case.batch, ctx.batch_axes(inputs))
            details = {"content_hash": artifact.content_hash, "runtime": _backend_info(backend, [])}
        finally:
            backend.close()
        return ReferenceOutputs(backend=name, outputs=outputs, is_case=False, details=details)

    return run


def _reference_backend(case: Case, host: Any, backends: tuple[str, ...]) -> tuple[str, type]:
    """The first of ``backends`` that is installed and can take the case's model as its source produces it."""
    from benchharness.models import conversion_path

    source = host.get("model_sources", case.model.source).cls
    fmt = source().output_format(source.Options.model_validate(case.model.options))
    tried = []
    for name in backends:
        provided = host.items["backends"].get(name)
        if provided is None:
            tried.append(f"{name} (not installed)")
            continue
        reason = provided.cls.unavailable_reason()
        if reason:
            tried.append(f"{name} ({reason})")
            continue
        if conversion_path(fmt, provided.cls.formats, host) is None:
            tried.append(f"{name} (takes {', '.join(provided.cls.formats)}; no converter from {fmt})")
            continue
        return name, provided.cls
    raise BenchError(f"no reference backend can run model {case.model.label!r} ({fmt}): tried {'; '.join(tried)}")


def _is_reference(case: Case, backend_cls: type, name: str, target: TargetContext) -> bool:
    """Whether the case is its own reference: uncompressed, on ``name`` with default options, on the CPU."""
    # "none" is the baseline variant (the suite's default compression): the model as its source gives it.
    if any(step.name != "none" for step in case.compressions) or case.backend.name != name or target.device != "cpu":
        return False
    own = {k: v for k, v in case.backend.options.items() if k not in ("label", "threads")}
    ignored = {"label", "threads"}
    return backend_cls.Options.model_validate(own).model_dump(exclude=ignored) == backend_cls.Options().model_dump(
        exclude=ignored
    )


class _Snapshots:
    """The target's snapshots of its device at each point of a case, kept in ``details["snapshots"]``.

    A snapshot that fails costs a warning, never the case; the target's
    :meth:`~benchharness.api.Target.check` runs once, at the end.
    """

    def __init__(self, name: str, target: Any, options: Any, context: TargetContext, warnings: list[str]) -> None:
        self.name, self.target, self.options, self.context, self.warnings = name, target, options, context, warnings
        self.taken: dict[str, dict[str, Any]] = {}

    def take(self, point: str) -> None:
        try:
            state = self.target.snapshot(self.options, point)
        except Exception as exc:  # noqa: BLE001 - a driver query must not cost the case
            self.warnings.append(f"target {self.name!r}: snapshot {point!r} failed: {_describe_error(exc)}")
            return
        if state is None:
            return
        if not isinstance(state, dict):
            self.warnings.append(f"target {self.name!r}: snapshot {point!r} returned {type(state).__name__}, not dict")
            return
        self.taken[point] = state
        self.context.details["snapshots"] = self.taken

    def check(self) -> None:
        if not self.taken:
            return
        try:
            found = self.target.check(self.options, dict(self.taken))
        except Exception as exc:  # noqa: BLE001 - as for snapshots
            self.warnings.append(f"target {self.name!r}: check failed: {_describe_error(exc)}")
            return
        self.warnings.extend(str(line) for line in found or [])


@contextmanager
def open_backend(
    case: Case, backend_cls: type, target: TargetContext, artifact: ModelArtifact
) -> Iterator[CaseContext]:
    """The backend, loaded with ``artifact`` and its feed prepared from the case's seeded inputs; closed on exit.

    Yields the :class:`CaseContext` a scenario runs in (no observers yet).
    """
    from benchharness.inputs import make_inputs
    from benchharness.procmem import peak_bytes, reset_peak, rss_bytes

    inputs = make_inputs(artifact.inputs, case.measure.seed)
    backend = backend_cls(backend_cls.Options.model_validate(case.backend.options), target)
    try:
        memory: dict[str, Any] = {"before_load_rss": rss_bytes()}
        reset = reset_peak()
        backend.load(artifact)
        feed = backend.prepare(inputs)
        memory["after_load_rss"] = rss_bytes()
        memory["load_peak"], method = peak_bytes()
        memory["load_peak_method"] = f"{method} reset before the load" if reset else f"{method} (process peak so far)"
        yield CaseContext(case=case, backend=backend, artifact=artifact, inputs=inputs, feed=feed, memory=memory)
    finally:
        backend.close()


def _check_affinity(target: TargetContext, warnings: list[str]) -> None:
    """Warn when the cores this worker may use changed while the case ran (a framework re-pinned it)."""
    getter = getattr(os, "sched_getaffinity", None)
    if target.cores is None or getter is None:
        return
    now = sorted(getter(0))
    if now != sorted(target.cores):
        warnings.append(f"the worker's CPU affinity changed while the case ran: {sorted(target.cores)} -> {now}")


def _scenario_figures(name: str, produces: tuple[str, ...], figures: Any, ctx: CaseContext) -> dict[str, MetricValue]:
    """The scenario's return value checked figure by figure: a bad one is that figure's error."""
    if not isinstance(figures, dict):
        raise BenchError(
            f"scenario {name!r} returned {type(figures).__name__} from run, expected a dict of MetricValue"
        )
    out: dict[str, MetricValue] = {}
    for key in produces:
        if key not in figures:
            ctx.errors[key] = f"scenario {name!r} did not return {key!r}, which it declares in 'produces'"
            continue
        with ctx.figure(key, f"scenario {name!r} failed"):
            out[key] = checked_value(figures[key])
    extra = sorted(set(figures) - set(produces))
    for key in extra:
        ctx.errors[key] = f"scenario {name!r} returned {key!r}, which is not in its 'produces'"
    ctx.collected.update(out)
    return out


def _backend_info(backend: Any, warnings: list[str]) -> dict[str, Any] | None:
    """The backend's ``runtime_info()``, keeping only JSON-safe values; a failure is a warning."""
    try:
        info = backend.runtime_info()
    except Exception as exc:  # noqa: BLE001 - informational: the case goes on
        warnings.append(f"backend {backend.name!r} failed in runtime_info: {type(exc).__name__}: {exc}")
        return None
    if not isinstance(info, dict):
        warnings.append(f"backend {backend.name!r} runtime_info returned {type(info).__name__}, not a dict")
        return None
    safe = {}
    for key, value in info.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            warnings.append(f"backend {backend.name!r} runtime_info[{key!r}] is not JSON-safe; left out")
            continue
        safe[str(key)] = value
    return safe


def failed_result(
    case: Case,
    status: Status,
    message: str,
    *,
    started_at: str,
    duration_s: float,
    log_tail: str | None = None,
    runtime: CaseRuntime | None = None,
    launcher: str | None = None,
) -> CaseResult:
    """The result of a case whose worker gave none (a crash, a timeout): what a launcher records."""
    return CaseResult(
        case_id=case.id,
        config=case,
        status=status,
        error=message,
        traceback=log_tail or None,
        started_at=started_at,
        duration_s=round(duration_s, 6),
        runtime=runtime or CaseRuntime(),
        launcher=launcher,
    )


def watch_parent(fd: int, owned_dir: Path | None = None) -> threading.Thread:
    """End this worker when the launcher that started it dies, whatever killed it.

    A daemon thread reads ``fd``, the read end of a pipe whose write end only
    the launcher holds; the kernel closes that end when the launcher exits,
    even by SIGKILL, and the read returns EOF.  The thread then removes
    ``owned_dir`` (the launcher's temporary folder, which no one else would)
    and kills this worker's process group (itself and anything it started),
    or only itself when it does not lead a group.
    """

    def watch() -> None:
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        if owned_dir is not None:
            shutil.rmtree(owned_dir, ignore_errors=True)
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    thread = threading.Thread(target=watch, name="benchharness-parent-watch", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    """``python -m benchharness.worker PAYLOAD RESULT``: run one case, write its result atomically."""
    global _OWN_PROCESS
    faulthandler.enable()  # a segfault in a framework leaves the Python stack in the log
    import benchharness.worker  # under ``python -m`` this module is __main__; plugins import the other copy

    _OWN_PROCESS = benchharness.worker._OWN_PROCESS = True
    parser = argparse.ArgumentParser(prog="python -m benchharness.worker", description="Run one benchharness case.")
    parser.add_argument("payload", type=Path, help="WorkerPayload JSON")
    parser.add_argument("result", type=Path, help="where to write the CaseResult JSON")
    parser.add_argument("--base-dir", type=Path, default=Path.cwd(), help="folder of the suite (relative model paths)")
    parser.add_argument("--cache-dir", type=Path, help="conversion cache (default: $BENCHHARNESS_CACHE)")
    parser.add_argument("--checkpoint", type=Path, help="file rewritten with the runtime record at each stage")
    parser.add_argument("--launcher", default=None, help="name recorded in the result")
    parser.add_argument(
        "--parent-pipe", type=int, metavar="FD", help="read end of a pipe the launcher holds open: EOF means it died"
    )
    parser.add_argument("--owned-dir", type=Path, help="folder to remove if the launcher dies first")
    args = parser.parse_args(argv)
    if args.parent_pipe is not None:
        watch_parent(args.parent_pipe, args.owned_dir)
    data = json.loads(args.payload.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("protocol") != PROTOCOL:
        found = data.get("protocol") if isinstance(data, dict) else None
        print(f"benchharness worker: unsupported protocol {found!r}; this worker speaks {PROTOCOL}", file=sys.stderr)
        return 2
    payload = WorkerPayload.model_validate(data)
    from benchharness.models import default_cache_dir

    workspace = Workspace(base_dir=args.base_dir, cache_dir=args.cache_dir or default_cache_dir())
    checkpoint = None
    if args.checkpoint is not None:
        path = args.checkpoint

        def checkpoint(runtime: CaseRuntime) -> None:
            atomic_write_text(path, runtime.model_dump_json())

    result = run_case(payload, workspace, checkpoint=checkpoint, launcher=args.launcher)
    try:
        text = result.model_dump_json()
    except Exception as exc:  # noqa: BLE001 - something a plugin put in odd: keep the case, drop the figures
        result = failed_result(
            payload.case,
            "error",
            f"the case's result cannot be written: {type(exc).__name__}: {str(exc).splitlines()[0]}",
            started_at=result.started_at,
            duration_s=result.duration_s,
            runtime=result.runtime,
            launcher=args.launcher,
        )
        text = result.model_dump_json()
    atomic_write_text(args.result, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
