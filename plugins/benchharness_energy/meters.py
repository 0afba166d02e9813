"""Energy meters: each reads cumulative joules per domain; the ``energy`` observer takes differences.

:class:`NvmlMeter` reads a GPU's total-energy counter and :class:`CpuTimeModel`
estimates this process's CPU energy from its CPU time; the RAPL meter is in
``benchharness_energy.rapl``.  Opening a meter that cannot measure here raises
:class:`MeterUnavailable` with the reason, and ``auto`` goes on to the next.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from benchharness.machine import cpu_model
from benchharness_energy.tdp import cpu_packages, tdp_for


class MeterUnavailable(Exception):
    """This meter cannot measure on this machine or case; the message, prefixed with the meter's name, says why."""


class Meter(ABC):
    """A source of cumulative joules."""

    #: ``rapl``, ``nvml`` or ``cpu-time-model``: the first word of the figure's method.
    name: ClassVar[str]
    #: ``True`` for a model, ``False`` for a hardware counter; tables mark estimates.
    estimate: ClassVar[bool] = False
    #: Whether the meter reads a whole device, idle power included, so that an idle baseline is worth subtracting.
    reads_idle_power: ClassVar[bool] = True

    @abstractmethod
    def read(self) -> dict[str, float]:
        """Joules per domain since some fixed origin (non-decreasing)."""

    @abstractmethod
    def describe(self) -> str:
        """What is read, in a few words, for the figure's method."""

    def facts(self) -> dict[str, Any]:
        """JSON-safe facts about the meter, recorded in the figure's details."""
        return {}


class NvmlMeter(Meter):
    """The total energy an NVIDIA GPU used since its driver loaded (``nvmlDeviceGetTotalEnergyConsumption``, mJ).

    It counts the whole GPU, other processes' work included.  The counter is
    64 bits wide (it does not wrap in practice) and exists on Volta and
    newer; older boards answer ``NotSupported``.
    """

    name = "nvml"

    def __init__(self, index: int) -> None:
        try:
            from benchharness_cuda.nvml import INSTALL, Nvml
        except ImportError as exc:  # the cuda plugin's module itself is missing
            raise MeterUnavailable(f"nvml: {exc}") from None
        try:
            gpu = Nvml(index)
        except ImportError:
            raise MeterUnavailable(f"nvml: pynvml is not installed ({INSTALL})") from None
        except Exception as exc:  # noqa: BLE001 - NVMLError (no driver, no such device) or a LookupError
            raise MeterUnavailable(f"nvml: cannot open cuda:{index}: {type(exc).__name__}: {exc}") from None
        self.gpu = gpu
        self.label = f"cuda:{index}"
        try:
            self.read()
        except Exception as exc:  # noqa: BLE001 - NVMLError, e.g. NotSupported before Volta
            raise MeterUnavailable(
                f"nvml: {self.label} gives no total energy (nvmlDeviceGetTotalEnergyConsumption: {exc}; "
                "Volta or newer needed)"
            ) from None

    def read(self) -> dict[str, float]:
        """Joules the GPU used since its driver loaded."""
        return {self.label: self.gpu.nvml.nvmlDeviceGetTotalEnergyConsumption(self.gpu.handle) / 1000}

    def describe(self) -> str:
        """The device."""
        return f"NVML total energy of {self.label} (whole GPU)"

    def facts(self) -> dict[str, Any]:
        """The device and its NVML number (they differ under ``CUDA_VISIBLE_DEVICES``)."""
        return {"device": self.label, "nvml_device": self.gpu.nvml_index}


class CpuTimeModel(Meter):
    """An estimate: this process's CPU seconds x TDP x packages / logical cores (codecarbon's process mode).

    CPU seconds are ``time.process_time()``: user and system time of every
    thread of this process, a framework's thread pool included (child
    processes are not).  Each busy core is priced at an equal share of the
    packages' TDP, and an idle process at nothing, so no idle baseline applies.
    """

    name = "cpu-time-model"
    estimate = True
    reads_idle_power = False

    def __init__(self, tdp_w: float | None) -> None:
        self.cpu_model = cpu_model()
        self.tdp_w, self.tdp_source = tdp_for(self.cpu_model, tdp_w)
        self.packages = cpu_packages()
        self.logical_cores = os.cpu_count() or 1
        self.watts_per_core = self.tdp_w * self.packages / self.logical_cores

    def read(self) -> dict[str, float]:
        """This process's CPU seconds so far, priced at ``watts_per_core``."""
        return {"process cpu": time.process_time() * self.watts_per_core}

    def describe(self) -> str:
        """The formula with its numbers."""
        packages = f" x {self.packages} packages" if self.packages > 1 else ""
        return (
            f"estimate, process CPU seconds x {self.watts_per_core:.3g} W per core "
            f"({self.tdp_w:g} W TDP{packages} / {self.logical_cores} logical cores; TDP from {self.tdp_source})"
        )

    def facts(self) -> dict[str, Any]:
        """The CPU, its TDP and where it came from, packages, cores and the price of a CPU second."""
        return {
            "cpu_model": self.cpu_model,
            "tdp_w": self.tdp_w,
            "tdp_source": self.tdp_source,
            "packages": self.packages,
            "logical_cores": self.logical_cores,
            "watts_per_core": self.watts_per_core,
        }
