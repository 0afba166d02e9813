"""Suites: YAML files validated by pydantic, then checked against the installed plugins.

Validation has two passes.  The first checks the suite's own shape (this
module's models, extra keys forbidden).  The second looks up every backend,
target, model source, compression and metric by name and validates the rest of
its entry against that plugin's ``Options``.  Every problem becomes one line:
``file:line field.path: message``.
"""

from __future__ import annotations

import hashlib
import json
import re
import types
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

import pydantic_core
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveInt,
    StringConstraints,
    Tag,
    ValidationError,
    model_validator,
)

from benchharness.case import DatasetSpec, Selector
from benchharness.errors import SuiteError, did_you_mean, unknown_name
from benchharness.settings import MeasureSettings
from benchharness.signature import InputSpec
from benchharness.strict import StrictModel
from benchharness.yamlfile import Loc, LocatedDocument, load_yaml

if TYPE_CHECKING:
    from benchharness.case import ModelSpec
    from benchharness.plugins import PluginHost


class Strict(StrictModel):
    """Base of the suite's models: unknown keys, booleans for numbers and non-finite numbers are errors."""


class PluginEntry(StrictModel):
    """A suite entry naming a plugin item; its other keys are that item's options."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _name_as_key(cls, value: Any) -> Any:
        """``{prune-channels: {amount: 0.5}}`` is a natural guess; say how the entry is written instead."""
        if isinstance(value, dict) and "name" not in value and len(value) == 1:
            ((key, options),) = value.items()
            if isinstance(key, str) and (options is None or isinstance(options, dict)):
                inner = ", ".join(f"{k}: {v}" for k, v in (options or {}).items())
                raise ValueError(
                    f"the name goes under 'name': write {{name: {key}{', ' + inner if inner else ''}}}, "
                    f"not {{{key}: {{{inner}}}}}"
                )
        return value

    def options(self) -> dict[str, Any]:
        """The keys other than ``name``."""
        return dict(self.model_extra or {})

    @property
    def label(self) -> str:
        """The entry's name in case ids: its ``label`` option, else its name."""
        return str(self.options().get("label") or self.name)


class ModelEntry(StrictModel):
    """A model: its source plugin, optional label and inputs; the other keys go to the source."""

    model_config = ConfigDict(extra="allow")
    source: str = Field(min_length=1)
    name: str | None = None
    inputs: list[InputSpec] | None = Field(
        None, description="Override or complete the inputs the source describes; required when it describes none."
    )
    dims: dict[str, PositiveInt] = Field(default_factory=dict, description="Values of symbolic input dimensions.")
    dataset: DatasetSpec | None = Field(
        None, description="The dataset the model is scored on (accuracy, fidelity) and how its input is fed from it."
    )

    def options(self) -> dict[str, Any]:
        """The source's own options."""
        return dict(self.model_extra or {})


class CompressionStep(PluginEntry):
    """One compression in a variant's chain."""


def _entry_kind(value: Any) -> str:
    return "<list>" if isinstance(value, list) else "<name>" if isinstance(value, str) else "<step>"


#: A plugin item named alone: a name, never an empty string.
ItemName = Annotated[str, StringConstraints(min_length=1)]

# A callable discriminator validates each entry against the one member its type
# selects, so a bad entry gets one error, not one per union member.
StepEntry = Annotated[
    Annotated[ItemName, Tag("<name>")] | Annotated[CompressionStep, Tag("<step>")],
    Discriminator(_entry_kind),
]
VariantEntry = Annotated[
    Annotated[ItemName, Tag("<name>")]
    | Annotated[CompressionStep, Tag("<step>")]
    | Annotated[list[StepEntry], Tag("<list>")],
    Discriminator(_entry_kind),
]
#: A scenario or metric: its name, or a mapping with ``name`` and its options.
ItemEntry = Annotated[
    Annotated[ItemName, Tag("<name>")] | Annotated[PluginEntry, Tag("<step>")],
    Discriminator(_entry_kind),
]


def as_entry(item: str | PluginEntry) -> PluginEntry:
    """A name written alone as the entry it stands for."""
    return PluginEntry(name=item) if isinstance(item, str) else item


class Suite(Strict):
    """A suite: the cross product of its models, variants, backends, targets, scenarios and batch sizes."""

    name: str = Field(min_length=1)
    description: str = ""
    models: list[ModelEntry] = Field(min_length=1)
    compressions: list[VariantEntry] = Field(
        default_factory=lambda: ["none"],
        description="Variants; a list entry is a chain of compressions applied in order.",
    )
    backends: list[PluginEntry] = Field(min_length=1)
    targets: list[PluginEntry] = Field(default_factory=lambda: [PluginEntry(name="cpu")])
    scenarios: list[ItemEntry] = Field(
        default_factory=lambda: ["latency"], min_length=1, description="How load is offered; each owns the timed loop."
    )
    batch_sizes: list[PositiveInt] = Field(default_factory=lambda: [1], min_length=1)
    metrics: list[ItemEntry] = Field(
        default_factory=lambda: ["latency", "throughput", "model_size"],
        description="Figures to report: a scenario's outputs, observers and metrics, in order.",
    )
    measure: MeasureSettings = Field(default_factory=MeasureSettings)
    include: list[Selector] = Field(default_factory=list, description="Keep only cases matching one of these.")
    exclude: list[Selector] = Field(default_factory=list, description="Drop cases matching one of these.")
    baseline: Selector | None = Field(
        None, description="Ratios compare each case with the matching case; default: the first backend that ran."
    )


class LoadedSuite:
    """A validated suite with where it came from, and its models as resolved against the plugins."""

    def __init__(self, suite: Suite, path: Path, raw: dict[str, Any], models: list[ModelSpec] | None = None) -> None:
        self.suite = suite
        self.path = path
        self.raw = raw
        #: Each model's label, source, options and merged inputs; ``None`` until checked against plugins.
        self.models = models

    @property
    def hash(self) -> str:
        """SHA-256 of the suite's canonical JSON: formatting and comments do not change it."""
        canonical = json.dumps(self.raw, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _pydantic_problems(
    doc: LocatedDocument,
    exc: ValidationError,
    prefix: Loc = (),
    model: type[BaseModel] | None = None,
    entry_fields: tuple[str, ...] = (),
) -> list[str]:
    """One line per error of ``model`` (default: :class:`Suite`) validating the data at ``prefix``.

    ``entry_fields`` are the keys the suite entry itself takes besides ``model``'s (a backend's ``name``).
    """
    problems = []
    for err in exc.errors(include_url=False):
        loc = _user_loc(doc.data, prefix + tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            parent = loc[len(prefix) : -1]
            fields = _fields_at(model or Suite, parent)
            if fields is not None:
                known = fields + (entry_fields if not parent else ())
                problems.append(doc.error(loc, unknown_name("field", str(loc[-1]), known, quote_name=False)))
                continue
        problems.append(doc.error(loc, _message(err)))
    return problems


def _fields_at(model: type[BaseModel], loc: Loc) -> tuple[str, ...] | None:
    """Field names of the model found at ``loc`` inside ``model``, when the types lead to one."""
    tp: Any = model
    for part in (*loc, None):
        while get_origin(tp) is Annotated or _is_union(tp):
            args = [a for a in get_args(tp) if a is not type(None)]
            if get_origin(tp) is not Annotated and len(args) != 1:
                return None
            tp = args[0]
        if part is None:
            break
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) is list and isinstance(part, int):
            tp = get_args(tp)[0]
        else:
            return None
    return tuple(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _user_loc(data: Any, loc: Loc) -> Loc:
    """``loc`` without the union members pydantic adds; a key the user wrote is kept even if it looks like one."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif _is_union_tag(part):
            continue
        else:
            node = None
        out.append(part)
    return tuple(out)


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the union member it tried ('int', 'str', '<step>', ...) to error locations;
    # users never wrote those, so they are dropped from the path.
    return isinstance(part, str) and (part in ("str", "int", "float", "bool") or part[:1] == "<" or "[" in part)


def _message(err: dict[str, Any]) -> str:
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        return "unknown field"
    entry = err["type"] == "union_tag_invalid" or (err["type"] == "model_type" and "<step>" in err["loc"])
    if entry:  # a scenario, metric or compression entry that is neither a name nor a mapping
        field, got = str(err["loc"][0]), _kind(err["input"])
        if field in ("scenarios", "metrics"):
            return f"expected a {field[:-1]} name or a mapping with 'name', got {got}"
        in_chain = sum(isinstance(part, int) for part in err["loc"]) > 1
        return f"expected a compression name{',' if not in_chain else ' or'} a mapping with 'name'" + (
            f", got {got}" if in_chain else f", or a list of them, got {got}"
        )
    if err["type"] == "int_parsing_size":
        return f"expected an integer, got {err['input']!r}, which is too large for one"
    if err["type"] == "model_type":  # pydantic names the model class, which users never see
        required = {"ModelEntry": " with 'source'", "PluginEntry": " with 'name'", "DatasetSpec": " with 'name'"}
        return f"Input should be a mapping{required.get(err['ctx']['class_name'], '')}, got {_kind(err['input'])}"
    if err["type"] == "literal_error" and isinstance(err["input"], str):
        return msg + did_you_mean(err["input"], re.findall(r"'([^']*)'", err["ctx"]["expected"]))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "a mapping"}
    return names.get(type(value), type(value).__name__)


def load_suite(path: str | Path, host: PluginHost | None = None) -> LoadedSuite:
    """Read, validate and (when ``host`` is given) check a suite against the plugins and its models.

    With ``host``, every plugin name and its options are checked, then each
    model is described by its source (reading only its graph or schema), its
    inputs merged and checked against the suite's, every dynamic dimension
    resolved, and every backend checked to take each model it is paired with.
    Raises :class:`SuiteError` with one line per problem.
    """
    return check_suite(load_yaml(path), Path(path), host)


def check_suite(doc: LocatedDocument, path: Path, host: PluginHost | None = None) -> LoadedSuite:
    """Validate a parsed suite as :func:`load_suite` does; ``path`` is where it lives (relative model paths).

    ``doc`` may come from a file (``load_yaml``) or from a mapping
    (``LocatedDocument.from_data``), whose problems then have no file and line.
    """
    try:
        suite = Suite.model_validate(doc.data)
    except ValidationError as exc:
        raise SuiteError(_sorted(_dedupe(_pydantic_problems(doc, exc), doc), doc)) from None
    problems = _check_unique_labels(doc, suite)
    loaded = LoadedSuite(suite, path, doc.data)
    if host is not None:
        from benchharness.checks import check_pairings, resolve_models

        problems += check_plugins(doc, suite, host)
        if not problems:
            loaded.models, model_problems = resolve_models(doc, suite, host, path.resolve().parent)
            problems += model_problems
        if not problems:
            problems += _attach_datasets(doc, suite, loaded.models or [])
        if not problems:
            problems += check_pairings(doc, loaded, host)
    if problems:
        raise SuiteError(_sorted(problems, doc))
    return loaded


def _attach_datasets(doc: LocatedDocument, suite: Suite, models: list[ModelSpec]) -> list[str]:
    """Give each model spec its ``dataset`` entry, checked against the model's resolved inputs."""
    from benchharness.feeding import check_dataset

    problems: list[str] = []
    for i, (entry, spec) in enumerate(zip(suite.models, models)):
        if entry.dataset is None:
            continue
        problems += check_dataset(doc, ("models", i, "dataset"), spec.label, entry.dataset, spec.inputs or [])
        spec.dataset = entry.dataset
    return problems


def _dedupe(problems: list[str], doc: LocatedDocument) -> list[str]:
    # A union field reports the same location once per member tried; keep the first of each location.
    prefix = f"{doc.path}:"  # the path may hold ": " itself
    seen: set[str] = set()
    out = []
    for line in problems:
        key = line[len(prefix) :].split(": ", 1)[0] if line.startswith(prefix) else line
        if key not in seen:
            seen.add(key)
            out.append(line)
    return out


def _sorted(problems: list[str], doc: LocatedDocument) -> list[str]:
    """Order problems by line, as a reader meets them."""
    prefix = f"{doc.path}:"  # the path may hold spaces or colons: read the number after it

    def line(problem: str) -> int:
        digits = problem[len(prefix) :].split(" ", 1)[0].split(":", 1)[0] if problem.startswith(prefix) else ""
        return int(digits) if digits.isdigit() else 0

    return sorted(problems, key=line)


def _check_unique_labels(doc: LocatedDocument, suite: Suite) -> list[str]:
    problems = []
    for field_name, entries in (
        ("backends", suite.backends),
        ("targets", suite.targets),
        ("scenarios", [as_entry(e) for e in suite.scenarios]),
    ):
        seen: dict[str, int] = {}
        for i, entry in enumerate(entries):
            if entry.label in seen:
                problems.append(
                    doc.error(
                        (field_name, i),
                        f"duplicate {field_name[:-1]} {entry.label!r} (also {field_name}[{seen[entry.label]}]); "
                        "give each a distinct 'label'",
                    )
                )
            seen[entry.label] = i
    return problems


def check_plugins(doc: LocatedDocument, suite: Suite, host: PluginHost) -> list[str]:
    """Check every plugin name and its options; returns one line per problem."""
    from benchharness.plugins import plugin_failure

    problems: list[str] = []

    def check(kind: str, noun: str, name: str, options: dict[str, Any], loc: Loc, name_loc: Loc) -> bool:
        provided = host.items[kind].get(name)
        if provided is None:
            problems.append(doc.error(name_loc, unknown_name(noun, name, host.items[kind])))
            return False
        own_keys = {"model_sources": tuple(ModelEntry.model_fields), "datasets": tuple(DatasetSpec.model_fields)}
        entry_fields = own_keys.get(kind, ("name",))
        as_sent = ""
        try:
            provided.cls.Options.model_validate(options)
            # A worker gets the options as JSON (a date becomes a string): what it would refuse, refuse now.
            as_sent = " (as a worker gets it, through JSON)"
            provided.cls.Options.model_validate(json.loads(pydantic_core.to_json(options)))
        except ValidationError as exc:
            lines = _pydantic_problems(doc, exc, loc, provided.cls.Options, entry_fields)
            problems.extend(line + as_sent for line in lines)
        except pydantic_core.PydanticSerializationError as exc:
            problems.append(doc.error(loc, f"cannot be sent to a worker as JSON: {str(exc).splitlines()[0]}"))
        except Exception as exc:  # noqa: BLE001 - the plugin's own validator is broken: one line naming it
            problems.append(doc.error(loc, plugin_failure(provided, "validating its options", exc)))
        return True

    for i, model in enumerate(suite.models):
        check("model_sources", "model source", model.source, model.options(), ("models", i), ("models", i, "source"))
        if model.dataset is not None:
            where: Loc = ("models", i, "dataset")
            check("datasets", "dataset", model.dataset.name, model.dataset.options(), where, where + ("name",))
    for i, variant in enumerate(suite.compressions):
        for j, step in enumerate(variant_steps(variant)):
            loc: Loc = ("compressions", i, j) if isinstance(variant, list) else ("compressions", i)
            check("compressions", "compression", step.name, step.options(), loc, loc + ("name",))
    for i, backend in enumerate(suite.backends):
        check("backends", "backend", backend.name, backend.options(), ("backends", i), ("backends", i, "name"))
    for i, target in enumerate(suite.targets):
        check("targets", "target", target.name, target.options(), ("targets", i), ("targets", i, "name"))
    produced: set[str] = set()
    scenarios_known = True
    for i, item in enumerate(suite.scenarios):
        entry = as_entry(item)
        if check(
            "scenarios", "scenario", entry.name, entry.options(), ("scenarios", i), _name_loc(item, "scenarios", i)
        ):
            produced.update(host.items["scenarios"][entry.name].cls.produces)
        else:
            scenarios_known = False
    if scenarios_known:  # else the figures an unknown scenario would produce cannot be told from typos
        problems += _check_metrics(doc, suite, host, produced, check)
    return problems


def _name_loc(item: Any, field_name: str, index: int) -> Loc:
    """Where an entry's name is: the item itself when written as a bare name, else its ``name`` key."""
    return (field_name, index) if isinstance(item, str) else (field_name, index, "name")


def _check_metrics(doc: LocatedDocument, suite: Suite, host: PluginHost, produced: set[str], check: Any) -> list[str]:
    """Each ``metrics`` entry is a scenario's output, an observer or a metric; dependencies come first."""
    problems: list[str] = []
    listed: list[str] = []
    figures = {**host.items["observers"], **host.items["metrics"]}
    for i, item in enumerate(suite.metrics):
        entry = as_entry(item)
        listed.append(entry.name)
        if entry.name in produced:
            if entry.options():
                problems.append(
                    doc.error(("metrics", i), f"{entry.name!r} is a scenario's output; it takes no options")
                )
            continue
        if entry.name not in figures:
            problems.append(
                doc.error(_name_loc(item, "metrics", i), unknown_name("metric", entry.name, set(figures) | produced))
            )
            continue
        kind = "observers" if entry.name in host.items["observers"] else "metrics"
        check(kind, kind[:-1], entry.name, entry.options(), ("metrics", i), _name_loc(item, "metrics", i))
        for dep in getattr(figures[entry.name].cls, "depends_on", ()):
            if dep not in produced and dep not in listed[:-1]:
                problems.append(doc.error(("metrics", i), f"metric {entry.name!r} needs {dep!r} listed before it"))
    return problems


def variant_steps(entry: VariantEntry) -> list[CompressionStep]:
    """The chain of compression steps of one ``compressions`` entry."""
    items = entry if isinstance(entry, list) else [entry]
    return [CompressionStep(name=item) if isinstance(item, str) else item for item in items]


def variant_name(entry: VariantEntry) -> str:
    """Label of a variant: its steps' names joined with ``+`` (``label`` overrides a step's name)."""
    names = [str(step.options().get("label") or step.name) for step in variant_steps(entry)]
    return "+".join(names)


def json_schema(host: PluginHost | None = None) -> dict[str, Any]:
    """JSON Schema of the suite format, for editors.

    With ``host``, the entries of ``backends``, ``targets`` and ``models`` are
    each one of the installed plugins' ``Options`` (keyed by ``name`` or
    ``source``), so editors complete plugin options too.
    """
    schema = Suite.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "benchharness suite"
    if host is not None:
        defs = schema.setdefault("$defs", {})
        for field_name, kind, key, common in (
            ("backends", "backends", "name", {}),
            ("targets", "targets", "name", {}),
            ("models", "model_sources", "source", _model_entry_common(defs)),
        ):
            variants = [
                _item_schema(name, provided.cls.Options, key, common, defs)
                for name, provided in sorted(host.items[kind].items())
            ]
            if variants:
                schema["properties"][field_name]["items"] = {"oneOf": variants}
    return schema


def _model_entry_common(defs: dict[str, Any]) -> dict[str, Any]:
    """The keys every model entry takes besides its source's options."""
    props = dict(defs["ModelEntry"]["properties"])
    props.pop("source")
    return props


def _item_schema(
    name: str, options: type[BaseModel], key: str, common: dict[str, Any], defs: dict[str, Any]
) -> dict[str, Any]:
    sub = options.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(sub.pop("$defs", {}))
    properties = {key: {"const": name}, **common, **sub.get("properties", {})}
    return {
        "title": f"{key} {name}",
        "type": "object",
        "properties": properties,
        "required": [key, *sub.get("required", [])],
        "additionalProperties": False,
    }
