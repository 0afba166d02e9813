"""Thermal design power of CPU packages, for the CPU-time model.

The model (codecarbon's process mode) prices each CPU second of this process
at ``TDP x packages / logical cores`` watts.  The TDP comes from the suite's
``tdp_w``, else from :data:`TDP_TABLE` by the CPU's model name, else
:data:`DEFAULT_TDP_W`.  Whichever it was is recorded with the figure.
"""

from __future__ import annotations

import re
from pathlib import Path

#: Watts per package when the suite gives none and the table does not know the CPU: codecarbon's default.
DEFAULT_TDP_W = 85.0

#: TDP (Intel's "processor base power", AMD's default TDP) per package, in watts, from the makers' product pages,
#: by a part of the model name that /proc/cpuinfo reports.  Keys are matched case-insensitively, with ``(R)`` and
#: ``(TM)`` dropped; the longest matching key wins.  Small on purpose: a suite sets ``tdp_w`` for any other CPU.
TDP_TABLE: dict[str, float] = {
    "Xeon Platinum 8480": 350.0,  # Sapphire Rapids, 56 cores (8480+, 8480C)
    "Xeon Platinum 8468": 350.0,  # Sapphire Rapids, 48 cores
    "Xeon Platinum 8380": 270.0,  # Ice Lake, 40 cores
    "Xeon Platinum 8175M": 240.0,  # Skylake, 24 cores (AWS m5)
    "Xeon Gold 6248": 150.0,  # Cascade Lake, 20 cores
    "EPYC 9654": 360.0,  # Genoa, 96 cores
    "EPYC 7763": 280.0,  # Milan, 64 cores
    "EPYC 7742": 225.0,  # Rome, 64 cores
    "Ryzen 9 5950X": 105.0,
    "Ryzen 7 5800X": 105.0,
    "Core i9-13900K": 125.0,
    "Core i7-12700K": 125.0,
    "Core i7-1165G7": 28.0,
    "Core i5-1135G7": 28.0,
}


def _normalised(text: str) -> str:
    """Lower case, without ``(R)``/``(TM)``, single spaces: ``Intel(R) Xeon(R)  Gold`` -> ``intel xeon gold``."""
    text = re.sub(r"\((r|tm)\)", " ", text.lower())
    return " ".join(text.split())


def tdp_for(cpu_model: str, tdp_w: float | None = None) -> tuple[float, str]:
    """Watts per package for ``cpu_model`` and where the figure came from (the suite, the table, or the default)."""
    if tdp_w is not None:
        return float(tdp_w), "suite (tdp_w)"
    name = _normalised(cpu_model)
    matches = [key for key in TDP_TABLE if _normalised(key) in name]
    if matches:
        key = max(matches, key=len)
        return TDP_TABLE[key], f"table ({key!r})"
    unknown = f"{cpu_model!r} is not in the table"
    return DEFAULT_TDP_W, f"default {DEFAULT_TDP_W:g} W (codecarbon's for an unknown CPU; {unknown})"


def cpu_packages(cpuinfo: Path = Path("/proc/cpuinfo")) -> int:
    """Number of CPU packages (sockets): distinct ``physical id`` lines of ``cpuinfo``; 1 when it has none."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 1
    ids = {line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("physical id")}
    return max(len(ids), 1)
