"""Expand a suite into cases: models x variants x backends x targets x scenarios x batch sizes."""

from __future__ import annotations

import itertools

from benchharness.case import Case, ItemSpec, matches
from benchharness.suite import LoadedSuite, PluginEntry, as_entry, variant_name, variant_steps


def _item(entry: PluginEntry) -> ItemSpec:
    return ItemSpec(name=entry.name, label=entry.label, options=entry.options())


def expand(loaded: LoadedSuite) -> list[Case]:
    """All cases of the suite after ``include``/``exclude``, in a stable order.

    The suite must have been loaded with a plugin host, which resolves each model's label and inputs.
    """
    suite = loaded.suite
    if loaded.models is None:
        raise ValueError("expand() needs a suite loaded with a plugin host (load_suite(path, host))")
    variants = [(variant_name(entry), [_item(step) for step in variant_steps(entry)]) for entry in suite.compressions]
    backends = [_item(b) for b in suite.backends]
    targets = [_item(t) for t in suite.targets]
    scenarios = [_item(as_entry(s)) for s in suite.scenarios]
    metrics = [_item(as_entry(m)) for m in suite.metrics]
    cases = []
    for model, (vname, steps), backend, target, scenario, batch in itertools.product(
        loaded.models, variants, backends, targets, scenarios, suite.batch_sizes
    ):
        case = Case(
            id="",
            model=model,
            variant=vname,
            compressions=steps,
            backend=backend,
            target=target,
            scenario=scenario,
            batch=batch,
            metrics=metrics,
            measure=suite.measure,
        )
        axes = case.axes()
        if suite.include and not any(matches(s, axes) for s in suite.include):
            continue
        if any(matches(s, axes) for s in suite.exclude):
            continue
        case.id = axes.case_id()
        cases.append(case)
    return cases
