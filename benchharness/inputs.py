"""Generate a case's inputs from their specs and a seed."""

from __future__ import annotations

import math
import zlib
from typing import TYPE_CHECKING

from benchharness.errors import BenchError
from benchharness.signature import BATCH_DIM, InputSpec

if TYPE_CHECKING:
    import numpy as np

    from benchharness.case import Case

#: Random values are drawn this many elements at a time, so no temporary array is larger than this.
CHUNK = 1 << 16


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


def input_bytes(specs: list[InputSpec]) -> int:
    """Bytes the arrays generated for ``specs`` (shapes fixed) take; an input of unknown shape counts 0."""
    import numpy as np

    return sum(
        math.prod(int(d) for d in spec.shape) * np.dtype(spec.dtype or "float32").itemsize
        for spec in specs
        if spec.shape is not None
    )


def check_input_memory(case: Case, available: int | None = None) -> None:
    """Refuse a case whose generated inputs alone would not fit in the memory available.

    Raises :class:`BenchError` naming the size needed, the largest input and
    the memory available (``psutil``'s estimate, unless ``available`` is given).
    """
    specs = fixed_specs([s for s in case.model.inputs if s.shape is not None], case.batch, case.model.dims)
    need = input_bytes(specs)
    if available is None:
        import psutil

        available = psutil.virtual_memory().available
    if need > available:
        largest = max(specs, key=lambda spec: input_bytes([spec]))
        raise BenchError(
            f"the inputs at batch {case.batch} need {byte_size(need)} (largest: {largest.name!r} "
            f"{largest.dtype or 'float32'} {list(largest.shape or [])}), more than the {byte_size(available)} "
            "of memory available"
        )


def byte_size(size: int) -> str:
    """A byte count for people: ``8.9 TiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.3g} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    raise AssertionError("unreachable")


def make_inputs(specs: list[InputSpec], seed: int) -> dict[str, np.ndarray]:
    """One array per input spec (shapes already fixed), reproducible from ``seed``.

    Each input draws from its own generator, seeded by the case seed and the
    input's name, so adding an input does not change the others.  Values are
    drawn in the input's own dtype, a chunk at a time where it cannot be drawn
    directly, so the peak memory is the inputs themselves.
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
        return rng.integers(0, 2, size=shape, dtype=np.bool_)
    if np.issubdtype(dtype, np.integer):
        low, high = bounds if bounds is not None else (0, 10)
        return rng.integers(int(low), int(high), size=shape, dtype=dtype)
    low, high = bounds if bounds is not None else (0.0, 1.0)
    if dtype in (np.float32, np.float64):  # the dtypes Generator.random draws directly
        out = rng.random(shape, dtype=dtype)
        out *= high - low
        out += low
        return out
    out = np.empty(shape, dtype=dtype)  # float16 and others: float32 values, a chunk at a time
    flat = out.reshape(-1)
    for start in range(0, flat.size, CHUNK):
        chunk = rng.random(min(CHUNK, flat.size - start), dtype=np.float32)
        chunk *= high - low
        chunk += low
        flat[start : start + chunk.size] = chunk
    return out
