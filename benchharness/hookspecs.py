"""Every hook a benchharness plugin can implement.

Each docstring below is the reference for its hook; ``docs/plugins.md`` is
rendered from them (``python -m benchharness.docs``) and a test fails when a
hook is undocumented, missing from the docs, or untested.

All hooks follow one shape: the core calls ``benchharness_register_<kind>``
once per plugin load with a ``register`` callback, and the plugin calls
``register(SomeClass)`` once per item it provides.  The core checks the class
(what its kind must declare and implement), refuses a name that another
plugin already registered (the built-ins load first, so they cannot be
shadowed) and records which plugin (name, version) supplied it; that record
goes into every results file.  A refused item costs a one-line warning and
shows in ``benchharness plugins``; the plugin's other items still register.

Call-order markers (``tryfirst``, ``trylast``, ``wrapper``, ``hookwrapper``)
are refused: registration order is fixed (built-ins, then entry points by
name, then ``-p`` modules), so a plugin cannot jump ahead of another.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("benchharness")
hookimpl = pluggy.HookimplMarker("benchharness")

Register = Callable[[type], None]


@hookspec
def benchharness_register_backends(register: Register) -> None:
    """Register inference backends (frameworks that run a model).

    Args:
        register: call ``register(cls)`` once per backend; ``cls`` subclasses
            :class:`benchharness.api.Backend` and sets ``name`` and ``formats``.

    When: every time the plugins load: in the CLI process and in each case's
    worker process.  Keep it cheap: import the framework inside the backend's
    methods, never at module import.

    Returns: nothing; only the calls to ``register`` count.

    Example::

        @hookimpl
        def benchharness_register_backends(register):
            register(MyBackend)
    """


@hookspec
def benchharness_register_compressions(register: Register) -> None:
    """Register model compressions (pruning, quantization, distillation, fusion).

    Args:
        register: call ``register(cls)`` once per compression; ``cls``
            subclasses :class:`benchharness.api.Compression`.

    When: every plugin load.  A suite's ``compressions`` entries name them;
    a list of names is a chain applied in order, giving one variant.

    Returns: nothing.

    Example::

        @hookimpl
        def benchharness_register_compressions(register):
            register(MagnitudePruning)
    """


@hookspec
def benchharness_register_model_sources(register: Register) -> None:
    """Register model sources: where a suite's models come from.

    Args:
        register: call ``register(cls)`` once per source; ``cls`` subclasses
            :class:`benchharness.api.ModelSource`.

    When: every plugin load.  A suite's ``models[i].source`` names one; the
    rest of that entry is validated by the source's ``Options``.

    Returns: nothing.

    Example::

        @hookimpl
        def benchharness_register_model_sources(register):
            register(HubCheckpointSource)
    """


@hookspec
def benchharness_register_converters(register: Register) -> None:
    """Register model-format converters (for example torch to ONNX).

    Args:
        register: call ``register(cls)`` once per converter; ``cls`` subclasses
            :class:`benchharness.api.Converter` and names its
            ``source_formats`` and ``target_format``.

    When: every plugin load.  The worker converts a model when a backend does
    not accept the format its source produced; results are cached on disk,
    keyed by the model's content hash.

    Returns: nothing.

    Example::

        @hookimpl
        def benchharness_register_converters(register):
            register(OnnxToTflite)
    """


@hookspec
def benchharness_register_datasets(register: Register) -> None:
    """Register labelled datasets used by accuracy metrics.

    Args:
        register: call ``register(cls)`` once per dataset; ``cls`` subclasses
            :class:`benchharness.api.Dataset`.

    When: every plugin load.

    Returns: nothing.

    Example::

        @hookimpl
        def benchharness_register_datasets(register):
            register(MyImages)
    """


@hookspec
def benchharness_register_scenarios(register: Register) -> None:
    """Register scenarios: how load is offered to a backend (one request at a time, concurrent, ...).

    Args:
        register: call ``register(cls)`` once per scenario; ``cls`` subclasses
            :class:`benchharness.api.Scenario`, sets ``name`` and ``produces``
            and implements ``run(ctx)``.

    When: every plugin load.  A suite's ``scenarios`` entries name them; in
    the worker the case's scenario owns the timed loop, after the backend
    has loaded the model and prepared its feed.

    Returns: nothing.

    Example::

        @hookimpl
        def benchharness_register_scenarios(register):
            register(FixedIterations)
    """


@hookspec
def benchharness_register_observers(register: Register) -> None:
    """Register observers: figures taken around a scenario's measured phase (memory, energy, clocks).

    Args:
        register: call ``register(cls)`` once per observer; ``cls`` subclasses
            :class:`benchharness.api.Observer`, sets ``name`` and ``unit`` and
            implements ``start(ctx)`` and ``stop()``.

    When: every plugin load.  A suite lists an observer under ``metrics`` by
    name; the scenario's ``ctx.measured()`` starts and stops it, outside the
    timed loop.

    Returns: nothing.

    Example::

        @hookimpl
        def benchharness_register_observers(register):
            register(PeakRss)
    """


@hookspec
def benchharness_register_metrics(register: Register) -> None:
    """Register metrics: figures collected after the scenario (derived, static, or an untimed pass).

    Args:
        register: call ``register(cls)`` once per metric; ``cls`` subclasses
            :class:`benchharness.api.Metric` and sets ``name`` and ``unit``.

    When: every plugin load.  The worker collects the suite's ``metrics``
    in order, after the scenario and its observers.

    Returns: nothing.

    Example::

        @hookimpl
        def benchharness_register_metrics(register):
            register(ParameterCount)
    """


@hookspec
def benchharness_register_targets(register: Register) -> None:
    """Register targets: where a case runs and under which limits.

    Args:
        register: call ``register(cls)`` once per target; ``cls`` subclasses
            :class:`benchharness.api.Target`.

    When: every plugin load.  The runner asks the target for the worker's
    environment before starting it; the worker then calls ``apply`` first of
    all, before any framework is imported.

    Returns: nothing.

    Example::

        @hookimpl
        def benchharness_register_targets(register):
            register(EdgeCpu)
    """


@hookspec
def benchharness_register_reporters(register: Register) -> None:
    """Register reporters, which render a run's results (``--format NAME``).

    Args:
        register: call ``register(cls)`` once per reporter; ``cls`` subclasses
            :class:`benchharness.api.Reporter`.

    When: every plugin load; a reporter runs after a run ends and in
    ``benchharness show``.

    Returns: nothing.

    Example::

        @hookimpl
        def benchharness_register_reporters(register):
            register(HtmlReporter)
    """


@hookspec
def benchharness_register_launchers(register: Register) -> None:
    """Register launchers: how each case's worker is started (``--launcher NAME``).

    Args:
        register: call ``register(cls)`` once per launcher; ``cls`` subclasses
            :class:`benchharness.api.Launcher` and implements ``launch(job)``.

    When: every plugin load; the runner hands each case to the chosen
    launcher (``process`` by default; ``inline`` runs it in the CLI process).

    Returns: nothing.

    Example::

        @hookimpl
        def benchharness_register_launchers(register):
            register(ClusterLauncher)
    """
