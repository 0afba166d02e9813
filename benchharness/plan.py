"""Expand a suite into cases: models x variants x backends x targets x scenarios x batch sizes."""

from __future__ import annotations

import fnmatch
import itertools
from typing import Any

from pydantic import BaseModel, ConfigDict

from benchharness.suite import (
    InputSpec,
    LoadedSuite,
    MeasureConfig,
    Selector,
    variant_name,
    variant_steps,
)

AXES = ("model", "variant", "backend", "target", "scenario", "batch")


class ItemSpec(BaseModel):
    """A plugin item chosen for a case: its registered name, its label in the case id, its options."""

    model_config = ConfigDict(extra="forbid")
    name: str
    label: str
    options: dict[str, Any] = {}


class ModelSpec(BaseModel):
    """The model of a case."""

    model_config = ConfigDict(extra="forbid")
    label: str
    source: str
    options: dict[str, Any] = {}
    inputs: list[InputSpec] | None = None
    dims: dict[str, int] = {}


class Case(BaseModel):
    """One point of a suite's cross product, complete enough to run anywhere."""

    model_config = ConfigDict(extra="forbid")
    id: str
    model: ModelSpec
    variant: str
    compressions: list[ItemSpec]
    backend: ItemSpec
    target: ItemSpec
    scenario: str
    batch: int
    metrics: list[str]
    measure: MeasureConfig

    def axes(self) -> dict[str, str | int]:
        """The case's value on each axis, as selectors match them."""
        return {
            "model": self.model.label,
            "variant": self.variant,
            "backend": self.backend.label,
            "target": self.target.label,
            "scenario": self.scenario,
            "batch": self.batch,
        }


def make_case_id(axes: dict[str, str | int]) -> str:
    """Stable, readable id: ``model/variant/backend/target/scenario/bN``."""
    return "/".join(str(axes[a]) if a != "batch" else f"b{axes[a]}" for a in AXES)


def matches(selector: Selector, axes: dict[str, str | int]) -> bool:
    """Whether every axis the selector sets matches (strings as shell-style patterns)."""
    for axis in AXES:
        wanted = getattr(selector, axis)
        if wanted is None:
            continue
        value = axes[axis]
        if isinstance(wanted, str):
            if not fnmatch.fnmatchcase(str(value), wanted):
                return False
        elif wanted != value:
            return False
    return True


def _label(options: dict[str, Any], name: str) -> str:
    return str(options.get("label") or name)


def expand(loaded: LoadedSuite) -> list[Case]:
    """All cases of the suite after ``include``/``exclude``, in a stable order."""
    suite = loaded.suite
    models = []
    for entry, label in zip(suite.models, loaded.model_labels):
        models.append(
            ModelSpec(label=label, source=entry.source, options=entry.options(), inputs=entry.inputs, dims=entry.dims)
        )
    variants = [
        (
            variant_name(entry),
            [
                ItemSpec(name=s.name, label=_label(s.options(), s.name), options=s.options())
                for s in variant_steps(entry)
            ],
        )
        for entry in suite.compressions
    ]
    backends = [ItemSpec(name=b.name, label=_label(b.options(), b.name), options=b.options()) for b in suite.backends]
    targets = [ItemSpec(name=t.name, label=_label(t.options(), t.name), options=t.options()) for t in suite.targets]
    cases = []
    for model, (vname, steps), backend, target, scenario, batch in itertools.product(
        models, variants, backends, targets, suite.scenarios, suite.batch_sizes
    ):
        axes = {
            "model": model.label,
            "variant": vname,
            "backend": backend.label,
            "target": target.label,
            "scenario": scenario,
            "batch": batch,
        }
        if suite.include and not any(matches(s, axes) for s in suite.include):
            continue
        if any(matches(s, axes) for s in suite.exclude):
            continue
        cases.append(
            Case(
                id=make_case_id(axes),
                model=model,
                variant=vname,
                compressions=steps,
                backend=backend,
                target=target,
                scenario=scenario,
                batch=batch,
                metrics=list(suite.metrics),
                measure=suite.measure,
            )
        )
    return cases
