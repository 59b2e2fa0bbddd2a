"""Markdown tables of benchmark results, the machine description, and the written record."""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Sequence

from autoencoders.machine import machine_lines

Cell = str | int | float | None
# A record's last section, written by hand (comparisons that need two runs, e.g. with and without
# an environment variable): `record` carries it over when it rewrites the file.
KEPT_HEADING = "## Comparisons run separately"


def fmt(value: Cell, digits: int = 3) -> str:
    """A table cell: floats to `digits` significant figures, None as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        if value == 0 or abs(value) >= 10 ** (digits - 1):
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown_grid(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> list[str]:
    """The lines of a Markdown table: the header, its rule, a line per row of `fmt` cells."""
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
        *("| " + " | ".join(fmt(c) for c in row) + " |" for row in rows),
    ]


@dataclasses.dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Cell]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def add(self, *cells: Cell) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.headers)} columns.")
        self.rows.append(list(cells))

    def to_markdown(self) -> str:
        lines = [f"### {self.title}", "", *markdown_grid(self.headers, self.rows)]
        if self.notes:
            lines.append("")
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)


def parse_tables(markdown: str) -> dict[str, list[dict[str, str]]]:
    """{title: rows as {header: cell}} for every `### title` followed by a Markdown table."""
    tables: dict[str, list[dict[str, str]]] = {}
    title, headers = None, None
    for line in markdown.splitlines():
        if line.startswith("### "):
            title, headers = line[4:].strip(), None
        elif line.startswith("|") and title is not None:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if headers is None:
                headers = cells
                tables[title] = []
            elif not all(set(c) <= {"-", ":"} for c in cells):
                if len(cells) != len(headers):
                    raise ValueError(f"Table {title!r}: row {line!r} has {len(cells)} cells.")
                tables[title].append(dict(zip(headers, cells, strict=True)))
    return tables


def parse_number(cell: str) -> float:
    """The float in a cell written by `fmt` (thousands separators allowed)."""
    return float(cell.replace(",", ""))


def record(
    command: str,
    started: datetime.datetime,
    settings: Sequence[str],
    method: Sequence[str],
    tables: Sequence[Table],
    raw: Sequence[str],
    kept: str = "",
    *,
    title: str = "Benchmarks",
    written_by: str = "",
    machine: Sequence[str] = (),
) -> str:
    """The whole Markdown record: what ran, where, how, the tables and the raw timings, then
    `kept` (an earlier record's `kept_part`). `written_by` (default: benchmarks/run.py's line)
    and `machine` (default: `machine_lines()`) let another script write its record."""
    written_by = written_by or (
        "Written by `benchmarks/run.py`; every number below is that script's output"
        + (f" (under '{KEPT_HEADING[3:]}': of the commands named there)." if kept else ".")
    )
    parts = [
        f"# {title}",
        "",
        written_by,
        "",
        f"Command: `{command}`",
        "",
        f"Started: {started.isoformat(timespec='seconds')}",
        "",
        "## Machine",
        "",
        *[f"- {line}" for line in machine or machine_lines()],
        "",
        "## Settings",
        "",
        *[f"- {line}" for line in settings],
        "",
        "## Method",
        "",
        *[f"- {line}" for line in method],
        "",
        "## Results",
        "",
    ]
    for table in tables:
        parts += [table.to_markdown(), ""]
    parts += ["## Raw timings (seconds per repeat)", "", *[f"- {line}" for line in raw], ""]
    if kept:
        parts += [kept.rstrip("\n"), ""]
    return "\n".join(parts)


def kept_part(previous: str) -> str:
    """The part of an earlier record that a rewrite keeps: from a line `KEPT_HEADING` to the end,
    '' if it has none."""
    lines = previous.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.rstrip() == KEPT_HEADING:
            return "".join(lines[i:])
    return ""
