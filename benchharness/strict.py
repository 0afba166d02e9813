"""The base of every model read from a suite: unknown keys, booleans for numbers and non-finite numbers are errors.

Pydantic's lax mode takes ``true`` for ``1`` wherever an int or float is
expected, so ``threads: true`` would run one thread and be recorded as
``true``.  And a worker receives its case as JSON, where pydantic writes
``inf`` and ``nan`` as ``null``: a ``.inf`` that validated here would reach
the plugin as ``None``.  :class:`StrictModel` refuses both, in its own fields
and in every field of its subclasses (a third-party plugin's ``Options``
too), looking inside lists, tuples, dicts, unions and ``Annotated`` types.
Strict mode would also refuse ``"1.5"`` for a float and ``[0, 1]`` for a
tuple, which suites rely on; only booleans are singled out.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

#: Types that pydantic's lax mode would fill from a boolean (``True`` becomes ``1``).
NUMBER_TYPES: tuple[type, ...] = (int, float, complex, Decimal, Fraction, timedelta)

_SEQUENCES = (list, tuple, set, frozenset)


class StrictModel(BaseModel):
    """Unknown keys, a boolean where the field takes no boolean, and ``inf``/``nan`` anywhere are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        errors: list[InitErrorDetails] = []
        _check(value, field.annotation if field is not None else Any, (), errors, set())
        if errors:
            # A ValidationError raised here keeps each error's own location below the field (``batch_sizes[1]``):
            # pydantic-core re-reads its line errors instead of turning it into one ``value_error`` on the field.
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return value


def _check(value: Any, tp: Any, loc: tuple[int | str, ...], errors: list[InitErrorDetails], seen: set[int]) -> None:
    """Add an error for each boolean that ``tp`` would read as a number, and each non-finite float, in ``value``."""
    if isinstance(value, bool):
        if _reads_bool_as_number(tp):
            word = "true" if value else "false"
            error = PydanticCustomError("bool_for_number", "expected a number, got a boolean ({word})", {"word": word})
            errors.append({"type": error, "loc": loc, "input": value})
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            message = "non-finite number {value} is not allowed"
            error = PydanticCustomError("non_finite_number", message, {"value": value})
            errors.append({"type": error, "loc": loc, "input": value})
        return
    if not isinstance(value, (*_SEQUENCES, dict)) or id(value) in seen:
        return  # a cycle is pydantic's to report
    tp = _container_type(tp, value)
    if isinstance(tp, type) and issubclass(tp, StrictModel):
        return  # it checks its own fields, with their own annotations
    seen.add(id(value))
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        _check(item, _child_type(tp, key), (*loc, key), errors, seen)
    seen.discard(id(value))


def _unwrap(tp: Any) -> Any:
    """``tp`` without ``Annotated`` and ``NewType`` wrappers."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif hasattr(tp, "__supertype__"):  # typing.NewType
            tp = tp.__supertype__
        else:
            return tp


def _members(tp: Any) -> list[Any]:
    """The members of a union (``X | None`` included); ``[tp]`` for anything else."""
    tp = _unwrap(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return [m for arg in get_args(tp) for m in _members(arg)]
    return [tp]


def _reads_bool_as_number(tp: Any) -> bool:
    """Whether ``tp`` admits no boolean, yet pydantic's lax mode would take one as a number.

    A union reads it as a number when no member admits a boolean and one
    member is a number; a type this cannot tell about (a custom class) is
    left to pydantic.
    """
    verdicts = [_bool_verdict(member) for member in _members(tp)]
    return "admits" not in verdicts and "number" in verdicts


def _bool_verdict(tp: Any) -> str:
    """``"admits"`` a boolean, reads it as a ``"number"``, or ``"refuses"`` it anyway (a string, a list, a model)."""
    origin = get_origin(tp)
    if tp is Any or tp is object or tp is bool or isinstance(tp, TypeVar):
        return "admits"
    if origin is Literal:
        return _values_verdict(get_args(tp))
    if origin is not None or tp is type(None):
        return "refuses"  # list[int], dict[str, int], None: pydantic refuses a boolean itself
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return _values_verdict([member.value for member in tp])
        if issubclass(tp, NUMBER_TYPES):
            return "number"
        if issubclass(tp, (str, bytes, BaseModel, *_SEQUENCES, Mapping)):
            return "refuses"
    return "admits"


def _values_verdict(values: Any) -> str:
    """The verdict for a ``Literal`` or ``Enum``: its values decide."""
    values = list(values)
    if any(isinstance(v, bool) for v in values):
        return "admits"
    return "number" if any(isinstance(v, NUMBER_TYPES) for v in values) else "refuses"


def _container_type(tp: Any, value: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any] | dict[Any, Any]) -> Any:
    """The member of ``tp`` that a list or mapping ``value`` would be validated as; ``Any`` when it is unclear."""
    fits = []
    for member in _members(tp):
        origin = get_origin(member) or member
        if not isinstance(origin, type):
            continue
        if isinstance(value, dict):
            fits_value = issubclass(origin, (Mapping, BaseModel)) or dataclasses.is_dataclass(origin)
        else:
            fits_value = issubclass(origin, Iterable) and not issubclass(origin, (str, bytes, Mapping, BaseModel))
        if fits_value:
            fits.append(member)
    return fits[0] if len(fits) == 1 else Any


def _child_type(tp: Any, key: Any) -> Any:
    """The type of the item at ``key`` (an index or a mapping key) inside a value of type ``tp``."""
    origin = get_origin(tp)
    args = get_args(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):  # a plain pydantic model inside (a Selector)
        field = tp.model_fields.get(key) or next(
            (f for f in tp.model_fields.values() if f.alias == key and key is not None), None
        )
        return field.annotation if field is not None else Any
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        types_by_name = {f.name: f.type for f in dataclasses.fields(tp) if not isinstance(f.type, str)}
        return types_by_name.get(key, Any)
    if origin is None or not args:
        return Any
    if issubclass(origin, Mapping):
        return args[1] if len(args) == 2 else Any
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return args[key] if isinstance(key, int) and 0 <= key < len(args) and args != ((),) else Any
    return args[0]
