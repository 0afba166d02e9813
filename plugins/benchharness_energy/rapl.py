"""RAPL energy counters through Linux's powercap tree (``/sys/class/powercap``).

Each zone directory (``intel-rapl:0``, its subzones ``intel-rapl:0:0``, ...,
and on some machines ``intel-rapl-mmio:0``) has a ``name`` (``package-0``,
``core``, ``uncore``, ``dram``, ``psys``), a counter ``energy_uj`` in
microjoules and ``max_energy_range_uj``, the value at which the counter wraps
to zero.  The meter sums the packages and their DRAM: ``core`` and ``uncore``
are parts of a package, ``psys`` covers the whole platform and so overlaps
them, and an ``intel-rapl-mmio`` zone repeats the package of the same name.

A wrap between two reads is undone by adding ``max_energy_range_uj`` (exact
to one energy unit, about 61 uJ: sysfs does not give the unit).  Two wraps
between reads cannot be told from one, so reads must come at most
:attr:`RaplMeter.safe_interval_s` apart: half the time the counter takes to
wrap at the zone's highest power limit.  Since Linux 5.10 ``energy_uj`` is
readable only by root (CVE-2020-8694).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchharness_energy.meters import Meter, MeterUnavailable

#: Power assumed for a zone (and its package) without any readable power limit, in watts: above the TDP of any
#: current server package, so the wrap time computed from it is a lower bound.
ASSUMED_MAX_POWER_W = 500.0
#: Reads must come within this fraction of a wrap at the highest power limit: power may briefly pass the limits.
SAFETY = 0.5

_ZONE_DIR = re.compile(r"^(?P<kind>[a-z][a-z0-9-]*)(?P<index>(?::\d+)+)$")


@dataclass
class Zone:
    """One counter the meter sums."""

    #: ``package-0``, or ``package-0/dram`` for a package's subzone.
    label: str
    energy_file: Path
    max_range_uj: int
    max_power_w: float
    #: Where ``max_power_w`` came from: a constraint file, the package's, or the assumption.
    max_power_source: str
    last_uj: int = 0
    total_uj: int = 0

    @property
    def wrap_s(self) -> float:
        """Seconds the counter takes to go round once at ``max_power_w``."""
        return self.max_range_uj / 1e6 / self.max_power_w


def read_int(path: Path) -> int:
    """The integer in a sysfs file; :class:`MeterUnavailable` saying why it cannot be read."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except PermissionError:
        raise MeterUnavailable(
            f"rapl: {path}: permission denied (energy_uj is readable only by root since Linux 5.10; "
            "grant read access to use RAPL, e.g. with a udev rule)"
        ) from None
    except OSError as exc:
        raise MeterUnavailable(f"rapl: {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        return int(text)
    except ValueError:
        raise MeterUnavailable(f"rapl: {path}: not an integer: {text[:40]!r}") from None


def _max_power(zone_dir: Path) -> tuple[float, str] | None:
    """The highest power limit of a zone in watts (``constraint_*_max_power_uw``/``_power_limit_uw``) and its file."""
    best: tuple[float, str] | None = None
    limits = sorted(zone_dir.glob("constraint_*_max_power_uw")) + sorted(zone_dir.glob("constraint_*_power_limit_uw"))
    for path in limits:
        try:
            watts = int(path.read_text(encoding="ascii").strip()) / 1e6
        except (OSError, ValueError):
            continue
        if watts > 0 and (best is None or watts > best[0]):
            best = (watts, path.name)
    return best


def discover(root: Path) -> list[Zone]:
    """The package and DRAM zones under ``root``, each read once; :class:`MeterUnavailable` when there are none."""
    if not root.is_dir():
        raise MeterUnavailable(f"rapl: no powercap tree at {root}")
    found: dict[str, tuple[str, Path]] = {}  # directory name -> (zone name, directory)
    for entry in sorted(root.iterdir()):
        if _ZONE_DIR.match(entry.name) and (entry / "name").is_file():
            try:
                found[entry.name] = (entry.joinpath("name").read_text(encoding="utf-8").strip(), entry)
            except OSError:
                continue
    zones: dict[str, Zone] = {}
    # intel-rapl zones before intel-rapl-mmio ones, so an MMIO copy of a package is the one left out.
    for dirname in sorted(found, key=lambda d: ("mmio" in d, d)):
        name, directory = found[dirname]
        match = _ZONE_DIR.match(dirname)
        assert match is not None
        parts = match["index"].split(":")[1:]
        package_dirname = f"{match['kind']}:{parts[0]}"
        if len(parts) == 1 and name.startswith("package"):
            label = name
        elif len(parts) == 2 and name == "dram":
            label = f"{found[package_dirname][0] if package_dirname in found else package_dirname}/dram"
        else:
            continue
        if label in zones:
            continue
        own, package = _max_power(directory), _max_power(root / package_dirname) if len(parts) == 2 else None
        if own is not None:
            power, source = own
        elif package is not None:
            power, source = package[0], f"the package's {package[1]}"
        else:
            power, source = ASSUMED_MAX_POWER_W, f"assumed {ASSUMED_MAX_POWER_W:g} W (no power limit readable)"
        zones[label] = Zone(
            label=label,
            energy_file=directory / "energy_uj",
            max_range_uj=read_int(directory / "max_energy_range_uj"),
            max_power_w=power,
            max_power_source=source,
        )
    if not any("/" not in label for label in zones):
        names = sorted({name for name, _ in found.values()})
        found_text = f" (found: {', '.join(names)})" if names else ""
        raise MeterUnavailable(f"rapl: no package zone under {root}{found_text}")
    for zone in zones.values():
        if zone.max_range_uj <= 0:
            raise MeterUnavailable(f"rapl: {zone.energy_file.parent / 'max_energy_range_uj'} is {zone.max_range_uj}")
        zone.last_uj = read_int(zone.energy_file)
    return list(zones.values())


def wrapped_delta(before: int, after: int, max_range: int) -> int:
    """Microjoules counted from ``before`` to ``after``, with at most one wrap at ``max_range`` between them."""
    return after - before if after >= before else after + max_range - before


class RaplMeter(Meter):
    """The packages' and DRAM's RAPL counters, accumulated with wrap-around undone; safe to poll from a thread."""

    name = "rapl"

    def __init__(self, root: Path, clock: Callable[[], float] = time.perf_counter) -> None:
        self.root = root
        self.clock = clock
        self.zones = discover(root)
        self._lock = threading.Lock()
        self._last_read = clock()
        #: The longest time between two reads so far, in seconds.
        self.longest_gap_s = 0.0

    @property
    def safe_interval_s(self) -> float:
        """Reads this far apart or closer undo every wrap: :data:`SAFETY` of the shortest wrap time of the zones."""
        return SAFETY * min(zone.wrap_s for zone in self.zones)

    def poll(self) -> None:
        """Read every counter and add what it counted since the last read."""
        with self._lock:
            values = [read_int(zone.energy_file) for zone in self.zones]
            now = self.clock()
            self.longest_gap_s = max(self.longest_gap_s, now - self._last_read)
            self._last_read = now
            for zone, value in zip(self.zones, values):
                zone.total_uj += wrapped_delta(zone.last_uj, value, zone.max_range_uj)
                zone.last_uj = value

    def read(self) -> dict[str, float]:
        """Joules per zone since the meter was opened."""
        self.poll()
        with self._lock:
            return {zone.label: zone.total_uj / 1e6 for zone in self.zones}

    def describe(self) -> str:
        """Which counters, for the figure's method."""
        return f"RAPL energy counters of {', '.join(zone.label for zone in self.zones)} (whole packages)"

    def facts(self) -> dict[str, Any]:
        """The powercap root, each zone's wrap time and power limit, and the read spacing that was needed."""
        return {
            "powercap_root": str(self.root),
            "zones": {
                zone.label: {
                    "energy_file": str(zone.energy_file),
                    "max_energy_range_uj": zone.max_range_uj,
                    "max_power_w": zone.max_power_w,
                    "max_power_source": zone.max_power_source,
                    "wrap_s": zone.wrap_s,
                }
                for zone in self.zones
            },
            "safe_read_interval_s": self.safe_interval_s,
            "longest_read_gap_s": self.longest_gap_s,
        }
