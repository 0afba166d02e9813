"""Run one case, in a process of its own.

The protocol is a JSON payload in and a JSON :class:`CaseResult` out.
:func:`run_case` does the work and assumes no local parent, so a distributed
engine can call it on another machine; ``python -m benchharness.worker
PAYLOAD RESULT`` is the local entry point the runner spawns.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchharness.errors import BenchError

PROTOCOL = 1


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def make_payload(
    case: dict[str, Any], *, extra_plugins: list[str], autoload: bool, base_dir: Path, cache_dir: Path
) -> dict[str, Any]:
    """Everything a worker needs to run ``case`` on any machine with the same plugins."""
    return {
        "protocol": PROTOCOL,
        "case": case,
        "extra_plugins": extra_plugins,
        "autoload": autoload,
        "base_dir": str(base_dir),
        "cache_dir": str(cache_dir),
        "sys_path": [p for p in sys.path if p],
    }


def run_case(payload: dict[str, Any]) -> dict[str, Any]:
    """Run the payload's case and return its result as a JSON-safe dict (never raises for case failures)."""
    from benchharness.plan import Case

    case = Case.model_validate(payload["case"])
    started = _now()
    t0 = time.perf_counter()
    result: dict[str, Any] = {"case_id": case.id, "config": case.model_dump(mode="json"), "started_at": started}
    warnings: list[str] = []
    try:
        result.update(_measure_case(case, payload, warnings))
        result["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - a failing case is recorded, whatever failed
        result["status"] = "error"
        result["error"] = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
    result["duration_s"] = round(time.perf_counter() - t0, 6)
    result["warnings"] = warnings
    return result


def _measure_case(case: Any, payload: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    from benchharness.api import CaseContext, ModelContext
    from benchharness.inputs import make_inputs
    from benchharness.models import apply_compressions, load_model, to_backend_format
    from benchharness.plugins import PluginHost

    host = PluginHost(payload["extra_plugins"], autoload=payload["autoload"], warn=warnings.append)
    provenance = []

    # The target goes first: thread limits and pinning must precede any framework import.
    target_item = host.get("targets", case.target.name)
    target_cls = target_item.cls
    target_ctx = target_cls().apply(target_cls.Options.model_validate(case.target.options))
    target_ctx.label = case.target.label
    provenance.append(target_item.provenance())

    backend_item = host.get("backends", case.backend.name)
    backend_cls = backend_item.cls
    reason = backend_cls.unavailable_reason()
    if reason:
        raise BenchError(f"backend {case.backend.name!r} is unavailable: {reason}")
    if target_ctx.device not in backend_cls.devices:
        raise BenchError(
            f"backend {case.backend.name!r} cannot drive device {target_ctx.device!r} "
            f"(it drives {', '.join(backend_cls.devices)})"
        )
    provenance.append(backend_item.provenance())

    cache_dir = Path(payload["cache_dir"])
    model_ctx = ModelContext(base_dir=Path(payload["base_dir"]), cache_dir=cache_dir, seed=case.measure.seed)
    source_item = host.get("model_sources", case.model.source)
    provenance.append(source_item.provenance())
    artifact = load_model(case, host, model_ctx)
    for step in case.compressions:
        provenance.append(host.get("compressions", step.name).provenance())
    artifact = apply_compressions(case, artifact, host, model_ctx)
    artifact = to_backend_format(artifact, backend_cls.formats, case.backend.name, host, cache_dir)

    inputs = make_inputs(artifact.inputs, case.measure.seed)
    backend = backend_cls(backend_cls.Options.model_validate(case.backend.options), target_ctx)
    try:
        backend.load(artifact)
        feed = backend.prepare(inputs)
        ctx = CaseContext(case=case, backend=backend, artifact=artifact, inputs=inputs, feed=feed, measure=case.measure)
        metrics = {}
        for name in case.metrics:
            metric_item = host.get("metrics", name)
            provenance.append(metric_item.provenance())
            value = metric_item.cls().collect(ctx)
            ctx.collected[name] = value
            metrics[name] = {
                "value": value.value,
                "unit": value.unit,
                "summary": value.summary,
                "samples": value.samples,
                "method": value.method,
                "details": value.details,
            }
        runtime = {
            "target": {
                "device": target_ctx.device,
                "threads": target_ctx.threads,
                "cores": target_ctx.cores,
                **target_ctx.details,
            },
            "backend": backend.runtime_info(),
            "model": {
                "format": artifact.format,
                "content_hash": artifact.content_hash,
                "inputs": [spec.model_dump(mode="json", exclude_none=True) for spec in artifact.inputs],
                **{k: v for k, v in artifact.info.items() if _json_safe(v)},
            },
        }
    finally:
        backend.close()
    return {"metrics": metrics, "runtime": runtime, "provenance": provenance}


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m benchharness.worker PAYLOAD RESULT``: run one case, write its result atomically."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m benchharness.worker PAYLOAD.json RESULT.json", file=sys.stderr)
        return 2
    payload = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    if payload.get("protocol") != PROTOCOL:
        print(f"benchharness worker: unsupported protocol {payload.get('protocol')!r}", file=sys.stderr)
        return 2
    for entry in reversed(payload.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    result = run_case(payload)
    out = Path(args[1])
    tmp = out.with_suffix(".tmp")
    # default=repr: a plugin's odd detail value must not cost the whole result.
    tmp.write_text(json.dumps(result, default=repr), encoding="utf-8")
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
