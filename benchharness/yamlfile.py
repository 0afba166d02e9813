"""Load YAML while remembering the line of every key and item, for one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from benchharness.errors import SuiteError

Loc = tuple[str | int, ...]


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


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], active: frozenset[int] = frozenset()) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        if id(node) in active:  # an alias inside the node its anchor names: `a: &x [*x]`
            raise _Problem(node.start_mark.line + 1, "recursive alias: the anchored node contains itself", loc)
        active = active | {id(node)}
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _problem(key_node, "YAML merge keys ('<<') are not supported; repeat the keys", loc)
            if not isinstance(key_node, yaml.ScalarNode):
                what = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
                raise _problem(key_node, f"a key must be a string, not {what}", loc)
            key = _scalar(key_node, loc)
            if not isinstance(key, str):
                message = f"key {key_node.value} is read as {_kind(key)}, not a string; put it in quotes"
                raise _problem(key_node, message, loc)
            child = loc + (key,)
            if key in out:
                raise _problem(key_node, f"duplicate key (first on line {lines[child]})", child)
            out[key] = _walk(value_node, child, lines, active)
            lines[child] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, loc + (i,), lines, active) for i, item in enumerate(node.value)]
    return _scalar(node, loc)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number" if isinstance(value, (int, float)) else f"a {type(value).__name__}"


def _scalar(node: yaml.ScalarNode, loc: Loc) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:  # an unknown tag: `!!python/object`
        raise _problem(node, getattr(exc, "problem", None) or str(exc).splitlines()[0], loc) from None
    except (ValueError, TypeError, OverflowError) as exc:  # `!!int abc`, a date like 2024-13-45
        kind = node.tag.rsplit(":", 1)[-1]
        raise _problem(node, f"invalid {kind} {node.value!r}: {exc}", loc) from None
    finally:
        loader.dispose()


class _Problem(Exception):
    def __init__(self, line: int, message: str, loc: Loc = ()) -> None:
        self.line = line
        self.message = message
        self.loc = loc


def _problem(node: yaml.Node, message: str, loc: Loc = ()) -> _Problem:
    return _Problem(node.start_mark.line + 1, message, loc)


def load_yaml(path: str | Path) -> LocatedDocument:
    """Read a single-document YAML mapping; any problem is a one-line :class:`SuiteError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise SuiteError([f"{path}: is a directory, expected a YAML file"]) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        bad = exc.object[exc.start : exc.start + 1].hex()
        raise SuiteError([f"{path}:{line}: not UTF-8 text: cannot decode byte 0x{bad}"]) from None
    except OSError as exc:
        raise SuiteError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        what = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark and mark and exc.context_mark.line != mark.line:
            what += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"  # an unclosed [ or "
        raise SuiteError([f"{path}:{line}: YAML syntax error: {what}"]) from None
    except yaml.reader.ReaderError as exc:  # a control character: no mark, a position
        line = text[: exc.position].count("\n") + 1
        raise SuiteError([f"{path}:{line}: YAML syntax error: {str(exc).splitlines()[0]}"]) from None
    except yaml.YAMLError as exc:
        raise SuiteError([f"{path}:1: YAML error: {str(exc).splitlines()[0]}"]) from None
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
    lines: dict[Loc, int] = {}
    try:
        data = _walk(root, (), lines)
    except _Problem as exc:
        where = format_loc(exc.loc)
        head = f"{path}:{exc.line} {where}" if where else f"{path}:{exc.line}"
        raise SuiteError([f"{head}: {exc.message}"]) from None
    return LocatedDocument(path, data, lines)


def _is_empty(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null" and node.value == ""
