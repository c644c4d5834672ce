"""``avseg tree``: validate and show the audio-visual category tree."""

from __future__ import annotations

from pathlib import Path

import typer

tree_app = typer.Typer(help="The audio-visual category tree used by the avis filter.", no_args_is_help=True)


@tree_app.command("validate")
def tree_validate(file: Path | None = typer.Argument(None, help="A tree YAML file (default: the shipped tree).")) -> None:
    """Report every AudioSet name the tree does not recognise, with close matches."""
    from avseg.tree import DEFAULT_TREE_NAME, validate_tree_file

    problems = validate_tree_file(file)
    for p in problems:
        typer.echo(p)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{file or DEFAULT_TREE_NAME}: ok")


@tree_app.command("show")
def tree_show(
    category: str = typer.Argument(..., help="A visual category, broad source or AudioSet name."),
    tree: Path | None = typer.Option(None, "--tree", help="A tree YAML file (default: the shipped tree)."),
) -> None:
    """Print the branch of the tree that holds CATEGORY."""
    from avseg.tree import show_branch

    typer.echo(show_branch(category, tree))
