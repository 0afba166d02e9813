"""What a model takes and gives, read without loading it: tensor specs and the model signature.

A model source describes its model in the CLI process (``ModelSource.describe``),
reading only what it must (an ONNX graph without its external data, a TorchScript
file's code, a zoo model's options), so ``benchharness validate`` can check a
suite's inputs, dimensions and backends before anything runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from benchharness.strict import StrictModel

DTYPES = ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
DType = Literal[DTYPES]  # type: ignore[valid-type]

#: The symbolic dimension that every case sets to its batch size.
BATCH_DIM = "batch"


class TensorSpec(StrictModel):
    """A named tensor: its shape (an int is fixed, a string names a dynamic dimension) and dtype.

    ``shape`` or ``dtype`` is ``None`` when the model does not say (a TorchScript
    schema names its inputs but gives no shapes).
    """

    name: str = Field(min_length=1)
    shape: list[int | str] | None = Field(None, description="Dimensions; a string names a dynamic dimension.")
    dtype: DType | None = None

    @field_validator("shape")
    @classmethod
    def _dims_positive(cls, shape: list[int | str] | None) -> list[int | str] | None:
        for dim in shape or ():
            if isinstance(dim, bool) or (isinstance(dim, int) and dim <= 0):
                raise ValueError(f"dimensions must be positive integers or names, got {dim!r}")
            if isinstance(dim, str) and not dim:
                raise ValueError("a dimension name must not be empty")
        return shape

    def symbols(self) -> list[str]:
        """The dynamic dimensions' names, in order, without repeats."""
        out: list[str] = []
        for dim in self.shape or ():
            if isinstance(dim, str) and dim not in out:
                out.append(dim)
        return out


class InputSpec(TensorSpec):
    """A model input as a suite declares it, or as the core resolved it: how its values are made.

    ``batch`` in ``shape`` is the case's batch size; other names come from the
    model's ``dims``.  Left out, ``shape`` and ``dtype`` come from the model's
    own description; ``dtype`` is ``float32`` when neither says.
    """

    value: float | int | bool | list[Any] | None = Field(
        None, description="Fixed value: a scalar fills the tensor, a nested list gives it whole."
    )
    range: tuple[float, float] | None = Field(
        None, description="[low, high) for random values; defaults to [0, 1) for floats, [0, 10) for integers."
    )

    @model_validator(mode="after")
    def _value_or_range(self) -> InputSpec:
        if self.value is not None and self.range is not None:
            raise ValueError("give either 'value' or 'range', not both")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range must be [low, high) with low < high, got {list(self.range)}")
        return self


class ModelSignature(BaseModel):
    """A model's inputs and outputs and a few static facts, as its source reads them without loading it."""

    model_config = ConfigDict(extra="forbid")

    format: str
    inputs: list[TensorSpec]
    #: Empty when the format does not say (a TorchScript schema).
    outputs: list[TensorSpec] = Field(default_factory=list)
    #: Inputs the model runs without (a TorchScript argument with a default); used only when the suite declares them.
    optional_inputs: list[str] = Field(default_factory=list)
    parameters: int | None = Field(None, description="Number of weights, when known without loading.")
    #: Facts shown by ``benchharness inspect``: an ONNX opset, a producer, a file size.
    details: dict[str, Any] = Field(default_factory=dict)
