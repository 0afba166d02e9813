"""The classes a plugin subclasses, and the objects the core hands to them.

Every item a plugin registers is a class with a ``name`` and an ``Options``
pydantic model.  The suite entry that names the item is validated against
``Options`` (extra keys forbidden), so a typo in a suite is reported with its
file, line and field before anything runs.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

if TYPE_CHECKING:
    import numpy as np

    from benchharness.suite import InputSpec, MeasureConfig


class Options(BaseModel):
    """Base of every plugin item's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class PluginItem:
    """Common base of everything a plugin registers."""

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


# --------------------------------------------------------------------------- models


@dataclass
class ModelArtifact:
    """A model in one format, as handed between sources, compressions, converters and backends.

    ``format`` is a free string agreed between plugins; the built-ins use
    ``"torch"`` (an in-memory ``torch.nn.Module`` in ``obj``), ``"torchscript"``
    and ``"onnx"`` (files in ``path``).
    """

    format: str
    content_hash: str
    path: Path | None = None
    obj: Any = None
    #: Input specs with every dimension fixed; filled by the core before conversion.
    inputs: list[InputSpec] = field(default_factory=list)
    #: Facts such as ``parameters`` and ``size_bytes``; copied into results.
    info: dict[str, Any] = field(default_factory=dict)

    def size_bytes(self) -> int | None:
        """Size of the model's weights or file, when known."""
        if self.path is not None and self.path.exists():
            return self.path.stat().st_size
        size = self.info.get("size_bytes")
        return int(size) if size is not None else None


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
        """An existing model file: ``path`` as given if absolute, else relative to the suite's folder."""
        from benchharness.errors import BenchError

        candidate = Path(path).expanduser()
        resolved = candidate if candidate.is_absolute() else self.base_dir / candidate
        if not resolved.is_file():
            raise BenchError(f"model file not found: {resolved}")
        return resolved


class ModelSource(PluginItem, ABC):
    """Produces a model from a suite's ``models[i]`` entry."""

    #: Format of the artifacts ``load`` returns.
    produces: ClassVar[str]

    def default_name(self, options: BaseModel) -> str:
        """Label of the model when the suite gives no ``name``."""
        return self.name

    def default_inputs(self, options: BaseModel, artifact: ModelArtifact) -> list[InputSpec] | None:
        """Input specs to use when the suite gives none; ``None`` when unknown."""
        return None

    @abstractmethod
    def load(self, options: BaseModel, ctx: ModelContext) -> ModelArtifact:
        """Build or read the model.  Runs in the worker process."""


class Converter(PluginItem, ABC):
    """Converts a model between formats; the core caches the output by content hash."""

    source_formats: ClassVar[tuple[str, ...]]
    target_format: ClassVar[str]
    #: File suffix of the converted model.
    suffix: ClassVar[str] = ""

    def cache_key(self, artifact: ModelArtifact) -> str:
        """Extra text that changes the output for the same model (e.g. an opset); part of the cache key."""
        return ""

    @abstractmethod
    def convert(self, artifact: ModelArtifact, out_path: Path) -> None:
        """Write the converted model of ``artifact`` to ``out_path``."""


class Compression(PluginItem, ABC):
    """Turns a model into a lighter variant (pruned, quantized, distilled, fused)."""

    #: Formats ``apply`` accepts; ``("*",)`` accepts any.
    formats: ClassVar[tuple[str, ...]] = ("*",)

    @abstractmethod
    def apply(self, artifact: ModelArtifact, options: BaseModel, ctx: ModelContext) -> ModelArtifact:
        """Return the compressed model (a new artifact, or ``artifact`` when nothing changes)."""


# --------------------------------------------------------------------------- targets and backends


class TargetOptions(Options):
    """Options every target accepts."""

    label: str | None = Field(None, description="Name of this target in case ids; defaults to the target's name.")


@dataclass
class TargetContext:
    """The resources a case really got, as applied by its target in the worker."""

    device: str
    threads: int
    cores: list[int] | None = None
    label: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Target(PluginItem, ABC):
    """Where a case runs and under which limits."""

    Options: ClassVar[type[BaseModel]] = TargetOptions

    def environment(self, options: BaseModel) -> dict[str, str]:
        """Environment variables for the worker process, set before it starts."""
        return {}

    @abstractmethod
    def apply(self, options: BaseModel) -> TargetContext:
        """Apply the limits inside the worker, before any framework is imported."""


class BackendOptions(Options):
    """Options every backend accepts."""

    label: str | None = Field(None, description="Name of this backend in case ids; defaults to the backend's name.")
    threads: PositiveInt | None = Field(None, description="Intra-op threads; defaults to the target's thread count.")


class Backend(PluginItem, ABC):
    """An inference framework.  Compile once (``load``), run many (``infer``).

    The worker calls, in order: ``load``, ``prepare`` (outside the timed
    region), ``infer`` many times (each call is one timed iteration and must
    include any device synchronisation), ``to_numpy``, ``runtime_info`` and
    ``close``.  ``submit``/``wait_all`` serve concurrent scenarios; frameworks
    with asynchronous requests (OpenVINO's infer requests) override them.
    """

    Options: ClassVar[type[BaseModel]] = BackendOptions
    #: Model formats accepted, most preferred first.
    formats: ClassVar[tuple[str, ...]]
    #: Target devices this backend can drive.
    devices: ClassVar[tuple[str, ...]] = ("cpu",)

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

    def submit(self, feed: Any, done: Callable[[Any], None]) -> None:
        """Start one inference and call ``done(outputs)`` when it ends.

        The default runs synchronously; backends with real asynchronous
        requests override this and :meth:`wait_all`.
        """
        done(self.infer(feed))

    def wait_all(self) -> None:
        """Block until every submitted inference has finished."""

    def runtime_info(self) -> dict[str, Any]:
        """What the framework really used: threads, providers, versions."""
        return {}

    def close(self) -> None:
        """Release the model."""


# --------------------------------------------------------------------------- data, metrics, reporters


@dataclass
class LabelledData:
    """Inputs with their true labels."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray


class Dataset(PluginItem, ABC):
    """Real labelled data for accuracy metrics."""

    @abstractmethod
    def load(self, options: BaseModel, seed: int) -> LabelledData:
        """Return the data; ``seed`` fixes any sampling or split."""


@dataclass
class CaseContext:
    """Everything a metric may use while a case runs in its worker."""

    case: Any
    backend: Backend
    artifact: ModelArtifact
    inputs: dict[str, np.ndarray]
    feed: Any
    measure: MeasureConfig
    #: Metrics collected so far in this case, by name.
    collected: dict[str, MetricValue] = field(default_factory=dict)


@dataclass
class MetricValue:
    """One metric of one case.

    ``value`` is the headline number shown in tables; ``summary`` holds the
    statistics and ``samples`` the raw samples, when the metric has them.
    ``method`` says how an estimate was obtained.
    """

    value: float | None
    unit: str
    summary: dict[str, Any] | None = None
    samples: list[int] | list[float] | None = None
    method: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Metric(PluginItem, ABC):
    """A quantity collected for every case."""

    unit: ClassVar[str]
    #: Metrics that must be collected first (their names).
    depends_on: ClassVar[tuple[str, ...]] = ()
    #: ``"lower"`` or ``"higher"``: which direction is better, for tables.
    better: ClassVar[str] = "lower"

    @abstractmethod
    def collect(self, ctx: CaseContext) -> MetricValue:
        """Measure the case and return its value."""


class Reporter(PluginItem, ABC):
    """Renders a run's results as text."""

    @abstractmethod
    def render(self, results: Any) -> str:
        """Return the rendering of a :class:`benchharness.results.RunResults`."""
