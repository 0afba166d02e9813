"""Generate a case's inputs from their specs and a seed."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from benchharness.errors import BenchError
from benchharness.signature import BATCH_DIM, InputSpec

if TYPE_CHECKING:
    import numpy as np


def resolve_shape(spec: InputSpec, batch: int, dims: dict[str, int]) -> list[int]:
    """Fix every symbolic dimension: ``batch`` is the case's batch size, others come from ``dims``."""
    if spec.shape is None:
        raise BenchError(f"input {spec.name!r} has no shape")
    shape = []
    for dim in spec.shape:
        if isinstance(dim, int):
            shape.append(dim)
        elif dim == BATCH_DIM:
            shape.append(batch)
        elif dim in dims:
            shape.append(dims[dim])
        else:
            known = ", ".join(sorted(dims)) or "none"
            raise BenchError(
                f"input {spec.name!r}: dimension {dim!r} has no value; set it in the model's 'dims' "
                f"(set: {known}) or use 'batch'"
            )
    return shape


def fixed_specs(specs: list[InputSpec], batch: int, dims: dict[str, int]) -> list[InputSpec]:
    """Copies of ``specs`` with every dimension a number."""
    return [spec.model_copy(update={"shape": resolve_shape(spec, batch, dims)}) for spec in specs]


def make_inputs(specs: list[InputSpec], seed: int) -> dict[str, np.ndarray]:
    """One array per input spec (shapes already fixed), reproducible from ``seed``.

    Each input draws from its own generator, seeded by the case seed and the
    input's name, so adding an input does not change the others.
    """
    import numpy as np

    arrays: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = tuple(int(d) for d in spec.shape or ())
        dtype = np.dtype(spec.dtype or "float32")
        if spec.value is not None:
            value = np.asarray(spec.value, dtype=dtype)
            if value.ndim == 0:
                array = np.full(shape, value, dtype=dtype)
            elif value.shape == shape:
                array = value
            else:
                raise BenchError(f"input {spec.name!r}: value has shape {list(value.shape)}, expected {list(shape)}")
        else:
            rng = np.random.default_rng([seed, zlib.crc32(spec.name.encode())])
            array = _random(rng, shape, dtype, spec.range)
        arrays[spec.name] = np.require(array, requirements="C")  # ascontiguousarray would make 0-d arrays 1-d
    return arrays


def _random(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype, bounds: tuple[float, float] | None
) -> np.ndarray:
    import numpy as np

    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        low, high = bounds if bounds is not None else (0, 10)
        return rng.integers(int(low), int(high), size=shape, dtype=dtype)
    low, high = bounds if bounds is not None else (0.0, 1.0)
    return rng.uniform(low, high, size=shape).astype(dtype)
