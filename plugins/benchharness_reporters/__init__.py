"""Built-in reporters: the comparison table as text, markdown, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from benchharness.api import Reporter, RunResults
from benchharness.hookspecs import hookimpl


def _cell(value: Any, fmt: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if fmt and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, fmt)
    return value


def _finite(value: Any) -> Any:
    # JSON has no NaN or infinity.
    return None if isinstance(value, float) and not math.isfinite(value) else value


class _TabulateReporter(Reporter):
    tablefmt = "simple"

    def render(self, results: RunResults) -> str:
        """The comparison table, one row per case."""
        from tabulate import tabulate

        from benchharness.table import build

        table = build(results)
        body = [[_cell(row.get(col.key), col.fmt) for col in table.columns] for row in table.rows]
        text = tabulate(
            body, headers=[col.header for col in table.columns], tablefmt=self.tablefmt, disable_numparse=True
        )
        return "\n".join([text, *(f"note: {note}" for note in table.notes)])


class TableReporter(_TabulateReporter):
    """Plain-text table for the terminal."""

    name = "table"
    description = "plain-text comparison table (tabulate)"


class MarkdownReporter(_TabulateReporter):
    """GitHub-flavoured markdown table."""

    name = "markdown"
    description = "markdown comparison table"
    tablefmt = "github"


class CsvReporter(Reporter):
    """CSV with raw numbers."""

    name = "csv"
    description = "comparison table as CSV (raw numbers)"

    def render(self, results: RunResults) -> str:
        """Header row of column titles, then one row per case."""
        from benchharness.table import build

        table = build(results)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([col.header for col in table.columns])
        for row in table.rows:
            writer.writerow(["" if row.get(col.key) is None else row.get(col.key) for col in table.columns])
        return out.getvalue().rstrip("\n")


class JsonReporter(Reporter):
    """The comparison rows as a JSON list of objects (headers as keys)."""

    name = "json"
    description = "comparison table as JSON"

    def render(self, results: RunResults) -> str:
        """A list of objects, one per case."""
        from benchharness.table import build

        table = build(results)
        rows = [{col.header: _finite(row.get(col.key)) for col in table.columns} for row in table.rows]
        return json.dumps(rows, indent=1)


@hookimpl
def benchharness_register_reporters(register):  # type: ignore[no-untyped-def]
    """Register table, markdown, csv and json."""
    for reporter in (TableReporter, MarkdownReporter, CsvReporter, JsonReporter):
        register(reporter)
