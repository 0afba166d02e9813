"""Load YAML while remembering the line of every key and item, for one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from benchharness.errors import SuiteError

Loc = tuple[str | int, ...]


class LocatedDocument:
    """A parsed YAML document plus the 1-based line of every path in it."""

    def __init__(self, path: Path, data: Any, lines: dict[Loc, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

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


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _walk(key_node, (), {})
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise _problem(key_node, "mapping keys must be plain scalars")
            if key in out:
                raise _problem(key_node, f"duplicate key {key!r}")
            child = loc + (key,)
            out[key] = _walk(value_node, child, lines)
            lines[child] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, loc + (i,), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


class _Problem(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message


def _problem(node: yaml.Node, message: str) -> _Problem:
    return _Problem(node.start_mark.line + 1, message)


def load_yaml(path: str | Path) -> LocatedDocument:
    """Read a single-document YAML mapping; any problem is a one-line :class:`SuiteError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise SuiteError([f"{path}: is a directory, expected a YAML file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError([f"{path}: cannot read: {exc}"]) from None
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        what = exc.problem or exc.context or "invalid YAML"
        raise SuiteError([f"{path}:{line}: YAML syntax error: {what}"]) from None
    except yaml.YAMLError as exc:
        raise SuiteError([f"{path}:1: YAML error: {exc}"]) from None
    nodes = [n for n in nodes if n is not None]
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
        raise SuiteError([f"{path}:{exc.line}: {exc.message}"]) from None
    except yaml.YAMLError as exc:
        raise SuiteError([f"{path}:1: YAML error: {exc}"]) from None
    return LocatedDocument(path, data, lines)
