"""Turn a case's model spec into the artifact its backend runs: load, compress, convert (cached)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from benchharness.api import ModelArtifact, ModelContext, file_hash
from benchharness.errors import BenchError
from benchharness.inputs import fixed_specs

if TYPE_CHECKING:
    from benchharness.case import Case
    from benchharness.plugins import PluginHost, Provided


def default_cache_dir() -> Path:
    """``$BENCHHARNESS_CACHE``, else ``~/.cache/benchharness``."""
    env = os.environ.get("BENCHHARNESS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "benchharness"


def load_model(case: Case, host: PluginHost, ctx: ModelContext) -> ModelArtifact:
    """Load the case's model from its source and fix its input shapes for the case's batch size."""
    source_cls = host.get("model_sources", case.model.source).cls
    options = source_cls.Options.model_validate(case.model.options)
    artifact = source_cls().load(options, ctx)
    if not isinstance(artifact, ModelArtifact):
        raise BenchError(f"model source {case.model.source!r} returned {type(artifact).__name__}, not ModelArtifact")
    if not case.model.inputs:
        raise BenchError(f"model {case.model.label!r}: the case has no resolved inputs (was the suite validated?)")
    artifact.inputs = fixed_specs(case.model.inputs, case.batch, case.model.dims)
    return artifact


def apply_compressions(case: Case, artifact: ModelArtifact, host: PluginHost, ctx: ModelContext) -> ModelArtifact:
    """Apply the case's chain of compressions in order."""
    for step in case.compressions:
        cls = host.get("compressions", step.name).cls
        if "*" not in cls.formats and artifact.format not in cls.formats:
            raise BenchError(
                f"compression {step.name!r} takes {', '.join(cls.formats)} models, got {artifact.format!r}"
            )
        inputs = artifact.inputs
        artifact = cls().apply(artifact, cls.Options.model_validate(step.options), ctx)
        artifact.inputs = artifact.inputs or inputs
    return artifact


def conversion_path(fmt: str, wanted: tuple[str, ...], host: PluginHost) -> list[Provided] | None:
    """The shortest chain of converters from ``fmt`` to one of ``wanted`` (earlier ones preferred).

    ``[]`` when ``fmt`` is already wanted; ``None`` when no chain exists.
    """
    if fmt in wanted:
        return []
    converters = sorted(host.items["converters"].values(), key=lambda p: p.name)
    previous: dict[str, tuple[str, Provided]] = {}
    queue = deque([fmt])
    seen = {fmt}
    reached: list[str] = []
    while queue and not reached:
        for _ in range(len(queue)):  # one breadth level at a time, so every shortest path is found
            current = queue.popleft()
            for provided in converters:
                target = provided.cls.target_format
                if current in provided.cls.source_formats and target not in seen:
                    seen.add(target)
                    previous[target] = (current, provided)
                    queue.append(target)
                    if target in wanted:
                        reached.append(target)
    if not reached:
        return None
    best = min(reached, key=wanted.index)
    path: list[Provided] = []
    while best != fmt:
        best, provided = previous[best]
        path.insert(0, provided)
    return path


def to_backend_format(
    artifact: ModelArtifact, formats: tuple[str, ...], backend: str, host: PluginHost, cache_dir: Path, label: str
) -> ModelArtifact:
    """Return ``artifact`` in a format the backend accepts, converting (through a chain if needed) and caching."""
    path = conversion_path(artifact.format, formats, host)
    if path is None:
        raise BenchError(
            f"backend {backend!r} takes {', '.join(formats)} models and no installed converter turns "
            f"{artifact.format!r} into one of them"
        )
    for provided in path:
        artifact = convert_cached(provided, artifact, cache_dir, label)
    return artifact


def convert_cached(provided: Provided, artifact: ModelArtifact, cache_dir: Path, label: str) -> ModelArtifact:
    """Convert with ``provided``'s converter, reusing an earlier output with the same key.

    The key hashes the model's content, its fixed input specs, the converter's
    name, version and own key, so a changed model or converter never hits a
    stale file.  A failure names the conversion: ``converting MODEL to FORMAT
    with CONVERTER failed: ...``.
    """
    converter = provided.cls()
    what = f"converting {label} ({artifact.format}) to {converter.target_format} with {provided.name}"
    try:
        key_text = "\n".join(
            [
                artifact.content_hash,
                provided.name,
                provided.plugin.version,
                converter.cache_key(artifact),
                *(spec.model_dump_json() for spec in artifact.inputs),
            ]
        )
        key = hashlib.sha256(key_text.encode()).hexdigest()[:32]
        out = cache_dir / "converted" / f"{key}{converter.suffix}"
        hit = out.exists()
        if not hit:
            out.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=converter.suffix, dir=out.parent)
            os.close(fd)
            try:
                converter.convert(artifact, Path(tmp))
                os.replace(tmp, out)  # atomic: a concurrent or interrupted conversion never leaves half a file
            finally:
                Path(tmp).unlink(missing_ok=True)
    except Exception as exc:  # noqa: BLE001 - whatever failed, the message names the conversion
        detail = str(exc).strip().splitlines()
        raise BenchError(f"{what} failed: {type(exc).__name__}: {detail[0] if detail else ''}".rstrip(": ")) from exc
    chain = [*artifact.info.get("conversions", []), provided.name]
    info = dict(artifact.info, converted_by=provided.name, conversions=chain, conversion_cache_hit=hit)
    info.pop("size_bytes", None)
    return ModelArtifact(
        format=converter.target_format,
        content_hash=file_hash(out),
        path=out,
        inputs=artifact.inputs,
        info=info,
    )


__all__ = [
    "apply_compressions",
    "conversion_path",
    "convert_cached",
    "default_cache_dir",
    "file_hash",
    "load_model",
    "to_backend_format",
]
