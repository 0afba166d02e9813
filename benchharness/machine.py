"""Facts about the machine a run happened on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
from pydantic import BaseModel, ConfigDict, Field


class GitInfo(BaseModel):
    """The commit of the repository a run started in."""

    model_config = ConfigDict(extra="forbid")
    commit: str
    dirty: bool
    #: The commit's committer date, ISO 8601 (``git show -s --format=%cI``); ``None`` in files written before it
    #: was recorded.  ``benchharness history`` orders runs by it.
    committed_at: str | None = None


class Machine(BaseModel):
    """The machine a run happened on."""

    model_config = ConfigDict(extra="forbid")
    hostname: str
    cpu: str
    arch: str
    cores_logical: int | None
    cores_physical: int | None
    cpu_affinity: list[int] | None
    memory_bytes: int
    os: str
    python: str
    python_implementation: str
    #: Versions of the frameworks the registered plugins require.
    frameworks: dict[str, str]
    git: GitInfo | None


class Node(BaseModel):
    """The cluster node a case ran on, as the launcher that placed it there saw it (``--launcher ray``).

    ``machine`` holds that node's own facts (CPU, cores, memory, framework
    versions), not the driver's, which are the results file's ``machine``.
    """

    model_config = ConfigDict(extra="forbid")
    hostname: str
    node_id: str
    #: The node's labels: the custom resources it advertises (``hw:h200``, ``intel_npu``) with their amounts,
    #: and its GPUs as ``GPU``.
    labels: dict[str, float]
    machine: Machine
    #: Anything else the launcher records (the engine's version, the node's address, files it fetched).
    details: dict[str, Any] = Field(default_factory=dict)

    def kind(self) -> str:
        """What makes two nodes the same hardware: :func:`hardware_kind` of its machine and its ``hw:`` labels."""
        return hardware_kind(self.machine, [label for label in self.labels if label.startswith("hw:")])


def hardware_kind(machine: Machine, labels: list[str] | tuple[str, ...] = ()) -> str:
    """``Intel Xeon x2, 24 GiB, hw:h200``: the CPU, its logical cores, the memory, and hardware labels.

    The hostname is not part of it: two identical machines are one kind.
    """
    gib = round(machine.memory_bytes / 2**30)
    return ", ".join([f"{machine.cpu} x{machine.cores_logical}", f"{gib} GiB", *sorted(labels)])


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(cwd: Path) -> GitInfo | None:
    """Commit and dirtiness of the repository containing ``cwd``, or ``None`` outside one."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        committed_at = subprocess.run(
            ["git", "show", "-s", "--format=%cI", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return GitInfo(commit=commit, dirty=bool(status.strip()), committed_at=committed_at or None)


def machine_info(frameworks: dict[str, str], cwd: Path | None = None, *, git: bool = True) -> Machine:
    """CPU, cores, memory, OS, Python, framework versions and (with ``git``) the commit of ``cwd``'s repository."""
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = None
    return Machine(
        hostname=platform.node(),
        cpu=cpu_model(),
        arch=platform.machine(),
        cores_logical=psutil.cpu_count(logical=True),
        cores_physical=psutil.cpu_count(logical=False),
        cpu_affinity=affinity,
        memory_bytes=psutil.virtual_memory().total,
        os=platform.platform(),
        python=sys.version.split()[0],
        python_implementation=platform.python_implementation(),
        frameworks=frameworks,
        git=git_commit(cwd or Path.cwd()) if git else None,
    )
