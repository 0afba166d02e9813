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
from benchharness.machine import Machine
from benchharness.signature import InputSpec
from benchharness.stats import Summary

SCHEMA_VERSION = 2
Status = Literal["ok", "error", "timeout", "crashed"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


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

    @field_validator("value", mode="before")
    @classmethod
    def _numpy_scalar(cls, value: Any) -> Any:
        item = getattr(value, "item", None)
        return item() if callable(item) and type(value).__module__ == "numpy" else value


class TargetContext(_Record):
    """The resources a case really got, as its target applied them in the worker."""

    device: str = Field(description="'cpu', 'cuda', or a device name a backend knows.")
    threads: int = Field(ge=1, description="Threads each framework should use.")
    cores: list[int] | None = Field(None, description="Cores the worker may run on, when known.")
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


class CaseResult(_Record):
    """The outcome of one case."""

    case_id: str
    config: Case
    status: Status
    error: str | None = None
    traceback: str | None = None
    started_at: str
    duration_s: float
    launcher: str | None = None
    metrics: dict[str, MetricValue] = Field(default_factory=dict)
    #: Figures that failed, by name; the case's other figures are kept.
    metric_errors: dict[str, str] = Field(default_factory=dict)
    runtime: CaseRuntime = Field(default_factory=CaseRuntime)
    provenance: list[Provenance] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


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


def _upgrade_1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 to 2: scenarios and metrics became plugin entries, runtime and plugin records typed."""
    for plugin in data.get("plugins", []):
        plugin.setdefault("refused", [])
    for case in data.get("cases", []):
        config = case["config"]
        config["scenario"] = _entry(config["scenario"])
        config["metrics"] = [_entry(name) for name in config["metrics"]]
        old = case.get("runtime") or {}
        runtime: dict[str, Any] = {"signal": old.get("signal")}
        if "target" in old:
            target = dict(old["target"])
            runtime["target"] = {
                "device": target.pop("device"),
                "threads": target.pop("threads"),
                "cores": target.pop("cores", None),
                "details": target,
            }
        if "model" in old:
            model = dict(old["model"])
            runtime["model"] = {
                "format": model.pop("format"),
                "content_hash": model.pop("content_hash"),
                "inputs": model.pop("inputs", []),
                "info": model,
            }
        if "backend" in old:
            runtime["backend"] = old["backend"]
        runtime["stage"] = "done" if case["status"] == "ok" else None
        case["runtime"] = runtime
    return data


def _entry(name: str) -> dict[str, Any]:
    return {"name": name, "label": name, "options": {}}


#: ``UPGRADES[n]`` turns a version-``n`` document into a version ``n + 1`` one.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _upgrade_1}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a results document of any older schema version up to :data:`SCHEMA_VERSION`."""
    version = data["schema_version"]
    while version < SCHEMA_VERSION:
        data = UPGRADES[version](data)
        version += 1
        data["schema_version"] = version
    return data


def load_results(path: str | Path) -> RunResults:
    """Load a results file, upgrading an older schema version; any problem is a one-line :class:`BenchError`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{path}: no such results file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path}:{exc.lineno}: not a results file: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise BenchError(f"{path}: not a benchharness results file (no schema_version)")
    version = data["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
        raise BenchError(
            f"{path}: results schema version {version!r} is not supported; this benchharness reads versions "
            f"1 to {SCHEMA_VERSION} (a newer benchharness wrote it?)"
        )
    try:
        return RunResults.model_validate(upgrade(data))
    except (ValidationError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, ValidationError):
            err = exc.errors(include_url=False)[0]
            detail = f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        raise BenchError(f"{path}: invalid results file (schema version {version}): {detail}") from None
