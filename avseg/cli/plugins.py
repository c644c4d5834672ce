"""``avseg plugins``: what the plugins register, with provider, status, dependencies and weights."""

from __future__ import annotations

import json

import typer


def plugins(
    kind: str | None = typer.Option(None, "--kind", help="Only this kind: tagger, proposer, embedder, segmenter, "
                                    "filter, refiner, combiner, preset, dataset or metric."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """List components, presets, datasets and metrics with provider, status, deps and weights; flag collisions."""
    from avseg import commands as api

    rows = api.list_plugins(kind)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from avseg.plugin_listing import print_plugins

    print_plugins(rows)
