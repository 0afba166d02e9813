"""A case: one point of a suite's cross product, complete enough to run on any machine.

The case axes are spelled once, as the fields of :class:`CaseAxes`; the
:class:`Selector` of ``include``, ``exclude`` and ``baseline`` is derived from it,
and so are case ids.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, create_model

from benchharness.settings import MeasureSettings
from benchharness.signature import InputSpec
from benchharness.strict import StrictModel


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


class DatasetSpec(StrictModel):
    """A model's ``dataset`` entry: the dataset plugin that scores it, and how the model's input is fed from it.

    ``name`` is a dataset plugin; every key that is not a field here is that
    plugin's option (``split: test``).  The fields are the feeding, done by the
    core once per case so every backend gets the same arrays.  Sizes and channel
    counts are not keys: they are the model input's own, read from its shape,
    so the suite names only the methods.  Images are resized to the input's
    height and width (``resize``), their channels converted to the input's
    (one channel is repeated; three or four become one by luminance, four lose
    alpha to become three), scaled to [0, 1], normalised by ``mean`` and
    ``std`` per channel, and laid out as ``layout`` says.
    """

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, description="A dataset plugin; the entry's other keys are its options.")
    input: str | None = Field(
        None, description="The model input the dataset feeds; required when the model has several inputs to feed."
    )
    resize: Literal["bilinear", "nearest", "none"] = Field(
        "bilinear",
        description="How images are resized to the input's height and width: bilinear (half-pixel centres, as "
        "torch's interpolate with align_corners=False), nearest, or none (images must already have that size).",
    )
    mean: list[float] | None = Field(
        None, min_length=1, description="Subtracted after scaling to [0, 1]: one value, or one per channel."
    )
    std: list[PositiveFloat] | None = Field(
        None, min_length=1, description="Divides after 'mean': one value, or one per channel."
    )
    layout: Literal["NCHW", "NHWC"] = Field("NCHW", description="Where the channels are in the model's input.")
    limit: PositiveInt | None = Field(None, description="Score on the first N samples of the split only.")

    def options(self) -> dict[str, Any]:
        """The dataset plugin's own options: the keys that are not feeding fields."""
        return dict(self.model_extra or {})


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
    #: The dataset the model is scored on, and how its input is fed from it; ``None`` when the suite names none.
    dataset: DatasetSpec | None = None


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
