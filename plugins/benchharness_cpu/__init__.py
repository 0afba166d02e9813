"""Built-in targets: the host CPU, and edge-emulated CPUs (pinned cores, limited threads, a memory cap).

An ``edge`` target emulates a small device on this host: it is recorded as a
*resource-constrained host*, never as the device itself, since caches, memory
bandwidth and clocks stay the host's.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, PositiveInt, field_validator

from benchharness.api import BenchError, MemoryLimit, Target, TargetContext, TargetOptions, allowed_cores
from benchharness.hookspecs import hookimpl

#: Variables the thread pools of OpenMP (torch, ONNX Runtime's OpenMP builds), MKL, OpenBLAS, Accelerate and
#: numexpr read when they load; ``apply`` records what the worker really has.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                   "NUMEXPR_NUM_THREADS")  # fmt: skip
#: What an edge target is called in results: an emulation on this host, not the device.
EDGE_KIND = "resource-constrained host"


class CpuOptions(TargetOptions):
    """Options of the ``cpu`` target."""

    threads: PositiveInt | None = Field(
        None, description="Threads for every framework; defaults to the cores this process may use."
    )
    cores: list[int] | None = Field(None, min_length=1, description="Pin the worker to these core ids.")


def core_ranges(cores: list[int]) -> str:
    """``0-3,6`` for ``[0, 1, 2, 3, 6]``."""
    parts: list[str] = []
    for core in sorted(cores):
        if parts and core == int(parts[-1].split("-")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{core}"
        else:
            parts.append(str(core))
    return ",".join(parts)


def pin(cores: list[int]) -> int:
    """Pin every thread of this process to ``cores``; return how many threads there were.

    ``sched_setaffinity(0, ...)`` pins only the calling thread (and the threads it starts later); threads
    already running, such as the worker's parent watch or a BLAS pool started at import, are pinned by id.
    """
    os.sched_setaffinity(0, cores)
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: only this thread
        return 1
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cores)
        except OSError:  # the thread ended meanwhile
            pass
    return len(tids)


def thread_affinities() -> list[list[int]]:
    """The distinct CPU affinities of this process's threads, read back (one entry when all agree)."""
    seen: list[list[int]] = []
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            cores = sorted(os.sched_getaffinity(tid))
        except OSError:
            continue
        if cores not in seen:
            seen.append(cores)
    return seen


def _missing_cores(wanted: list[int]) -> str | None:
    available = allowed_cores()
    missing = [c for c in wanted if c not in available]
    if missing:
        return f"needs cores {core_ranges(missing)}; this machine lets it use {core_ranges(available)}"
    return None


def _threads(options: CpuOptions) -> int:
    if options.threads is not None:
        return options.threads
    return len(options.cores) if options.cores else len(allowed_cores())


def _thread_env(threads: int) -> dict[str, str]:
    return {var: str(threads) for var in THREAD_ENV_VARS}


def _env_in_force() -> dict[str, str | None]:
    return {var: os.environ.get(var) for var in THREAD_ENV_VARS}


class CpuTarget(Target):
    """The host CPU."""

    name = "cpu"
    description = "host CPU; 'threads' limits every framework, 'cores' pins the worker"
    Options: ClassVar[type[BaseModel]] = CpuOptions

    @classmethod
    def unavailable_here(cls, options: CpuOptions) -> str | None:  # type: ignore[override]
        """Cores named in ``cores`` that this process may not use."""
        return _missing_cores(options.cores) if options.cores else None

    def environment(self, options: CpuOptions) -> dict[str, str]:  # type: ignore[override]
        """Thread-count variables that OpenMP, MKL and OpenBLAS read when they load."""
        return _thread_env(_threads(options))

    def apply(self, options: CpuOptions) -> TargetContext:  # type: ignore[override]
        """Pin the worker when ``cores`` is set; return the resources it really has."""
        if options.cores:
            missing = _missing_cores(options.cores)
            if missing:
                raise BenchError(f"target cpu: {missing}")
            pin(options.cores)
        return TargetContext(
            device="cpu", threads=_threads(options), cores=allowed_cores(), details={"env": _env_in_force()}
        )


# ----------------------------------------------------------------------------- edge emulation


class EdgeOptions(TargetOptions):
    """Options of the ``edge`` target."""

    cores: int | list[int] = Field(
        1, description="A number of cores (the first N this process may use), or a list of core ids to pin."
    )
    threads: PositiveInt | None = Field(None, description="Threads for every framework; default: one per core.")
    memory: int | str | None = Field(
        None, description="Memory cap: bytes, or a size such as '2g' or '512m' (binary units); none by default."
    )
    memory_method: Literal["auto", "cgroup", "rlimit"] = Field(
        "auto",
        description="How the cap is enforced: a cgroup (real memory use; the kernel's OOM killer), RLIMIT_AS "
        "(virtual memory, which frameworks over-reserve), or auto: a cgroup where one is writable, else RLIMIT_AS.",
    )

    @field_validator("cores", mode="before")
    @classmethod
    def _cores(cls, value: Any) -> Any:
        # One message for any wrong shape, not one per branch of the union (a boolean: StrictModel's message).
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            if value < 1:
                raise ValueError(f"a number of cores must be at least 1, not {value}")
            return value
        if isinstance(value, list):
            if any(isinstance(c, bool) for c in value):
                return value
            if not value:
                raise ValueError("name at least one core")
            if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in value):
                raise ValueError("core ids are whole numbers from 0")
            if len(set(value)) != len(value):
                raise ValueError("a core is named twice")
            return value
        raise ValueError(f"give a number of cores or a list of core ids, not {value!r}")

    @field_validator("memory", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if not isinstance(value, (int, str)):
            raise ValueError(f"give bytes, or a size such as '2g', not {value!r}")
        from benchharness_cpu.memory import parse_size

        parse_size(value)
        return value


class EdgeProfileOptions(TargetOptions):
    """Options of an edge profile: only how its memory cap is enforced."""

    memory_method: Literal["auto", "cgroup", "rlimit"] = Field(
        "auto", description="cgroup, rlimit, or auto (a cgroup where one is writable, else RLIMIT_AS)."
    )


def _edge_cores(settings: EdgeOptions) -> list[int]:
    if isinstance(settings.cores, list):
        return sorted(settings.cores)
    return allowed_cores()[: settings.cores]


class EdgeTarget(Target):
    """An edge device emulated on this host: pinned cores, limited threads and an optional memory cap."""

    name = "edge"
    description = f"{EDGE_KIND}: 'cores' pinned, 'threads' per framework, 'memory' capped (cgroup or RLIMIT_AS)"
    Options: ClassVar[type[BaseModel]] = EdgeOptions

    @classmethod
    def settings(cls, options: BaseModel) -> EdgeOptions:
        """The full settings ``options`` stand for (a profile fills in its own)."""
        return options  # type: ignore[return-value]

    @classmethod
    def unavailable_here(cls, options: BaseModel) -> str | None:
        """Too few cores, cores this process may not use, more memory than the machine has, or no way to cap it."""
        if not hasattr(os, "sched_setaffinity"):
            return "pinning cores needs os.sched_setaffinity, which this platform lacks (Linux has it)"
        settings = cls.settings(options)
        if isinstance(settings.cores, int):
            available = allowed_cores()
            if settings.cores > len(available):
                return (
                    f"needs {settings.cores} cores; this machine lets it use {len(available)} "
                    f"({core_ranges(available)})"
                )
        else:
            missing = _missing_cores(settings.cores)
            if missing:
                return missing
        if settings.memory is not None:
            import psutil

            from benchharness.inputs import byte_size
            from benchharness_cpu.memory import method_unavailable, parse_size

            need, total = parse_size(settings.memory), psutil.virtual_memory().total
            if need > total:
                return f"needs {byte_size(need)} of memory; this machine has {byte_size(total)}"
            return method_unavailable(settings.memory_method)
        return None

    def environment(self, options: BaseModel) -> dict[str, str]:
        """The thread-count variables, set to the edge's threads before the worker starts."""
        settings = self.settings(options)
        return _thread_env(settings.threads or len(_edge_cores(settings)))

    def apply(self, options: BaseModel) -> TargetContext:
        """Pin the cores, cap the memory, and record what is really in force, read back."""
        settings = self.settings(options)
        cores = _edge_cores(settings)
        missing = _missing_cores(cores)
        if missing or not cores:
            raise BenchError(f"target {self.name}: {missing or 'no cores to pin'}")
        if settings.memory is not None:
            from benchharness.worker import in_own_process

            if not in_own_process():
                raise BenchError(
                    f"target {self.name}: a memory cap needs a worker process of its own, which this launcher "
                    "does not start (use --launcher process)"
                )
            # The harness's own statistics libraries (numpy, scipy) are loaded before the cap, so a cgroup does not
            # charge them to the emulated device; and under RLIMIT_AS, OpenBLAS (loaded by scipy) spins forever when
            # an allocation at its start-up fails (measured: a hang until the timeout).  Their threads are pinned
            # below, and their thread counts come from the environment set before the worker started.
            from benchharness.stats import preload

            preload()
        pinned = pin(cores)
        threads = settings.threads or len(cores)
        details: dict[str, Any] = {
            "kind": EDGE_KIND,
            "profile": self.name,
            "requested": {
                "cores": settings.cores,
                "threads": settings.threads,
                "memory": settings.memory,
                "memory_method": settings.memory_method,
            },
            "env": _env_in_force(),
            "pinned_threads": pinned,
            "thread_affinities": thread_affinities(),
        }
        memory: MemoryLimit | None = None
        if settings.memory is not None:
            from benchharness_cpu.memory import cap_memory, parse_size

            memory, fallback = cap_memory(parse_size(settings.memory), settings.memory_method)
            if fallback:
                details["memory_fallback"] = fallback
        return TargetContext(
            device="cpu", threads=threads, cores=sorted(os.sched_getaffinity(0)), memory=memory, details=details
        )


class EdgeProfile(EdgeTarget):
    """A named edge emulation: fixed cores, threads and memory (``preset``)."""

    Options: ClassVar[type[BaseModel]] = EdgeProfileOptions
    #: The ``edge`` options this profile stands for.
    preset: ClassVar[dict[str, Any]] = {}

    @classmethod
    def settings(cls, options: BaseModel) -> EdgeOptions:
        """The preset, with the suite's ``memory_method``."""
        method = getattr(options, "memory_method", "auto")
        return EdgeOptions.model_validate({**cls.preset, "memory_method": method})


class EdgeOneCore(EdgeProfile):
    """One core, one thread, no memory cap."""

    name = "edge-1core"
    description = f"{EDGE_KIND}: 1 core, 1 thread, no memory cap"
    preset: ClassVar[dict[str, Any]] = {"cores": 1, "threads": 1}


class EdgeTwoCoreTwoGig(EdgeProfile):
    """Two cores, two threads, 2 GiB of memory: the budget of a small single-board computer."""

    name = "edge-2core-2g"
    description = f"{EDGE_KIND}: 2 cores, 2 threads, 2 GiB memory cap"
    preset: ClassVar[dict[str, Any]] = {"cores": 2, "threads": 2, "memory": "2g"}


@hookimpl
def benchharness_register_targets(register):  # type: ignore[no-untyped-def]
    """Register the host CPU and the edge emulations."""
    register(CpuTarget)
    register(EdgeTarget)
    register(EdgeOneCore)
    register(EdgeTwoCoreTwoGig)
