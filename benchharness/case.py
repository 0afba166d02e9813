"""A case: one point of a suite's cross product, complete enough to run on any machine.

The case axes are spelled once, as the fields of :class:`CaseAxes`; the
:class:`Selector` of ``include``, ``exclude`` and ``baseline`` is derived from it,
and so are case ids.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, create_model

from benchharness.settings import MeasureSettings
from benchharness.signature import InputSpec


class CaseAxes(BaseModel):
    """A case's value on each axis: the labels a user sees, selects by, and finds in case ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    variant: str
    backend: str
    target: str
    scenario: str
    batch: PositiveInt

    def case_id(self) -> str:
        """Stable, readable id: ``model/variant/backend/target/scenario/bN``."""
        return "/".join(f"b{value}" if axis == "batch" else str(value) for axis, value in self)


#: The axes, in case-id order.
AXES: tuple[str, ...] = tuple(CaseAxes.model_fields)


def _constrained(field: Any) -> Any:
    """A field's type with its constraints (``PositiveInt`` keeps its ``> 0``)."""
    return Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation


Selector: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "Selector",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Matches cases by their axes; strings are shell-style patterns (``mobilenet*``).",
    **{axis: (Optional[_constrained(field)], None) for axis, field in CaseAxes.model_fields.items()},  # noqa: UP045
)


def matches(selector: BaseModel, axes: CaseAxes) -> bool:
    """Whether every axis the selector sets matches (strings as shell-style patterns)."""
    for axis in AXES:
        wanted = getattr(selector, axis)
        if wanted is None:
            continue
        value = getattr(axes, axis)
        if isinstance(wanted, str):
            if not fnmatch.fnmatchcase(str(value), wanted):
                return False
        elif wanted != value:
            return False
    return True


def selector_text(selector: BaseModel) -> str:
    """``backend=torch, batch=1``: the axes a selector sets."""
    return ", ".join(f"{axis}={getattr(selector, axis)}" for axis in AXES if getattr(selector, axis) is not None)


class ItemSpec(BaseModel):
    """A plugin item chosen for a case: its registered name, its label in the case id, its options."""

    model_config = ConfigDict(extra="forbid")

    name: str
    label: str
    options: dict[str, Any] = Field(default_factory=dict)


class ModelSpec(BaseModel):
    """The model of a case: its source and options, and its inputs as resolved before the run.

    ``inputs`` merges what the suite declares with what the source describes;
    shapes may still hold symbolic dimensions (``batch``, and the names in
    ``dims``).  Results written by schema version 1 may lack them (``None``).
    """

    model_config = ConfigDict(extra="forbid")

    label: str
    source: str
    options: dict[str, Any] = Field(default_factory=dict)
    inputs: list[InputSpec] | None = None
    dims: dict[str, PositiveInt] = Field(default_factory=dict)


class Case(BaseModel):
    """One point of a suite's cross product, complete enough to run anywhere.

    Nothing in it depends on the machine that planned it: model paths stay as
    the suite wrote them, relative to the suite's folder.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    model: ModelSpec
    variant: str
    compressions: list[ItemSpec]
    backend: ItemSpec
    target: ItemSpec
    scenario: ItemSpec
    batch: PositiveInt
    #: The suite's ``metrics``: each names an output of the scenario, an observer or a metric.
    metrics: list[ItemSpec]
    measure: MeasureSettings

    def axes(self) -> CaseAxes:
        """The case's value on each axis."""
        return CaseAxes(
            model=self.model.label,
            variant=self.variant,
            backend=self.backend.label,
            target=self.target.label,
            scenario=self.scenario.label,
            batch=self.batch,
        )
