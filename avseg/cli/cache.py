"""``avseg cache``: the stage cache's size, and clearing it."""

from __future__ import annotations

from pathlib import Path

import typer

from avseg.cli.options import CACHE_DIR

cache_app = typer.Typer(help="The stage cache that lets ablations reuse upstream work.", no_args_is_help=True)


@cache_app.command("info")
def cache_info(cache_dir: Path | None = CACHE_DIR) -> None:
    """Size and entries per component."""
    from avseg import commands as api

    typer.echo(api.cache_info(cache_dir))


@cache_app.command("clear")
def cache_clear(
    component: list[str] | None = typer.Option(None, "--component", help="Only this component's entries."),
    cache_dir: Path | None = CACHE_DIR,
) -> None:
    """Empty the cache, or one component's part of it."""
    from avseg import commands as api

    typer.echo(api.cache_clear(cache_dir, component or None))
