"""``benchharness inspect``: a model's inputs and outputs as the harness reads them, without loading it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from benchharness.api import ModelContext
from benchharness.errors import BenchError, SuiteError, unknown_name
from benchharness.plugins import Provided, plugin_code
from benchharness.signature import BATCH_DIM, ModelSignature, TensorSpec

if TYPE_CHECKING:
    from benchharness.plugins import PluginHost

SUITE_SUFFIXES = (".yaml", ".yml")


def inspect_path(path: Path, host: PluginHost, source: str | None = None) -> list[tuple[str, ModelSignature]]:
    """(label, signature) of a model file, or of every model of a suite file."""
    from pydantic import ValidationError

    if not path.exists():
        raise BenchError(f"{path}: no such file")
    if path.suffix.lower() in SUITE_SUFFIXES and source is None:
        return _suite_models(path, host)
    provided = _source_for(path, host, source)
    try:
        # Absolute: a relative path would be resolved against its own folder again (``m/m/x.onnx``).
        options = provided.cls.Options.model_validate({"path": str(path.resolve())})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BenchError(
            f"{path}: model source {provided.name!r} does not read files ({where}: {first['msg']})"
        ) from None
    return [(path.name, _describe(provided, options, path.resolve().parent, label=path.name))]


def _source_for(path: Path, host: PluginHost, name: str | None) -> Provided:
    if name is not None:
        return host.get("model_sources", name)
    suffix = path.suffix.lower()
    for provided in host.items["model_sources"].values():
        if suffix in provided.cls.file_suffixes:
            return provided
    readers = {s: p.name for p in host.items["model_sources"].values() for s in p.cls.file_suffixes}
    listing = ", ".join(f"{s} ({n})" for s, n in sorted(readers.items())) or "none installed"
    what = f"{suffix} files" if suffix else "files without a suffix"
    raise BenchError(f"{path}: no model source reads {what}; they read: {listing}")


def _describe(provided: Provided, options: object, base_dir: Path, label: str) -> ModelSignature:
    from benchharness.models import default_cache_dir

    ctx = ModelContext(base_dir=base_dir, cache_dir=default_cache_dir(), seed=0)
    with plugin_code(provided, "describe"):
        signature = provided.cls().describe(options, ctx)
    if signature is None:
        raise BenchError(f"{label}: model source {provided.name!r} cannot describe its models without loading them")
    return signature


def _suite_models(path: Path, host: PluginHost) -> list[tuple[str, ModelSignature]]:
    """Every model of a suite, described; the suite need not validate yet (that is what inspect is for)."""
    from pydantic import ValidationError

    from benchharness.suite import Suite
    from benchharness.yamlfile import load_yaml

    doc = load_yaml(path)
    try:
        suite = Suite.model_validate(doc.data)
    except ValidationError:
        raise BenchError(f"{path}: not a valid suite; run: benchharness validate {path}") from None
    out = []
    for i, entry in enumerate(suite.models):
        provided = host.items["model_sources"].get(entry.source)
        if provided is None:
            raise SuiteError(
                [
                    doc.error(
                        ("models", i, "source"), unknown_name("model source", entry.source, host.items["model_sources"])
                    )
                ]
            )
        try:
            options = provided.cls.Options.model_validate(entry.options())
        except ValidationError as exc:
            raise SuiteError([doc.error(("models", i), str(exc).splitlines()[0])]) from None
        with plugin_code(provided, "default_name"):
            label = entry.name or provided.cls().default_name(options)
        try:
            out.append((label, _describe(provided, options, path.resolve().parent, label)))
        except BenchError as exc:
            raise SuiteError([doc.error(("models", i), str(exc))]) from None
    return out


def render_signature(label: str, sig: ModelSignature) -> str:
    """A model's signature as text: a header of facts, the inputs, the outputs, and the dims to set."""
    from tabulate import tabulate

    facts = [sig.format]
    if "opset" in sig.details:
        facts.append(f"opset {sig.details['opset']}")
    if sig.parameters is not None:
        facts.append(f"{sig.parameters:,} parameters")
    if "file_bytes" in sig.details:
        facts.append(_size_text(int(sig.details["file_bytes"])))
    lines = [f"{label} ({', '.join(facts)})"]
    if "forward" in sig.details:
        lines.append(str(sig.details["forward"]))
    lines += ["", "inputs:", _table(sig.inputs, sig.optional_inputs, tabulate)]
    if sig.outputs:
        lines += ["", "outputs:", _table(sig.outputs, [], tabulate)]
    symbols: list[str] = []
    for spec in sig.inputs:
        symbols += [name for name in spec.symbols() if name not in symbols]
    dims = [name for name in symbols if name != BATCH_DIM]
    lines.append("")
    if BATCH_DIM in symbols:
        lines.append("batch: the suite's batch_sizes")
    if dims:
        lines.append(
            f"dims to set in the suite: {', '.join(dims)}   e.g. dims: {{{', '.join(f'{d}: 1' for d in dims)}}}"
        )
    if any(spec.shape is None for spec in sig.inputs):
        lines.append("shapes unknown: declare each input's shape under 'inputs' in the suite")
    return "\n".join(lines).rstrip()


def _size_text(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"


def _table(specs: list[TensorSpec], optional: list[str], tabulate: object) -> str:
    rows = []
    for spec in specs:
        shape = "?" if spec.shape is None else "[" + ", ".join(str(d) for d in spec.shape) + "]"
        rows.append([spec.name, spec.dtype or "?", shape, "optional" if spec.name in optional else ""])
    text = tabulate(rows, headers=["name", "dtype", "shape", ""], tablefmt="plain")  # type: ignore[operator]
    return "\n".join("  " + line.rstrip() for line in text.splitlines())
