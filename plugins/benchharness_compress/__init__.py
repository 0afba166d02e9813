"""Built-in compressions.  ``none`` is the baseline variant: the model as its source gives it."""

from __future__ import annotations

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


@hookimpl
def benchharness_register_compressions(register):  # type: ignore[no-untyped-def]
    """Register the baseline compression."""
    register(NoCompression)
