"""Load YAML while remembering the line of every key and item, for one-line errors."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from benchharness.errors import SuiteError

Loc = tuple[str | int, ...]

#: The largest suite file read, in bytes (1 MiB); a larger one is refused before it is parsed.
MAX_SUITE_BYTES = 1 << 20
#: The most YAML nodes (keys, values and list items) a suite may hold once its aliases are expanded:
#: a few lines of nested aliases ("billion laughs") would otherwise expand into billions.
MAX_SUITE_NODES = 100_000
#: The deepest nesting of lists and mappings a suite may have; suites are a few levels deep.
MAX_SUITE_DEPTH = 64

#: A file with a syntax error is read again by the Python loader, whose messages are clearer than libyaml's,
#: when it is at most this big (so a huge broken file is not parsed slowly twice).
REPARSE_BYTES = 64 << 10

_TOO_MANY = (
    f"more than {MAX_SUITE_NODES} YAML nodes (keys, values and list items, aliases expanded), the limit for a suite"
)
_TOO_DEEP = f"nested more than {MAX_SUITE_DEPTH} levels deep, the limit for a suite"


class LocatedDocument:
    """A parsed YAML document plus the 1-based line of every path in it.

    ``path`` is ``None`` for a mapping built in memory (``from_data``): its
    problems then name the field alone, with no file and line.
    """

    def __init__(self, path: Path | None, data: Any, lines: dict[Loc, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    @classmethod
    def from_data(cls, data: Any) -> LocatedDocument:
        """A document for a mapping that never was a file (a suite built by a test)."""
        return cls(None, data, {})

    def line_of(self, loc: Loc) -> int:
        """Line of the deepest known prefix of ``loc`` (a missing key points at its parent)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return 1

    def error(self, loc: Loc, message: str) -> str:
        """Format one problem as ``file:line path: message``."""
        where = format_loc(loc)
        if self.path is None:
            return f"{where}: {message}" if where else message
        prefix = f"{self.path}:{self.line_of(loc)}"
        return f"{prefix} {where}: {message}" if where else f"{prefix}: {message}"


def format_loc(loc: Loc) -> str:
    """Render a path like ``backends[1].threads``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Walker:
    """Turns composed nodes into plain data, recording lines and enforcing the limits as aliases expand."""

    def __init__(self) -> None:
        self.lines: dict[Loc, int] = {}
        self.nodes = 0
        # One constructor for every scalar: making a loader per scalar cost more than the rest of the walk.
        self.constructor = yaml.constructor.SafeConstructor()

    def walk(self, node: yaml.Node, loc: Loc, active: frozenset[int] = frozenset()) -> Any:
        lines = self.lines
        lines[loc] = node.start_mark.line + 1
        self.count(node, loc)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            if id(node) in active:  # an alias inside the node its anchor names: `a: &x [*x]`
                raise _Problem(node.start_mark.line + 1, "recursive alias: the anchored node contains itself", loc)
            if len(active) >= MAX_SUITE_DEPTH:
                raise _problem(node, _TOO_DEEP, loc)
            active = active | {id(node)}
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _problem(key_node, "YAML merge keys ('<<') are not supported; repeat the keys", loc)
                if not isinstance(key_node, yaml.ScalarNode):
                    what = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
                    raise _problem(key_node, f"a key must be a string, not {what}", loc)
                self.count(key_node, loc)
                key = self.scalar(key_node, loc)
                if not isinstance(key, str):
                    message = f"key {key_node.value} is read as {_kind(key)}, not a string; put it in quotes"
                    raise _problem(key_node, message, loc)
                child = loc + (key,)
                if key in out:
                    raise _problem(key_node, f"duplicate key (first on line {lines[child]})", child)
                out[key] = self.walk(value_node, child, active)
                lines[child] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, loc + (i,), active) for i, item in enumerate(node.value)]
        return self.scalar(node, loc)

    def count(self, node: yaml.Node, loc: Loc) -> None:
        """Count one more node; an alias bomb expands a few lines into billions of them."""
        self.nodes += 1
        if self.nodes > MAX_SUITE_NODES:
            raise _problem(node, _TOO_MANY, loc)

    def scalar(self, node: yaml.ScalarNode, loc: Loc) -> Any:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # an unknown tag: `!!python/object`
            raise _problem(node, getattr(exc, "problem", None) or str(exc).splitlines()[0], loc) from None
        except (ValueError, TypeError, OverflowError) as exc:  # `!!int abc`, a date like 2024-13-45
            kind = node.tag.rsplit(":", 1)[-1]
            raise _problem(node, f"invalid {kind} {node.value!r}: {exc}", loc) from None
        # A worker receives its case as JSON, which has no inf, nan or bytes: refuse them here, where the line is known.
        if isinstance(value, float) and not math.isfinite(value):
            raise _problem(node, f"non-finite number {node.value} is not allowed", loc)
        if isinstance(value, bytes):
            raise _problem(node, "binary data (!!binary) is not allowed; a suite holds text and numbers", loc)
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number" if isinstance(value, (int, float)) else f"a {type(value).__name__}"


class _Problem(Exception):
    def __init__(self, line: int, message: str, loc: Loc = ()) -> None:
        self.line = line
        self.message = message
        self.loc = loc


def _problem(node: yaml.Node, message: str, loc: Loc = ()) -> _Problem:
    return _Problem(node.start_mark.line + 1, message, loc)


class _OverLimit(Exception):
    """Raised while composing, so a huge flat document is cut off before it is all built; ``args[0]`` says why."""


def _limited(base: type) -> type:
    """``base`` (a YAML loader class) refusing more than :data:`MAX_SUITE_NODES` nodes as it composes them."""

    class LimitedLoader(base):  # type: ignore[misc, valid-type]
        composed = 0
        depth = 0

        # Both the C and the Python composer call ``resolve`` once for every node without an explicit tag;
        # nodes with one (``!!str x``) are at least 7 bytes each, so the size limit bounds them.
        def resolve(self, kind: type, value: Any, implicit: Any) -> str:
            self.composed += 1
            if self.composed > MAX_SUITE_NODES:
                raise _OverLimit(_TOO_MANY)
            return super().resolve(kind, value, implicit)

        # Only the Python composer calls this (libyaml stops at 1000 levels itself); past a few hundred
        # levels it would hit Python's recursion limit, and its scanner slows down quadratically.
        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > MAX_SUITE_DEPTH:
                    raise _OverLimit(_TOO_DEEP)
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return LimitedLoader


_PythonLoader = _limited(yaml.SafeLoader)
# libyaml composes a 1 MiB suite about six times faster; the Python loader words syntax errors better.
_FastLoader = _limited(yaml.CSafeLoader) if getattr(yaml, "__with_libyaml__", False) else _PythonLoader


def _compose(path: Path, text: str) -> list[yaml.Node]:
    """Every document's root node; a syntax error or a limit passed is one line."""
    try:
        return _compose_with(_FastLoader, text, path)
    except yaml.YAMLError as exc:
        if _FastLoader is _PythonLoader or len(text) > REPARSE_BYTES:
            raise SuiteError([_syntax_problem(path, text, exc)]) from None
        fast_error = exc
    try:  # again with the Python loader, for its clearer message
        _compose_with(_PythonLoader, text, path)
    except yaml.YAMLError as exc:
        raise SuiteError([_syntax_problem(path, text, exc)]) from None
    raise SuiteError([_syntax_problem(path, text, fast_error)])  # libyaml alone found it wrong


def _compose_with(loader_class: type, text: str, path: Path) -> list[yaml.Node]:
    loader = loader_class(text)
    try:
        nodes = []
        while loader.check_node():
            nodes.append(loader.get_node())
        return nodes
    except _OverLimit as exc:
        raise SuiteError([f"{path}:{_current_line(loader)}: {exc.args[0]}"]) from None
    finally:
        loader.dispose()


def _current_line(loader: Any) -> int:
    """Line of the event the loader is at (where it stopped), or 1."""
    try:
        return int(loader.peek_event().start_mark.line) + 1
    except Exception:  # noqa: BLE001 - the next event may be a syntax error: the line is only a pointer
        return 1


def _syntax_problem(path: Path, text: str, exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        what = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark and mark and exc.context_mark.line != mark.line:
            what += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"  # an unclosed [ or "
        return f"{path}:{line}: YAML syntax error: {what}"
    if isinstance(exc, yaml.reader.ReaderError):  # a control character: no mark, a position
        line = text[: exc.position].count("\n") + 1
        return f"{path}:{line}: YAML syntax error: {str(exc).splitlines()[0]}"
    return f"{path}:1: YAML error: {str(exc).splitlines()[0]}"


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str | None:
    """``None`` for a regular file, else what it is instead (\"a directory\", \"a character device\", ...)."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "not a regular file")


def _too_big(path: Path, size: str) -> SuiteError:
    return SuiteError([f"{path}: {size} bytes, over the limit of {MAX_SUITE_BYTES} bytes (1 MiB) for a suite"])


def _read_text(path: Path) -> str:
    """The file's text: a regular file of at most :data:`MAX_SUITE_BYTES`, UTF-8; else one line why not."""
    try:
        # Look before opening: opening a FIFO blocks until someone writes to it.
        kind = file_kind(path.stat().st_mode)
        if kind is None:
            # O_NONBLOCK: should the path turn into a FIFO between stat and open, open must not wait for a writer.
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
            with os.fdopen(fd, "rb") as fh:
                info = os.fstat(fh.fileno())
                kind = file_kind(info.st_mode)
                if kind is None and info.st_size > MAX_SUITE_BYTES:
                    raise _too_big(path, str(info.st_size))
                data = fh.read(MAX_SUITE_BYTES + 1) if kind is None else b""
    except (FileNotFoundError, NotADirectoryError):
        raise SuiteError([f"{path}: no such file"]) from None
    except OSError as exc:
        raise SuiteError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    if kind == "a directory":
        raise SuiteError([f"{path}: is a directory, expected a YAML file"])
    if kind is not None:
        raise SuiteError([f"{path}: is {kind}, expected a YAML file"])
    if len(data) > MAX_SUITE_BYTES:  # it grew after stat, or stat does not know its size (/proc)
        raise _too_big(path, f"more than {MAX_SUITE_BYTES}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise SuiteError([f"{path}:{line}: not UTF-8 text: cannot decode byte 0x{bad}"]) from None


def load_yaml(path: str | Path) -> LocatedDocument:
    """Read a single-document YAML mapping; any problem is a one-line :class:`SuiteError`.

    The file must be a regular file of at most :data:`MAX_SUITE_BYTES`, and it
    may hold at most :data:`MAX_SUITE_NODES` values once its aliases are
    expanded, nested at most :data:`MAX_SUITE_DEPTH` levels; ``inf``, ``nan``
    and ``!!binary`` are refused (a worker gets its case as JSON).
    """
    path = Path(path)
    text = _read_text(path)
    nodes = _compose(path, text)
    # A document with no content (`---` alone, or only comments) counts as empty.
    nodes = [n for n in nodes if n is not None and not _is_empty(n)]
    if not nodes:
        raise SuiteError([f"{path}:1: the file is empty, expected a mapping (a suite)"])
    if len(nodes) > 1:
        raise SuiteError([f"{path}:{nodes[1].start_mark.line + 1}: expected one YAML document, found {len(nodes)}"])
    root = nodes[0]
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a scalar"
        raise SuiteError([f"{path}:{root.start_mark.line + 1}: expected a mapping at the top level, found {kind}"])
    walker = _Walker()
    try:
        data = walker.walk(root, ())
    except _Problem as exc:
        where = format_loc(exc.loc)
        head = f"{path}:{exc.line} {where}" if where else f"{path}:{exc.line}"
        raise SuiteError([f"{head}: {exc.message}"]) from None
    return LocatedDocument(path, data, walker.lines)


def _is_empty(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null" and node.value == ""
