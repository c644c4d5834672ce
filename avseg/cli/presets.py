"""``avseg presets``: list the presets, show one resolved, print the JSON Schema of pipeline files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from avseg.cli.options import SETS, component_options, pipeline_args

presets_app = typer.Typer(help="List pipeline presets, or show one as resolved YAML.", no_args_is_help=False)


@presets_app.callback(invoke_without_command=True)
def presets(ctx: typer.Context) -> None:
    """List presets with their provider (or 'avseg presets show NAME')."""
    if ctx.invoked_subcommand is None:
        from avseg import commands as api

        for r in api.preset_rows():
            clash = f"  [collision with {', '.join(r['collides_with'])}: use '{r['provider']}:{r['name']}']" \
                if r["collides_with"] else ""
            typer.echo(f"{r['name']:20s} {r['provenance']:12s} {r['provider']:12s} {r['description']}{clash}")


@presets_app.command("show")
@component_options
def presets_show(
    preset: str = typer.Argument(..., help="Preset name or pipeline YAML."),
    components: dict[str, Any] | None = None, set: list[str] | None = SETS,
) -> None:
    """Show a preset, with any overrides applied, as resolved YAML (every parameter)."""
    from avseg import commands as api

    typer.echo(api.show_preset(**pipeline_args(preset, components, set)))


@presets_app.command("schema")
def presets_schema(
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the schema to this file (default: print it)."),
) -> None:
    """Print (or write) the JSON Schema of preset and pipeline YAML files, for editors."""
    from avseg.pipeline_schema import json_schema_text

    if out is None:
        typer.echo(json_schema_text(), nl=False)
    else:
        from avseg.outputs import atomic_write_bytes

        atomic_write_bytes(out, json_schema_text().encode())
        typer.echo(f"wrote {out}")
