"""Files written whole or not at all, with the mode a plain ``open()`` would give them.

A reader of a file written here sees the old file or the new one, never half
of one: the bytes go to a temporary file in the same folder (so the rename
stays on one file system), which is flushed to disk, given the mode
``0o666 & ~umask``, and renamed over the target with :func:`os.replace`.
The rename must be last: :func:`tempfile.mkstemp` creates files ``0o600``,
and results and cached models are uploaded by CI jobs that run as another
user, so the mode is set before the file appears under its name.  On any
failure, ``KeyboardInterrupt`` included, the temporary file is removed and
the target is left as it was.

:func:`exclusive_lock` serialises writers of the same file across processes
(``fcntl.flock``, POSIX); where ``fcntl`` is missing it takes no lock and
says so.

Example::

    from benchharness.fileio import atomic_path, atomic_write_text

    atomic_write_text(path, results_json)
    with atomic_path(out, suffix=".onnx") as tmp:  # a tool that insists on writing a path itself
        torch.onnx.export(module, args, str(tmp))
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "current_umask",
    "default_file_mode",
    "exclusive_lock",
]


def current_umask() -> int:
    """The process's umask.

    Read from ``/proc/self/status`` where Linux offers it, since that changes
    nothing; elsewhere the umask is set and restored at once, which for that
    instant is process-wide: a file another thread creates then may get
    narrower permissions than it should, never wider ones.
    """
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o077)  # narrower than any sensible umask, so a file made in this instant is never wider
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """``0o666 & ~umask``: the mode ``open(path, "w")`` gives a new file."""
    return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_path(
    path: Path, *, prefix: str | None = None, suffix: str = ".tmp", mode: int | None = None
) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; on a clean exit it becomes ``path`` in one rename.

    The temporary file is created empty (so its name is taken) in
    ``path``'s folder, named ``prefix`` (default ``.NAME.``), random
    characters and ``suffix``; give ``suffix`` when the writer looks at the
    extension (``.onnx``).  The block may write the file in place or replace
    it, but must leave a regular file there.  On a clean exit the file is
    fsync'ed, chmod'ed to ``mode`` (default :func:`default_file_mode`) and
    renamed over ``path``, and the folder is fsync'ed where the platform
    allows.  If the block raises, or any of that fails, the temporary file is
    removed, ``path`` is untouched and the exception propagates.  The folder
    must exist.
    """
    path = Path(path)
    start = prefix if prefix is not None else f".{path.name}."
    fd, name = tempfile.mkstemp(prefix=start, suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, default_file_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` whole or not at all (see :func:`atomic_path`)."""
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str, *, encoding: str = "utf-8", mode: int | None = None) -> None:
    """Write ``text`` to ``path`` whole or not at all (see :func:`atomic_path`)."""
    atomic_write_bytes(path, text.encode(encoding), mode=mode)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` for the block, waiting for any other holder first.

    ``path`` is created if missing (mode ``0o666 & ~umask``) and never
    removed: deleting a lock file while another process waits on it would
    let a third lock a new file of the same name.  The lock is released when
    the block ends or the process dies.  Yields ``True``, or ``False`` when no
    lock was taken: ``fcntl`` is missing (Windows), or the file system refuses
    locks (some network and FUSE mounts).  Advisory: it binds only writers
    that take it too.
    """
    try:
        import fcntl
    except ImportError:
        yield False
        return
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)  # flock needs no write access; the umask applies
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            locked = True
        except OSError as exc:
            if exc.errno not in _NO_LOCKS:
                raise
            locked = False
        yield locked
    finally:
        os.close(fd)  # closing the descriptor releases the lock


#: ``flock`` errors that mean "this file system has no locks", not "something is wrong".
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; best effort (some platforms cannot open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
