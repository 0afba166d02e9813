"""This process's memory, read cheaply: resident set now, its peak, and resetting that peak.

On Linux the kernel keeps the peak resident set (``VmHWM`` in
``/proc/self/status``), and writing ``5`` to ``/proc/self/clear_refs`` resets it
to the current resident set (Linux 4.0 and later).  So the peak of one phase
of a case is read with no sampler running during it: reset at the start, read
at the end.  Elsewhere the peak is ``getrusage``'s ``ru_maxrss``, the peak of
the whole process, which cannot be reset.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` in bytes, or ``None`` where there is no such file."""
    try:
        text = STATUS.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None


def rss_bytes() -> int:
    """The resident set size of this process now."""
    value = _status_kib("VmRSS")
    if value is not None:
        return value
    import psutil

    return int(psutil.Process().memory_info().rss)


def lifetime_peak_bytes() -> int:
    """The largest resident set this process has had since it started (``ru_maxrss``; never reset)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def peak_bytes() -> tuple[int, str]:
    """The peak resident set since the last :func:`reset_peak` (or since the start), and how it was read."""
    value = _status_kib("VmHWM")
    if value is not None:
        return value, "VmHWM"
    return lifetime_peak_bytes(), "ru_maxrss"


def reset_peak() -> bool:
    """Reset the peak resident set to the current one; ``False`` where the kernel does not allow it."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True
