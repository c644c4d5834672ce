"""``avseg weights``: list, fetch and verify the pretrained weight files."""

from __future__ import annotations

import json

import typer

weights_app = typer.Typer(help="Pretrained weights: where they are, fetch them, verify them.", no_args_is_help=True)


@weights_app.command("list")
def weights_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Each component's weight files: present or missing, and every place looked."""
    from avseg import commands as api

    rows = api.weights_table()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = typer.style("present", fg="green") if r["present"] else typer.style("missing", fg="red")
        size = f"{r['size'] / 1e6:.0f} MB" if r.get("size") else "size unknown"
        typer.echo(f"{r['kind']:9s} {r['component']:10s} {r['variant'] or '-':14s} {r['file']}  ({size})  {state}")
        typer.echo(f"    {'at ' + r['path'] if r['present'] else 'looked in: ' + '; '.join(r['looked'])}")


@weights_app.command("fetch")
def weights_fetch(
    names: list[str] = typer.Argument(..., help="Component names (optionally NAME/VARIANT), or 'all'."),
) -> None:
    """Download weights with a progress bar and resume, and verify size and sha256."""
    from avseg import commands as api

    api.fetch_weights(names)


@weights_app.command("verify")
def weights_verify() -> None:
    """Check the sizes and checksums of the weight files that are present."""
    from avseg import commands as api

    problems = api.verify_weights()
    raise typer.Exit(1 if problems else 0)
