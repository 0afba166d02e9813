"""Everything a plugin needs: the classes it subclasses, and the objects the core hands to them.

Every item a plugin registers is a class with a ``name`` and an ``Options``
pydantic model.  The suite entry that names the item is validated against
``Options`` (extra keys forbidden), so a typo in a suite is reported with its
file, line and field before anything runs.  The core checks each class when
it is registered (the attributes its kind must declare, the methods it must
implement and their signatures, reserved option names) and refuses it with
a one-line reason otherwise.

The data flow: a :class:`ModelSource` gives a :class:`ModelArtifact`;
:class:`Compression` steps and :class:`Converter` hops turn it into a format
the :class:`Backend` takes; the :class:`Target` has already applied its
limits; the :class:`Scenario` owns the timed loop and opens the measured
phase, around which :class:`Observer` objects run; then each :class:`Metric`
is collected; a metric that scores the model on real data reads the model's
:class:`Dataset` as the core fed it (:meth:`CaseContext.dataset`), runs it in
chunks of the compiled batch (:meth:`CaseContext.infer_all`), and may compare
with the uncompressed reference model (:meth:`CaseContext.reference_outputs`).
Every figure is a :class:`MetricValue`.  A :class:`Launcher`
decides where the worker that does all this runs; a :class:`Reporter`
renders the :class:`RunResults`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from benchharness.case import AXES, Case, CaseAxes, DatasetSpec, ItemSpec, ModelSpec, Selector
from benchharness.errors import BenchError
from benchharness.feeding import infer_in_batches, resize_images
from benchharness.hookspecs import hookimpl
from benchharness.machine import Machine, Node
from benchharness.measure import measure, sample, time_batch, warm_up
from benchharness.procmem import lifetime_peak_bytes, peak_bytes, reset_peak, rss_bytes
from benchharness.results import (
    CaseResult,
    CaseRuntime,
    MemoryLimit,
    MetricValue,
    ModelRecord,
    RunResults,
    TargetContext,
)
from benchharness.settings import MeasureSettings, WarmupSettings
from benchharness.signature import BATCH_DIM, DTYPES, InputSpec, ModelSignature, TensorSpec
from benchharness.stats import Summary, summarize
from benchharness.strict import StrictModel
from benchharness.yamlfile import file_kind

if TYPE_CHECKING:
    import numpy as np

    from benchharness.plugins import PluginHost


# --------------------------------------------------------------------------- options


class Options(StrictModel):
    """Base of every plugin item's options: unknown keys, booleans for numbers and ``inf``/``nan`` are errors.

    A boolean is refused wherever the field's type takes no boolean but would
    read one as a number (``threads: true`` is not one thread), inside lists,
    dicts and unions too; a field typed ``bool`` (or ``int | bool``) still takes
    one.  ``inf`` and ``nan`` are refused in every field, ``Any`` included: the
    worker receives its options as JSON, which has no such numbers.
    """


class EntryOptions(Options):
    """Options of an item whose label appears in case ids (backends, targets, scenarios, compressions)."""

    label: str | None = Field(None, description="Name of this entry in case ids; defaults to the item's name.")


class BackendOptions(EntryOptions):
    """Options every backend accepts."""

    threads: PositiveInt | None = Field(None, description="Intra-op threads; defaults to the target's thread count.")


class TargetOptions(EntryOptions):
    """Options every target accepts."""

    node_labels: list[str] = Field(
        default_factory=list,
        description="Run this target's cases only on cluster nodes that advertise every one of these labels "
        "(Ray custom resources such as 'hw:h200'), a string or a list; a launcher that places cases across "
        "machines (ray) honours it, and one that runs them on this machine ignores it.",
    )

    @field_validator("node_labels", mode="before")
    @classmethod
    def _one_label(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("node_labels")
    @classmethod
    def _label_names(cls, value: list[str]) -> list[str]:
        for label in value:
            if not label.strip() or label != label.strip():
                raise ValueError(f"a node label is a non-empty name without surrounding spaces, not {label!r}")
        return value


class ScenarioOptions(EntryOptions):
    """Options every scenario accepts."""


class CompressionOptions(EntryOptions):
    """Options every compression accepts."""


# --------------------------------------------------------------------------- the common base


class PluginItem:
    """Common base of everything a plugin registers.

    Class attributes: ``name`` (required; unique per kind, no ``/``),
    ``description`` (one line for ``benchharness plugins``), ``requires``
    (importable modules the item needs; without them it is listed as
    unavailable and its cases fail with ``install_hint``) and ``Options``.

    Reserved option names: the keys of the suite entry itself
    (``entry_keys``: ``name``; for model sources ``source``, ``name``,
    ``inputs``, ``dims`` and ``dataset``; for datasets the feeding keys of
    :class:`DatasetSpec`) and ``label``.  An ``Options`` model may not
    declare them; ``label`` comes from :class:`EntryOptions` where a kind
    has one.
    """

    #: Name used in suites and on the command line; unique per kind.
    name: ClassVar[str]
    #: One line shown by ``benchharness plugins``.
    description: ClassVar[str] = ""
    #: Importable modules this item needs; it is listed as unavailable without them.
    requires: ClassVar[tuple[str, ...]] = ()
    #: How to get what ``requires`` names, shown when it is missing.
    install_hint: ClassVar[str | None] = None
    #: Options accepted in the suite entry that names this item.
    Options: ClassVar[type[BaseModel]] = Options
    #: Keys of the suite entry that are not options; an ``Options`` model may not declare them.
    entry_keys: ClassVar[tuple[str, ...]] = ("name",)
    #: Class attributes a subclass must set, with the type each must have (checked at registration).
    declares: ClassVar[dict[str, type]] = {}

    @classmethod
    def missing_requirements(cls) -> list[str]:
        """Names in ``requires`` that cannot be imported (checked without importing them)."""
        missing = []
        for module in cls.requires:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.append(module)
        return missing

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """``None`` when usable, else why not and how to fix it."""
        missing = cls.missing_requirements()
        if not missing:
            return None
        hint = cls.install_hint or f"pip install {' '.join(missing)}"
        return f"needs {', '.join(missing)}: {hint}"


# --------------------------------------------------------------------------- helpers


def allowed_cores() -> list[int]:
    """The core ids this process may run on (its CPU affinity); every core where there is no affinity API."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return list(range(os.cpu_count() or 1))


# --------------------------------------------------------------------------- models


def existing_path(base_dir: Path, path: str, noun: str, *, folder: bool = False) -> Path:
    """``path`` as given if absolute, else under ``base_dir``, once it is an existing file (a folder with ``folder``).

    Raises :class:`BenchError` saying what is there instead, with ``noun``
    (``model``, ``dataset``) in front: ``model file not found: PATH``, ``model
    path is a directory, expected a model file: PATH``, ``dataset path is a
    file, expected a folder: PATH``.
    """
    candidate = Path(path).expanduser()
    resolved = candidate if candidate.is_absolute() else base_dir / candidate
    wanted = "folder" if folder else "file"
    try:
        kind = file_kind(resolved.stat().st_mode)
    except (FileNotFoundError, NotADirectoryError):
        raise BenchError(f"{noun} {wanted} not found: {resolved}") from None
    except OSError as exc:
        raise BenchError(f"cannot read {noun} {wanted} {resolved}: {exc.strerror or exc}") from None
    if folder:
        if kind != "a directory":
            raise BenchError(f"{noun} path is {kind or 'a file'}, expected a folder: {resolved}")
    elif kind == "a directory":
        raise BenchError(f"{noun} path is a directory, expected a {noun} file: {resolved}")
    elif kind is not None:
        raise BenchError(f"{noun} path is {kind}, not a {noun} file: {resolved}")
    return resolved


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks: the ``content_hash`` of a model file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ModelArtifact:
    """A model in one format, as handed between sources, compressions, converters and backends.

    ``format`` is a free string agreed between plugins; the built-ins use
    ``"torch"`` (an in-memory ``torch.nn.Module`` in ``obj``),
    ``"torchscript"`` and ``"onnx"`` (files in ``path``).  ``content_hash``
    identifies the exact model (architecture and weights): converted models
    are cached by it, so two different models must never share one; for a
    file, :func:`file_hash` of it.
    """

    format: str
    content_hash: str
    path: Path | None = None
    obj: Any = None
    #: Input specs with every dimension fixed; the core fills them in after ``load``.
    inputs: list[InputSpec] = field(default_factory=list)
    #: JSON-safe facts such as ``parameters`` and ``size_bytes``; copied into results.
    info: dict[str, Any] = field(default_factory=dict)

    def size_bytes(self) -> int | None:
        """Size of the model's weights or file, when known."""
        if self.path is not None and self.path.exists():
            return self.path.stat().st_size
        size = self.info.get("size_bytes")
        return int(size) if size is not None else None

    def record(self) -> ModelRecord:
        """What the results file keeps of this artifact."""
        return ModelRecord(format=self.format, content_hash=self.content_hash, inputs=self.inputs, info=self.info)


@dataclass
class ModelContext:
    """What a model source, compression or converter may need besides its options."""

    #: Folder of the suite file; relative paths in options are resolved against it.
    base_dir: Path
    #: Folder for cached conversions and compressions.
    cache_dir: Path
    #: The case's seed (weights of generated models, random inputs).
    seed: int

    def resolve(self, path: str) -> Path:
        """An existing model file: ``path`` as given if absolute, else relative to the suite's folder.

        Raises :class:`BenchError` saying what is there instead: nothing
        (``model file not found: PATH``), a directory, a device or a FIFO.
        """
        return existing_path(self.base_dir, path, "model")

    def cached_file(self, name: str, build: Callable[[Path], None], facts: dict[str, Any] | None = None) -> CachedFile:
        """A file in the cache, built once by ``build`` and verified on every later use.

        ``name`` is its path under ``cache_dir`` (``"zoo-digits/KEY.pt"``): put
        everything the content depends on into it, hashed.  On a miss,
        ``build(tmp)`` writes the file to a temporary path beside it, which is
        renamed into place only when ``build`` returns, so no reader ever sees
        half a file; a record with its size and sha256 (and ``facts``) is
        written beside it.  A later call uses the file only when it matches its
        record, and builds it again otherwise (``rebuilt`` says why).  Check and
        build happen under an exclusive lock (``NAME.lock``), so processes that
        ask for the same file at once build it once: the others wait, then find
        it.  This is how converted models are cached too.
        """
        from benchharness.models import build_cached

        out = self.cache_dir / name
        digest, hit, rebuilt = build_cached(out, build, {"name": name, **(facts or {})})
        return CachedFile(path=out, sha256=digest, hit=hit, rebuilt=rebuilt)


@dataclass
class CachedFile:
    """A file :meth:`ModelContext.cached_file` built or found in the cache."""

    path: Path
    #: SHA-256 of the file, as verified against its record.
    sha256: str
    #: ``True`` when the file was found (and verified), ``False`` when it was built now.
    hit: bool
    #: Why a file that was there was built again (changed, truncated, record missing); ``None`` otherwise.
    rebuilt: str | None = None


class ModelSource(PluginItem, ABC):
    """Produces a model from a suite's ``models[i]`` entry.

    Declares ``produces``, the format of the artifacts ``load`` returns, so
    ``validate`` can tell before loading whether each backend can take the
    model (directly or through converters).  A source that reads files lists
    their suffixes in ``file_suffixes`` and takes the file in a ``path``
    option; ``benchharness inspect FILE`` then finds it.
    """

    #: Format of the artifacts ``load`` returns.
    produces: ClassVar[str]
    #: Suffixes of the model files this source reads from its ``path`` option (``benchharness inspect``).
    file_suffixes: ClassVar[tuple[str, ...]] = ()
    entry_keys: ClassVar[tuple[str, ...]] = ("source", "name", "inputs", "dims", "dataset")
    declares: ClassVar[dict[str, type]] = {"produces": str}

    def default_name(self, options: BaseModel) -> str:
        """Label of the model when the suite gives no ``name``."""
        return self.name

    def output_format(self, options: BaseModel) -> str:
        """Format ``load`` will produce for these options; ``produces`` unless a source varies it."""
        return self.produces

    def describe(self, options: BaseModel, ctx: ModelContext) -> ModelSignature | None:
        """The model's inputs and outputs, read cheaply in the CLI process, or ``None`` when unknown.

        Read only what is needed (a graph without its weights, a schema), never
        import a framework for it unless there is no other way: ``validate``
        calls this for every model.  The suite's ``inputs`` override and
        complete what this returns; with ``None``, the suite must declare
        every input.
        """
        return None

    @abstractmethod
    def load(self, options: BaseModel, ctx: ModelContext) -> ModelArtifact:
        """Build or read the model.  Runs in the worker process."""


class Converter(PluginItem, ABC):
    """Converts a model between formats; the core caches the output by content hash.

    Declares ``source_formats`` and ``target_format``.  The core chains
    converters (shortest path first) when no single one fits.
    """

    source_formats: ClassVar[tuple[str, ...]]
    target_format: ClassVar[str]
    #: File suffix of the converted model.
    suffix: ClassVar[str] = ""
    declares: ClassVar[dict[str, type]] = {"source_formats": tuple, "target_format": str}

    def cache_key(self, artifact: ModelArtifact) -> str:
        """Extra text that changes the output for the same model (e.g. an opset); part of the cache key."""
        return ""

    @abstractmethod
    def convert(self, artifact: ModelArtifact, out_path: Path) -> None:
        """Write the converted model of ``artifact`` to ``out_path``."""


@dataclass
class CompressionContext(ModelContext):
    """What a compression may need besides its options: the model's data, and a record of what it did.

    A compression's output is cached by the core (see :class:`Compression`), so
    :meth:`Compression.apply` runs once per model, options and data, not once per
    case; what it passes to :meth:`record` is kept with the cached model and
    copied into every case's results.
    """

    #: Label of the model being compressed (for messages).
    model_label: str = ""
    #: Loads the model's dataset for a split (``None``: the suite's own); the worker sets it, ``None`` when the model
    #: has no dataset.
    dataset_loader: Callable[[str | None], DatasetInputs] | None = field(default=None, repr=False)
    #: What :meth:`record` was given so far.
    facts: dict[str, Any] = field(default_factory=dict)

    def dataset(self, split: str | None = None) -> DatasetInputs:
        """The model's dataset fed to its inputs, as :meth:`CaseContext.dataset` gives it to the accuracy metric.

        ``split`` replaces the dataset's ``split`` option: calibrate and train
        on ``"train"``, which the accuracy metric (on the suite's split, usually
        ``"test"``) never scores.  The whole split is returned, without the
        suite's ``limit``.  A :class:`BenchError` when the model has no
        ``dataset`` entry, or the dataset has no such split.
        """
        if self.dataset_loader is None:
            raise BenchError(
                f"model {self.model_label!r} has no dataset: this compression needs data, so give the model a "
                "'dataset' entry in the suite (e.g. dataset: {name: digits})"
            )
        return self.dataset_loader(split)

    def record(self, **facts: Any) -> None:
        """Note what the compression did: ``sparsity=0.5``, ``layers_quantized=12``, ``epochs=3``...

        Values must be JSON-safe (numbers, strings, lists, dicts).  They are kept
        with the cached model and appear in each case's results under the
        model's ``info["compressions"]``.
        """
        self.facts.update(facts)


class Compression(PluginItem, ABC):
    """Turns a model into a lighter variant (pruned, quantized, distilled, fused).

    A suite chains compressions (``[{name: prune-channels, amount: 0.5}, quantize-ort-static]``).
    For each step the core first converts the model into one of ``formats``
    when it is in another (a torch model for an ONNX quantizer), then looks the
    step up in the cache: the key hashes the input model's content, the
    compression's name, plugin version, options, :meth:`cache_key`, the seed
    and, when :meth:`reads_data`, the model's ``dataset`` entry.  On a miss it
    calls :meth:`apply`, writes the result with :meth:`save` into a fresh
    folder under ``<cache>/compressed/`` and reads it back with
    :meth:`restore`; on a hit it only restores it.  So a distillation runs once
    for all the backends, targets, scenarios and batch sizes of a model.

    A variant that cannot run on a case's backend (its format reaches none of
    the backend's formats, or :meth:`unsupported_backend` says so) makes that
    case a skip with the reason, decided before any worker starts.
    """

    Options: ClassVar[type[BaseModel]] = CompressionOptions
    #: Formats ``apply`` accepts; ``("*",)`` accepts any.  A model in another format is converted first.
    formats: ClassVar[tuple[str, ...]] = ("*",)
    #: Whether ``apply`` reads :meth:`CompressionContext.dataset` (calibration, fine-tuning, distillation); see
    #: :meth:`reads_data` for a compression that reads it only with some options.
    uses_dataset: ClassVar[bool] = False

    def output_format(self, input_format: str) -> str:
        """Format of the compressed model for an input of ``input_format``; unchanged by default."""
        return input_format

    def cache_key(self, options: BaseModel) -> str:
        """Extra text that changes the output for the same model and options (a library's version); ``""``."""
        return ""

    def reads_data(self, options: BaseModel) -> bool:
        """Whether ``apply`` with these options reads the dataset: ``uses_dataset`` unless overridden.

        Only then is the model's ``dataset`` entry part of the cache key, so a
        compression that reads data only for an optional step (fine-tuning)
        overrides this and keeps one cached variant without it.
        """
        return self.uses_dataset

    def unsupported_backend(self, backend: str, options: BaseModel) -> str | None:
        """Why backend ``backend`` cannot run this compression's output, or ``None`` when it can.

        Formats are checked by the core; this is for what a format does not
        say, such as a torch model with quantized layers that no exporter takes.
        """
        return None

    @abstractmethod
    def apply(self, artifact: ModelArtifact, options: BaseModel, ctx: CompressionContext) -> ModelArtifact:
        """Return the compressed model (a new artifact); note what was done with :meth:`CompressionContext.record`."""

    def save(self, artifact: ModelArtifact, folder: Path) -> Path:
        """Write the compressed model into the empty ``folder``; return the path :meth:`restore` will be given.

        The default copies a model file (``artifact.path``) and the files beside
        it that share its stem (OpenVINO's ``.bin`` beside its ``.xml``).  A
        compression whose output is in memory (a ``torch`` module) overrides
        this and :meth:`restore` (``benchharness_torch.TorchCompression`` does).
        """
        import shutil

        if artifact.path is None or not artifact.path.is_file():
            raise BenchError(
                f"compression {self.name!r} returned a {artifact.format} model in memory; it must override save() "
                "and restore() to cache it"
            )
        for sibling in sorted(artifact.path.parent.glob(f"{artifact.path.stem}.*")):
            if sibling.is_file():
                shutil.copyfile(sibling, folder / f"model{sibling.suffix}")
        return folder / f"model{artifact.path.suffix}"

    def restore(self, path: Path, artifact_format: str, info: dict[str, Any]) -> ModelArtifact:
        """The model :meth:`save` wrote at ``path``; the core sets its ``content_hash`` and ``inputs``."""
        return ModelArtifact(format=artifact_format, content_hash="", path=path, info=dict(info))


# --------------------------------------------------------------------------- targets and backends

#: Points of a case at which the worker asks the target for a :meth:`Target.snapshot` of its device, in order.
SNAPSHOT_POINTS = ("applied", "measured_start", "measured_end", "end")


class Target(PluginItem, ABC):
    """Where a case runs and under which limits.

    Before a case's worker starts, the machine that runs it asks
    :meth:`unavailable_here` whether it has the target; a case whose target is
    missing is recorded as ``skipped`` with the reason, and never started.
    Then ``environment`` runs there too, and ``apply`` first thing in the
    worker, which records the :class:`TargetContext` it returns.  A launcher
    that places cases across machines first asks :meth:`node_needs` which
    nodes qualify.
    """

    Options: ClassVar[type[BaseModel]] = TargetOptions

    @classmethod
    def unavailable_here(cls, options: BaseModel) -> str | None:
        """Why this machine cannot provide the target as ``options`` ask; ``None`` when it can.

        Called on the machine that runs the case before its worker starts (the
        CLI process for a local launcher, the node for a cluster's), in the
        worker again, and by
        ``benchharness targets`` with the default options.  A reason makes the
        case ``skipped``, not failed: a run whose only other cases are skips
        exits 0.  Keep it cheap and import no framework: look for a device
        file, a driver library or a core count.  The default is ``None``.

        Example::

            @classmethod
            def unavailable_here(cls, options):
                if not os.path.exists("/dev/nvidia0"):
                    return "no NVIDIA GPU (/dev/nvidia0 is missing)"
                return None
        """
        return None

    @classmethod
    def node_needs(cls, options: BaseModel) -> dict[str, float]:
        """What a cluster node must offer to run a case on this target: resource name to amount.

        Asked in the CLI process by launchers that place cases across machines
        (``--launcher ray``), never by a local run.  Names are the cluster's
        resources: Ray's own ``GPU``, or a custom resource a node declares with
        ``ray start --resources '{"intel_npu": 1}'``.  The launcher adds the
        option ``node_labels`` (every :class:`TargetOptions` has it) and its own
        slot.  A case that no node in the cluster can satisfy is skipped at once
        with the reason.  The default, ``{}``, is any node; ``unavailable_here``
        still runs on the node that takes the case.

        Example::

            @classmethod
            def node_needs(cls, options):
                return {"GPU": options.index + 1}
        """
        return {}

    def environment(self, options: BaseModel) -> dict[str, str]:
        """Environment variables for the worker process, set before it starts.

        Runs on the machine the case runs on, before its worker starts: in the
        CLI process for a local launcher, on the node for a cluster's.
        """
        return {}

    @abstractmethod
    def apply(self, options: BaseModel) -> TargetContext:
        """Apply the limits inside the worker, before any framework is imported."""

    def snapshot(self, options: BaseModel, point: str) -> dict[str, Any] | None:
        """The device's state at one point of the case (clocks, temperature, power), JSON-safe; ``None`` for none.

        The worker calls it at each of :data:`SNAPSHOT_POINTS`: ``"applied"``
        (right after :meth:`apply`), ``"measured_start"`` and ``"measured_end"``
        (around the scenario's measured phase, outside any timed loop) and
        ``"end"`` (after the metrics), and records what it returns in the
        results under ``runtime.target.details["snapshots"][point]``.  Keep it
        to a few driver queries.  A snapshot that raises is recorded as a
        warning and skipped.  The default records nothing.
        """
        return None

    def check(self, options: BaseModel, snapshots: dict[str, dict[str, Any]]) -> list[str]:
        """Warnings for the case from its snapshots, e.g. clocks that changed during the measured phase.

        Called once, after the ``"end"`` snapshot, with every snapshot taken
        so far by point; each string returned is added to the case's
        ``warnings``.  The default has none.
        """
        return []


class Backend(PluginItem, ABC):
    """An inference framework.  Compile once (``load``), run many (``infer``).

    Declares ``formats``, the model formats it accepts (most preferred
    first), and ``devices``.  The worker calls, in order: ``load``,
    ``prepare`` (outside the timed region), then the scenario calls
    ``infer`` many times (each call is one timed iteration and must include
    any device synchronisation), and the worker ends with ``runtime_info``
    and ``close``.  ``concurrency``, ``submit`` and ``wait_all`` serve
    concurrent scenarios; frameworks with asynchronous requests (OpenVINO's
    infer requests) set ``asynchronous`` and override them.
    """

    Options: ClassVar[type[BaseModel]] = BackendOptions
    #: Model formats accepted, most preferred first.
    formats: ClassVar[tuple[str, ...]]
    #: Target devices this backend can drive.
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    declares: ClassVar[dict[str, type]] = {"formats": tuple, "devices": tuple}

    def __init__(self, options: BaseModel, target: TargetContext) -> None:
        self.options = options
        self.target = target

    @property
    def threads(self) -> int:
        """Threads to use: the backend's own ``threads`` option, else the target's."""
        return getattr(self.options, "threads", None) or self.target.threads

    @abstractmethod
    def load(self, artifact: ModelArtifact) -> None:
        """Load and compile the model once."""

    @abstractmethod
    def prepare(self, inputs: dict[str, np.ndarray]) -> Any:
        """Turn numpy inputs into the framework's own feed, on the right device."""

    @abstractmethod
    def infer(self, feed: Any) -> Any:
        """Run one synchronous inference on ``feed`` and return the raw outputs."""

    @abstractmethod
    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        """Convert raw outputs of ``infer`` into named numpy arrays."""

    @classmethod
    def unavailable_on(cls, target: TargetContext) -> str | None:
        """Why this installation cannot run on the device ``target`` gave, though the backend drives such devices.

        For example an ONNX Runtime built for CPU only on a ``cuda`` target,
        or a torch without CUDA.  Called in the worker after the target's
        ``apply`` and before the model is loaded; a reason makes the case
        ``skipped`` with it, not failed.  The framework may be imported here.
        The default is ``None``.
        """
        return None

    def start_device_clock(self) -> str | None:
        """Start timing each ``infer`` call on the device's own clock as well; return the clock's method, or ``None``.

        A backend whose device has a clock of its own (CUDA events) records
        one duration per ``infer`` call from now on, outside the host's timed
        region as far as it can (recording an event is cheap, reading it is
        left to :meth:`stop_device_clock`).  The ``latency`` scenario calls it
        after warm-up and reports the device's times beside the host's.  The
        default has no device clock and returns ``None``.
        """
        return None

    def stop_device_clock(self) -> list[int]:
        """Stop the device clock; each ``infer`` call's device time since the start, in ns, in call order."""
        return []

    def concurrency(self, requested: int | None) -> int:
        """How many requests a concurrent scenario (``throughput``) keeps in flight.

        ``requested`` is the suite's choice (the scenario's ``requests``
        option), ``None`` for the backend's own.  The default is
        ``requested or 1``: a framework without concurrent requests offers
        throughput through the batch size.  A backend whose ``infer`` may run
        from several threads at once returns more; one with asynchronous
        requests returns the device's optimal number.  What this returns is
        recorded with the figures.
        """
        return requested or 1

    #: ``True`` when :meth:`submit` returns before the inference ends (real asynchronous requests); a concurrent
    #: scenario then keeps ``concurrency()`` requests in flight through ``submit``.  ``False``: it calls ``infer``
    #: from that many threads at once.
    asynchronous: ClassVar[bool] = False

    def submit(self, feed: Any, done: Callable[[Any], None]) -> None:
        """Start one inference and call ``done(outputs)`` when it ends (from any thread).

        The default runs synchronously; backends with real asynchronous
        requests set ``asynchronous = True`` and override this and
        :meth:`wait_all`.  ``submit`` may block while every request is busy.
        """
        done(self.infer(feed))

    def wait_all(self) -> None:
        """Block until every submitted inference has finished."""

    def runtime_info(self) -> dict[str, Any]:
        """What the framework really used (JSON-safe): threads, providers, versions."""
        return {}

    def close(self) -> None:
        """Release the model."""


# --------------------------------------------------------------------------- scenarios, observers, metrics


@dataclass
class CaseContext:
    """Everything a scenario, observer or metric may use while a case runs in its worker.

    ``collected`` holds the figures so far, by name: the scenario's outputs,
    then the observers', then each metric's as it is collected.  ``errors``
    holds the figures that failed, by name.
    """

    case: Case
    backend: Backend
    artifact: ModelArtifact
    inputs: dict[str, np.ndarray]
    feed: Any
    collected: dict[str, MetricValue] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: The observers of this case, by figure name; :meth:`measured` starts and stops them.
    observers: dict[str, Observer] = field(default_factory=dict)
    #: Called with ``"measured_start"`` before the observers start and ``"measured_end"`` after they stop (the
    #: worker takes the target's snapshots there).
    on_phase: list[Callable[[str], None]] = field(default_factory=list, repr=False)
    #: Items (batch x inferences) the measured phase processed, as the scenario counted them (:meth:`count`);
    #: ``None`` when it did not.  Observers read it in ``stop`` to give a figure per inference.
    measured_items: int | None = None
    #: The worker process's memory around the model's load, in bytes: ``before_load_rss``, ``after_load_rss``
    #: (the model loaded and its feed prepared) and ``load_peak`` (the peak resident set during the load, where
    #: the kernel lets it be reset first, else the process's peak so far), plus ``load_peak_method``.
    memory: dict[str, Any] = field(default_factory=dict)
    #: Loads and feeds the model's dataset (:meth:`dataset` calls it once); the worker sets it.  ``None``: no
    #: dataset can be loaded here.
    dataset_loader: Callable[[], DatasetInputs] | None = field(default=None, repr=False)
    #: Runs the case's reference model (:meth:`reference_outputs`); the worker sets it.
    reference_runner: Callable[[dict[str, np.ndarray], tuple[str, ...]], ReferenceOutputs] | None = field(
        default=None, repr=False
    )
    _phase: str = field(default="before", init=False, repr=False)
    _dataset: DatasetInputs | BenchError | None = field(default=None, init=False, repr=False)

    def count(self, items: int) -> None:
        """Add ``items`` (batch x inferences) to what the measured phase processed; call it inside :meth:`measured`.

        The built-in scenarios call it once, after sampling; a scenario that
        does not leaves ``measured_items`` at ``None``, and figures per
        inference (energy) are then unknown.
        """
        self.measured_items = (self.measured_items or 0) + int(items)

    @property
    def settings(self) -> MeasureSettings:
        """The case's measurement settings."""
        return self.case.measure

    def dataset(self) -> DatasetInputs:
        """The model's dataset, loaded and fed to its inputs by the core: the same arrays for every backend.

        Loaded once per case, on first use (a second metric gets the same
        object).  Raises :class:`BenchError` when the suite gives the model no
        ``dataset``, or when it cannot be loaded or fed (a missing file, images
        that do not fit the input); the metric that asked records it as its
        error.
        """
        if self._dataset is None:
            if self.dataset_loader is None:
                raise BenchError(f"model {self.case.model.label!r} has no dataset here")
            try:
                self._dataset = self.dataset_loader()
            except BenchError as exc:
                self._dataset = exc
        if isinstance(self._dataset, BenchError):
            raise BenchError(str(self._dataset))
        return self._dataset

    def batch_axes(self, inputs: dict[str, np.ndarray] | None = None) -> dict[str, int | None]:
        """Each model input's batch axis (``None`` for an input without one), from the case's input specs.

        An input whose spec names no dimension at all (shapes fixed already) is
        taken to have the batch first when its first dimension is the case's
        batch size.
        """
        from benchharness.feeding import batch_axis

        axes: dict[str, int | None] = {}
        for spec in self.case.model.inputs or self.artifact.inputs:
            axis = batch_axis(spec)
            if axis is None and not spec.symbols() and spec.shape and spec.shape[0] == self.case.batch:
                axis = 0
            axes[spec.name] = axis
        for name, array in (inputs or {}).items():
            if name not in axes:
                axes[name] = 0 if array.ndim and array.shape[0] == self.case.batch else None
        return axes

    def infer_all(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the case's backend over every sample of ``inputs``, untimed, and return every output for all of them.

        The backend was compiled for the case's batch size, so the samples go
        in chunks of it, the last one padded with its last sample and the
        padded outputs dropped (:func:`infer_in_batches`).  ``inputs`` holds
        the samples along each input's batch axis (:meth:`batch_axes`), as
        :meth:`dataset` and :meth:`random_inputs` give them.
        """
        return infer_in_batches(self.backend, inputs, self.case.batch, self.batch_axes(inputs))

    def random_inputs(self, count: int) -> dict[str, np.ndarray]:
        """``count`` samples of the case's seeded inputs (at ``count`` equal to the batch, ``inputs`` itself).

        Drawn as the case's own inputs are, from ``measure.seed``, with the
        batch dimension set to ``count``: inputs for a figure that needs no labels.
        """
        from benchharness.inputs import fixed_specs, make_inputs

        specs = self.case.model.inputs
        if not specs or not any(BATCH_DIM in (spec.shape or []) for spec in specs):
            return dict(self.inputs)
        return make_inputs(fixed_specs(specs, count, self.case.model.dims), self.settings.seed)

    def reference_outputs(self, inputs: dict[str, np.ndarray], backends: tuple[str, ...]) -> ReferenceOutputs:
        """The outputs of the case's reference model on ``inputs`` (every sample, as for :meth:`infer_all`).

        The reference is the case's model without its compressions, on the
        first of ``backends`` that is installed and takes the model (directly
        or through converters), with its default options, on the CPU.  When
        the case itself is that (no compression, that backend, its default
        options, on the CPU), its own outputs are returned and ``is_case`` is
        set, with no second model loaded.  Otherwise the worker loads the
        reference in this process, next to the case's backend.  Raises
        :class:`BenchError` when none of ``backends`` can run the model.
        """
        if self.reference_runner is None:
            raise BenchError("no reference model can be run here (the context has no reference_runner)")
        return self.reference_runner(inputs, tuple(backends))

    @contextmanager
    def measured(self) -> Iterator[None]:
        """The measured phase: observers start on entry and stop on exit, outside any timed loop.

        A scenario enters it once, around its sampling (after warm-up).  An
        observer that fails is recorded as that figure's error; the phase and
        the other observers go on.
        """
        if self._phase != "before":
            raise RuntimeError("a scenario may enter the measured phase only once")
        self._phase = "open"
        for hook in self.on_phase:
            hook("measured_start")
        started = []
        for name, observer in self.observers.items():
            with self.figure(name, f"observer {name!r} failed in start"):
                observer.start(self)
                started.append((name, observer))
        try:
            yield
        finally:
            self._phase = "closed"
            for name, observer in reversed(started):
                with self.figure(name, f"observer {name!r} failed in stop"):
                    self.collected[name] = checked_value(observer.stop())
            for hook in self.on_phase:
                hook("measured_end")

    @property
    def phase(self) -> str:
        """``"before"``, ``"open"`` or ``"closed"``: where the case is relative to its measured phase."""
        return self._phase

    @contextmanager
    def figure(self, name: str, what: str) -> Iterator[None]:
        """Record any exception inside as the error of figure ``name`` (``what`` says who failed)."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - one figure's failure must not cost the case
            self.errors[name] = f"{what}: {_describe_error(exc)}"


def _describe_error(exc: Exception) -> str:
    """``Type: message`` on one line; a pydantic error as its first field and message."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{exc.title}: {where}: {err['msg']}" if where else f"{exc.title}: {err['msg']}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def checked_value(value: Any) -> MetricValue:
    """``value`` if it is a valid, JSON-safe :class:`MetricValue`; else a ``TypeError`` saying what is wrong."""
    if not isinstance(value, MetricValue):
        raise TypeError(f"returned {type(value).__name__}, expected MetricValue")
    try:
        MetricValue.model_validate(value.model_dump()).model_dump_json()
    except Exception as exc:  # noqa: BLE001 - pydantic validation or serialisation of odd details
        raise TypeError(f"returned an invalid MetricValue: {_describe_error(exc)}") from None
    return value


class Scenario(PluginItem, ABC):
    """How load is offered to a backend; the scenario owns the timed loop.

    Declares ``produces``, the names of the figures ``run`` returns (the
    built-in ``latency`` scenario produces ``latency`` and ``throughput``).
    ``run`` warms up, then enters ``ctx.measured()`` around its sampling so
    observers watch exactly that phase, and returns its figures.  The timing
    helpers it may use are importable from this module: :func:`warm_up`,
    :func:`sample`, :func:`time_batch`, :func:`summarize`.
    """

    Options: ClassVar[type[BaseModel]] = ScenarioOptions
    #: Names of the figures ``run`` returns.
    produces: ClassVar[tuple[str, ...]]
    declares: ClassVar[dict[str, type]] = {"produces": tuple}

    def __init__(self, options: BaseModel) -> None:
        self.options = options

    @abstractmethod
    def run(self, ctx: CaseContext) -> dict[str, MetricValue]:
        """Drive ``ctx.backend`` with ``ctx.feed`` and return the figures named in ``produces``."""


class Observer(PluginItem, ABC):
    """Watches a scenario's measured phase without entering its timed loop (a memory sampler, an energy counter).

    Declares ``unit``.  A suite lists it under ``metrics`` by ``name``;
    ``start`` runs right before the measured phase and ``stop`` right after
    it, in the worker.  Keep both cheap, and do any sampling on a thread of
    your own.
    """

    unit: ClassVar[str]
    #: ``"lower"`` or ``"higher"``: which direction is better, for tables and comparisons.
    better: ClassVar[str] = "lower"
    declares: ClassVar[dict[str, type]] = {"unit": str}

    def __init__(self, options: BaseModel) -> None:
        self.options = options

    @abstractmethod
    def start(self, ctx: CaseContext) -> None:
        """Start watching; the measured phase begins when this returns."""

    @abstractmethod
    def stop(self) -> MetricValue:
        """Stop watching and return the figure (``method`` says how it was obtained)."""


class Metric(PluginItem, ABC):
    """A figure collected after the scenario: derived, static, or from an untimed pass of its own.

    Declares ``unit``.  Metrics are collected in the suite's order, after the
    scenario and its observers; ``depends_on`` names figures that must be
    listed (or produced by the scenario) before it.
    """

    unit: ClassVar[str]
    #: Figures that must be collected first (their names).
    depends_on: ClassVar[tuple[str, ...]] = ()
    #: ``"lower"`` or ``"higher"``: which direction is better, for tables and comparisons.
    better: ClassVar[str] = "lower"
    declares: ClassVar[dict[str, type]] = {"unit": str}

    def __init__(self, options: BaseModel) -> None:
        self.options = options

    @abstractmethod
    def collect(self, ctx: CaseContext) -> MetricValue:
        """Measure the case and return its value."""


# --------------------------------------------------------------------------- data, reporters, launchers


@dataclass
class LabelledData:
    """Samples with their true labels, as a :class:`Dataset` returns them.

    With ``images`` (the default), ``inputs`` holds images as
    ``[N, height, width, channels]`` floats in [0, 1]; the core resizes them,
    converts their channels, normalises them and lays them out as the model's
    ``dataset`` entry and input say (:func:`feed_dataset`).  Without,
    each row of ``inputs`` is one sample fed as it is: its shape must be the
    model input's without the batch.  ``labels`` holds one class index
    (an integer from 0) per sample.
    """

    inputs: np.ndarray
    labels: np.ndarray
    images: bool = True
    #: Class names by index, when the dataset has them (an image folder's sub-folders).
    classes: list[str] | None = None
    #: JSON-safe facts recorded with every figure scored on the data: the split, its size, the seed that drew it.
    info: dict[str, Any] = field(default_factory=dict)

    def checked(self, name: str) -> LabelledData:
        """This data if it is well formed, else a :class:`BenchError` naming dataset ``name`` and what is wrong.

        ``inputs`` and ``labels`` must be arrays with as many rows, at least
        one, the labels integers from 0, and images ``[N, H, W, C]`` floats.
        """
        import numpy as np

        inputs, labels = self.inputs, self.labels
        if not isinstance(inputs, np.ndarray) or not isinstance(labels, np.ndarray):
            raise BenchError(f"dataset {name!r} returned {type(inputs).__name__} inputs, expected numpy arrays")
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise BenchError(
                f"dataset {name!r}: labels must be a 1-D integer array, got {labels.dtype} {list(labels.shape)}"
            )
        if inputs.ndim == 0 or len(inputs) != len(labels) or len(labels) == 0:
            raise BenchError(
                f"dataset {name!r}: {len(inputs) if inputs.ndim else 0} samples and {len(labels)} labels; "
                "expected as many, at least one"
            )
        if labels.min() < 0:
            raise BenchError(f"dataset {name!r}: labels must be class indices from 0, found {int(labels.min())}")
        if self.images and (inputs.ndim != 4 or not np.issubdtype(inputs.dtype, np.floating)):
            raise BenchError(
                f"dataset {name!r}: images must be floats [N, height, width, channels], got {inputs.dtype} "
                f"{list(inputs.shape)}"
            )
        return self


@dataclass
class DatasetContext:
    """What a dataset may need besides its options."""

    #: Folder of the suite file; relative paths in options are resolved against it.
    base_dir: Path
    #: Folder for anything the dataset caches (decoded images, downloads it made earlier).
    cache_dir: Path
    #: The case's seed, for datasets that sample; a fixed split should not depend on it.
    seed: int

    def resolve(self, path: str, *, folder: bool = False) -> Path:
        """An existing file (a folder with ``folder``): ``path`` as given if absolute, else relative to the suite's.

        Raises :class:`BenchError` naming the path when it is missing or of the wrong kind.
        """
        return existing_path(self.base_dir, path, "dataset", folder=folder)


class Dataset(PluginItem, ABC):
    """Real labelled data that models are scored on (``accuracy``) and compared on (``fidelity``).

    A suite names one in a model's ``dataset`` entry; the entry's keys other
    than the feeding keys of :class:`DatasetSpec` are its ``Options``.  The
    worker calls ``load`` at most once per case, after the scenario, and feeds
    the samples to the model's input itself (:func:`feed_dataset`), so a
    dataset returns its samples in their own form: images as floats in [0, 1].
    """

    entry_keys: ClassVar[tuple[str, ...]] = tuple(DatasetSpec.model_fields)

    @abstractmethod
    def load(self, options: BaseModel, ctx: DatasetContext) -> LabelledData:
        """Return the samples of the split the options choose, in a fixed order.

        Runs in the worker.  A missing file is a :class:`BenchError` (use
        ``ctx.resolve``); any split must not depend on anything but the options,
        so every backend and every run sees the same samples.
        """


@dataclass
class DatasetInputs:
    """A dataset's samples as a model's inputs: what :meth:`CaseContext.dataset` returns.

    Fed once per case by the core from the model's ``dataset`` entry, the
    same arrays for every backend and variant of the model.
    """

    #: Dataset plugin name.
    name: str
    #: One array per model input, holding every sample along the input's batch axis; the input the dataset does not
    #: feed keep the case's seeded values (a fixed ``value``, or random ones per sample).
    inputs: dict[str, np.ndarray]
    #: The true class of each sample.
    labels: np.ndarray
    #: The model input the dataset feeds.
    fed: str
    classes: list[str] | None = None
    #: The dataset's facts (:attr:`LabelledData.info`), the feeding used and the sha256 of the fed array.
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Number of samples."""
        return int(len(self.labels))


@dataclass
class ReferenceOutputs:
    """Outputs of a case's reference model on given inputs: what :meth:`CaseContext.reference_outputs` returns."""

    #: The backend that ran the reference.
    backend: str
    #: Outputs by name, every sample along the first axis, in the reference backend's order.
    outputs: dict[str, np.ndarray]
    #: ``True`` when the case itself is the reference (uncompressed, on that backend with its default options, on the
    #: CPU): ``outputs`` are then the case's own, computed once.
    is_case: bool
    #: What was run: the model's content hash, the backend's runtime facts.
    details: dict[str, Any] = field(default_factory=dict)


def feed_dataset(
    data: LabelledData, spec: DatasetSpec, input_spec: InputSpec, dims: dict[str, int] | None = None
) -> np.ndarray:
    """``data``'s samples as the array of model input ``input_spec``, fed as ``spec`` says: what the core feeds.

    ``input_spec``'s batch dimension is set to the number of samples and its
    other symbolic dimensions from ``dims``.  Images are converted to the
    input's channels, resized to its height and width, normalised and laid
    out (see :class:`DatasetSpec`); other samples must have the input's shape
    without the batch.  A model source that trains on a dataset calls this
    too, so training and scoring see the same preprocessing.  Raises
    :class:`BenchError` when the data cannot feed the input.
    """
    from benchharness.feeding import feed
    from benchharness.inputs import resolve_shape

    shape = resolve_shape(input_spec, len(data.labels), dims or {})
    if input_spec.shape is not None and BATCH_DIM not in input_spec.shape:
        raise BenchError(f"input {input_spec.name!r} has no batch dimension to feed samples along")
    return feed(
        data.inputs,
        images=data.images,
        spec=spec,
        name=input_spec.name,
        shape=shape,
        dtype=input_spec.dtype or "float32",
    )


class Reporter(PluginItem, ABC):
    """Renders a run's results as text (``--format NAME``)."""

    @abstractmethod
    def render(self, results: RunResults) -> str:
        """Return the rendering of ``results`` (every case, with its config, metrics and runtime)."""


class PluginSelection(BaseModel):
    """Which plugins a worker loads: the same as the run's, by module and plugin name, never by path."""

    model_config = ConfigDict(extra="forbid")

    extra: list[str] = Field(default_factory=list, description="Modules given with -p.")
    blocked: list[str] = Field(default_factory=list, description="Plugin names given with -p no:NAME.")
    autoload: bool = True


#: Version of the worker payload; a worker refuses another.
PROTOCOL = 2


class WorkerPayload(BaseModel):
    """What a worker needs to run one case: portable, with no local path and no ``sys.path`` of the parent.

    Model paths inside ``case`` stay as the suite wrote them; the worker
    resolves them against its :class:`Workspace`.
    """

    model_config = ConfigDict(extra="forbid")

    protocol: int = PROTOCOL
    case: Case
    plugins: PluginSelection = Field(default_factory=PluginSelection)


@dataclass
class Workspace:
    """The local side of a worker: where relative model paths and the conversion cache are."""

    #: Folder relative model paths are resolved against (the suite's folder, or its copy on a remote node).
    base_dir: Path
    #: Folder for cached conversions.
    cache_dir: Path
    #: Folders a local worker adds to its import path so ``-p`` modules of the current folder import.
    python_path: list[str] = field(default_factory=list)


@dataclass
class Job:
    """One case for a launcher to run."""

    payload: WorkerPayload
    workspace: Workspace
    #: Variables the case's target asks for, to set before the worker starts; empty for a launcher that is not
    #: ``local``, which asks the target on the machine that runs the case.
    environment: dict[str, str]
    #: Seconds after which the worker is given up and the case recorded as a timeout.
    timeout: float
    #: The plugin host of the run, for launchers that run the case in this process.
    host: PluginHost | None = None
    #: Which worker process of its case this is: 1 for the first (``--repeat`` runs more).  A launcher that
    #: places cases across machines runs a case's later processes on the hardware its first one had.
    process: int = 1


class Launcher(PluginItem, ABC):
    """Starts the worker of each case and returns its result (``--launcher NAME``).

    ``launch`` must never raise for a failing case: a crash, a hang or an
    error is a :class:`CaseResult` with that status (see
    ``benchharness.worker.failed_result``).  A launcher on another machine
    calls ``benchharness.worker.run_case(payload, workspace)`` there, or runs
    the built-in ``process`` launcher there on a job that
    ``benchharness.runner.machine_job`` completed on that machine.

    The runner hands over cases with :meth:`submit` and takes results back
    with :meth:`next_result`; by default these run one case at a time through
    :meth:`launch`.  A launcher that runs cases at once (on a cluster) sets
    ``concurrent`` and overrides both; one whose cases run on other machines
    sets ``local = False``, and the runner then leaves the target's
    ``unavailable_here`` and ``environment`` to the machine that runs the case.
    """

    #: Whether cases run on this machine: the runner asks each case's target here whether it is available,
    #: and sets ``Job.environment`` from it.  ``False``: the launcher does both where the case runs.
    local: ClassVar[bool] = True
    #: Whether the runner may submit several cases before taking a result back.  Even then, a case's next
    #: process (``--repeat``) is submitted only once its previous one has ended.
    concurrent: ClassVar[bool] = False

    def __init__(self, options: BaseModel) -> None:
        self.options = options

    @abstractmethod
    def launch(self, job: Job) -> CaseResult:
        """Run ``job``'s case and return its result."""

    def submit(self, job: Job) -> None:
        """Start ``job``'s case, or queue it; its result comes back from :meth:`next_result`.

        The default keeps it for :meth:`next_result`, which runs it.
        """
        self.__dict__.setdefault("_queued", []).append(job)

    def next_result(self) -> tuple[Job, CaseResult]:
        """Wait for a submitted case to end and return its job and result, in whatever order they end.

        Called only while a submitted case has not come back.  The default
        runs the oldest queued job with :meth:`launch`.  A ``KeyboardInterrupt``
        here stops the run; :meth:`close` follows.
        """
        job = self.__dict__["_queued"].pop(0)
        return job, self.launch(job)

    def close(self) -> None:
        """Release whatever the launcher holds (a pool, a cluster connection); cancel cases still running."""


__all__ = [
    # options
    "Options",
    "EntryOptions",
    "BackendOptions",
    "TargetOptions",
    "ScenarioOptions",
    "CompressionOptions",
    # plugin item kinds
    "PluginItem",
    "ModelSource",
    "Converter",
    "Compression",
    "CompressionContext",
    "Target",
    "Backend",
    "Scenario",
    "Observer",
    "Metric",
    "Dataset",
    "Reporter",
    "Launcher",
    # objects handed to plugins
    "ModelArtifact",
    "ModelContext",
    "ModelSignature",
    "TensorSpec",
    "InputSpec",
    "TargetContext",
    "MemoryLimit",
    "CaseContext",
    "MetricValue",
    "Summary",
    "LabelledData",
    "DatasetContext",
    "DatasetInputs",
    "ReferenceOutputs",
    "CachedFile",
    "Job",
    "Node",
    "Machine",
    "Workspace",
    "WorkerPayload",
    "PluginSelection",
    # plan and results
    "Case",
    "CaseAxes",
    "ItemSpec",
    "ModelSpec",
    "DatasetSpec",
    "Selector",
    "AXES",
    "MeasureSettings",
    "WarmupSettings",
    "CaseResult",
    "CaseRuntime",
    "ModelRecord",
    "RunResults",
    # helpers
    "hookimpl",
    "BenchError",
    "file_hash",
    "existing_path",
    "allowed_cores",
    "checked_value",
    "feed_dataset",
    "infer_in_batches",
    "resize_images",
    "summarize",
    "warm_up",
    "sample",
    "time_batch",
    "measure",
    "rss_bytes",
    "peak_bytes",
    "reset_peak",
    "lifetime_peak_bytes",
    "DTYPES",
    "BATCH_DIM",
    "PROTOCOL",
    "SNAPSHOT_POINTS",
]
