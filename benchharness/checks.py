"""Check a suite's models before anything runs: inputs, dimensions, and which backend can take which model.

Each model source describes its model in the CLI process, reading only what
it must (``ModelSource.describe``).  The suite's ``inputs`` are merged into
that description: a declared input must exist in the model, with the same
rank, fixed sizes and dtype; every dynamic dimension must get a value; each
``dims`` key must name a dimension the model has.  Then every pairing of a
model variant with a backend that survives ``include``/``exclude`` must have
a path of converters to a format the backend takes.  Every problem is one
``file:line path: message`` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from benchharness.api import ModelContext
from benchharness.case import ModelSpec
from benchharness.errors import BenchError
from benchharness.plugins import plugin_code
from benchharness.signature import BATCH_DIM, InputSpec, ModelSignature, TensorSpec
from benchharness.yamlfile import Loc, LocatedDocument

if TYPE_CHECKING:
    from benchharness.plugins import PluginHost
    from benchharness.suite import LoadedSuite, ModelEntry, Suite

DEFAULT_DTYPE = "float32"


def resolve_models(
    doc: LocatedDocument, suite: Suite, host: PluginHost, base_dir: Path
) -> tuple[list[ModelSpec], list[str]]:
    """Each model's label and merged inputs, and one line per problem."""
    from benchharness.models import default_cache_dir

    specs: list[ModelSpec] = []
    problems: list[str] = []
    ctx = ModelContext(base_dir=base_dir, cache_dir=default_cache_dir(), seed=suite.measure.seed)
    for i, entry in enumerate(suite.models):
        loc: Loc = ("models", i)
        provided = host.get("model_sources", entry.source)
        source = provided.cls()
        options = provided.cls.Options.model_validate(entry.options())
        try:
            with plugin_code(provided, "default_name"):
                label = entry.name or source.default_name(options)
            with plugin_code(provided, "describe"):
                signature = source.describe(options, ctx)
            if signature is not None and not isinstance(signature, ModelSignature):
                raise BenchError(
                    f"plugin {provided.plugin.name!r} (model source {provided.name!r}) failed in describe: "
                    f"returned {type(signature).__name__}, expected ModelSignature or None"
                )
        except BenchError as exc:
            problems.append(doc.error(_path_loc(doc, loc), str(exc)))
            specs.append(ModelSpec(label=entry.name or entry.source, source=entry.source, options=entry.options()))
            continue
        inputs, input_problems = merge_inputs(doc, loc, label, entry, signature)
        problems += input_problems
        if not input_problems:
            problems += check_dims(doc, loc, label, inputs, entry.dims)
        specs.append(
            ModelSpec(label=label, source=entry.source, options=entry.options(), inputs=inputs, dims=entry.dims)
        )
    problems += _check_unique_models(doc, [s.label for s in specs])
    return specs, problems


def _path_loc(doc: LocatedDocument, loc: Loc) -> Loc:
    """A model's ``path`` option when it has one (file errors point there), else the model."""
    _, index = loc
    entry = doc.data["models"][index]
    return loc + ("path",) if isinstance(entry, dict) and "path" in entry else loc


def merge_inputs(
    doc: LocatedDocument, loc: Loc, label: str, entry: ModelEntry, signature: ModelSignature | None
) -> tuple[list[InputSpec], list[str]]:
    """The suite's declared inputs merged into the source's description, checked against it."""
    declared = entry.inputs
    problems: list[str] = []
    if signature is None:
        if declared is None:
            message = (
                f"model {label!r}: source {entry.source!r} cannot tell the model's inputs; list them under 'inputs'"
            )
            return [], [doc.error(loc, message)]
        for j, spec in enumerate(declared):
            if spec.shape is None:
                problems.append(
                    doc.error(
                        loc + ("inputs", j), f"input {spec.name!r} needs a 'shape': the source does not describe it"
                    )
                )
        return [_completed(spec) for spec in declared], problems

    described = {spec.name: spec for spec in signature.inputs}
    overrides: dict[str, InputSpec] = {}
    for j, spec in enumerate(declared or []):
        here = loc + ("inputs", j)
        model_spec = described.get(spec.name)
        if model_spec is None:
            names = ", ".join(described) or "none"
            problems.append(
                doc.error(here + ("name",), f"model {label!r} has no input {spec.name!r}; its inputs: {names}")
            )
            continue
        if spec.name in overrides:
            problems.append(doc.error(here + ("name",), f"input {spec.name!r} is declared twice"))
            continue
        problems += _compare(doc, here, spec, model_spec)
        overrides[spec.name] = spec
    merged: list[InputSpec] = []
    unknown_shapes: list[str] = []
    for model_spec in signature.inputs:
        spec = overrides.get(model_spec.name)
        if spec is None and model_spec.name in signature.optional_inputs:
            continue
        fields = {"shape": model_spec.shape, "dtype": model_spec.dtype}
        if spec is not None:
            fields = {k: v for k, v in fields.items() if getattr(spec, k) is None}
            merged_spec = spec.model_copy(update=fields)
        else:
            merged_spec = InputSpec(name=model_spec.name, **fields)
        if merged_spec.shape is None:
            unknown_shapes.append(model_spec.name)
        merged.append(_completed(merged_spec))
    if unknown_shapes:
        names = ", ".join(unknown_shapes)
        problems.append(
            doc.error(
                loc + ("inputs",) if declared is not None else loc,
                f"model {label!r}: the {signature.format} schema names input(s) {names} but gives no shapes; "
                "declare each under 'inputs' with its 'shape'",
            )
        )
    return merged, problems


def _completed(spec: InputSpec) -> InputSpec:
    return spec if spec.dtype is not None else spec.model_copy(update={"dtype": DEFAULT_DTYPE})


def _compare(doc: LocatedDocument, here: Loc, spec: InputSpec, model_spec: TensorSpec) -> list[str]:
    """A declared input against the model's: rank, fixed sizes and dtype must agree."""
    problems = []
    theirs = model_spec.shape
    if spec.shape is not None and theirs is not None:
        if len(spec.shape) != len(theirs):
            problems.append(
                doc.error(
                    here + ("shape",),
                    f"input {spec.name!r} has rank {len(theirs)} in the model {_shape_text(theirs)}, "
                    f"not {len(spec.shape)}",
                )
            )
        else:
            for index, (mine, model_dim) in enumerate(zip(spec.shape, theirs)):
                if isinstance(mine, int) and isinstance(model_dim, int) and mine != model_dim:
                    problems.append(
                        doc.error(
                            here + ("shape",),
                            f"input {spec.name!r}: dimension {index} is {model_dim} in the model "
                            f"{_shape_text(theirs)}, not {mine}",
                        )
                    )
    their_dtype = model_spec.dtype
    if spec.dtype is not None and their_dtype is not None and spec.dtype != their_dtype:
        problems.append(
            doc.error(here + ("dtype",), f"input {spec.name!r} is {their_dtype} in the model, not {spec.dtype}")
        )
    return problems


def _shape_text(shape: list[int | str]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def check_dims(doc: LocatedDocument, loc: Loc, label: str, inputs: list[InputSpec], dims: dict[str, int]) -> list[str]:
    """Every dynamic dimension has a value, and every ``dims`` key names one."""
    symbols: dict[str, str] = {}  # dimension -> first input that has it
    for spec in inputs:
        for name in spec.symbols():
            symbols.setdefault(name, spec.name)
    problems = []
    dynamic = [name for name in symbols if name != BATCH_DIM]
    listing = ", ".join(dynamic) or "none besides 'batch'"
    for name in dynamic:
        if name not in dims:
            shape = _shape_text(next(s.shape for s in inputs if s.name == symbols[name]) or [])
            problems.append(
                doc.error(
                    loc + ("dims",) if dims else loc,
                    f"model {label!r}: dimension {name!r} of input {symbols[name]!r} {shape} has no value; "
                    f"set it under 'dims' (the model's dynamic dimensions: {listing})",
                )
            )
    for name in dims:
        if name not in symbols or name == BATCH_DIM:
            why = "is set by batch_sizes" if name == BATCH_DIM else f"is not a dimension of any input of {label!r}"
            problems.append(
                doc.error(loc + ("dims", name), f"{name!r} {why}; the model's dynamic dimensions: {listing}")
            )
    return problems


def _check_unique_models(doc: LocatedDocument, labels: list[str]) -> list[str]:
    problems = []
    for i, label in enumerate(labels):
        if label in labels[:i]:
            first = labels.index(label)
            problems.append(
                doc.error(
                    ("models", i), f"duplicate model {label!r} (also models[{first}]); give each a distinct 'name'"
                )
            )
    return problems


def check_pairings(doc: LocatedDocument, loaded: LoadedSuite, host: PluginHost) -> list[str]:
    """Every model variant that a case pairs with a backend reaches a format that backend takes."""
    from benchharness.models import conversion_path, variant_blocker
    from benchharness.plan import expand
    from benchharness.suite import as_entry

    suite = loaded.suite
    assert loaded.models is not None
    formats: dict[str, str] = {}
    problems: list[str] = []
    for i, (entry, spec) in enumerate(zip(suite.models, loaded.models)):
        provided = host.get("model_sources", entry.source)
        try:
            with plugin_code(provided, "output_format"):
                formats[spec.label] = provided.cls().output_format(provided.cls.Options.model_validate(spec.options))
        except BenchError as exc:
            problems.append(doc.error(("models", i), str(exc)))
    if problems:
        return problems
    backend_index = {as_entry(b).label: i for i, b in enumerate(suite.backends)}
    seen: set[tuple[str, str, str]] = set()
    for case in expand(loaded):
        key = (case.model.label, case.variant, case.backend.label)
        if key in seen:
            continue
        seen.add(key)
        fmt = formats[case.model.label]
        backend = host.get("backends", case.backend.name).cls
        where: Loc = ("backends", backend_index[case.backend.label])
        if any(step.name != "none" for step in case.compressions):
            try:
                variant_blocker(case, host)  # a variant its backend cannot run is a skip at run time, not an error
            except BenchError as exc:
                problems.append(doc.error(("compressions",), str(exc)))
            continue
        if conversion_path(fmt, backend.formats, host) is None:
            problems.append(
                doc.error(
                    where,
                    f"backend {case.backend.label!r} takes {', '.join(backend.formats)} models and no installed "
                    f"converter turns model {case.model.label!r} ({fmt}) into one of them; "
                    f"exclude the pair: {{model: {case.model.label}, backend: {case.backend.label}}}",
                )
            )
    return problems
