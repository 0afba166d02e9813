"""The results file: one JSON document per run, loaded back through the same models.

Every object in it is a pydantic model, from the plan (:class:`Case`) to each
figure (:class:`MetricValue`, the very class a plugin returns).  A file written
by an older schema version is upgraded on load by the ``_upgrade_N`` functions,
one version at a time (as asv and pyperf do), so old runs stay comparable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from benchharness.case import Case
from benchharness.errors import BenchError
from benchharness.fileio import atomic_write_text
from benchharness.machine import Machine, Node
from benchharness.signature import InputSpec
from benchharness.stats import Summary

SCHEMA_VERSION = 5
#: The most samples a figure's summary may count: far beyond any run, and where scipy's CI ranks still work.
MAX_SAMPLE_COUNT = 2**31
#: How a case ended.  ``oom``: it ran out of memory (a ``MemoryError``, a C++ allocation failure, or the kernel's
#: OOM killer in the target's cgroup); ``skipped``: this machine lacks its target (``error`` says why), so it never ran.
Status = Literal["ok", "error", "timeout", "crashed", "oom", "skipped"]
#: The statuses of a case that failed: the run exits 1.  ``skipped`` is not one: a missing target is not a failure.
FAILED_STATUSES: tuple[str, ...] = ("error", "timeout", "crashed", "oom")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Spread(BaseModel):
    """How one figure varied between the worker processes of a repeated case (``--repeat``).

    ``values`` holds each process's headline value, in run order.  The CI
    bounds the centre of those values at ``ci_level``; ``method`` says how
    (see :func:`benchharness.repeats.between_ci`).  It is ``None`` when the
    values cannot give one (fewer than two, or a value that is not positive).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    values: list[float] = Field(min_length=1)
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float = Field(0.95, gt=0, lt=1)
    method: str

    @property
    def processes(self) -> int:
        """How many processes gave the figure."""
        return len(self.values)

    @property
    def ci_rel_halfwidth(self) -> float:
        """The larger side of the CI relative to its centre (``inf`` when there is no CI)."""
        import math

        if self.ci_low is None or self.ci_high is None or self.ci_low <= 0:
            return math.inf
        centre = math.sqrt(self.ci_low * self.ci_high)  # the CI is symmetric on a log scale
        return max(centre - self.ci_low, self.ci_high - centre) / centre


class MetricValue(BaseModel):
    """One figure of one case, as a scenario, observer or metric returns it and as the file keeps it.

    ``value`` is the headline number shown in tables (``None`` when there is
    none); ``summary`` holds the statistics and ``samples`` the raw samples,
    when the figure has them.  ``method`` says how the figure was obtained:
    required reading for an estimate (an energy proxy says which model it used).
    Types are checked strictly: a string where a number belongs is an error
    of that figure, not a number.  numpy scalars are taken as Python numbers.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    value: float | None
    unit: str
    summary: Summary | None = None
    samples: list[int] | list[float] | None = None
    method: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    #: Which direction is better: ``"lower"`` (latency, memory, energy) or ``"higher"`` (throughput, accuracy).
    #: A plugin may leave it ``None``: the worker fills it from the observer's or metric's ``better``.
    better: Literal["lower", "higher"] | None = None
    #: Set by the runner on a figure combined from several worker processes (``--repeat``): how it varied
    #: between them.  ``value`` is then the median of the processes' values and ``summary`` pools their samples.
    between: Spread | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _numpy_scalar(cls, value: Any) -> Any:
        item = getattr(value, "item", None)
        return item() if callable(item) and type(value).__module__ == "numpy" else value

    @field_validator("summary")
    @classmethod
    def _usable_summary(cls, summary: Summary | None) -> Summary | None:
        # Tables ask the summary for its CI (order statistics of Binomial(count, 1/2)): scipy fails on a count
        # below 1, gives NaN or hangs for counts near 2**53, and needs a level in (0, 1).
        if summary is None:
            return None
        if not 1 <= summary.count <= MAX_SAMPLE_COUNT:
            raise ValueError(f"count must be 1 to {MAX_SAMPLE_COUNT}, not {summary.count}")
        if not 0 < summary.ci_level < 1:
            raise ValueError(f"ci_level must be between 0 and 1, not {summary.ci_level}")
        return summary


class MemoryLimit(_Record):
    """A memory cap in force in a case's worker, as read back after the target set it.

    A target that creates a cgroup for the worker names it in ``cgroup``; the
    launcher removes it when the worker has ended, and reads ``oom_kill_file``
    (its ``oom_kill N`` line) to tell the kernel's OOM killer from any other
    ``SIGKILL`` (see ``benchharness.worker.oom_killed`` and ``release_memory_limit``).
    """

    limit_bytes: int = Field(ge=1, description="The cap in force, in bytes, read back from where it was set.")
    method: str = Field(
        description="How it is enforced: 'cgroup v2 memory.max', 'cgroup v1 memory.limit_in_bytes' or 'RLIMIT_AS'."
    )
    cgroup: str | None = Field(None, description="Folder of the cgroup made for this worker, removed when it ends.")
    moved_from: str | None = Field(None, description="Folder of the cgroup the worker was in before.")
    oom_kill_file: str | None = Field(None, description="File whose 'oom_kill N' line counts the cgroup's OOM kills.")
    oom_kills_at_start: int = Field(0, ge=0, description="That count when the cap was set.")


class TargetContext(_Record):
    """The resources a case really got, as its target applied them in the worker."""

    device: str = Field(description="'cpu', 'cuda', or a device name a backend knows.")
    threads: int = Field(ge=1, description="Threads each framework should use.")
    cores: list[int] | None = Field(None, description="Cores the worker may run on, when known.")
    memory: MemoryLimit | None = Field(None, description="The memory cap in force, when the target set one.")
    details: dict[str, Any] = Field(default_factory=dict, description="Anything else the target wants recorded.")


class ModelRecord(_Record):
    """The model a backend ran: its format, content hash and fixed inputs, plus facts from the plugins."""

    format: str
    content_hash: str
    inputs: list[InputSpec] = Field(default_factory=list)
    info: dict[str, Any] = Field(default_factory=dict)


#: Stages of a case in the worker, in order; ``CaseRuntime.stage`` is the last one reached.
STAGES = ("target", "model", "compress", "convert", "backend", "scenario", "metrics", "done")
Stage = Literal[STAGES]  # type: ignore[valid-type]


class CaseRuntime(_Record):
    """What the worker learnt while running a case; a failed case keeps what was known when it failed."""

    stage: Stage | None = None
    target: TargetContext | None = None
    model: ModelRecord | None = None
    backend: dict[str, Any] | None = Field(None, description="The backend's runtime_info().")
    signal: str | None = Field(None, description="The signal that killed a crashed worker.")


class Provenance(_Record):
    """Which plugin (and version) supplied an item a case used."""

    kind: str
    name: str
    plugin: str
    version: str


class Outcome(_Record):
    """How a worker process ended, and what it measured: the fields a case and each of its processes share."""

    status: Status
    #: Why it did not end ok; for a ``skipped`` case, what this machine lacks.
    error: str | None = None
    traceback: str | None = None
    started_at: str
    duration_s: float
    launcher: str | None = None
    metrics: dict[str, MetricValue] = Field(default_factory=dict)
    #: Figures that failed, by name; the other figures are kept.
    metric_errors: dict[str, str] = Field(default_factory=dict)
    runtime: CaseRuntime = Field(default_factory=CaseRuntime)
    warnings: list[str] = Field(default_factory=list)
    #: The cluster node it ran on; ``None`` for a case run on the results file's ``machine`` (a local launcher).
    node: Node | None = None


class ProcessRun(Outcome):
    """One worker process of a repeated case: its outcome, its own figures (with their raw samples) and runtime."""

    index: int = Field(ge=1, description="1 for the case's first process, and so on.")


class CaseResult(Outcome):
    """The outcome of one case."""

    case_id: str
    config: Case
    provenance: list[Provenance] = Field(default_factory=list)
    #: Each worker process of a repeated case (``--repeat N``), in run order; empty for a case run in one
    #: process.  The outcome fields then combine them: ``metrics`` by :func:`benchharness.repeats.combine`.
    processes: list[ProcessRun] = Field(default_factory=list)


class Refusal(_Record):
    """An item a plugin tried to register and the core refused, and why."""

    kind: str
    name: str
    reason: str


class PluginInfo(_Record):
    """A plugin as loaded: where it came from, whether it worked, what it provides and what was refused."""

    name: str
    version: str
    origin: str = Field(description="'builtin', 'entry point (DIST)', '-p' or 'registered'.")
    module: str
    error: str | None = None
    provides: dict[str, list[str]] = Field(default_factory=dict)
    refused: list[Refusal] = Field(default_factory=list)


class SuiteRecord(_Record):
    """The suite a run came from."""

    path: str
    name: str
    hash: str
    data: dict[str, Any]


class ToolInfo(_Record):
    """The program that wrote the file."""

    name: str
    version: str


class RunResults(_Record):
    """A whole run."""

    schema_version: int = SCHEMA_VERSION
    tool: ToolInfo
    run_id: str
    started_at: str
    finished_at: str | None = None
    complete: bool = False
    suite: SuiteRecord
    machine: Machine
    plugins: list[PluginInfo]
    cases: list[CaseResult] = Field(default_factory=list)


def save_results(path: Path, results: RunResults) -> None:
    """Write atomically (a temporary file in the same folder, fsync'ed, renamed over ``path``), mode 0o666 & ~umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, results.model_dump_json(indent=1))


# ----------------------------------------------------------------------------- upgrades


class UpgradeError(ValueError):
    """A field an upgrade needs is missing or of the wrong type; ``loc`` names it as pydantic's errors do."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def _mapping(value: Any, loc: tuple[str | int, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UpgradeError(loc, "Input should be a valid dictionary")
    return value


def _upgrade_1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 to 2: scenarios and metrics became plugin entries, runtime and plugin records typed.

    Only what this upgrade must reshape is checked here (an :class:`UpgradeError` names it); a
    missing field is left missing, and anything else misshapen is left as it is, for the
    models to report in their own words.
    """
    plugins = data.get("plugins")
    for plugin in plugins if isinstance(plugins, list) else []:
        if isinstance(plugin, dict):
            plugin.setdefault("refused", [])
    cases = data.get("cases")
    for i, case in enumerate(cases if isinstance(cases, list) else []):
        if not isinstance(case, dict):
            continue
        loc: tuple[str | int, ...] = ("cases", i)
        config = case.get("config")
        if isinstance(config, dict):
            if "scenario" in config:
                config["scenario"] = _entry(config["scenario"], (*loc, "config", "scenario"))
            if "metrics" in config:
                names = config["metrics"]
                if not isinstance(names, list):
                    raise UpgradeError((*loc, "config", "metrics"), "Input should be a valid list")
                config["metrics"] = [_entry(name, (*loc, "config", "metrics", j)) for j, name in enumerate(names)]
        old = case.get("runtime")
        old = {} if old is None else _mapping(old, (*loc, "runtime"))
        runtime: dict[str, Any] = {"signal": old.get("signal")}
        if old.get("target") is not None:
            target = dict(_mapping(old["target"], (*loc, "runtime", "target")))
            runtime["target"] = {k: target.pop(k) for k in ("device", "threads", "cores") if k in target}
            runtime["target"]["details"] = target
        if old.get("model") is not None:
            model = dict(_mapping(old["model"], (*loc, "runtime", "model")))
            runtime["model"] = {k: model.pop(k) for k in ("format", "content_hash", "inputs") if k in model}
            runtime["model"]["info"] = model
        if "backend" in old:
            runtime["backend"] = old["backend"]
        runtime["stage"] = "done" if case.get("status") == "ok" else None
        case["runtime"] = runtime
    return data


def _entry(name: Any, loc: tuple[str | int, ...]) -> dict[str, Any]:
    if not isinstance(name, str):
        raise UpgradeError(loc, "Input should be a valid string")
    return {"name": name, "label": name, "options": {}}


def _upgrade_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 to 3: nothing to reshape.

    Version 3 added the ``oom`` and ``skipped`` statuses and ``TargetContext.memory``
    (absent, hence ``None``, in a version-2 file); a version-2 document is a valid one.
    """
    return data


def _upgrade_3(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3 to 4: nothing to reshape.

    Version 4 added ``CaseResult.processes`` (repeats across processes), ``MetricValue.between``
    and ``MetricValue.better``; a version-3 case ran in one process and its figures name no
    direction (a comparison infers it from the unit).  ``GitInfo.committed_at`` came later, optional
    (``None`` in older files): the commit's date, by which ``benchharness history`` orders runs.
    """
    return data


def _upgrade_4(data: dict[str, Any]) -> dict[str, Any]:
    """Version 4 to 5: nothing to reshape.

    Version 5 added ``node`` to each case and process: the cluster node it ran on (``--launcher ray``),
    absent, hence ``None``, for a case that ran on the file's own ``machine``.
    """
    return data


#: ``UPGRADES[n]`` turns a version-``n`` document into a version ``n + 1`` one.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _upgrade_1, 2: _upgrade_2, 3: _upgrade_3, 4: _upgrade_4,
}  # fmt: skip


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a results document of any older schema version up to :data:`SCHEMA_VERSION`."""
    version = data["schema_version"]
    while version < SCHEMA_VERSION:
        data = UPGRADES[version](data)
        version += 1
        data["schema_version"] = version
    return data


def load_results(path: str | Path) -> RunResults:
    """Load a results file, upgrading an older schema version; any problem is a one-line :class:`BenchError`.

    The file must be strict JSON (no ``NaN``, ``Infinity`` or repeated keys, none of which the harness
    writes) and every part of it must match the models, so whatever loads can be shown.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark, as some Windows editors add, is fine
    except FileNotFoundError:
        raise BenchError(f"{path}: no such results file") from None
    except IsADirectoryError:
        raise BenchError(f"{path}: is a directory, not a results file") from None
    except UnicodeDecodeError as exc:
        raise BenchError(
            f"{path}: not a results file: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        ) from None
    except OSError as exc:
        raise BenchError(f"{path}: cannot read: {_one_line(exc.strerror or str(exc))}") from None
    except MemoryError:
        raise BenchError(f"{path}: too large to read into memory") from None
    try:
        data = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path}:{exc.lineno}: not a results file: invalid JSON: {exc.msg}") from None
    except _NotJSON as exc:
        raise BenchError(f"{path}: not a results file: invalid JSON: {exc}") from None
    except RecursionError:
        raise BenchError(f"{path}: not a results file: invalid JSON: nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise BenchError(f"{path}: not a results file: invalid JSON: {_one_line(str(exc))}") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise BenchError(f"{path}: not a benchharness results file (no schema_version)")
    version = data["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
        raise BenchError(
            f"{path}: results schema version {_short_repr(version)} is not supported; this benchharness reads "
            f"versions 1 to {SCHEMA_VERSION} (a newer benchharness wrote it?)"
        )
    try:
        return RunResults.model_validate(upgrade(data))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        message = first["msg"].removeprefix("Value error, ")  # our validators' messages read better bare
        detail = f"{_loc_text(first['loc'])}: {message}"
    except UpgradeError as exc:
        detail = f"{_loc_text(exc.loc)}: {exc.message}"
    except RecursionError:
        detail = "nested too deeply"
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # a gap in an upgrade: still one line
        detail = f"{type(exc).__name__}: {exc}"
    raise BenchError(f"{path}: invalid results file (schema version {version}): {_one_line(detail)}")


class _NotJSON(ValueError):
    """Text the json module accepts but JSON does not (``NaN``), or that the harness never writes."""


def _no_constant(name: str) -> Any:
    raise _NotJSON(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _NotJSON(f"duplicate key {_short_repr(key)} in an object")
        out[key] = value
    return out


def _loc_text(loc: tuple[str | int, ...]) -> str:
    """``cases.0.config.model``; a key that is long or not plain text is shown quoted and shortened."""
    parts = []
    for part in loc:
        text = str(part)
        parts.append(text if text.isprintable() and len(text) <= 40 and "." not in text else _short_repr(text))
    return ".".join(parts)


def _short_repr(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
