"""``avseg ablate``: evaluate a grid of pipeline variants, sharing one process, models and cache.

GRID.yaml::

    base: owod-bind                 # a preset name or a pipeline YAML
    set: ["proposer.top_k=50"]      # optional overrides applied to every cell
    axes:                           # cartesian product of these ...
      proposer: [owod, sam-grid]    # a component choice (tagger/proposer/embedder/segmenter/filters)
      filter.bind.threshold: [0.5, 0.6, 0.7, 0.8]   # or a parameter list (a --set key)
    # cells: [{filter.bind.threshold: 0.5}, ...]    # ... or an explicit list of cells

Each cell is a full ``avseg eval`` into ``OUT/cells/<name>/`` (so each is resumable), all
through one stage cache, so a threshold sweep computes each model stage once.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from avseg.errors import ConfigError, UsageError
from avseg.outputs import atomic_write_bytes
from avseg.registry import Registry, load_registry
from avseg.runtime import Runtime
from avseg.spec import SINGLE_STAGES

METRICS = ("miou", "fscore", "fscore_dataset")
COMPONENT_AXES = (*SINGLE_STAGES, "filters")


def load_grid(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(f"grid file {path} does not exist")
    try:
        grid = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(grid, dict) or not ("axes" in grid or "cells" in grid):
        raise ConfigError(f"{path}: a grid needs 'axes' (a mapping of lists) or 'cells' (a list of mappings)")
    unknown = set(grid) - {"base", "set", "axes", "cells", "description"}
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} (expected base, set, axes, cells)")
    return grid


def expand_cells(grid: dict[str, Any], path: Path | str = "grid") -> list[dict[str, Any]]:
    if "cells" in grid:
        cells = grid["cells"]
        if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
            raise ConfigError(f"{path}: 'cells' must be a list of mappings")
        return [dict(c) for c in cells]
    axes = grid["axes"]
    if not isinstance(axes, dict) or not all(isinstance(v, list) and v for v in axes.values()):
        raise ConfigError(f"{path}: each axis must be a non-empty list of values")
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def cell_name(i: int, cell: dict[str, Any]) -> str:
    parts = [f"{k.split('.')[-2] + '.' if k.count('.') >= 2 else ''}{k.split('.')[-1]}-{_fmt(v)}" for k, v in cell.items()]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(parts))[:80]
    return f"{i:03d}-{slug}" if slug else f"{i:03d}"


def _fmt(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def cell_pipeline(grid: dict[str, Any], cell: dict[str, Any]) -> dict[str, Any]:
    """The compose() arguments of one cell."""
    args: dict[str, Any] = {"preset": grid.get("base"), "sets": list(grid.get("set") or [])}
    for key, value in cell.items():
        if key in SINGLE_STAGES:
            args[key] = str(value)
        elif key == "filters":
            args["filters"] = [str(v) for v in (value if isinstance(value, list) else [value])]
        else:
            args["sets"].append(f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}")
    return args


def run_ablation(*, grid_path: Path, root: Path, subset: str, split: str, out: Path, runtime: Runtime,
                 limit: int | None = None, batch_videos: int = 4, registry: Registry | None = None,
                 progress: bool = True) -> list[dict[str, Any]]:
    from avseg.eval.runner import run_eval
    from avseg.spec import compose, resolve

    registry = registry or load_registry()
    grid = load_grid(grid_path)
    cells = expand_cells(grid, grid_path)
    names = [cell_name(i, c) for i, c in enumerate(cells)]
    # Validate every cell before running any: a typo in the last cell should not cost an hour.
    for name, cell in zip(names, cells):
        try:
            resolve(compose(registry=registry, **cell_pipeline(grid, cell)), registry)
        except UsageError as exc:
            raise type(exc)(f"cell {name}: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "grid.yaml", yaml.safe_dump(grid, sort_keys=False).encode())
    rows = []
    for name, cell in zip(names, cells):
        before = Counter(runtime.counters)
        metrics = run_eval(root=root, subset=subset, split=split, out=out / "cells" / name,
                           pipeline=cell_pipeline(grid, cell), runtime=runtime, limit=limit,
                           batch_videos=batch_videos, registry=registry, progress=progress)
        delta = Counter(runtime.counters)
        delta.subtract(before)
        computed = sum(v for k, v in delta.items() if k.endswith(".computed"))
        hits = sum(v for k, v in delta.items() if k.endswith(".cache_hit") or k.endswith(".memory_hit"))
        row = {"cell": name, **{k: _fmt(v) for k, v in cell.items()},
               **{m: round(float(metrics[m]), 6) for m in METRICS},
               "n_clips": metrics["n_clips"], "n_frames": metrics["n_frames"], "failed": len(metrics["failed"]),
               "computed": computed, "cache_hits": hits}
        if "semantic" in metrics:
            row["semantic_miou"] = round(float(metrics["semantic"]["miou"]), 6)
        rows.append(row)
        write_tables(out, rows)  # after every cell, so a killed sweep keeps its table so far
    axes = list(cells[0]) if cells else []
    write_plots(out, rows, axes)
    return rows


def write_tables(out: Path, rows: list[dict[str, Any]]) -> None:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(out / "results.csv", buf.getvalue().encode())
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(f"{r.get(c, ''):.4f}" if isinstance(r.get(c), float) else str(r.get(c, ""))
                                        for c in cols) + " |")
    atomic_write_bytes(out / "results.md", ("\n".join(lines) + "\n").encode())


def _numeric(values: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def write_plots(out: Path, rows: list[dict[str, Any]], axes: list[str]) -> list[Path]:
    """One PNG per (metric, numeric axis): the metric against the axis, a line per other-axis combination."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install 'avseg[plots]')")
        return []
    paths = []
    for axis in axes:
        xs_all = _numeric([str(r[axis]) for r in rows])
        if xs_all is None or len(set(xs_all)) < 2:
            continue
        others = [a for a in axes if a != axis]
        for metric in METRICS:
            fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
            groups: dict[tuple[str, ...], list[tuple[float, float]]] = {}
            for r, x in zip(rows, xs_all):
                groups.setdefault(tuple(str(r[o]) for o in others), []).append((x, float(r[metric])))
            for key, pts in groups.items():
                pts.sort()
                label = ", ".join(f"{o}={v}" for o, v in zip(others, key)) or metric
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
            ax.set_xlabel(axis)
            ax.set_ylabel(metric)
            ax.set_title(f"{metric} vs {axis}")
            ax.grid(alpha=0.3)
            if len(groups) > 1 or others:
                ax.legend(fontsize=8)
            fig.tight_layout()
            path = out / f"plot_{metric}_vs_{re.sub(r'[^A-Za-z0-9._-]+', '_', axis)}.png"
            fig.savefig(path)
            plt.close(fig)
            paths.append(path)
    return paths


def run_ablation_cli(*, grid: Path, root: Path, subset: str, split: str, out: Path, tiny: bool, device: str,
                     dtype: str, limit: int | None, batch_videos: int, cache_dir: Path | None, no_cache: bool,
                     report: bool = True) -> int:
    from avseg.api import make_runtime

    runtime = make_runtime(tiny=tiny, device=device, dtype=dtype, cache_dir=cache_dir, no_cache=no_cache)
    rows = run_ablation(grid_path=grid, root=root, subset=subset, split=split, out=out, runtime=runtime,
                        limit=limit, batch_videos=batch_videos)
    print((out / "results.md").read_text())
    print(f"wrote {out / 'results.csv'}, {out / 'results.md'} and plots")
    if report:
        from avseg.report import write_report

        print(f"report: {write_report(out, root=root)}")
    return 1 if any(r["failed"] for r in rows) else 0
