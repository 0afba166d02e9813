"""Built-in CUDA target: ``cuda`` (``index: N`` for ``cuda:N``), an NVIDIA GPU for the torch and ONNX Runtime backends.

Where the machine has no NVIDIA GPU (no ``/dev/nvidia0``...), or fewer than
the index asks for, its cases are skipped with the reason.  In the worker,
NVML (``pip install nvidia-ml-py``) gives the GPU's facts (name, driver,
CUDA version) and its state (SM clock, temperature, power, clock-event
reasons) at each snapshot point: after the target applies, around the
measured phase, and at the end.  A clock that moved during the measured
phase, or a power or thermal slowdown, is a warning on the case: warm-up did
not reach steady clocks.
"""

from __future__ import annotations

import glob
import os
from typing import Any, ClassVar

from pydantic import BaseModel, Field, NonNegativeInt, PositiveInt

from benchharness.api import Target, TargetContext, TargetOptions, allowed_cores
from benchharness.hookspecs import hookimpl

#: Device files of NVIDIA GPUs (one per board, numbered in PCI bus order); looked for without importing any framework.
DEVICE_GLOB = "/dev/nvidia[0-9]*"


class CudaOptions(TargetOptions):
    """Options of the ``cuda`` target."""

    index: NonNegativeInt = Field(
        0, description="The CUDA device: cuda:INDEX (numbered as CUDA_VISIBLE_DEVICES lists)."
    )
    threads: PositiveInt | None = Field(
        None, description="Host threads for the backend; default: the cores this process may use."
    )
    clock_tolerance: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Relative change of the SM clock during the measured phase above which the case is warned "
        "that clocks were not steady.",
    )


def _gpu_count(env: dict[str, str] | None = None) -> tuple[int, str]:
    """How many GPUs CUDA would number here, and where that count comes from."""
    env = os.environ if env is None else env
    files = [f for f in glob.glob(DEVICE_GLOB) if os.path.basename(f)[len("nvidia") :].isdigit()]
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None and files:
        entries = [e for e in listed.split(",") if e.strip()]
        # CUDA stops at the first entry that is not a device; "-1" hides them all.
        valid = 0
        for entry in entries:
            if entry.strip().startswith("-"):
                break
            valid += 1
        return valid, f"CUDA_VISIBLE_DEVICES={listed!r}"
    return len(files), DEVICE_GLOB


class CudaTarget(Target):
    """An NVIDIA GPU, ``cuda:INDEX``, for backends that drive ``cuda`` (torch, ONNX Runtime with its CUDA provider)."""

    name = "cuda"
    description = (
        "an NVIDIA GPU (index: N for cuda:N); NVML clocks, temperature and power recorded; skipped without one"
    )
    Options: ClassVar[type[BaseModel]] = CudaOptions

    def __init__(self) -> None:
        self._nvml: Any = None

    @classmethod
    def unavailable_here(cls, options: CudaOptions) -> str | None:  # type: ignore[override]
        """No NVIDIA device file, or fewer GPUs than ``index`` needs."""
        count, source = _gpu_count()
        if count == 0:
            if source == DEVICE_GLOB:
                return f"no NVIDIA GPU on this machine ({DEVICE_GLOB} is missing)"
            return f"no NVIDIA GPU is visible: {source}"
        if options.index >= count:
            return f"needs cuda:{options.index}; this machine has {count} GPU(s) ({source})"
        return None

    @classmethod
    def node_needs(cls, options: CudaOptions) -> dict[str, float]:  # type: ignore[override]
        """A node with GPUs up to ``index`` (Ray's ``GPU`` resource, which Ray detects on NVIDIA nodes)."""
        return {"GPU": options.index + 1}

    def environment(self, options: CudaOptions) -> dict[str, str]:  # type: ignore[override]
        """Number CUDA's devices as NVML and nvidia-smi do (by PCI bus), so ``index`` names one GPU everywhere."""
        return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}

    def apply(self, options: CudaOptions) -> TargetContext:  # type: ignore[override]
        """The GPU by index, its NVML facts (or why there are none), and the host threads."""
        details: dict[str, Any] = {"kind": "CUDA GPU", "index": options.index}
        try:
            from benchharness_cuda.nvml import Nvml

            self._nvml = Nvml(options.index)
            details["gpu"] = self._nvml.facts()
        except ImportError:
            from benchharness_cuda.nvml import INSTALL

            details["gpu"] = {"nvml": f"not installed, no GPU facts or clocks recorded: {INSTALL}"}
        except Exception as exc:  # noqa: BLE001 - NVMLError, LookupError: the case runs without the facts
            details["gpu"] = {"nvml": f"unavailable: {type(exc).__name__}: {exc}"}
        cores = allowed_cores()
        return TargetContext(device="cuda", threads=options.threads or len(cores), cores=cores, details=details)

    def snapshot(self, options: CudaOptions, point: str) -> dict[str, Any] | None:  # type: ignore[override]
        """The GPU's clocks, temperature, power and clock-event reasons, through NVML."""
        return self._nvml.state() if self._nvml is not None else None

    def check(self, options: CudaOptions, snapshots: dict[str, dict[str, Any]]) -> list[str]:  # type: ignore[override]
        """Warn when the SM clock moved during the measured phase, or power or heat slowed the GPU down."""
        from benchharness_cuda.nvml import SLOWDOWN_REASONS

        warnings = []
        start, end = snapshots.get("measured_start", {}), snapshots.get("measured_end", {})
        before, after = start.get("sm_clock_mhz"), end.get("sm_clock_mhz")
        if before and after and abs(after - before) > options.clock_tolerance * before:
            warnings.append(
                f"cuda:{options.index}: the SM clock went from {before} to {after} MHz during the measured phase: "
                "clocks were not steady (a longer warm-up, or clocks locked with nvidia-smi -lgc, steadies them)"
            )
        slowed = sorted(
            {r for point in (start, end) for r in point.get("clock_event_reasons", [])} & set(SLOWDOWN_REASONS)
        )
        if slowed:
            warnings.append(
                f"cuda:{options.index}: the GPU was slowed down during the measured phase ({', '.join(slowed)})"
            )
        return warnings


@hookimpl
def benchharness_register_targets(register):  # type: ignore[no-untyped-def]
    """Register the CUDA target."""
    register(CudaTarget)
