"""NVIDIA GPU facts and state through NVML (``pynvml``, from the ``nvidia-ml-py`` package).

Everything here reads; nothing changes a clock, a power limit or a mode.
A query the driver refuses (``NVML_ERROR_NOT_SUPPORTED`` on some boards)
is left out of the record rather than failing the case.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

INSTALL = "pip install nvidia-ml-py  (or: pip install 'benchharness[cuda]')"

#: NVML's clock-event ("throttle") reason bits, by the name recorded in results; values from nvml.h, stable since
#: the driver's R270.
CLOCK_EVENT_REASONS = {
    0x001: "gpu_idle",
    0x002: "applications_clocks_setting",
    0x004: "sw_power_cap",
    0x008: "hw_slowdown",
    0x010: "sync_boost",
    0x020: "sw_thermal_slowdown",
    0x040: "hw_thermal_slowdown",
    0x080: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
#: Reasons that mean the clocks were held down by power or heat, not by a setting or idleness.
SLOWDOWN_REASONS = ("sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown",
                    "hw_power_brake_slowdown")  # fmt: skip


def reason_names(mask: int) -> list[str]:
    """The names of the reason bits set in ``mask`` (unknown bits as hex)."""
    names = [name for bit, name in CLOCK_EVENT_REASONS.items() if mask & bit]
    unknown = mask & ~sum(CLOCK_EVENT_REASONS)
    return names + ([hex(unknown)] if unknown else [])


def visible_device(index: int, env: dict[str, str] | None = None) -> tuple[str, int | str]:
    """How NVML finds CUDA device ``index``: ``("index", N)`` or ``("uuid", "GPU-...")``.

    CUDA numbers the devices ``CUDA_VISIBLE_DEVICES`` lists, in its order;
    NVML numbers every device by PCI bus id, as CUDA does with
    ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` (which the ``cuda`` target sets).
    """
    env = os.environ if env is None else env
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return ("index", index)
    entries = [e.strip() for e in listed.split(",") if e.strip()]
    if index >= len(entries):
        raise LookupError(f"CUDA_VISIBLE_DEVICES={listed!r} lists no device {index}")
    entry = entries[index]
    if entry.isdigit():
        return ("index", int(entry))
    if entry.startswith("GPU-"):
        return ("uuid", entry)
    raise LookupError(f"CUDA_VISIBLE_DEVICES entry {entry!r} (a MIG instance?) has no NVML device handle here")


def open_device(index: int) -> tuple[Any, Any, int | str]:
    """``(pynvml, handle, key)`` for CUDA device ``index``: NVML initialised, the device found as CUDA numbers it.

    Raises ``ImportError`` without ``nvidia-ml-py``, ``LookupError`` for a
    device NVML cannot name, and ``pynvml.NVMLError`` when the driver refuses.
    """
    import pynvml

    pynvml.nvmlInit()
    how, key = visible_device(index)
    if how == "uuid":
        handle = pynvml.nvmlDeviceGetHandleByUUID(str(key).encode())
    else:
        handle = pynvml.nvmlDeviceGetHandleByIndex(int(key))
    return pynvml, handle, key


class Nvml:
    """One GPU's NVML handle, opened once per worker (``nvmlInit``) and kept for the case."""

    def __init__(self, index: int) -> None:
        self.nvml, self.handle, self.nvml_index = open_device(index)

    def _read(self, out: dict[str, Any], key: str, query: Callable[[], Any]) -> None:
        """``out[key] = query()``, or nothing when this board or driver does not support the query."""
        try:
            value = query()
        except self.nvml.NVMLError:
            return
        out[key] = value.decode() if isinstance(value, bytes) else value

    def facts(self) -> dict[str, Any]:
        """What does not change during a case: name, UUID, driver, CUDA version, memory, PCI bus, power limit."""
        nvml, h = self.nvml, self.handle
        out: dict[str, Any] = {"nvml_device": self.nvml_index}
        self._read(out, "name", lambda: nvml.nvmlDeviceGetName(h))
        self._read(out, "uuid", lambda: nvml.nvmlDeviceGetUUID(h))
        self._read(out, "driver_version", nvml.nvmlSystemGetDriverVersion)
        self._read(out, "cuda_driver_version", lambda: _cuda_version(nvml.nvmlSystemGetCudaDriverVersion()))
        self._read(out, "memory_total_bytes", lambda: int(nvml.nvmlDeviceGetMemoryInfo(h).total))
        self._read(out, "pci_bus_id", lambda: nvml.nvmlDeviceGetPciInfo(h).busId)
        self._read(out, "max_sm_clock_mhz", lambda: nvml.nvmlDeviceGetMaxClockInfo(h, nvml.NVML_CLOCK_SM))
        self._read(out, "power_limit_w", lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000)
        self._read(out, "persistence_mode", lambda: bool(nvml.nvmlDeviceGetPersistenceMode(h)))
        return out

    def state(self) -> dict[str, Any]:
        """What a case changes: SM and memory clocks, temperature, power, performance state, utilisation, reasons."""
        nvml, h = self.nvml, self.handle
        out: dict[str, Any] = {}
        self._read(out, "sm_clock_mhz", lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM))
        self._read(out, "memory_clock_mhz", lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_MEM))
        self._read(out, "temperature_c", lambda: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))
        self._read(out, "power_w", lambda: nvml.nvmlDeviceGetPowerUsage(h) / 1000)
        self._read(out, "pstate", lambda: f"P{nvml.nvmlDeviceGetPerformanceState(h)}")
        self._read(out, "utilization_pct", lambda: nvml.nvmlDeviceGetUtilizationRates(h).gpu)
        # The "event" name since nvidia-ml-py 12.535; the older "throttle" one is kept as an alias.
        reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        reasons = reasons or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        self._read(out, "clock_event_reasons", lambda: reason_names(int(reasons(h))))
        return out


def _cuda_version(value: int) -> str:
    """NVML's CUDA driver version number as text: 13000 -> ``"13.0"``, 12040 -> ``"12.4"``."""
    return f"{value // 1000}.{value % 1000 // 10}"
