"""How ``avseg plugins`` prints its rows: a table on a wide terminal, else one block per row.

A rich table needs about 120 columns; through a pipe, in a log or at 80 columns its cells would
wrap into hundreds of lines, so there each row is a short block that wraps at the width. Text
from plugins is printed as it is (``[ray]`` in an install hint stays), never as rich markup.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from typing import Any, TextIO

TABLE_MIN_WIDTH = 120


def _status(r: dict[str, Any]) -> str:
    status = str(r["status"])
    if r["collides_with"]:
        status += f"; collision: also {', '.join(r['collides_with'])}; use '{r['provider']}:{r['name']}'"
    return status


def blocks(rows: list[dict[str, Any]], width: int = 80) -> str:
    """Each row as ``kind name  provider version  status`` and indented, wrapped details."""
    out = []
    for r in rows:
        head = f"{r['kind']} {r['name']}  ({r['provider']} {r['version']})".replace(" )", ")")
        lines = textwrap.wrap(f"{head}  {_status(r)}", width, subsequent_indent="    ", break_on_hyphens=False,
                              break_long_words=False)
        details = "; ".join(d for d in (f"deps: {r['dependencies']}" if r["dependencies"] else "",
                                          f"weights: {r['weights']}" if r["weights"] else "") if d)
        for text in [t for t in (details, str(r["description"] or "")) if t]:
            lines += textwrap.wrap(text, width, initial_indent="    ", subsequent_indent="      ",
                                   break_on_hyphens=False, break_long_words=False)
        out.append("\n".join(lines))
    return "\n".join(out) + ("\n" if out else "")


def print_plugins(rows: list[dict[str, Any]], stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    width = shutil.get_terminal_size((80, 24)).columns
    if not stream.isatty() or width < TABLE_MIN_WIDTH:
        stream.write(blocks(rows, max(40, min(width, 100))))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("kind", "name", "provider", "status", "deps", "weights", "description")
    for r in rows:
        colour = {"ok": "green", "broken": "red"}.get(r["status"], "yellow")
        status = f"[{colour}]{escape(r['status'])}[/]"
        if r["collides_with"]:
            status += (f"\\n[red]collision[/]: also {escape(', '.join(r['collides_with']))}; "
                       f"use '{escape(r['provider'])}:{escape(r['name'])}'")
        table.add_row(*(escape(str(x)) for x in (r["kind"], r["name"], f"{r['provider']} {r['version']}")), status,
                      *(escape(str(r[k])) for k in ("dependencies", "weights", "description")))
    Console(file=stream).print(table)
