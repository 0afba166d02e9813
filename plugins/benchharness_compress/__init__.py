"""Built-in compressions.  ``none`` is the baseline variant: the model as its source gives it.

Every module of this package that defines ``COMPRESSIONS`` (a tuple of
:class:`~benchharness.api.Compression` classes) is registered with it, in the
order of the modules' names: pruning, quantization, distillation, fusion.
Those modules import their frameworks (torch, onnxruntime, nncf) inside
methods only, since every CLI start loads this package.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from pydantic import BaseModel

from benchharness.api import Compression, ModelArtifact, ModelContext
from benchharness.hookspecs import hookimpl


class NoCompression(Compression):
    """The unmodified model."""

    name = "none"
    description = "the baseline: the model unchanged"

    def apply(self, artifact: ModelArtifact, options: BaseModel, ctx: ModelContext) -> ModelArtifact:
        """Return ``artifact`` as it is."""
        return artifact


def compression_modules() -> list[ModuleType]:
    """This package's modules, imported, sorted by name."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


@hookimpl
def benchharness_register_compressions(register):  # type: ignore[no-untyped-def]
    """Register the baseline and every compression the package's modules list in ``COMPRESSIONS``."""
    register(NoCompression)
    for module in compression_modules():
        for cls in getattr(module, "COMPRESSIONS", ()):
            register(cls)
