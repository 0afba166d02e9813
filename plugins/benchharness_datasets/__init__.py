"""Built-in datasets, and the metrics that score models on data: ``accuracy`` and ``fidelity``.

Datasets: ``digits`` (scikit-learn's bundled handwritten digits, a fixed
stratified train/test split), ``npz`` (arrays in a ``.npz`` file) and
``image-folder`` (one sub-folder of images per class).  A suite names one in a
model's ``dataset`` entry; the core feeds its samples to the model's input
(``CaseContext.dataset``), the same arrays for every backend.

Metrics, collected after the scenario, untimed: ``accuracy`` runs the case's
backend over the dataset and reports top-1 (its value) and top-5;
``fidelity`` compares the case's outputs with its reference model's (the
uncompressed model on torch eager, else ONNX Runtime) on the dataset's inputs
or, without one, on seeded random inputs: top-1 agreement (its value), the
largest and mean differences, and cosine similarity.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, NonNegativeInt, PositiveFloat, PositiveInt, field_validator

from benchharness.api import (
    BenchError,
    CaseContext,
    Dataset,
    DatasetContext,
    LabelledData,
    Metric,
    MetricValue,
    Options,
    resize_images,
)
from benchharness.hookspecs import hookimpl

SKLEARN_HINT = "pip install scikit-learn  (or: pip install 'benchharness[data]')"


class DigitsOptions(Options):
    """Options of the ``digits`` dataset."""

    split: Literal["train", "test"] = Field("test", description="Which side of the fixed, stratified split.")


class Digits(Dataset):
    """scikit-learn's bundled handwritten digits: 8x8 grey images, ten classes, a fixed stratified split.

    1,797 images; the test split holds 25% of each class (450 images), drawn
    with seed 0 (see ``benchharness_datasets.digits``).  Nothing is downloaded.
    """

    name = "digits"
    description = "scikit-learn's bundled handwritten digits (8x8, 10 classes), fixed stratified 75/25 split"
    requires = ("sklearn",)
    install_hint = SKLEARN_HINT
    Options: ClassVar[type[BaseModel]] = DigitsOptions

    def load(self, options: DigitsOptions, ctx: DatasetContext) -> LabelledData:  # type: ignore[override]
        """The chosen split, images scaled from 0-16 to [0, 1]."""
        from benchharness_datasets.digits import load_split

        return load_split(options.split)


class NpzOptions(Options):
    """Options of the ``npz`` dataset."""

    path: str = Field(description=".npz file (numpy.savez), relative to the suite.")
    inputs_key: str = Field("inputs", min_length=1, description="Name of the array of samples in the file.")
    labels_key: str = Field("labels", min_length=1, description="Name of the array of labels (class indices).")
    array_layout: Literal["samples", "NHWC", "NCHW", "NHW"] = Field(
        "samples",
        description="How the samples are stored: 'samples' are fed as they are (each with the model input's shape "
        "without the batch); the others are images (NHW: grey), which the core resizes and converts for the model "
        "(the entry's 'layout' is the model's side).",
    )
    max_value: PositiveFloat | None = Field(
        None, description="Pixel value that means white, for images; default 255 for integer arrays, 1 for floats."
    )


class Npz(Dataset):
    """Samples and labels from a ``.npz`` file: the user's own data."""

    name = "npz"
    description = "samples and labels from a .npz file (array names and layout as options)"
    Options: ClassVar[type[BaseModel]] = NpzOptions

    def load(self, options: NpzOptions, ctx: DatasetContext) -> LabelledData:  # type: ignore[override]
        """Read both arrays (no pickles); images become ``[N, H, W, C]`` floats in [0, 1]."""
        import zipfile

        import numpy as np

        path = ctx.resolve(options.path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                missing = [key for key in (options.inputs_key, options.labels_key) if key not in names]
                if missing:
                    raise BenchError(
                        f"{path} has no array {', '.join(map(repr, missing))}; it has: {', '.join(names) or 'none'}"
                    )
                samples, labels = archive[options.inputs_key], archive[options.labels_key]
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise BenchError(f"{path}: not a readable .npz file: {str(exc).splitlines()[0]}") from None
        if not np.issubdtype(labels.dtype, np.integer):
            key = options.labels_key
            raise BenchError(f"{path}: labels {key!r} are {labels.dtype}, expected integer class indices")
        info: dict[str, Any] = {"path": str(path), "inputs": options.inputs_key, "labels": options.labels_key}
        if options.array_layout == "samples":
            return LabelledData(inputs=samples, labels=labels.reshape(-1), images=False, info=info)
        layout = options.array_layout
        expected = 3 if layout == "NHW" else 4
        if samples.ndim != expected:
            raise BenchError(
                f"{path}: {options.inputs_key!r} has shape {list(samples.shape)}, not {layout} (rank {expected})"
            )
        peak = options.max_value or (255.0 if np.issubdtype(samples.dtype, np.integer) else 1.0)
        images = samples.astype(np.float32) / np.float32(peak)
        if layout == "NHW":
            images = images[..., None]
        elif layout == "NCHW":
            images = images.transpose(0, 2, 3, 1)
        info["max_value"] = peak
        return LabelledData(inputs=np.ascontiguousarray(images), labels=labels.reshape(-1), info=info)


class ImageFolderOptions(Options):
    """Options of the ``image-folder`` dataset."""

    path: str = Field(description="Folder with one sub-folder of images per class, relative to the suite.")
    size: PositiveInt | tuple[PositiveInt, PositiveInt] | None = Field(
        None,
        description="Height and width (one number: square) every image is resized to on reading; needed only when "
        "the images differ in size (the model's own size is applied afterwards, as for any dataset).",
    )

    @field_validator("size")
    @classmethod
    def _square(cls, value: int | tuple[int, int] | None) -> tuple[int, int] | None:
        return (value, value) if isinstance(value, int) else value


class ImageFolder(Dataset):
    """A folder of images, one sub-folder per class: ``ROOT/CLASS/*.png``.

    Class indices follow the sorted sub-folder names.  Samples are ordered
    round-robin over the classes (each class's files sorted by name), so the
    first N (``limit``) hold every class.  Images are read with Pillow when
    it is installed; without it, PNG and binary PGM/PPM files are read by
    ``benchharness_datasets.images`` (JPEG needs Pillow).  Colour images make
    every image of the folder colour; alpha is dropped.
    """

    name = "image-folder"
    description = "a folder of images with one sub-folder per class (PNG/PGM/PPM; any format with Pillow)"
    Options: ClassVar[type[BaseModel]] = ImageFolderOptions

    def load(self, options: ImageFolderOptions, ctx: DatasetContext) -> LabelledData:  # type: ignore[override]
        """Read every image; the labels are the sorted sub-folder indices."""
        import numpy as np

        from benchharness_datasets.images import image_suffixes, read_image

        root = ctx.resolve(options.path, folder=True)
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not classes:
            raise BenchError(f"{root} has no sub-folders: expected one folder of images per class")
        suffixes = image_suffixes()
        files = []
        for label, name in enumerate(classes):
            found = sorted(
                p
                for p in (root / name).iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes
            )
            files.append([(path, label) for path in found])
        ordered = []
        for rank in range(max(map(len, files))):  # round-robin: the first N samples hold every class
            ordered += [group[rank] for group in files if rank < len(group)]
        if not ordered:
            raise BenchError(f"{root}: no image files in its class folders ({', '.join(classes)})")
        images = []
        for path, _ in ordered:
            image = read_image(path)
            if options.size is not None and image.shape[:2] != options.size:
                image = resize_images(image[None], *options.size)[0]
            images.append(image)
        sizes = {image.shape[:2] for image in images}
        if len(sizes) > 1:
            first = ordered[0][0]
            other = next(p for (p, _), im in zip(ordered, images) if im.shape[:2] != images[0].shape[:2])
            raise BenchError(
                f"{root}: images differ in size ({first.name} is {images[0].shape[0]}x{images[0].shape[1]}, "
                f"{other.relative_to(root)} another); set 'size' to resize them on reading"
            )
        channels = max(image.shape[2] for image in images)
        stacked = np.stack([np.repeat(im, channels // im.shape[2], axis=2) for im in images])
        info = {"path": str(root), "classes": len(classes), "files": len(ordered)}
        labels = np.asarray([label for _, label in ordered], dtype=np.int64)
        return LabelledData(inputs=stacked, labels=labels, classes=classes, info=info)


# --------------------------------------------------------------------------- metrics


class AccuracyOptions(Options):
    """Options of the ``accuracy`` metric."""

    output: NonNegativeInt = Field(
        0, description="Position of the output that holds the class scores (0: the first); names differ by framework."
    )


class Accuracy(Metric):
    """Top-1 and top-5 on the model's dataset, from the case's own backend and variant.

    The core feeds the dataset's samples to the model's input (the same arrays
    for every backend, their sha256 in ``details.dataset.fed_sha256``); the
    backend runs them in chunks of the case's batch size, untimed.  The value
    is top-1 in %; ``details`` has top-5, the counts and the dataset's facts.
    """

    name = "accuracy"
    unit = "%"
    better = "higher"
    description = "top-1 (and top-5) on the model's dataset, run on the case's backend"
    Options: ClassVar[type[BaseModel]] = AccuracyOptions

    def collect(self, ctx: CaseContext) -> MetricValue:
        """Run every sample of the dataset through the backend and score the chosen output."""
        from benchharness_datasets.scoring import classification, pick_output

        data = ctx.dataset()
        output, scores = pick_output(ctx.infer_all(data.inputs), self.options.output)
        figures = classification(scores, data.labels)
        split = data.info.get("split")
        where = f"{data.name}{' ' + str(split) + ' split' if split else ''}"
        return MetricValue(
            value=figures["top1"],
            unit=self.unit,
            method=f"top-1 on {where} ({figures['samples']} samples), the case's backend, untimed",
            details={**figures, "output": output, "dataset": {"name": data.name, **data.info}},
        )


class FidelityOptions(Options):
    """Options of the ``fidelity`` metric."""

    reference: list[str] = Field(
        default_factory=lambda: ["torch", "onnxruntime"],
        min_length=1,
        description="Backends to run the reference on, in order of preference: the first that is installed and "
        "takes the uncompressed model is used, with its default options, on the CPU.",
    )
    output: NonNegativeInt = Field(0, description="Position of the output to compare (0: the first).")
    samples: PositiveInt = Field(64, description="Seeded random samples to compare on when the model has no dataset.")


class Fidelity(Metric):
    """How close the case's outputs are to its reference model's: the uncompressed model on torch eager (fp32).

    The reference runs in the same worker, on the same inputs: the model's
    dataset when it has one, else ``samples`` seeded random samples.  A model
    with no torch form (an ONNX file) is referenced on ONNX Runtime.  The
    value is top-1 agreement in %; ``details`` has the largest and mean
    absolute differences, the mean relative difference and the cosine
    similarity (see ``benchharness_datasets.scoring.comparison``).  When the
    case is the reference itself, its outputs are compared with themselves,
    computed once: a check that costs one pass.
    """

    name = "fidelity"
    unit = "%"
    better = "higher"
    description = "agreement with the uncompressed model on torch eager (else ONNX Runtime): top-1, diffs, cosine"
    Options: ClassVar[type[BaseModel]] = FidelityOptions

    def collect(self, ctx: CaseContext) -> MetricValue:
        """Run the inputs through the case and its reference, and compare one output."""
        from benchharness_datasets.scoring import comparison, pick_output

        if ctx.case.model.dataset is not None:
            data = ctx.dataset()
            inputs, source = data.inputs, f"{data.count} samples of dataset {data.name!r}"
        else:
            inputs = ctx.random_inputs(self.options.samples)
            source = f"{self.options.samples} seeded random samples"
        reference = ctx.reference_outputs(inputs, tuple(self.options.reference))
        outputs = reference.outputs if reference.is_case else ctx.infer_all(inputs)
        name, mine = pick_output(outputs, self.options.output)
        ref_name, theirs = pick_output(reference.outputs, self.options.output)
        figures = comparison(mine, theirs)
        what = "the case itself" if reference.is_case else f"the uncompressed model on {reference.backend}"
        return MetricValue(
            value=figures["top1_agreement"],
            unit=self.unit,
            method=f"top-1 agreement with {what}, on {source}",
            details={
                **figures,
                "output": name,
                "reference_output": ref_name,
                "reference_backend": reference.backend,
                "reference_is_case": reference.is_case,
                "reference": reference.details,
            },
        )


@hookimpl
def benchharness_register_datasets(register):  # type: ignore[no-untyped-def]
    """Register digits, npz and image-folder."""
    register(Digits)
    register(Npz)
    register(ImageFolder)


@hookimpl
def benchharness_register_metrics(register):  # type: ignore[no-untyped-def]
    """Register accuracy and fidelity."""
    register(Accuracy)
    register(Fidelity)
