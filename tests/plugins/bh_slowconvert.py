"""A test plugin: a converter that takes its time, for tests of the conversion cache.

``slow-copy`` turns a ``slow`` model (nothing but a content hash) into a
``slow2`` file that repeats the hash.  Each call appends its process id to
the file named by ``BH_SLOW_LOG`` (if set) before it sleeps
``BH_SLOW_SECONDS`` (default 0) and writes, so a test sees how many
conversions really ran, in which processes, and can make two overlap.  With
``BH_SLOW_EMPTY`` set it writes nothing, as a broken converter would.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchharness.api import Converter, ModelArtifact, hookimpl

__version__ = "1.0"


class SlowCopy(Converter):
    name = "slow-copy"
    description = "writes the model's content hash, after BH_SLOW_SECONDS"
    source_formats = ("slow",)
    target_format = "slow2"
    suffix = ".slow2"

    def convert(self, artifact: ModelArtifact, out_path: Path) -> None:
        log = os.environ.get("BH_SLOW_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"{os.getpid()}\n")
        time.sleep(float(os.environ.get("BH_SLOW_SECONDS", "0")))
        if os.environ.get("BH_SLOW_EMPTY"):
            return
        out_path.write_text(f"converted:{artifact.content_hash}\n" * 100, encoding="utf-8")


@hookimpl
def benchharness_register_converters(register):  # type: ignore[no-untyped-def]
    register(SlowCopy)
