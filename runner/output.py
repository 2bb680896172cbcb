"""How a verb's result is printed, to fit where it goes.

- `table`: a rich table, for a person at a terminal (the default when stdout is one);
- `text`: plain aligned columns, one line per row, no box drawing and no wrapping, for pipes,
  files and CI logs (the default when stdout is not a terminal);
- `json`: one JSON document, `{"format_version": 1, "verb": ..., ...}`, for scripts. Its shape per
  verb is documented in README.md ("Output for scripts"); a field is only ever added within a
  format_version, and FORMAT_VERSION goes up when one changes meaning or goes away.

A verb builds its result as data (a `Grid`, or a dict for JSON) and calls one of these; the verbs
never branch on where their output goes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import click

FORMAT_VERSION = 1
TABLE, TEXT, JSON = "table", "text", "json"
FORMATS = (TABLE, TEXT, JSON)


def format_option(*, json_too: bool = True):
    """--format for a verb; without it, `table` on a terminal and `text` anywhere else."""
    choices = FORMATS if json_too else (TABLE, TEXT)
    return click.option("--format", "fmt", type=click.Choice(choices), default=None,
                        help="table: boxed, for a terminal; text: plain aligned columns, one line per row; "
                             + ("json: one JSON document (shape in README, 'Output for scripts'). " if json_too else "")
                             + "[default: table when stdout is a terminal, else text]")


def resolve(fmt: str | None, console) -> str:
    return fmt or (TABLE if console.is_terminal else TEXT)


@dataclass
class Grid:
    """A table as data: headers, rows of cells (a cell may hold several lines)."""
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    title: str | None = None
    right: set[str] = field(default_factory=set)          # columns aligned right (numbers)
    style: Callable[[str, str], str | None] | None = None  # (column, cell) -> rich style, terminal only
    show_header: bool = True

    def add(self, *cells) -> None:
        self.rows.append([str(c) for c in cells])


def render(console, grid: Grid, fmt: str) -> None:
    """Print a Grid as a rich table (`table`) or plain aligned text (anything else but json). A
    terminal too narrow for the table without breaking a word gets one block per row instead."""
    if fmt == TABLE and fits(grid, console.width):
        console.print(rich_table(grid))
    elif fmt == TABLE:
        records(console, grid)
    else:
        for line in plain_lines(grid):
            console.print(line, markup=False, highlight=False, soft_wrap=True)


def fits(grid: Grid, width: int) -> bool:
    """Whether the boxed table fits `width` with every word whole (rich wraps cells between words)."""
    def longest_word(texts) -> int:
        return max((len(w) for t in texts for w in t.split()), default=0)
    needed = sum(longest_word([col] + [row[i] for row in grid.rows]) for i, col in enumerate(grid.columns))
    return needed + 3 * len(grid.columns) + 1 <= width   # '│ ' before each cell and ' │' at the end


def records(console, grid: Grid) -> None:
    """A row per block: its first cell, then `column: cell` lines; the terminal wraps between words."""
    from rich.text import Text

    if grid.title:
        console.print(f"{grid.title}:", markup=False, highlight=False)
    for row in grid.rows:
        console.print(Text(row[0], style="bold"))
        for col, cell in zip(grid.columns[1:], row[1:]):
            if cell:
                style = (grid.style(col, cell) if grid.style else None) or ""
                console.print(Text.assemble(f"  {col}: ", (cell.replace("\n", "; "), style)))


def rich_table(grid: Grid):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=grid.title, show_header=grid.show_header)
    for col in grid.columns:
        table.add_column(col, overflow="fold", justify="right" if col in grid.right else "left")
    for row in grid.rows:
        table.add_row(*(Text(cell, style=(grid.style(col, cell) if grid.style else None) or "")
                        for col, cell in zip(grid.columns, row)))
    return table


def plain_lines(grid: Grid) -> list[str]:
    """Columns padded to their widest cell, two spaces apart; a cell's lines joined with '; '
    so that every row stays one line (a reader greps it, a terminal may wrap it)."""
    rows = [[cell.replace("\n", "; ") for cell in row] for row in grid.rows]
    shown = ([grid.columns] if grid.show_header else []) + rows
    widths = [max(len(r[i]) for r in shown) for i in range(len(grid.columns))]

    def line(cells: list[str]) -> str:
        padded = [c.rjust(w) if col in grid.right else c.ljust(w)
                  for col, c, w in zip(grid.columns, cells, widths)]
        return "  ".join(padded).rstrip()

    out = [f"{grid.title}:"] if grid.title else []
    return out + [line(r) for r in shown]


def emit_json(verb: str, body: dict) -> None:
    """One JSON document on stdout: {"format_version": 1, "verb": verb, **body}."""
    doc = {"format_version": FORMAT_VERSION, "verb": verb, **body}
    click.echo(json.dumps(doc, indent=2, default=str))
