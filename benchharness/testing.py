"""Test a plugin without a suite file: what pytest's ``pytester`` is to pytest plugins.

Two levels, both in this process, with the plugins you pass registered on a
fresh :class:`~benchharness.plugins.PluginHost` next to the built-ins:

* a whole case, or a whole in-memory suite: :func:`run_case` and
  :func:`run_suite` build it from the same mappings a suite file holds, check
  it exactly as ``benchharness validate`` does (a bad option is the same
  one-line :class:`SuiteError`, without the file and line), and run it
  through the ``inline`` launcher with quick measurement settings;
* one item at a time: :func:`case_context` assembles a :class:`CaseContext`
  from parts (by default a framework-free :class:`FakeBackend`), and
  :func:`loaded_context` one with a real backend that has loaded a real
  model, to call a metric's ``collect``, an observer's ``start``/``stop`` or
  a scenario's ``run`` directly; :func:`make_metric`, :func:`make_observer`
  and :func:`make_scenario` build those items with validated options.

Example::

    import my_plugin
    from benchharness.testing import run_case

    def test_my_backend_runs_a_zoo_model():
        result = run_case(
            model={"source": "zoo", "arch": "mobilenet_v2", "width": 0.25, "input_size": 32, "num_classes": 10},
            backend={"name": "my-backend", "threads": 1},
            plugins=[my_plugin],
        )
        assert result.metrics["latency"].unit == "ms"
"""

from __future__ import annotations

import contextlib
import importlib
import json
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, Field, NonNegativeFloat

from benchharness.api import (
    Backend,
    BackendOptions,
    CaseContext,
    CaseResult,
    Metric,
    MetricValue,
    ModelArtifact,
    Observer,
    PluginItem,
    RunResults,
    Scenario,
    TargetContext,
    summarize,
)
from benchharness.case import Case, ItemSpec, ModelSpec
from benchharness.errors import BenchError, SuiteError
from benchharness.plugins import KIND_NOUNS, PluginHost
from benchharness.settings import MeasureSettings
from benchharness.signature import InputSpec

__all__ = [
    "QUICK_MEASURE",
    "FakeBackend",
    "FakeBackendOptions",
    "SuiteError",
    "assert_ok",
    "build_case",
    "case_context",
    "latency_value",
    "loaded_context",
    "make_host",
    "make_metric",
    "make_observer",
    "make_scenario",
    "run_case",
    "run_suite",
    "validate_suite",
]

#: A plugin to register: a module (or any object) with ``benchharness_register_*`` hooks, or a module name.
Plugin = Any
#: A suite entry naming a plugin item: its name alone, or the mapping a suite holds (``{"name": ..., **options}``).
Entry = str | Mapping[str, Any]

#: Measurement settings that keep a test case short: one process, a brief warm-up, then about 0.2 s of sampling.
#: :func:`run_case` and :func:`run_suite` apply them under the ``measure`` given (which wins, key by key).
QUICK_MEASURE: dict[str, Any] = {
    "repeat": 1,
    "min_samples": 10,
    "min_time": 0.0,
    "max_time": 0.2,
    "warmup": {"min_iterations": 3, "window": 3, "min_time": 0.0, "max_time": 0.1},
}

_Item = TypeVar("_Item", bound=PluginItem)


# --------------------------------------------------------------------------- plugins


def make_host(*plugins: Plugin, autoload: bool = False, strict: bool = True) -> PluginHost:
    """A fresh plugin host: the built-ins, then each of ``plugins`` registered in this process, in order.

    A plugin is a module or any object with hook implementations, or the name
    of a module to import.  Installed entry-point plugins are loaded only with
    ``autoload=True`` (a plugin already loaded by its entry point is then not
    registered twice), so by default a test sees the built-ins and exactly the
    plugins it names.  With ``strict`` (the default), an item of ``plugins``
    that the core refuses, or a hook of theirs that fails, raises
    :class:`BenchError` with the reasons, instead of the warning a run gives.
    """
    host = PluginHost(autoload=autoload)
    names: list[str] = []
    for plugin in plugins:
        obj = importlib.import_module(plugin) if isinstance(plugin, str) else plugin
        if host.pm.is_registered(obj):
            continue
        name = _plugin_name(host, obj)
        host.register_object(obj, name, version=str(getattr(obj, "__version__", None) or "test"))
        names.append(name)
    if strict:
        problems = []
        for info in host.plugins:
            if info.name in names:
                problems += [
                    f"plugin {info.name!r}: {KIND_NOUNS[r.kind]} {r.name!r} refused: {r.reason}" for r in info.refused
                ]
                if info.error:
                    problems.append(f"plugin {info.name!r} {info.error}")
        if problems:
            raise BenchError("; ".join(problems))
    return host


def _plugin_name(host: PluginHost, obj: Any) -> str:
    base = getattr(obj, "__name__", None) or type(obj).__name__
    taken = {p.name for p in host.plugins}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def _host(plugins: Iterable[Plugin], host: PluginHost | None) -> PluginHost:
    plugins = list(plugins)
    if host is None:
        return make_host(*plugins)
    if plugins:
        raise ValueError("pass either plugins or host, not both (register the plugins with make_host)")
    return host


# --------------------------------------------------------------------------- suites in memory


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, nested mappings merged key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


@contextlib.contextmanager
def _folder(base_dir: Path | None) -> Iterator[Path]:
    """``base_dir`` as an absolute path, or a temporary folder for the duration."""
    if base_dir is not None:
        folder = Path(base_dir).resolve()
        if not folder.is_dir():
            raise BenchError(f"base_dir {folder} is not a folder")
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="benchharness-testing-") as tmp:
        yield Path(tmp)


def _load(suite: Mapping[str, Any], host: PluginHost, base_dir: Path) -> Any:
    """Validate an in-memory suite exactly as ``load_suite`` validates a file, as if it lay in ``base_dir``.

    Each problem names the field alone: there is no file and line.
    """
    from benchharness.suite import check_suite
    from benchharness.yamlfile import LocatedDocument

    data = json.loads(json.dumps(dict(suite), default=str))  # plain data, as YAML would give (paths as text)
    return check_suite(LocatedDocument.from_data(data), base_dir / "suite.yaml", host)


def _case_suite(
    *,
    model: Mapping[str, Any],
    backend: Entry,
    target: Entry,
    scenario: Entry,
    metrics: Sequence[Entry],
    compressions: Entry | Sequence[Entry],
    batch: int,
    measure: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The one-case suite that the arguments of :func:`run_case` describe."""

    def plain(value: Entry) -> Any:
        return value if isinstance(value, str) else dict(value)

    def mapping(value: Entry) -> dict[str, Any]:
        return {"name": value} if isinstance(value, str) else dict(value)

    chain = not isinstance(compressions, (str, Mapping))
    variant = [plain(step) for step in compressions] if chain else plain(compressions)  # type: ignore[union-attr,arg-type]
    return {
        "name": "testing",
        "models": [dict(model)],
        "compressions": [variant],
        "backends": [mapping(backend)],
        "targets": [mapping(target)],
        "scenarios": [plain(scenario)],
        "batch_sizes": [batch],
        "metrics": [plain(m) for m in metrics],
        "measure": dict(measure or {}),
    }


def validate_suite(
    suite: Mapping[str, Any],
    *,
    plugins: Iterable[Plugin] = (),
    host: PluginHost | None = None,
    base_dir: Path | None = None,
) -> list[Case]:
    """The cases of an in-memory suite, checked as ``benchharness validate`` checks a file.

    ``suite`` is the mapping a suite file holds.  Raises :class:`SuiteError`
    with one line per problem, as the suite's, without its ``file:line``
    prefix: ``backends[0].threads: Input should be greater than 0``.
    """
    from benchharness.plan import expand

    host = _host(plugins, host)
    with _folder(base_dir) as folder:
        return expand(_load(suite, host, folder))


def build_case(
    *,
    model: Mapping[str, Any],
    backend: Entry,
    plugins: Iterable[Plugin] = (),
    host: PluginHost | None = None,
    target: Entry = "cpu",
    scenario: Entry = "latency",
    metrics: Sequence[Entry] = ("latency", "throughput"),
    compressions: Entry | Sequence[Entry] = "none",
    batch: int = 1,
    measure: Mapping[str, Any] | None = None,
    base_dir: Path | None = None,
) -> Case:
    """The case :func:`run_case` would build, checked as a suite, not run; ``measure`` is taken as given."""
    suite = _case_suite(
        model=model, backend=backend, target=target, scenario=scenario, metrics=list(metrics),
        compressions=compressions, batch=batch, measure=measure,
    )  # fmt: skip
    (case,) = validate_suite(suite, plugins=plugins, host=host, base_dir=base_dir)
    return case


# --------------------------------------------------------------------------- running


def assert_ok(result: CaseResult) -> CaseResult:
    """``result`` if its case ended ``ok`` with no failed figure; else an ``AssertionError`` that says why."""
    lines = []
    if result.status != "ok":
        lines.append(f"case {result.case_id} ended {result.status}: {result.error}")
    lines += [f"case {result.case_id}: figure {name!r}: {error}" for name, error in result.metric_errors.items()]
    if lines:
        if result.traceback:
            lines.append(result.traceback.rstrip())
        raise AssertionError("\n".join(lines))
    return result


def run_suite(
    suite: Mapping[str, Any],
    *,
    plugins: Iterable[Plugin] = (),
    host: PluginHost | None = None,
    quick: bool = True,
    base_dir: Path | None = None,
    cache_dir: Path | None = None,
    check: bool = True,
) -> RunResults:
    """Run every case of an in-memory suite in this process (the ``inline`` launcher) and return the results.

    As ``benchharness run SUITE --launcher inline`` would, except that the
    suite is a mapping, the plugins are ``plugins`` (or ``host``), and the
    results are returned, not kept.  With ``quick``, :data:`QUICK_MEASURE`
    lies under the suite's own ``measure``.  Relative model paths resolve
    against ``base_dir`` (default: a temporary folder); conversions are cached
    in ``cache_dir`` (default: ``$BENCHHARNESS_CACHE``, as for a run).  With
    ``check``, a case that fails or has a failed figure raises
    ``AssertionError`` (see :func:`assert_ok`).
    """
    from benchharness.models import default_cache_dir
    from benchharness.runner import RunSettings
    from benchharness.runner import run_suite as run_loaded

    host = _host(plugins, host)
    data = dict(suite)
    if quick:
        data["measure"] = _merged(QUICK_MEASURE, data.get("measure") or {})
    with _folder(base_dir) as folder, tempfile.TemporaryDirectory(prefix="benchharness-testing-out-") as out:
        loaded = _load(data, host, folder)
        from benchharness.plan import expand

        settings = RunSettings(output_dir=Path(out), launcher="inline", cache_dir=cache_dir or default_cache_dir())
        results, _ = run_loaded(loaded, expand(loaded), host, settings)
    results.suite.path = "<benchharness.testing>"
    if check:
        for result in results.cases:
            assert_ok(result)
    return results


def run_case(
    *,
    model: Mapping[str, Any],
    backend: Entry,
    plugins: Iterable[Plugin] = (),
    host: PluginHost | None = None,
    target: Entry = "cpu",
    scenario: Entry = "latency",
    metrics: Sequence[Entry] = ("latency", "throughput"),
    compressions: Entry | Sequence[Entry] = "none",
    batch: int = 1,
    measure: Mapping[str, Any] | None = None,
    base_dir: Path | None = None,
    cache_dir: Path | None = None,
    check: bool = True,
) -> CaseResult:
    """Build one case as a suite would, run it in this process, and return its result.

    Each argument is what a suite holds for that axis: ``model`` a ``models``
    entry, ``backend``/``target``/``scenario`` a name or ``{"name": ...,
    **options}``, ``metrics`` the ``metrics`` list, ``compressions`` one
    variant (a name, a mapping, or a list: a chain).  The case is checked as
    ``benchharness validate`` checks a suite (a problem raises
    :class:`SuiteError`, see :func:`validate_suite`) and run through the
    ``inline`` launcher with :data:`QUICK_MEASURE` under ``measure``.  See
    :func:`run_suite` for ``base_dir``, ``cache_dir`` and ``check``.
    """
    suite = _case_suite(
        model=model, backend=backend, target=target, scenario=scenario, metrics=list(metrics),
        compressions=compressions, batch=batch, measure=measure,
    )  # fmt: skip
    results = run_suite(suite, plugins=plugins, host=host, base_dir=base_dir, cache_dir=cache_dir, check=check)
    return results.cases[0]


# --------------------------------------------------------------------------- one item at a time


class FakeBackendOptions(BackendOptions):
    """Options of :class:`FakeBackend`."""

    delay_us: NonNegativeFloat = Field(0.0, description="Microseconds each inference busy-waits.")


class FakeBackend(Backend):
    """A framework-free backend for :func:`case_context`: each inference returns its feed.

    It busy-waits ``delay_us`` per call and counts its calls in ``calls``, so a
    scenario or metric under test sees a known cost.  ``FakeBackend()`` needs
    no arguments: one thread on the CPU.
    """

    name = "fake"
    description = "returns its inputs, after delay_us"
    formats = ("fake",)
    Options: ClassVar[type[BaseModel]] = FakeBackendOptions

    def __init__(self, options: BaseModel | None = None, target: TargetContext | None = None) -> None:
        super().__init__(options or FakeBackendOptions(), target or TargetContext(device="cpu", threads=1))
        self.calls = 0
        self.loaded: ModelArtifact | None = None

    def load(self, artifact: ModelArtifact) -> None:
        """Keep the artifact."""
        self.loaded = artifact

    def prepare(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The inputs themselves."""
        return dict(inputs)

    def infer(self, feed: dict[str, Any]) -> dict[str, Any]:
        """Wait ``delay_us``, count the call, return the feed."""
        delay = self.options.delay_us  # type: ignore[attr-defined]
        if delay:
            end = time.perf_counter() + delay / 1e6
            while time.perf_counter() < end:
                pass
        self.calls += 1
        return feed

    def to_numpy(self, outputs: dict[str, Any]) -> dict[str, Any]:
        """The outputs, which are the inputs."""
        return dict(outputs)

    def runtime_info(self) -> dict[str, Any]:
        """The framework's name, the threads and the calls so far."""
        return {"framework": "fake", "threads": self.threads, "calls": self.calls}


def _specs_of(inputs: Mapping[str, Any]) -> list[InputSpec]:
    return [InputSpec(name=name, shape=list(array.shape), dtype=str(array.dtype)) for name, array in inputs.items()]


def case_context(
    *,
    backend: Backend | None = None,
    inputs: Mapping[str, Any] | None = None,
    artifact: ModelArtifact | None = None,
    collected: Mapping[str, MetricValue] | None = None,
    observers: Mapping[str, Observer] | None = None,
    batch: int = 1,
    measure: Mapping[str, Any] | None = None,
) -> CaseContext:
    """A :class:`CaseContext` made of the given parts, for calling one scenario, observer or metric directly.

    ``backend`` is a loaded backend (default: a :class:`FakeBackend`, loaded
    here); ``inputs`` the numpy arrays (default: random ones, from the seed
    in ``measure``, for ``artifact``'s fixed input specs, else one ``x`` of
    ``float32[batch, 4]``); ``artifact`` the model (default: a ``fake`` one
    with those inputs); ``collected`` the figures so far (say, a
    :func:`latency_value` for a metric that depends on ``latency``);
    ``observers`` the observers that ``ctx.measured()`` starts and stops.
    ``measure`` sets ``ctx.settings`` over :data:`QUICK_MEASURE`.  The case
    in ``ctx.case`` is a placeholder named after these parts.
    """
    from benchharness.inputs import make_inputs

    fake = backend is None
    if backend is None:
        backend = FakeBackend()
    settings = MeasureSettings.model_validate(_merged(QUICK_MEASURE, measure or {}))
    if inputs is None:
        specs = artifact.inputs if artifact is not None and artifact.inputs else None
        specs = specs or [InputSpec(name="x", shape=[batch, 4], dtype="float32")]
        inputs = make_inputs(specs, settings.seed)
    inputs = dict(inputs)
    if artifact is None:
        artifact = ModelArtifact(format=backend.formats[0], content_hash="fake", inputs=_specs_of(inputs))
    if fake:
        backend.load(artifact)
    figures = [*(collected or {}), *(observers or {})]
    case = Case(
        id="",
        model=ModelSpec(label="model", source="fake", inputs=artifact.inputs),
        variant="none",
        compressions=[],
        backend=ItemSpec(name=backend.name, label=backend.name),
        target=ItemSpec(name="cpu", label="cpu"),
        scenario=ItemSpec(name="latency", label="latency"),
        batch=batch,
        metrics=[ItemSpec(name=name, label=name) for name in dict.fromkeys(figures)],
        measure=settings,
    )
    case.id = case.axes().case_id()
    return CaseContext(
        case=case,
        backend=backend,
        artifact=artifact,
        inputs=inputs,
        feed=backend.prepare(inputs),
        collected=dict(collected or {}),
        observers=dict(observers or {}),
    )


@contextlib.contextmanager
def loaded_context(
    *,
    model: Mapping[str, Any],
    backend: Entry,
    plugins: Iterable[Plugin] = (),
    host: PluginHost | None = None,
    compressions: Entry | Sequence[Entry] = "none",
    metrics: Sequence[Entry] = ("latency", "throughput"),
    batch: int = 1,
    measure: Mapping[str, Any] | None = None,
    threads: int = 1,
    device: str = "cpu",
    base_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> Iterator[CaseContext]:
    """A :class:`CaseContext` whose real backend has loaded the case's real model; the backend closes on exit.

    The case is built and checked as in :func:`run_case`; its model is
    loaded, compressed and converted, and the backend loaded and the feed
    prepared, as the worker does before the scenario.  No target is applied
    to this process: the backend gets ``TargetContext(device, threads)``.
    ``ctx.observers`` is empty; add to it to test an observer against the
    real backend.  ``ctx.dataset()`` (the model's ``dataset`` entry, fed as a
    run feeds it) and ``ctx.reference_outputs()`` work as in a worker, so an
    accuracy or fidelity metric can be tested here too.
    """
    from benchharness.api import Workspace
    from benchharness.models import default_cache_dir
    from benchharness.worker import dataset_loader, open_backend, prepare_model, reference_runner

    host = _host(plugins, host)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    with _folder(base_dir) as folder:
        case = build_case(
            model=model, backend=backend, host=host, compressions=compressions, metrics=metrics, batch=batch,
            measure=_merged(QUICK_MEASURE, measure or {}), base_dir=folder,
        )  # fmt: skip
        backend_cls = host.get("backends", case.backend.name).cls
        reason = backend_cls.unavailable_reason()
        if reason:
            raise BenchError(f"backend {case.backend.name!r} is unavailable: {reason}")
        workspace = Workspace(base_dir=folder, cache_dir=cache)
        target = TargetContext(device=device, threads=threads)
        artifact = prepare_model(case, host, workspace, backend_cls)
        with open_backend(case, backend_cls, target, artifact) as ctx:
            ctx.dataset_loader = dataset_loader(case, host, workspace)
            ctx.reference_runner = reference_runner(ctx, host, workspace, target)
            yield ctx


def _make(kind: str, base: type[_Item], item: str | type[_Item], host: PluginHost | None, options: Any) -> _Item:
    if isinstance(item, str):
        cls = (host or make_host()).get(kind, item).cls
    elif isinstance(item, type) and issubclass(item, base):
        cls = item
    else:
        raise TypeError(f"expected a {base.__name__} subclass or a registered name, got {item!r}")
    return cls(cls.Options.model_validate(options))  # type: ignore[call-arg]


def make_metric(item: str | type[Metric], /, *, host: PluginHost | None = None, **options: Any) -> Metric:
    """A metric with validated ``options``: its class, or its name in ``host`` (default: the built-ins).

    A bad option raises pydantic's ``ValidationError``, as in the worker.
    """
    return _make("metrics", Metric, item, host, options)


def make_observer(item: str | type[Observer], /, *, host: PluginHost | None = None, **options: Any) -> Observer:
    """An observer with validated ``options``: its class, or its name in ``host`` (default: the built-ins)."""
    return _make("observers", Observer, item, host, options)


def make_scenario(item: str | type[Scenario], /, *, host: PluginHost | None = None, **options: Any) -> Scenario:
    """A scenario with validated ``options``: its class, or its name in ``host`` (default: the built-ins)."""
    return _make("scenarios", Scenario, item, host, options)


def latency_value(samples_ns: Sequence[float], *, ci_level: float = 0.95) -> MetricValue:
    """A ``latency`` figure made from known samples (ns), shaped as the built-in ``latency`` scenario's.

    The value is the median in ms, with the summary and the samples, so a
    metric that depends on ``latency`` can be fed a chosen distribution.
    """
    samples = [int(s) for s in samples_ns]
    summary = summarize(samples, ci_level)
    return MetricValue(
        value=summary.median / 1e6,
        unit="ms",
        summary=summary,
        samples=samples,
        method="given samples (benchharness.testing.latency_value)",
        details={"samples_unit": "ns"},
    )
