"""Built-in target: the host CPU, optionally pinned to cores and limited in threads."""

from __future__ import annotations

import os
from typing import ClassVar

from pydantic import BaseModel, Field, PositiveInt

from benchharness.api import BenchError, Target, TargetContext, TargetOptions
from benchharness.hookspecs import hookimpl

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class CpuOptions(TargetOptions):
    """Options of the ``cpu`` target."""

    threads: PositiveInt | None = Field(
        None, description="Threads for every framework; defaults to the cores this process may use."
    )
    cores: list[int] | None = Field(None, min_length=1, description="Pin the worker to these core ids.")


def allowed_cores() -> list[int]:
    """Cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows: no affinity API
        return list(range(os.cpu_count() or 1))


def _threads(options: CpuOptions) -> int:
    if options.threads is not None:
        return options.threads
    return len(options.cores) if options.cores else len(allowed_cores())


class CpuTarget(Target):
    """The host CPU."""

    name = "cpu"
    description = "host CPU; 'threads' limits every framework, 'cores' pins the worker"
    Options: ClassVar[type[BaseModel]] = CpuOptions

    def environment(self, options: CpuOptions) -> dict[str, str]:  # type: ignore[override]
        """Thread-count variables that OpenMP, MKL and OpenBLAS read when they load."""
        threads = str(_threads(options))
        return {var: threads for var in THREAD_ENV_VARS}

    def apply(self, options: CpuOptions) -> TargetContext:  # type: ignore[override]
        """Pin the worker when ``cores`` is set; return the resources it really has."""
        if options.cores:
            available = allowed_cores()
            missing = [c for c in options.cores if c not in available]
            if missing:
                raise BenchError(f"target cpu: cores {missing} are not available; this machine allows {available}")
            os.sched_setaffinity(0, options.cores)
        return TargetContext(
            device="cpu",
            threads=_threads(options),
            cores=allowed_cores(),
            details={"env": {var: os.environ.get(var) for var in THREAD_ENV_VARS}},
        )


@hookimpl
def benchharness_register_targets(register):  # type: ignore[no-untyped-def]
    """Register the host CPU target."""
    register(CpuTarget)
