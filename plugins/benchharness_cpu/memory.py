"""Memory caps for a worker process: a cgroup of its own where one can be made, else ``RLIMIT_AS``.

A cgroup caps what the process really uses (resident memory and page cache),
as a small device's RAM would, and the kernel's OOM killer ends the worker
when it goes over.  ``RLIMIT_AS`` caps *virtual* memory instead, which
frameworks reserve generously: importing torch alone maps about 620 MiB of
address space while using about 280 MiB.  A cap that fits a model's real use
may therefore fail under ``RLIMIT_AS``; see docs/reliability.md for figures.

cgroup v2 is used where a folder whose children get the memory controller is
writable (a ``memory.max`` per child); else cgroup v1's memory controller
(``memory.limit_in_bytes``).  The worker's cgroup is made beside or under its
own, named ``benchharness-<pid>``, and the launcher removes it when the
worker ends (``benchharness.worker.release_memory_limit``); ones left by a
killed run are removed by the next one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from benchharness.api import BenchError, MemoryLimit

#: Folders made for workers start with this; nothing else is ever removed.
CGROUP_PREFIX = "benchharness-"
METHODS = ("auto", "cgroup", "rlimit")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
MIN_CAP = 1 << 20


def parse_size(value: str | int) -> int:
    """Bytes from ``2147483648``, ``"2g"``, ``"512M"``, ``"1.5GiB"`` (binary units, as docker's ``--memory``)."""
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a size: give bytes, or a number with k, m, g or t, such as '2g'")
        size = int(float(match.group(1)) * 1024 ** " kmgt".index((match.group(2) or " ").lower()))
    if not MIN_CAP <= size < 2**62:
        raise ValueError(f"a memory cap must be at least 1 MiB and below 4 EiB, not {size} bytes")
    return size


@dataclass(frozen=True)
class CgroupPlace:
    """Where a worker's cgroup can be made: ``parent`` gets the child; ``current`` is where this process is now."""

    version: int
    parent: Path
    current: Path


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mounts() -> list[tuple[str, Path, str, list[str]]]:
    """(root, mount point, file system type, super options) of every cgroup mount this process sees."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(rest) < 3 or rest[0] not in ("cgroup", "cgroup2"):
            continue
        out.append((_unescape(fields[3]), Path(_unescape(fields[4])), rest[0], rest[2].split(",")))
    return out


def own_cgroups() -> dict[str, str]:
    """This process's cgroup paths: ``"v2"`` for the unified hierarchy, and each v1 controller's by name."""
    out: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            out["v2"] = path
        for controller in controllers.split(","):
            if controller:
                out[controller] = path
    return out


def _folder(mount_root: str, mount_point: Path, path: str) -> Path | None:
    if mount_root == "/":
        return mount_point / path.lstrip("/")
    if path == mount_root or path.startswith(mount_root.rstrip("/") + "/"):
        return mount_point / path[len(mount_root) :].lstrip("/")
    return None


def _words(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="ascii", errors="replace").split()
    except OSError:
        return []


def cgroup_place() -> CgroupPlace | None:
    """Where this process could make a memory-capped cgroup for itself, or ``None`` (cheap: nothing is made)."""
    own = own_cgroups()
    mounts = _mounts()
    for root, point, fstype, _ in mounts:
        if fstype != "cgroup2" or "v2" not in own:
            continue
        current = _folder(root, point, own["v2"])
        if current is None or not current.is_dir():
            continue
        # A cgroup with processes cannot give its children controllers (the root excepted): the nearest folder
        # at or above this one that already gives them the memory controller gets the worker's cgroup.
        folder = current
        while True:
            if "memory" in _words(folder / "cgroup.subtree_control") and os.access(folder, os.W_OK):
                return CgroupPlace(2, folder, current)
            if folder == point or folder.parent == folder:
                break
            folder = folder.parent
    for root, point, fstype, options in mounts:
        if fstype != "cgroup" or "memory" not in options or "memory" not in own:
            continue
        current = _folder(root, point, own["memory"])
        if current is not None and (current / "memory.limit_in_bytes").exists() and os.access(current, os.W_OK):
            return CgroupPlace(1, current, current)  # v1 lets a cgroup with processes have children
    return None


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(text)


def oom_kills(path: Path) -> int | None:
    """The ``oom_kill N`` count of a cgroup's ``memory.events`` (v2) or ``memory.oom_control`` (v1)."""
    try:
        lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


def _sweep(parent: Path) -> None:
    """Remove the empty cgroups of workers that are gone (a run killed before its launcher could)."""
    for folder in parent.glob(CGROUP_PREFIX + "*"):
        pid = folder.name[len(CGROUP_PREFIX) :]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except OSError:
            continue
        try:
            folder.rmdir()
        except OSError:
            pass


def cgroup_cap(place: CgroupPlace, limit: int) -> MemoryLimit:
    """Make ``benchharness-<pid>`` under ``place.parent`` with ``limit``, move this process into it, read it back."""
    _sweep(place.parent)
    folder = place.parent / f"{CGROUP_PREFIX}{os.getpid()}"
    folder.mkdir(exist_ok=True)
    try:
        if place.version == 2:
            limit_file, events, method = folder / "memory.max", folder / "memory.events", "cgroup v2 memory.max"
            _write(limit_file, str(limit))
            if (folder / "memory.swap.max").exists():
                _write(folder / "memory.swap.max", "0")  # a small device has no swap to hide the cap behind
        else:
            limit_file, events = folder / "memory.limit_in_bytes", folder / "memory.oom_control"
            method = "cgroup v1 memory.limit_in_bytes"
            _write(limit_file, str(limit))
            if (folder / "memory.memsw.limit_in_bytes").exists():
                try:
                    _write(folder / "memory.memsw.limit_in_bytes", str(limit))
                except OSError:
                    pass  # swap accounting is off: there is no swap to limit
        at_start = oom_kills(events)
        _write(folder / "cgroup.procs", str(os.getpid()))
        in_force = int(limit_file.read_text(encoding="ascii").strip())
        now = own_cgroups().get("v2" if place.version == 2 else "memory", "")
        if not now or not str(folder).endswith(now.rstrip("/")):
            raise OSError(f"this process is in {now!r}, not in {folder}")
    except BaseException:
        _leave(place, folder)
        raise
    return MemoryLimit(
        limit_bytes=in_force,
        method=method,
        cgroup=str(folder),
        moved_from=str(place.current),
        oom_kill_file=str(events) if at_start is not None else None,
        oom_kills_at_start=at_start or 0,
    )


def _leave(place: CgroupPlace, folder: Path) -> None:
    try:
        _write(place.current / "cgroup.procs", str(os.getpid()))
    except OSError:
        pass
    try:
        folder.rmdir()
    except OSError:
        pass


def rlimit_cap(limit: int) -> MemoryLimit:
    """Set the soft ``RLIMIT_AS`` to ``limit`` (within the hard limit) and read it back."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY and limit > hard:
        raise BenchError(f"a memory cap of {limit} bytes is above this process's hard RLIMIT_AS of {hard}")
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return MemoryLimit(limit_bytes=resource.getrlimit(resource.RLIMIT_AS)[0], method="RLIMIT_AS")


def method_unavailable(method: str) -> str | None:
    """Why ``method`` cannot cap memory here, or ``None``."""
    if method == "cgroup" and cgroup_place() is None:
        return (
            "memory_method 'cgroup' needs a writable cgroup with the memory controller (v2 memory.max or "
            "v1 memory.limit_in_bytes); this machine has none"
        )
    if method in ("rlimit", "auto") and method_in_use(method) is None:
        return "capping memory needs cgroups or setrlimit(RLIMIT_AS), which this platform lacks"
    return None


def method_in_use(method: str) -> str | None:
    """What ``method`` resolves to on this machine: ``"cgroup"``, ``"rlimit"`` or ``None`` (neither works)."""
    if method in ("auto", "cgroup") and cgroup_place() is not None:
        return "cgroup"
    if method == "cgroup":
        return None
    try:
        import resource

        resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, AttributeError, OSError):
        return None
    return "rlimit"


def cap_memory(limit: int, method: str) -> tuple[MemoryLimit, str | None]:
    """Cap this process at ``limit`` bytes; return the cap read back and, when ``auto`` fell back, why."""
    place = cgroup_place() if method in ("auto", "cgroup") else None
    if place is not None:
        try:
            return cgroup_cap(place, limit), None
        except OSError as exc:
            if method == "cgroup":
                raise BenchError(f"cannot cap memory with a cgroup under {place.parent}: {exc}") from None
            return rlimit_cap(limit), f"a cgroup under {place.parent} could not be used: {exc}"
    if method == "cgroup":
        raise BenchError(method_unavailable("cgroup") or "no writable cgroup")
    return rlimit_cap(limit), None
