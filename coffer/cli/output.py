"""Terminal output shared by the CLI commands: tables that stay whole when piped."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

# rich sizes tables to the terminal, and to 80 columns when stdout is a pipe, which folds
# ids and principals over several lines; a pipe gets a width nothing here will exceed.
_PIPE_WIDTH = 400


def console() -> Console:
    # Cells are data (names, principals, fingerprints), never markup: `[/x]` must not raise
    # and `12:AB:CD` must not turn into an emoji.
    return Console(
        width=None if sys.stdout.isatty() else _PIPE_WIDTH, highlight=False, markup=False, emoji=False
    )


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(*headers)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console().print(table)


def print_details(pairs: Sequence[tuple[str, Any]]) -> None:
    """A two-column "field: value" view of one record."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in pairs:
        table.add_row(name, "" if value is None else str(value))
    console().print(table)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def print_listing(
    items: list[Any],
    as_json: bool,
    headers: Sequence[str],
    rows: Callable[[list[Any]], Iterable[Sequence[Any]]],
) -> None:
    """A list command's answer: the items as JSON, or `rows(items)` as a table."""
    if as_json:
        print_json(items)
    else:
        print_table(headers, rows(items))


def json_option(fn: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(fn)
