"""Feed a model from a dataset, and run a backend over many samples.

A model's ``dataset`` entry (:class:`~benchharness.case.DatasetSpec`) names a
dataset plugin and how the model's input is fed from it.  The core does the
feeding, once per case and deterministically, so every backend and every
compression variant of a model gets the same arrays: images are resized to the
input's height and width, their channels converted to the input's, normalised
and laid out as the input wants.  :func:`check_dataset` checks an entry
against the model's inputs when a suite is validated; :func:`feed` turns a
dataset's samples into the input's array; :func:`infer_in_batches` runs a
backend, compiled for a fixed batch, over any number of samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from benchharness.errors import BenchError
from benchharness.signature import BATCH_DIM, InputSpec

if TYPE_CHECKING:
    import numpy as np

    from benchharness.case import DatasetSpec
    from benchharness.yamlfile import Loc, LocatedDocument

#: Weights of R, G and B in luminance (ITU-R BT.601), for colour images fed into a one-channel input.
LUMA = (0.299, 0.587, 0.114)
FLOAT_DTYPES = ("float16", "float32", "float64")


def fed_input(spec: DatasetSpec, inputs: list[InputSpec], label: str) -> InputSpec:
    """The model input a dataset feeds: the one ``spec.input`` names, else the only input without a fixed value.

    Raises :class:`BenchError` saying which inputs there are when that is not one input.
    """
    names = ", ".join(i.name for i in inputs) or "none"
    if spec.input is not None:
        for candidate in inputs:
            if candidate.name == spec.input:
                return candidate
        raise BenchError(f"model {label!r} has no input {spec.input!r}; its inputs: {names}")
    open_inputs = [i for i in inputs if i.value is None]
    if len(open_inputs) != 1:
        listing = ", ".join(i.name for i in open_inputs) or "none"
        raise BenchError(
            f"model {label!r} has {len(open_inputs)} inputs without a fixed value ({listing}): "
            "name the one the dataset feeds with 'input'"
        )
    return open_inputs[0]


def batch_axis(spec: InputSpec) -> int | None:
    """Where the batch dimension is in an input's (symbolic) shape; ``None`` when it has none."""
    shape = spec.shape or []
    return shape.index(BATCH_DIM) if BATCH_DIM in shape else None


def channel_axis(layout: str) -> int:
    """The channels' axis in a rank-4 input of ``layout`` (``NCHW`` or ``NHWC``)."""
    return 1 if layout == "NCHW" else 3


def check_dataset(doc: LocatedDocument, loc: Loc, label: str, spec: DatasetSpec, inputs: list[InputSpec]) -> list[str]:
    """Problems of a model's ``dataset`` entry against the model's resolved inputs, one ``file:line`` line each.

    The input it feeds must exist and carry the batch first; ``mean``/``std``
    need a float input and one value or one per channel; ``layout`` and a
    ``resize`` method apply only to an image input (rank 4).  What depends on
    the data itself (its image size, its labels) is checked when the case runs.
    """
    try:
        target = fed_input(spec, inputs, label)
    except BenchError as exc:
        return [doc.error(loc + (("input",) if spec.input is not None else ()), str(exc))]
    problems = []
    shape = target.shape or []
    where = f"input {target.name!r} [{', '.join(str(d) for d in shape)}]"
    if batch_axis(target) != 0:
        problems.append(doc.error(loc, f"{where} does not have the batch first; a dataset feeds samples along it"))
    dtype = target.dtype or "float32"
    for key in ("mean", "std"):
        values = getattr(spec, key)
        if values is None:
            continue
        if dtype not in FLOAT_DTYPES:
            problems.append(doc.error(loc + (key,), f"{where} is {dtype}: '{key}' normalises float inputs only"))
            continue
        channels = shape[channel_axis(spec.layout)] if len(shape) == 4 else None
        if len(values) != 1 and (not isinstance(channels, int) or len(values) != channels):
            wanted = f"1 or {channels}" if isinstance(channels, int) else "1"
            problems.append(
                doc.error(loc + (key,), f"{key} has {len(values)} values; {where} ({spec.layout}) takes {wanted}")
            )
    for key in ("layout", "resize"):
        if key in spec.model_fields_set and len(shape) != 4:
            problems.append(
                doc.error(loc + (key,), f"'{key}' applies to image inputs (rank 4); {where} has rank {len(shape)}")
            )
    return problems


# --------------------------------------------------------------------------- images


def resize_images(images: np.ndarray, height: int, width: int, method: str = "bilinear") -> np.ndarray:
    """Resize ``[N, H, W, C]`` images to ``height`` x ``width``.

    ``bilinear`` samples at half-pixel centres, clamped at the borders, as
    torch's ``interpolate(mode="bilinear", align_corners=False)`` does;
    ``nearest`` takes the pixel whose centre is nearest (torch's
    ``nearest-exact``).  The result is float32.
    """
    import numpy as np

    out = np.asarray(images, dtype=np.float32)
    for axis, size in ((1, height), (2, width)):
        n_in = out.shape[axis]
        if n_in == size:
            continue
        centres = (np.arange(size, dtype=np.float64) + 0.5) * (n_in / size)
        if method == "nearest":
            index = np.minimum(np.floor(centres).astype(np.int64), n_in - 1)
            out = np.take(out, index, axis=axis)
            continue
        src = np.clip(centres - 0.5, 0.0, n_in - 1)
        low = np.floor(src).astype(np.int64)
        high = np.minimum(low + 1, n_in - 1)
        shape = [1] * out.ndim
        shape[axis] = size
        weight = (src - low).astype(np.float32).reshape(shape)
        out = np.take(out, low, axis=axis) * (1 - weight) + np.take(out, high, axis=axis) * weight
    return out


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """``[N, H, W, C]`` images with ``channels`` channels.

    One channel is repeated; three (RGB) or four (RGBA) become one by
    luminance (:data:`LUMA`); four become three by dropping alpha.  Other
    conversions raise :class:`BenchError`.
    """
    import numpy as np

    have = images.shape[-1]
    if have == channels:
        return images
    if have == 1:
        return np.repeat(images, channels, axis=-1)
    if have in (3, 4) and channels == 1:
        return (images[..., :3] @ np.asarray(LUMA, dtype=images.dtype))[..., None]
    if have == 4 and channels == 3:
        return images[..., :3]
    raise BenchError(f"cannot feed {have}-channel images into a {channels}-channel input")


def feed(
    samples: np.ndarray, *, images: bool, spec: DatasetSpec, name: str, shape: list[int], dtype: str
) -> np.ndarray:
    """A dataset's samples as the array of model input ``name``, whose shape for these samples is ``shape``.

    ``samples`` holds one sample per row.  With ``images``, they are
    ``[N, H, W, C]`` floats in [0, 1]: resized, channel-converted,
    normalised, laid out and cast as ``spec`` and the input say (a ``uint8``
    input gets 0-255).  Without, each sample must already have the input's
    shape without the batch; it is normalised by a single ``mean``/``std``
    when given, and cast.  A sample set that cannot feed the input raises
    :class:`BenchError` naming both shapes.
    """
    import numpy as np

    samples = np.asarray(samples)
    wanted = f"input {name!r} {list(shape)}"
    if samples.ndim == 0 or samples.shape[0] != shape[0]:
        raise BenchError(f"{len(samples) if samples.ndim else 0} samples cannot fill {wanted}")
    if not images:
        if list(samples.shape[1:]) != list(shape[1:]):
            raise BenchError(
                f"the dataset's samples have shape {list(samples.shape[1:])}; {wanted} takes {list(shape[1:])} each"
            )
        out = samples.astype(np.float64) if spec.mean or spec.std else samples
        if spec.mean or spec.std:
            if len(spec.mean or [0.0]) != 1 or len(spec.std or [1.0]) != 1:
                raise BenchError("samples that are not images take a single 'mean' and 'std' value")
            out = (out - (spec.mean or [0.0])[0]) / (spec.std or [1.0])[0]
        return np.ascontiguousarray(out.astype(dtype, copy=False))
    if samples.ndim != 4:
        raise BenchError(
            f"the dataset gave images of shape {list(samples.shape)}, expected [N, height, width, channels]"
        )
    if len(shape) != 4:
        raise BenchError(f"the dataset gives images; {wanted} is not a batch of images (rank 4)")
    channels, height, width = (
        (shape[1], shape[2], shape[3]) if spec.layout == "NCHW" else (shape[3], shape[1], shape[2])
    )
    out = convert_channels(samples.astype(np.float32, copy=False), channels)
    if spec.resize == "none":
        if out.shape[1:3] != (height, width):
            raise BenchError(
                f"images of {out.shape[1]}x{out.shape[2]} do not fit {wanted} ({spec.layout}) and 'resize' is none"
            )
    else:
        out = resize_images(out, height, width, spec.resize)
    if dtype in FLOAT_DTYPES:
        if spec.mean is not None:
            out = out - _per_channel(spec.mean, channels, "mean")
        if spec.std is not None:
            out = out / _per_channel(spec.std, channels, "std")
    elif dtype == "uint8":
        out = np.rint(np.clip(out, 0.0, 1.0) * 255.0)
    else:
        raise BenchError(f"images feed float or uint8 inputs; {wanted} is {dtype}")
    if spec.layout == "NCHW":
        out = out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out.astype(dtype))


def _per_channel(values: list[float], channels: int, key: str) -> np.ndarray:
    import numpy as np

    if len(values) not in (1, channels):
        raise BenchError(f"{key} has {len(values)} values; the input has {channels} channels: give 1 or {channels}")
    return np.asarray(values, dtype=np.float32)


# --------------------------------------------------------------------------- running


def infer_in_batches(
    backend: Any, inputs: Mapping[str, np.ndarray], batch: int, axes: Mapping[str, int | None]
) -> dict[str, np.ndarray]:
    """Run ``backend`` over every sample of ``inputs`` in chunks of ``batch``, the size it was compiled for.

    ``axes`` gives each input's batch axis (``None``: the input is the same for
    every chunk, such as a scalar; when no input has one, the backend runs
    once and each output is one sample).  The last chunk is padded by repeating its
    last sample, and the padded rows of the outputs are dropped.  Returns each
    output whose first dimension is the batch, concatenated over the chunks
    (copied: a framework may reuse its output buffers); an output without the
    batch first is left out.  Raises :class:`BenchError` when the batched
    inputs disagree on the sample count, or no output has the batch first.
    """
    import numpy as np

    counts = {name: inputs[name].shape[axis] for name, axis in axes.items() if axis is not None and name in inputs}
    if not counts:  # nothing to split: one inference, each output one sample
        outputs = backend.to_numpy(backend.infer(backend.prepare(dict(inputs))))
        return {name: np.asarray(value)[None].copy() for name, value in outputs.items()}
    if len(set(counts.values())) != 1:
        raise BenchError(f"the inputs hold different numbers of samples: {counts}")
    total = next(iter(counts.values()))
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, total, batch):
        real = min(batch, total - start)
        chunk = {}
        for name, array in inputs.items():
            axis = axes.get(name)
            if axis is None:
                chunk[name] = array
                continue
            index = np.arange(start, start + batch)
            index[real:] = start + real - 1  # pad with the last real sample
            chunk[name] = np.ascontiguousarray(np.take(array, index, axis=axis))
        outputs = backend.to_numpy(backend.infer(backend.prepare(chunk)))
        for name, value in outputs.items():
            value = np.asarray(value)
            if value.ndim and value.shape[0] == batch:
                parts.setdefault(name, []).append(value[:real].copy())
    if not parts:
        raise BenchError(f"no output of the model has the batch ({batch}) as its first dimension")
    return {name: np.concatenate(chunks) for name, chunks in parts.items() if len(chunks) == -(-total // batch)}


__all__ = [
    "LUMA",
    "batch_axis",
    "channel_axis",
    "check_dataset",
    "convert_channels",
    "fed_input",
    "feed",
    "infer_in_batches",
    "resize_images",
]
