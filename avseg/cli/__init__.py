"""The ``avseg`` command line. It parses options and delegates to the library; no logic lives here.

The root app and its single commands are here; the options several commands share are in
:mod:`avseg.cli.options`, each command group in the module named for it (``presets``,
``weights``, ``tree``, ``cache``), ``avseg plugins`` in :mod:`avseg.cli.plugins`.

Errors from the library (:class:`avseg.errors.AvsegError`) print as one line, never a traceback.
Exit codes: 0 success, 1 some inputs failed, 2 usage errors.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from avseg import __version__
from avseg.cli.cache import cache_app
from avseg.cli.options import (
    ADDRESS,
    CACHE_DIR,
    DEVICE,
    DTYPE,
    EXECUTOR,
    GPUS_PER_WORKER,
    NO_CACHE,
    NO_REPORT,
    PRESET,
    ROOT,
    SETS,
    SPLIT,
    SUBSET,
    TINY,
    WORKERS,
    component_options,
    executor_options,
    pipeline_args,
)
from avseg.cli.plugins import plugins
from avseg.cli.presets import presets_app
from avseg.cli.tree import tree_app
from avseg.cli.weights import weights_app
from avseg.errors import AvsegError, Interrupted, UsageError

app = typer.Typer(
    name="avseg",
    help="Training-free audio-visual segmentation: compose foundation models into a pipeline, run and evaluate it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"avseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass


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

        meta = api.run(input, out, **pipeline_args(preset, components, set),
                       tiny=tiny, device=device, dtype=dtype, fps=fps, debug=debug, cache_dir=cache_dir,
                       no_cache=no_cache, on_stage=show)
    for w in meta.get("warnings", []):
        typer.secho(f"note: {w}", fg="yellow", err=True)
    if tiny:
        typer.secho("note: --tiny uses random weights: the masks check the plumbing, not the method", fg="yellow", err=True)
    typer.echo(f"wrote {meta['n_frames']} masks and overlays to {out}" +
               (f" and {meta['overlay_video']}" if meta.get("overlay_video") else ""))


app.command()(plugins)


# -- eval / score ----------------------------------------------------------------------------
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
                        pipeline=pipeline_args(preset, components, set),
                        tiny=tiny, device=device, dtype=dtype, limit=limit,
                        clips=[c for c in (clips or "").split(",") if c] or None, batch_videos=batch_videos,
                        overwrite=overwrite, cache_dir=cache_dir, no_cache=no_cache, repair=repair,
                        exclude_failed=exclude_failed,
                        executor=executor_options(executor, address, workers, gpus_per_worker), debug=debug,
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
                                      executor=executor_options(executor, address, workers, gpus_per_worker),
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


app.add_typer(presets_app, name="presets")
app.add_typer(weights_app, name="weights")
app.add_typer(tree_app, name="tree")
app.add_typer(cache_app, name="cache")


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
