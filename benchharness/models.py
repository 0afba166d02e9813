"""Turn a case's model spec into the artifact its backend runs: load, compress, convert (cached)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchharness.api import CompressionContext, ModelArtifact, ModelContext, file_hash
from benchharness.errors import BenchError
from benchharness.fileio import atomic_path, atomic_write_text, exclusive_lock
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


def apply_compressions(
    case: Case,
    artifact: ModelArtifact,
    host: PluginHost,
    ctx: CompressionContext,
    warn: Callable[[str], None] | None = None,
) -> ModelArtifact:
    """Apply the case's chain of compressions in order, each cached (see :class:`~benchharness.api.Compression`).

    A model in a format the step does not take is converted first (cached, as
    for a backend).  Each step's record (its name, the facts it noted, whether
    it came from the cache, how long it took) is appended to the artifact's
    ``info["compressions"]``.
    """
    for step in case.compressions:
        if step.name == "none":  # the baseline: the model as its source gives it, nothing to compute or cache
            continue
        provided = host.get("compressions", step.name)
        cls = provided.cls
        if "*" not in cls.formats and artifact.format not in cls.formats:
            artifact = to_backend_format(
                artifact, cls.formats, step.name, host, ctx.cache_dir, case.model.label, warn, who="compression"
            )
        options = cls.Options.model_validate(step.options)
        reads = cls().reads_data(options)
        data = case.model.dataset.model_dump(mode="json") if reads and case.model.dataset else None
        artifact = compress_cached(provided, artifact, options, ctx, step.label, data, warn)
    return artifact


def compress_cached(
    provided: Provided,
    artifact: ModelArtifact,
    options: Any,
    ctx: CompressionContext,
    label: str,
    data: dict[str, Any] | None,
    warn: Callable[[str], None] | None = None,
) -> ModelArtifact:
    """One compression step: restored from ``<cache>/compressed/<key>/`` when there, else applied and cached.

    The folder holds the files :meth:`Compression.save` wrote and
    ``record.json`` (format, the facts noted, each file's size and sha256, the
    time it took).  It is built in a temporary folder and renamed into place
    under an exclusive lock on ``<key>.lock``, so a second process asking for
    the same variant waits and then finds it.  A folder whose files no longer
    match their record is built again (``warn`` says why).  The restored
    artifact's ``content_hash`` is the hash of its files' hashes, so what
    follows (conversions) is cached by what is really there.
    """
    import shutil
    import tempfile
    import time

    compression = provided.cls()
    what = f"compressing {ctx.model_label} with {label}"
    try:
        key_text = json.dumps(
            {
                "model": artifact.content_hash,
                "format": artifact.format,
                "compression": provided.name,
                "plugin": provided.plugin.name,
                "version": provided.plugin.version,
                "options": options.model_dump(mode="json", exclude={"label"}),
                "key": compression.cache_key(options),
                "data": data,
                "seed": ctx.seed,
            },
            sort_keys=True,
        )
        key = hashlib.sha256(key_text.encode()).hexdigest()[:32]
        root = ctx.cache_dir / "compressed"
        root.mkdir(parents=True, exist_ok=True)
        folder = root / key
        with exclusive_lock(root / f"{key}.lock") as locked:
            if locked:
                for orphan in root.glob(f".{key}.*"):
                    shutil.rmtree(orphan, ignore_errors=True)
            record, rebuilt = _verified_folder(folder)
            hit = record is not None
            if record is None:
                if rebuilt and warn is not None:
                    warn(f"compression cache: {folder} ({ctx.model_label}, {label}): {rebuilt}; rebuilt it")
                shutil.rmtree(folder, ignore_errors=True)
                tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}."))
                started = time.perf_counter()
                step_ctx = CompressionContext(
                    base_dir=ctx.base_dir, cache_dir=ctx.cache_dir, seed=ctx.seed, model_label=ctx.model_label,
                    dataset_loader=ctx.dataset_loader,
                )  # fmt: skip
                out = compression.apply(artifact, options, step_ctx)
                if not isinstance(out, ModelArtifact):
                    raise BenchError(f"compression {provided.name!r} returned {type(out).__name__}, not ModelArtifact")
                main = compression.save(out, tmp)
                files = {f.name: {"sha256": file_hash(f), "size": f.stat().st_size} for f in sorted(tmp.iterdir())}
                if main.parent != tmp or main.name not in files:
                    raise BenchError(f"compression {provided.name!r}: save() must return a file it wrote in its folder")
                record = {
                    "format": out.format,
                    "main": main.name,
                    "files": files,
                    "facts": json.loads(json.dumps(step_ctx.facts, default=str)),
                    "info": json.loads(json.dumps(_own_info(out.info), default=str)),
                    "seconds": round(time.perf_counter() - started, 3),
                    "compression": provided.name,
                    "plugin": provided.plugin.name,
                    "plugin_version": provided.plugin.version,
                    "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                }
                atomic_write_text(tmp / RECORD, json.dumps(record, indent=1) + "\n")
                os.replace(tmp, folder)
        restored = compression.restore(folder / record["main"], record["format"], dict(record["info"]))
    except BenchError as exc:
        raise BenchError(f"{what}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - whatever failed, the message names the compression
        detail = str(exc).strip().splitlines()
        raise BenchError(f"{what} failed: {type(exc).__name__}: {detail[0] if detail else ''}".rstrip(": ")) from exc
    digests = "".join(f"{name}:{f['sha256']}" for name, f in sorted(record["files"].items()))
    restored.content_hash = hashlib.sha256(digests.encode()).hexdigest()
    restored.inputs = artifact.inputs
    step = {"name": label, "compression": provided.name, **record["facts"], "seconds": record["seconds"],
            "cache_hit": hit}  # fmt: skip
    chain = [*artifact.info.get("compressions", []), step]
    inherited = {k: v for k, v in _own_info(artifact.info).items() if k not in ("size_bytes", "parameters")}
    restored.info = {**inherited, **restored.info, "compressions": chain}  # the source's facts (training) stay
    return restored


#: The record a cached compression's folder holds beside its files.
RECORD = "record.json"


def _own_info(info: dict[str, Any]) -> dict[str, Any]:
    """An artifact's info without what the core adds per case (conversions, the chain of compressions)."""
    skip = {"compressions", "converted_by", "conversions", "conversion_cache_hit", "conversion_cache_rebuilt"}
    return {k: v for k, v in info.items() if k not in skip}


def _verified_folder(folder: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``(record, None)`` for a cached variant whose files match its record, else ``(None, why it is not used)``."""
    if not folder.exists():
        return None, None
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        files = record["files"]
        for name, expected in files.items():
            path = folder / name
            if not path.is_file():
                return None, f"{name} is missing"
            if path.stat().st_size != expected["size"] or file_hash(path) != expected["sha256"]:
                return None, f"{name} differs from the file recorded when it was written"
        if record["main"] not in files:
            return None, "its record names no model file"
    except FileNotFoundError:
        return None, f"it has no {RECORD}"
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return None, f"its {RECORD} is unreadable: {type(exc).__name__}"
    return record, None


def variant_blocker(case: Case, host: PluginHost) -> str | None:
    """Why the case's variant cannot run on its backend (a skip's reason), or ``None`` when it can.

    Follows the model's format through each compression (converting where a
    step takes another format, as :func:`apply_compressions` does), asks each
    step's :meth:`~benchharness.api.Compression.unsupported_backend`, and checks
    that the last format reaches one the backend takes.  Cheap: imports no
    framework.
    """
    from benchharness.plugins import plugin_code

    source = host.get("model_sources", case.model.source)
    with plugin_code(source, "output_format"):
        fmt = source.cls().output_format(source.cls.Options.model_validate(case.model.options))
    backend = host.get("backends", case.backend.name).cls
    for step in case.compressions:
        provided = host.get("compressions", step.name)
        cls = provided.cls
        if "*" not in cls.formats and fmt not in cls.formats:
            path = conversion_path(fmt, cls.formats, host)
            if path is None:
                return (
                    f"compression {step.label!r} takes {', '.join(cls.formats)} models; model {case.model.label!r} "
                    f"is {fmt} at that step and no installed converter turns it into one of them"
                )
            fmt = path[-1].cls.target_format
        options = cls.Options.model_validate(step.options)
        with plugin_code(provided, "output_format"):
            fmt = cls().output_format(fmt)
        with plugin_code(provided, "unsupported_backend"):
            reason = cls().unsupported_backend(case.backend.name, options)
        if reason:
            return f"compression {step.label!r}: {reason}"
    if conversion_path(fmt, backend.formats, host) is None:
        return (
            f"variant {case.variant!r} is a {fmt} model; backend {case.backend.label!r} takes "
            f"{', '.join(backend.formats)} models and no installed converter turns it into one of them"
        )
    return None


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
    artifact: ModelArtifact,
    formats: tuple[str, ...],
    backend: str,
    host: PluginHost,
    cache_dir: Path,
    label: str,
    warn: Callable[[str], None] | None = None,
    who: str = "backend",
) -> ModelArtifact:
    """Return ``artifact`` in a format the backend accepts, converting (through a chain if needed) and caching.

    ``warn`` receives a one-line message for each cached file that failed its
    check and was rebuilt (see :func:`convert_cached`).
    """
    path = conversion_path(artifact.format, formats, host)
    if path is None:
        raise BenchError(
            f"{who} {backend!r} takes {', '.join(formats)} models and no installed converter turns "
            f"{artifact.format!r} into one of them"
        )
    for provided in path:
        artifact = convert_cached(provided, artifact, cache_dir, label, warn)
    return artifact


def convert_cached(
    provided: Provided,
    artifact: ModelArtifact,
    cache_dir: Path,
    label: str,
    warn: Callable[[str], None] | None = None,
) -> ModelArtifact:
    """Convert with ``provided``'s converter, reusing an earlier output with the same key once it is verified.

    The key hashes the model's content, its fixed input specs, the converter's
    name, version and own key, so a changed model or converter never hits a
    stale file.  The output lies in ``cache_dir/converted/<key><suffix>``, with
    a record beside it (``<key><suffix>.json``: sha256, size, converter, plugin
    version, creation time) written after it.  A cached file is used only
    when its size and sha256 match its record; a file that differs (replaced,
    truncated), has no readable record, or a record whose file is gone is
    rebuilt, and ``warn`` (if given) receives one line saying why.  The
    artifact's ``info`` says what happened: ``conversion_cache_hit`` (this
    hop's) and, after a rebuild, ``conversion_cache_rebuilt`` (the reasons,
    gathered over the hops of a chain).  ``content_hash`` is the verified
    sha256 of the file handed on.

    Check, conversion and write happen under an exclusive lock on
    ``<key><suffix>.lock`` (``fcntl.flock``; none where the platform or the
    file system has no locks), so a second process converting the same model
    waits and then finds the first one's verified output.  Both files are written atomically
    (:func:`benchharness.fileio.atomic_path`) with the mode ``0o666 & ~umask``;
    the ``.<key>.*`` temporary files of an interrupted conversion are never
    read, and are removed by the next holder of the lock.  The lock file
    stays.  A failure names the conversion: ``converting MODEL to FORMAT with
    CONVERTER failed: ...``.
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
        facts = {"converter": provided.name, "plugin": provided.plugin.name, "plugin_version": provided.plugin.version}
        digest, hit, rebuilt = build_cached(
            out,
            lambda tmp: converter.convert(artifact, tmp),
            facts,
            key=key,
            suffix=converter.suffix,
            producer="the converter",
        )
    except Exception as exc:  # noqa: BLE001 - whatever failed, the message names the conversion
        detail = str(exc).strip().splitlines()
        raise BenchError(f"{what} failed: {type(exc).__name__}: {detail[0] if detail else ''}".rstrip(": ")) from exc
    chain = [*artifact.info.get("conversions", []), provided.name]
    info = dict(artifact.info, converted_by=provided.name, conversions=chain, conversion_cache_hit=hit)
    info.pop("size_bytes", None)
    if rebuilt:
        if warn is not None:
            warn(f"conversion cache: {out} ({label}, {provided.name}): {rebuilt}; rebuilt it")
        earlier = artifact.info.get("conversion_cache_rebuilt")
        info["conversion_cache_rebuilt"] = f"{earlier}; {rebuilt}" if earlier else rebuilt
    return ModelArtifact(
        format=converter.target_format,
        content_hash=digest,
        path=out,
        inputs=artifact.inputs,
        info=info,
    )


def _verified(out: Path, record: Path) -> tuple[str | None, str | None]:
    """``(sha256, None)`` for a cached file that matches its record, else ``(None, why it is not used)``.

    The reason is ``None`` for a plain miss (neither file there).
    """
    if not out.exists() and not record.exists():
        return None, None
    if not out.exists():
        return None, f"the cached file is missing but its record {record.name} exists"
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, (
            f"the cached file has no record ({record.name}): written by an older benchharness, "
            "interrupted before its record was written, or the record was deleted"
        )
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"the cached file's record {record.name} is unreadable: {type(exc).__name__}"
    if not (isinstance(data, dict) and isinstance(data.get("sha256"), str) and isinstance(data.get("size"), int)):
        return None, f"the cached file's record {record.name} lacks its sha256 or size"
    try:
        if not out.is_file():
            return None, "the cached path is not a regular file"
        size = out.stat().st_size
        if size != data["size"]:
            return None, (
                f"the cached file's size ({size} bytes) differs from the one recorded when it was written "
                f"({data['size']} bytes)"
            )
        digest = file_hash(out)
    except OSError as exc:
        return None, f"the cached file cannot be read: {type(exc).__name__}: {exc.strerror or exc}"
    if digest != data["sha256"]:
        return None, "the cached file's sha256 differs from the one recorded when it was written"
    return digest, None


def build_cached(
    out: Path,
    build: Callable[[Path], None],
    facts: dict[str, Any],
    *,
    key: str | None = None,
    suffix: str | None = None,
    producer: str = "the build",
) -> tuple[str, bool, str | None]:
    """The file ``out``, built by ``build`` unless a verified copy is there: ``(sha256, hit, why it was rebuilt)``.

    Under an exclusive lock on ``OUT.lock``: temporary files an interrupted
    build left (``.KEY.*SUFFIX``; ``key`` defaults to ``out``'s name, ``suffix`` to
    its suffix, which a writer that looks at the extension needs) are removed,
    ``out`` is checked against its record ``OUT.json`` (size and sha256), and
    on a miss ``build(tmp)`` writes a temporary file that is renamed to ``out``
    (:func:`benchharness.fileio.atomic_path`), then the record is written with
    ``facts`` and the creation time.  See :func:`convert_cached`.
    """
    key = key or out.name
    record = out.with_name(out.name + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out.with_name(out.name + ".lock")) as locked:
        if locked:  # no other writer can be running: any temporary file of this key is an orphan
            _remove_orphans(out.parent, key)
        digest, rebuilt = _verified(out, record)
        if digest is not None:
            return digest, True, rebuilt
        with atomic_path(out, prefix=f".{key}.", suffix=out.suffix if suffix is None else suffix) as tmp:
            build(tmp)
            if not tmp.is_file() or tmp.stat().st_size == 0:
                raise BenchError(f"{producer} wrote nothing to its output path")
            digest = file_hash(tmp)
        data = {"sha256": digest, "size": out.stat().st_size, **facts}
        data["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        atomic_write_text(record, json.dumps(data, indent=1) + "\n")
    return digest, False, rebuilt


def _remove_orphans(folder: Path, key: str) -> None:
    """Remove the temporary files an interrupted conversion of ``key`` left behind."""
    for path in folder.glob(f".{key}.*"):
        path.unlink(missing_ok=True)


__all__ = [
    "apply_compressions",
    "compress_cached",
    "variant_blocker",
    "build_cached",
    "conversion_path",
    "convert_cached",
    "default_cache_dir",
    "file_hash",
    "load_model",
    "to_backend_format",
]
