"""Built-in memory observer: the worker's resident memory after the model's load and at its peak while inferring.

Each case runs in a fresh worker, so the figures are the case's own.  Nothing
samples during the timed loop: on Linux the kernel keeps the peak resident set
(``VmHWM``), which the observer resets when the measured phase starts (writing
``5`` to ``/proc/self/clear_refs``) and reads when it ends.  Where the peak
cannot be reset, the figure is the process's peak since it started
(``ru_maxrss``), load included, and the method says so.  On a CUDA target the
device's memory is added: torch's peak allocated and reserved bytes during the
phase, and the process's memory on the GPU as NVML sees it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from benchharness.api import (
    CaseContext,
    MetricValue,
    Observer,
    lifetime_peak_bytes,
    peak_bytes,
    reset_peak,
    rss_bytes,
)
from benchharness.hookspecs import hookimpl

MB = 1e6


class Memory(Observer):
    """Peak resident memory of the worker during the measured phase (MB), with the memory after the model's load."""

    name = "memory"
    unit = "MB"
    description = "peak resident memory while inferring (VmHWM reset at the measured phase), and after the load"

    def start(self, ctx: CaseContext) -> None:
        """Reset the peak to the resident set now; on CUDA, torch's peak counters too."""
        self.ctx = ctx
        self.start_rss = rss_bytes()
        self.reset = reset_peak()
        self.torch_cuda = _torch_cuda(ctx)
        if self.torch_cuda is not None:
            torch, device = self.torch_cuda
            torch.cuda.reset_peak_memory_stats(device)

    def stop(self) -> MetricValue:
        """The phase's peak, the resident set when it started, and the load's figures the worker recorded."""
        peak, source = peak_bytes()
        if self.reset:
            method = f"{source} reset when the measured phase started (/proc/self/clear_refs), read when it ended"
        else:
            method = f"{source}: the process's peak since it started (load included: the peak could not be reset)"
        loaded = self.ctx.memory
        details: dict[str, Any] = {
            "inference_peak_bytes": peak,
            "measured_start_rss_bytes": self.start_rss,
            "inference_growth_bytes": max(0, peak - self.start_rss) if self.reset else None,
            "after_load_rss_bytes": loaded.get("after_load_rss"),
            "before_load_rss_bytes": loaded.get("before_load_rss"),
            "load_peak_bytes": loaded.get("load_peak"),
            "load_peak_method": loaded.get("load_peak_method"),
            "process_peak_bytes": lifetime_peak_bytes(),
            "process_peak_method": "ru_maxrss (getrusage): never reset, and on Linux it starts from the parent's "
            "peak at the fork that made the worker: an upper bound",
            "phase_peak_reset": self.reset,
        }
        details.update(_uss())
        if self.torch_cuda is not None:
            details["cuda"] = _torch_cuda_figures(*self.torch_cuda)
        gpu = _nvml_process_memory(self.ctx)
        if gpu:
            details.setdefault("cuda", {}).update(gpu)
        return MetricValue(value=peak / MB, unit=self.unit, method=method, details=details)


def _uss() -> dict[str, Any]:
    """Unique set size (memory only this process holds), where the OS exposes it; read after the phase."""
    try:
        import psutil

        return {"uss_bytes": int(psutil.Process().memory_full_info().uss), "uss_method": "psutil memory_full_info"}
    except Exception as exc:  # noqa: BLE001 - AccessDenied, or an OS without it: the figure is left out
        return {"uss_bytes": None, "uss_method": f"unavailable: {type(exc).__name__}"}


def _torch_cuda(ctx: CaseContext) -> tuple[Any, Any] | None:
    """torch and the case's device, when the case runs on CUDA and torch is already loaded (it never imports it)."""
    target = ctx.backend.target
    torch = sys.modules.get("torch")
    if target.device != "cuda" or torch is None or not torch.cuda.is_initialized():
        return None
    return torch, torch.device(f"cuda:{target.details.get('index', 0)}")


def _torch_cuda_figures(torch: Any, device: Any) -> dict[str, Any]:
    return {
        "torch_max_allocated_bytes": int(torch.cuda.max_memory_allocated(device)),
        "torch_max_reserved_bytes": int(torch.cuda.max_memory_reserved(device)),
        "torch_method": "torch.cuda.max_memory_allocated/reserved, peaks reset when the measured phase started",
    }


def _nvml_process_memory(ctx: CaseContext) -> dict[str, Any]:
    """This process's memory on the case's GPU, as NVML lists it (``nvidia-ml-py``); empty when unknown."""
    target = ctx.backend.target
    if target.device != "cuda":
        return {}
    try:
        from benchharness_cuda.nvml import open_device

        pynvml, handle, _ = open_device(int(target.details.get("index", 0)))
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                return {
                    "nvml_process_bytes": int(proc.usedGpuMemory),
                    "nvml_method": "nvmlDeviceGetComputeRunningProcesses",
                }
    except Exception as exc:  # noqa: BLE001 - no NVML, no permission, a MIG device: left out, with the reason
        return {"nvml_process_bytes": None, "nvml_method": f"unavailable: {type(exc).__name__}: {exc}"[:200]}
    return {"nvml_process_bytes": None, "nvml_method": "this process is not in NVML's list of compute processes"}


@hookimpl
def benchharness_register_observers(register):  # type: ignore[no-untyped-def]
    """Register the memory observer."""
    register(Memory)
