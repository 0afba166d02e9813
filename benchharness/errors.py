"""User-facing errors: one line each, never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """An error caused by the user's input, shown as one line, exit code 2."""

    exit_code = 2


class SuiteError(BenchError):
    """One or more problems in a suite file; each is one `file:line path: message` line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """Return ` (did you mean 'x'?)` when a close match exists, else ``""``."""
    matches = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def unknown_name(kind: str, name: str, known: Iterable[str], *, quote_name: bool = True) -> str:
    """Message for an unknown plugin item: lists the known ones and suggests the closest.

    ``quote_name=False`` leaves the name out, for messages whose path already ends with it.
    """
    known = sorted(known)
    listing = ", ".join(known) if known else "none installed"
    shown = f" {name!r}" if quote_name else ""
    return f"unknown {kind}{shown}{did_you_mean(name, known)}; known: {listing}"


class PluginError(BenchError):
    """Plugin code raised where the core called it in the CLI process; one line naming the plugin, exit 2."""
