"""The ``avseg`` command line. It parses options and delegates to the library; no logic lives here.

Errors from the library (:class:`avseg.errors.AvsegError`) print as one line, never a traceback.
Exit codes: 0 success, 1 some inputs failed, 2 usage errors.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from avseg import __version__
from avseg.errors import AvsegError, Interrupted, UsageError

app = typer.Typer(
    name="avseg",
    help="Training-free audio-visual segmentation: compose foundation models into a pipeline, run and evaluate it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
presets_app = typer.Typer(help="List pipeline presets, or show one as resolved YAML.", no_args_is_help=False)
weights_app = typer.Typer(help="Pretrained weights: where they are, fetch them, verify them.", no_args_is_help=True)
tree_app = typer.Typer(help="The audio-visual category tree used by the avis filter.", no_args_is_help=True)
cache_app = typer.Typer(help="The stage cache that lets ablations reuse upstream work.", no_args_is_help=True)
app.add_typer(presets_app, name="presets")
app.add_typer(weights_app, name="weights")
app.add_typer(tree_app, name="tree")
app.add_typer(cache_app, name="cache")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"avseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass


# -- shared pipeline options ------------------------------------------------------------
PRESET = typer.Argument(None, help="Preset name or pipeline YAML (default: owod-bind).")
SETS = typer.Option(None, "--set", help="Override a parameter: stage.key=value, filter.NAME.key=value.")
TINY = typer.Option(False, "--tiny", help="Use every model's tiny variant (random seeded weights): a plumbing check.")
DEVICE = typer.Option("auto", "--device", help="auto, cpu or cuda.")
DTYPE = typer.Option("float32", "--dtype", help="float32, bf16 or fp16 (GPU only).")
CACHE_DIR = typer.Option(None, "--cache-dir", help="Stage cache folder (default: the user cache dir).")
NO_CACHE = typer.Option(False, "--no-cache", help="Do not read or write the stage cache.")
EXECUTOR = typer.Option("local", "--executor", help="local (this process) or ray (actors on a Ray cluster; "
                        "pip install 'avseg\\[ray]'). See docs/scaling.md.")
ADDRESS = typer.Option(None, "--address", help="Ray cluster: HOST:PORT or auto (default: RAY_ADDRESS, a cluster "
                       "from `ray start` on this machine, else a new local one).")
WORKERS = typer.Option(None, "--workers", help="Ray workers (default: as many as the cluster's CPUs or GPUs allow).")
GPUS_PER_WORKER = typer.Option(None, "--gpus-per-worker", help="GPUs per Ray worker, fractions allowed "
                               "(default: 1 when the cluster has GPUs and --device is not cpu, else 0).")


def _executor_options(executor: str, address: str | None, workers: int | None,
                      gpus_per_worker: float | None) -> Any:
    from avseg.executors import ExecutorOptions

    return ExecutorOptions(name=executor, address=address, workers=workers, gpus_per_worker=gpus_per_worker).check()
NO_REPORT = typer.Option(False, "--no-report", help="Do not write OUT/report.html.")


def component_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command one option per step kind of the kinds table (``--tagger`` ... ``--filter``,
    repeatable for a repeatable kind) in place of its ``components`` parameter, which then
    receives them as ``{override: value}`` (``{"tagger": ..., "filters": [...]}``)."""
    from avseg.kinds import KIND_TABLE

    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    rows = [k for k in KIND_TABLE if k.step]
    added = [inspect.Parameter(f"kind_{k.name}", inspect.Parameter.KEYWORD_ONLY,
                               default=typer.Option(None, k.option, help=k.help),
                               annotation=list[str] | None if k.many else str | None) for k in rows]
    params: list[inspect.Parameter] = []
    for p in sig.parameters.values():
        if p.name == "components":
            params += added
        else:
            params.append(p.replace(annotation=hints.get(p.name, p.annotation),
                                    kind=inspect.Parameter.KEYWORD_ONLY))

    @functools.wraps(fn)
    def command(**kwargs: Any) -> Any:
        components = {k.override: (kwargs.pop(f"kind_{k.name}") or None) for k in rows}
        return fn(components=components, **kwargs)

    command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params} | {"return": hints.get("return")}
    return command


def _pipeline_args(preset: str | None, components: dict[str, Any] | None, sets: list[str] | None) -> dict[str, Any]:
    return dict(preset=preset, **(components or {}), sets=sets or [])


@app.command()
@component_options
def run(
    preset: str | None = PRESET,
    input: Path = typer.Option(..., "--input", "-i", help="A video file, or a folder of frames plus one audio file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    components: dict[str, Any] | None = None, set: list[str] | None = SETS,
    tiny: bool = TINY, device: str = DEVICE, dtype: str = DTYPE,
    fps: float = typer.Option(1.0, "--fps", help="Frames per second sampled from a video (AVSBench uses 1; "
                              "0.01 to 240)."),
    debug: bool = typer.Option(False, "--debug", help="Also write per-frame proposal JSON and images to DIR/debug."),
    cache_dir: Path | None = CACHE_DIR, no_cache: bool = NO_CACHE,
) -> None:
    """Segment the sounding objects of one input and write masks, overlays and run.json."""
    from rich.console import Console

    from avseg import commands as api

    # Model loads and forwards take minutes at real sizes on a CPU: show which one is running.
    with Console(stderr=True).status(f"{input}: starting") as status:
        def show(label: str, n_frames: int) -> None:
            status.update(f"{input.name} ({n_frames} frames): {label}")

        meta = api.run(input, out, **_pipeline_args(preset, components, set),
                       tiny=tiny, device=device, dtype=dtype, fps=fps, debug=debug, cache_dir=cache_dir,
                       no_cache=no_cache, on_stage=show)
    for w in meta.get("warnings", []):
        typer.secho(f"note: {w}", fg="yellow", err=True)
    if tiny:
        typer.secho("note: --tiny uses random weights: the masks check the plumbing, not the method", fg="yellow", err=True)
    typer.echo(f"wrote {meta['n_frames']} masks and overlays to {out}" +
               (f" and {meta['overlay_video']}" if meta.get("overlay_video") else ""))


@app.command()
def plugins(
    kind: str | None = typer.Option(None, "--kind", help="Only this kind: tagger, proposer, embedder, segmenter, "
                                    "filter, preset, dataset or metric."),
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

    typer.echo(api.show_preset(**_pipeline_args(preset, components, set)))


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


# -- eval / score ----------------------------------------------------------------------------
SUBSET = typer.Option(..., "--subset", help="s4, ms3, avss-v1s, avss-v1m, avss-v2, avss, or a plugin's dataset.")
SPLIT = typer.Option("test", "--split", help="train, val or test.")
ROOT = typer.Option(..., "--root", help="The subset's folder (holding its metadata CSV) or a parent of it.")


@app.command("eval")
@component_options
def eval_(
    preset: str | None = PRESET,
    root: Path = ROOT, subset: str = SUBSET, split: str = SPLIT,
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (masks/, per_clip.csv, metrics.json)."),
    components: dict[str, Any] | None = None, set: list[str] | None = SETS,
    tiny: bool = TINY, device: str = DEVICE, dtype: str = DTYPE,
    limit: int | None = typer.Option(None, "--limit", help="Only the first N clips."),
    clips: str | None = typer.Option(None, "--clips", help="Only these clip ids, comma-separated."),
    batch_videos: int = typer.Option(4, "--batch-videos", help="Videos per batch of the official F-score."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Reuse OUT even if it holds another config's results."),
    repair: bool = typer.Option(False, "--repair", help="Recompute the clips whose progress files in OUT are "
                                "unreadable (and rewrite an unreadable config.json); finished clips are kept."),
    exclude_failed: bool = typer.Option(False, "--exclude-failed",
                                        help="Leave failed clips out of the metrics instead of scoring them as empty."),
    cache_dir: Path | None = CACHE_DIR, no_cache: bool = NO_CACHE,
    executor: str = EXECUTOR, address: str | None = ADDRESS, workers: int | None = WORKERS,
    gpus_per_worker: float | None = GPUS_PER_WORKER,
    debug: bool = typer.Option(False, "--debug", help="Record each clip's audio tags and proposal scores in OUT/debug/ (shown by the report)."),
    no_report: bool = NO_REPORT,
    audio_noise: str | None = typer.Option(None, "--audio-noise", help="Mix off-screen noise into every clip: "
                                           "white, pink or an audio file (with --snr; docs/av-sync.md)."),
    snr: float | None = typer.Option(None, "--snr", help="Signal-to-noise ratio (dB) of --audio-noise, over each clip."),
) -> None:
    """Run a pipeline on an AVSBench split and score it (resumable)."""
    from avseg.eval.runner import run_eval_cli
    from avseg.noise import noise_sets

    set = [*(set or []), *noise_sets(audio_noise, snr)]

    code = run_eval_cli(root=root, subset=subset, split=split, out=out,
                        pipeline=_pipeline_args(preset, components, set),
                        tiny=tiny, device=device, dtype=dtype, limit=limit,
                        clips=[c for c in (clips or "").split(",") if c] or None, batch_videos=batch_videos,
                        overwrite=overwrite, cache_dir=cache_dir, no_cache=no_cache, repair=repair,
                        exclude_failed=exclude_failed,
                        executor=_executor_options(executor, address, workers, gpus_per_worker), debug=debug,
                        report=not no_report)
    raise typer.Exit(code)


@app.command()
def score(
    root: Path = ROOT, subset: str = SUBSET, split: str = SPLIT,
    pred: Path = typer.Option(..., "--pred", help="Folder of predicted masks, laid out like the GT masks."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics object as JSON."),
    batch_videos: int = typer.Option(4, "--batch-videos", help="Videos per batch of the official F-score."),
) -> None:
    """Score existing predicted masks (from any AVS model) with the official metrics."""
    from avseg.eval.score import score_cli

    raise typer.Exit(score_cli(root=root, subset=subset, split=split, pred=pred, as_json=as_json,
                               batch_videos=batch_videos))


@app.command()
def ablate(
    grid: Path = typer.Argument(..., help="GRID.yaml: a base preset and axes (components or parameter lists)."),
    root: Path = ROOT, subset: str = SUBSET, split: str = SPLIT,
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: results.csv, results.md, plots, cells/."),
    tiny: bool = TINY, device: str = DEVICE, dtype: str = DTYPE,
    limit: int | None = typer.Option(None, "--limit", help="Only the first N clips."),
    batch_videos: int = typer.Option(4, "--batch-videos", help="Videos per batch of the official F-score."),
    repair: bool = typer.Option(False, "--repair", help="Recompute the clips whose progress files in a cell's "
                                "folder are unreadable; finished clips are kept."),
    cache_dir: Path | None = CACHE_DIR, no_cache: bool = NO_CACHE, no_report: bool = NO_REPORT,
    executor: str = EXECUTOR, address: str | None = ADDRESS, workers: int | None = WORKERS,
    gpus_per_worker: float | None = GPUS_PER_WORKER,
) -> None:
    """Evaluate every cell of an ablation grid, reusing cached stages; write tables and plots."""
    from avseg.ablate import run_ablation_cli

    raise typer.Exit(run_ablation_cli(grid=grid, root=root, subset=subset, split=split, out=out, tiny=tiny,
                                      device=device, dtype=dtype, limit=limit, batch_videos=batch_videos,
                                      cache_dir=cache_dir, no_cache=no_cache, repair=repair,
                                      executor=_executor_options(executor, address, workers, gpus_per_worker),
                                      report=not no_report))


@app.command()
def report(
    folder: Path = typer.Argument(..., help="An eval or ablate output folder."),
    root: Path | None = typer.Option(None, "--root", help="The dataset root, when the folder was moved from where eval read it."),
    max_sheets: int | None = typer.Option(None, "--max-sheets", help="Contact sheets for only the N worst clips."),
) -> None:
    """Write FOLDER/report.html: metrics, worst clips first, contact sheets and proposal traces."""
    from avseg.errors import printable
    from avseg.report import write_report

    typer.echo(printable(f"report: {write_report(folder, root=root, max_sheets=max_sheets)}"))


@app.command()
def synth(
    out: Path = typer.Argument(..., help="Folder to write (s4/ms3), or an .mp4 path (--layout video)."),
    layout: str = typer.Option("s4", "--layout", help="s4 (Single-source), ms3 (Multi-sources) or video (one mp4)."),
    clips: int = typer.Option(8, "--clips", help="Scenes to write (s4/ms3)."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed writes the same scenes."),
    size: str = typer.Option("320x240", "--size", help="WIDTHxHEIGHT of the frames."),
    fps: float = typer.Option(25.0, "--fps", help="Frame rate of the raw video."),
    seconds: float = typer.Option(5.0, "--seconds", help="Length of each scene."),
    offscreen: float = typer.Option(0.0, "--offscreen", help="Loudness of an off-screen sound (0: none; 1: as loud as the sounding objects)."),
) -> None:
    """Write seeded synthetic audio-visual scenes with ground truth (AVSBench S4/MS3 layouts + raw videos)."""
    from avseg.synth import parse_size
    from avseg.synth import synth as write

    path = write(out, layout=layout, clips=clips, seed=seed, size=parse_size(size), fps=fps,  # type: ignore[arg-type]
                 seconds=seconds, offscreen=offscreen)
    typer.echo(f"wrote {path}")


# -- weights ---------------------------------------------------------------------------------
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


# -- tree --------------------------------------------------------------------------------------
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


# -- cache -------------------------------------------------------------------------------------
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


def _interrupt(signum: int, frame: Any) -> None:
    import signal

    signal.signal(signal.SIGINT, _interrupt_again)  # a second Ctrl-C during cleanup exits at once
    raise Interrupted()


def _interrupt_again(signum: int, frame: Any) -> None:
    import os

    sys.stderr.write(f"interrupted: run the same command again to resume ({_resume_command()})\n")
    sys.stderr.flush()
    os._exit(130)


def _resume_command() -> str:
    from avseg import command

    return command.shown()


def _with_plugin_commands(argv: list[str]) -> Any:
    """The click group of ``app`` plus the commands plugins add with ``register_commands``.

    Built per call (plugins never modify ``app``); skipped when a built-in command is named,
    so ``avseg run`` does not load the plugins twice.
    """
    group = typer.main.get_command(app)
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or first not in getattr(group, "commands", {}):
        from avseg.registry import add_plugin_commands, load_registry

        registry = load_registry()
        known = len(registry.broken)
        add_plugin_commands(group, registry)
        for b in registry.broken[known:]:
            typer.secho(f"warning: plugin {b.plugin!r} ({b.provider}): {b.reason}", fg="yellow", err=True)
    return group


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, documented exit codes."""
    import signal

    from avseg import command

    args = list(sys.argv[1:] if argv is None else argv)
    command.set_invocation(args)
    # Ctrl-C raises our own BaseException: click would turn KeyboardInterrupt into a bare Abort.
    old_handler = signal.signal(signal.SIGINT, _interrupt) if _main_thread() else None
    try:
        group = _with_plugin_commands(args)
        # In non-standalone mode click returns a command's exit code instead of exiting.
        code = group.main(args=args, prog_name="avseg", standalone_mode=False)
    except AvsegError as exc:
        from avseg.errors import printable

        typer.secho(printable(f"Error: {' '.join(str(exc).split())}"), fg="red", err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (Interrupted, KeyboardInterrupt):
        signal.signal(signal.SIGINT, _interrupt_again)
        typer.secho(f"interrupted: finished work is kept; run the same command again to resume ({command.shown()})",
                    fg="yellow", err=True)
        sys.exit(130)
    except OSError as exc:  # a write or read the library did not wrap (disk full, permissions)
        where = f" {exc.filename}" if exc.filename else ""
        typer.secho(f"Error:{where}: {exc.strerror or exc}", fg="red", err=True)
        sys.exit(1)
    except Exception as exc:  # click's usage errors (typer vendors click, so match by shape)
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        fmt = getattr(exc, "format_message", None)
        if callable(show) and isinstance(exit_code, int):
            if type(exc).__name__ == "NoArgsIsHelpError" or not callable(fmt):
                show()  # the command's help text
            else:  # one line, not click's usage block
                ctx = getattr(exc, "ctx", None)
                where = getattr(ctx, "command_path", None) or "avseg"
                msg = " ".join(str(fmt()).split())
                typer.secho(f"Error: {msg} ('{where} --help' lists the options)", fg="red", err=True)
            sys.exit(exit_code)
        if type(exc).__name__ == "Abort":
            sys.exit(1)
        raise
    finally:
        command.clear()
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
    sys.exit(code if isinstance(code, int) else 0)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


__all__ = ["app", "main", "UsageError"]
