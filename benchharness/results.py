"""The results file: one JSON document per run, loaded back through the same models."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchharness.errors import BenchError

SCHEMA_VERSION = 1
Status = Literal["ok", "error", "timeout", "crashed"]


class MetricResult(BaseModel):
    """One metric of one case; ``samples`` are raw (nanoseconds for latency)."""

    model_config = ConfigDict(extra="forbid")
    value: float | None
    unit: str
    summary: dict[str, Any] | None = None
    samples: list[float] | list[int] | None = None
    method: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class CaseResult(BaseModel):
    """The outcome of one case."""

    model_config = ConfigDict(extra="forbid")
    case_id: str
    config: dict[str, Any]
    status: Status
    error: str | None = None
    traceback: str | None = None
    started_at: str
    duration_s: float
    metrics: dict[str, MetricResult] = Field(default_factory=dict)
    runtime: dict[str, Any] = Field(default_factory=dict)
    provenance: list[dict[str, str]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class SuiteRecord(BaseModel):
    """The suite a run came from."""

    model_config = ConfigDict(extra="forbid")
    path: str
    name: str
    hash: str
    data: dict[str, Any]


class RunResults(BaseModel):
    """A whole run."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = SCHEMA_VERSION
    tool: dict[str, str]
    run_id: str
    started_at: str
    finished_at: str | None = None
    complete: bool = False
    suite: SuiteRecord
    machine: dict[str, Any]
    plugins: list[dict[str, Any]]
    cases: list[CaseResult] = Field(default_factory=list)

    def case(self, case_id: str) -> CaseResult | None:
        """The result of ``case_id``, if recorded."""
        return next((c for c in self.cases if c.case_id == case_id), None)


def save_results(path: Path, results: RunResults) -> None:
    """Write atomically: a temp file in the same folder, flushed, then renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(results.model_dump_json(indent=1))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_results(path: str | Path) -> RunResults:
    """Load a results file; any problem is a one-line :class:`BenchError`."""
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
    if version != SCHEMA_VERSION:
        raise BenchError(
            f"{path}: results schema version {version!r} is not supported; this benchharness reads version "
            f"{SCHEMA_VERSION}"
        )
    try:
        return RunResults.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise BenchError(f"{path}: invalid results file: {where}: {err['msg']}") from None
