"""Turn a case's model spec into the artifact its backend runs: load, compress, convert (cached)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from benchharness.api import ModelArtifact, ModelContext
from benchharness.errors import BenchError
from benchharness.inputs import fixed_specs
from benchharness.plan import Case
from benchharness.plugins import PluginHost, Provided


def load_model(case: Case, host: PluginHost, ctx: ModelContext) -> ModelArtifact:
    """Load the case's model from its source and fix its input shapes."""
    source_cls = host.get("model_sources", case.model.source).cls
    source = source_cls()
    options = source_cls.Options.model_validate(case.model.options)
    artifact = source.load(options, ctx)
    specs = case.model.inputs or source.default_inputs(options, artifact)
    if not specs:
        raise BenchError(
            f"model {case.model.label!r}: source {case.model.source!r} cannot tell its inputs; list them under 'inputs'"
        )
    artifact.inputs = fixed_specs(specs, case.batch, case.model.dims)
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


def to_backend_format(
    artifact: ModelArtifact, formats: tuple[str, ...], backend: str, host: PluginHost, cache_dir: Path
) -> ModelArtifact:
    """Return ``artifact`` in a format the backend accepts, converting once and caching on disk."""
    if artifact.format in formats:
        return artifact
    for wanted in formats:
        for provided in host.items["converters"].values():
            if provided.cls.target_format == wanted and artifact.format in provided.cls.source_formats:
                return convert_cached(provided, artifact, cache_dir)
    raise BenchError(
        f"backend {backend!r} takes {', '.join(formats)} models and no installed converter turns "
        f"{artifact.format!r} into one of them"
    )


def convert_cached(provided: Provided, artifact: ModelArtifact, cache_dir: Path) -> ModelArtifact:
    """Convert with ``provided``'s converter, reusing an earlier output with the same key.

    The key hashes the model's content, its fixed input specs, the converter's
    name, version and own key, so a changed model or converter never hits a
    stale file.
    """
    converter = provided.cls()
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
    info = dict(artifact.info, converted_by=provided.name, conversion_cache_hit=hit)
    info.pop("size_bytes", None)
    return ModelArtifact(
        format=converter.target_format,
        content_hash=file_hash(out),
        path=out,
        inputs=artifact.inputs,
        info=info,
    )


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
