"""``avseg ablate``: evaluate a grid of pipeline variants, sharing one process, models and cache.

GRID.yaml::

    base: owod-bind                 # a preset name or a pipeline YAML
    set: ["proposer.top_k=50"]      # optional overrides applied to every cell
    axes:                           # cartesian product of these ...
      proposer: [owod, sam-grid]    # a component choice (tagger/proposer/embedder/segmenter/filters)
      filter.bind.cosine_threshold: [0.5, 0.6, 0.7, 0.8]   # or a parameter list (a --set key)
      proposer[owod].box_threshold: [0.3, 0.5]             # or a parameter of one component only
    # cells: [{filter.bind.cosine_threshold: 0.5}, ...]    # ... or an explicit list of cells

Each cell is a full ``avseg eval`` into ``OUT/cells/<name>/`` (so each is resumable), all
through one stage cache, so a threshold sweep computes each model stage once.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from pathlib import Path
from typing import Any

import yaml

from avseg import yamlio
from avseg.checks import check_batch_videos, check_limit
from avseg.errors import ConfigError, UsageError
from avseg.executors.base import Executor, ExecutorOptions
from avseg.executors.plan import plan_eval
from avseg.kinds import KINDS_BY_NAME, MANY_KINDS, SINGLE_KINDS, STEP_KINDS
from avseg.outputs import atomic_write_bytes, check_out_dir
from avseg.registry import Registry, load_registry
from avseg.runtime import Runtime

METRICS = ("miou", "fscore", "fscore_dataset")
#: the component axes (the kinds table's overrides): ``proposer: [owod, sam-grid]``, ``filters: [...]``
COMPONENT_AXES = tuple(KINDS_BY_NAME[k].override for k in STEP_KINDS)
#: the axes that list names of a repeatable kind (``filters``) -> the kind
LIST_AXES = {KINDS_BY_NAME[k].override: k for k in MANY_KINDS}
#: ``proposer[motion].threshold``: a parameter applied only to cells whose proposer is ``motion``
SCOPED_AXIS = re.compile(rf"^({'|'.join(STEP_KINDS)})\[([^\[\]]+)\]\.(.+)$")
GRID_KEYS = ("base", "set", "axes", "cells", "description")
#: the most cells a grid may have (each is a full eval): checked before the grid is expanded
MAX_CELLS = 10_000


def load_grid(path: Path) -> dict[str, Any]:
    """Read and check a grid file; every problem is one line naming the file."""
    if not path.is_file():
        raise UsageError(f"grid file {path} does not exist")
    grid = yamlio.load_file(path, "grid file")
    if not isinstance(grid, dict) or not ("axes" in grid or "cells" in grid):
        raise ConfigError(f"{path}: a grid needs 'axes' (a mapping of lists) or 'cells' (a list of mappings)")
    unknown = sorted(str(k) for k in set(grid) - set(GRID_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (expected base, set, axes, cells)")
    if "axes" in grid and "cells" in grid:
        raise ConfigError(f"{path}: give 'axes' or 'cells', not both")
    base = grid.get("base")
    if base is not None and not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a preset name or a pipeline YAML path, got {_show(base)}")
    sets = grid.get("set")
    if sets is not None and not (isinstance(sets, list) and all(isinstance(x, str) for x in sets)):
        raise ConfigError(f"{path}: set: expected a list of KEY=VALUE strings, e.g. set: [\"proposer.top_k=50\"],"
                          f" got {_show(sets)}")
    return grid


def _show(value: Any) -> str:
    kind = "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else type(value).__name__
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
    return f"{kind} {text[:60]}"


def _check_value(key: Any, value: Any, where: str) -> None:
    """One cell value of one axis: a component name, a list of filter names, or a parameter value."""
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{where}: axis names are strings such as 'proposer' or 'filter.bind.cosine_threshold', "
                          f"got {_show(key)}")
    if key in SINGLE_KINDS:
        if isinstance(value, dict):
            raise ConfigError(f"{where}: axis {key!r}: expected a component name, got {_show(value)}; "
                              f"vary its parameters with a '{key}[NAME].KEY' axis")
        if not isinstance(value, str) and value is not None:
            raise ConfigError(f"{where}: axis {key!r}: expected a component name, got {_show(value)}")
    elif key in LIST_AXES:
        names = value if isinstance(value, list) else [value]
        bad = [v for v in names if not isinstance(v, str)]
        if bad:
            raise ConfigError(f"{where}: axis {key!r}: expected a {LIST_AXES[key]} name or a list of names, "
                              f"got {_show(bad[0])}")
    elif key in MANY_KINDS or ("[" in key and not SCOPED_AXIS.match(key)):
        raise ConfigError(f"{where}: axis {key!r}: write a parameter as STAGE.KEY, filter.NAME.KEY or STAGE[NAME].KEY")


def expand_cells(grid: dict[str, Any], path: Path | str = "grid") -> list[dict[str, Any]]:
    if "cells" in grid:
        cells = grid["cells"]
        if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
            raise ConfigError(f"{path}: 'cells' must be a list of mappings")
        if len(cells) > MAX_CELLS:
            raise ConfigError(f"{path}: {len(cells):,} cells; a grid may have at most {MAX_CELLS:,} (split it)")
        if not cells:
            raise ConfigError(f"{path}: 'cells' is empty; list at least one cell, e.g. - {{filter.bind.cosine_threshold: 0.5}}")
        for i, c in enumerate(cells):
            for k, v in c.items():
                _check_value(k, v, f"{path}: cells[{i}]")
        return [dict(c) for c in cells]
    axes = grid["axes"]
    if not isinstance(axes, dict) or not axes or not all(isinstance(v, list) and v for v in axes.values()):
        raise ConfigError(f"{path}: each axis must be a non-empty list of values")
    n_cells = math.prod(len(v) for v in axes.values())
    if n_cells > MAX_CELLS:
        sizes = " x ".join(f"{len(v):,}" for v in axes.values())
        raise ConfigError(f"{path}: the axes make {sizes} = {n_cells:,} cells; a grid may have at most "
                          f"{MAX_CELLS:,} (split it)")
    for k, values in axes.items():
        for v in values:
            _check_value(k, v, str(path))
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def cell_name(i: int, cell: dict[str, Any]) -> str:
    def short(k: str) -> str:
        m = SCOPED_AXIS.match(k)
        if m is not None:
            return f"{m.group(2)}.{m.group(3)}"
        return f"{k.split('.')[-2] + '.' if k.count('.') >= 2 else ''}{k.split('.')[-1]}"

    parts = [f"{short(k)}-{_fmt(v)}" for k, v in cell.items()]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(parts))[:80]
    return f"{i:03d}-{slug}" if slug else f"{i:03d}"


def _fmt(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def _set_key(key: str) -> str:
    """The ``--set`` key of an axis: ``proposer[owod].box_threshold`` -> ``proposer.box_threshold``."""
    m = SCOPED_AXIS.match(key)
    if m is None:
        return key
    stage, name, param = m.groups()
    return f"{stage}.{name.split(':')[-1]}.{param}" if stage in MANY_KINDS else f"{stage}.{param}"


def cell_pipeline(grid: dict[str, Any], cell: dict[str, Any]) -> dict[str, Any]:
    """The compose() arguments of one cell."""
    args: dict[str, Any] = {"preset": grid.get("base"), "sets": list(grid.get("set") or [])}
    for key, value in cell.items():
        if key in SINGLE_KINDS:
            args[key] = str(value)
        elif key in LIST_AXES:
            args[key] = [str(v) for v in (value if isinstance(value, list) else [value])]
        else:
            args["sets"].append(f"{_set_key(key)}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}")
    return args


def _uses(spec: dict[str, Any], kind: str, name: str) -> bool:
    """Whether the composed (steps) ``spec`` has a ``kind`` step of component ``name``."""
    from avseg.spec import stages_of

    return any(t == name or t.split(":")[-1] == name for t in (b["type"] for b in stages_of(spec, kind)))


def apply_scoped_axes(grid: dict[str, Any], cells: list[dict[str, Any]], registry: Registry,
                      path: Path | str = "grid") -> list[dict[str, Any]]:
    """Drop each ``STAGE[NAME].KEY`` value from the cells that do not use NAME at STAGE, then
    drop the cells that became duplicates (``proposer: [owod, sam-grid]`` crossed with
    ``proposer[owod].box_threshold: [0.3, 0.5]`` gives three cells, not four)."""
    from avseg.spec import compose

    scoped = {k for c in cells for k in c if SCOPED_AXIS.match(k)}
    if not scoped:
        return cells
    used: set[str] = set()
    out: list[dict[str, Any]] = []
    for cell in cells:
        plain = {k: v for k, v in cell.items() if k not in scoped}
        args = cell_pipeline(grid, plain)
        try:
            spec = compose(registry=registry, **args)
        except UsageError:
            out.append(cell)  # validation reports it with the cell's name
            continue
        kept = {}
        for k, v in cell.items():
            m = SCOPED_AXIS.match(k)
            if m is None or _uses(spec, m.group(1), m.group(2)):
                kept[k] = v
                used.add(k)
        if kept not in out:
            out.append(kept)
    unused = sorted(scoped - used)
    if unused:
        m = SCOPED_AXIS.match(unused[0])
        assert m is not None
        raise ConfigError(f"{path}: axis {unused[0]!r} applies to no cell: no cell uses {m.group(1)} {m.group(2)!r}")
    return out


def validate_cells(grid: dict[str, Any], names: list[str], cells: list[dict[str, Any]], registry: Registry) -> None:
    """Compose and resolve every cell (no model loads): a typo in the last cell should not cost an hour."""
    from avseg.spec import compose, resolve

    for name, cell in zip(names, cells):
        try:
            resolve(compose(registry=registry, **cell_pipeline(grid, cell)), registry)
        except UsageError as exc:
            raise type(exc)(f"cell {name}: {exc}") from None


def run_ablation(*, grid_path: Path, root: Path, subset: str, split: str, out: Path, runtime: Runtime,
                 limit: int | None = None, batch_videos: int = 4, registry: Registry | None = None,
                 progress: bool = True, repair: bool = False,
                 executor: Executor | None = None) -> list[dict[str, Any]]:
    from avseg.data import open_dataset
    from avseg.eval.runner import run_eval

    check_batch_videos(batch_videos)
    check_limit(limit)
    registry = registry or load_registry()
    grid = load_grid(grid_path)
    cells = apply_scoped_axes(grid, expand_cells(grid, grid_path), registry, grid_path)
    names = [cell_name(i, c) for i, c in enumerate(cells)]
    validate_cells(grid, names, cells, registry)
    open_dataset(root, subset, split, registry=registry)  # a wrong --subset or --root fails before any cell runs
    check_out_dir(out)
    atomic_write_bytes(out / "grid.yaml", yaml.safe_dump(grid, sort_keys=False).encode())
    rows = []
    if executor is not None and executor.parallel:
        # Queue every cell's clips now, in cell order: workers go on to the next cells while this
        # process scores the finished ones, and later cells find the earlier cells' stages cached.
        for name, cell in zip(names, cells):
            planned = plan_eval(root=root, subset=subset, split=split, out=out / "cells" / name,
                                pipeline=cell_pipeline(grid, cell), runtime=runtime, registry=registry, limit=limit)
            if planned is not None:
                executor.submit(*planned)
    for name, cell in zip(names, cells):
        before = runtime.mark()
        metrics = run_eval(root=root, subset=subset, split=split, out=out / "cells" / name,
                           pipeline=cell_pipeline(grid, cell), runtime=runtime, limit=limit,
                           batch_videos=batch_videos, registry=registry, progress=progress, repair=repair,
                           executor=executor)
        delta, _ = runtime.since(before)
        computed = sum(v for k, v in delta.items() if k.endswith(".computed"))
        hits = sum(v for k, v in delta.items() if k.endswith(".cache_hit") or k.endswith(".memory_hit"))
        row = {"cell": name, **{k: _fmt(v) for k, v in cell.items()},
               **{m: round(float(metrics[m]), 6) for m in METRICS},
               "n_clips": metrics["n_clips"], "n_frames": metrics["n_frames"], "failed": len(metrics["failed"]),
               # a cell whose filters keep nothing shows here (docs/evaluation.md#a-pipeline-that-keeps-nothing)
               "gt_positive_predicted_empty": metrics.get("gt_positive_predicted_empty_share"),
               "computed": computed, "cache_hits": hits}
        if "semantic" in metrics:
            row["semantic_miou"] = round(float(metrics["semantic"]["miou"]), 6)
        row.update(metrics.get("plugin_metrics", {}))
        rows.append(row)
        write_tables(out, rows)  # after every cell, so a killed sweep keeps its table so far
    axes = list(dict.fromkeys(k for c in cells for k in c))  # cells may have different keys
    for old in out.glob("plot_*.png"):  # an earlier grid's plots would pass for this one's
        old.unlink()
    write_plots(out, rows, axes, [*METRICS, *registry.metric_table()])
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


def write_plots(out: Path, rows: list[dict[str, Any]], axes: list[str],
                metrics: tuple[str, ...] | list[str] = METRICS) -> list[Path]:
    """One PNG per (metric, numeric axis that varies): the metric against the axis, a line per
    combination of the other varying axes. Cells without the axis are left out of its plot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install 'avseg[plots]')")
        return []
    paths = []
    for axis in axes:
        have = [r for r in rows if axis in r]
        xs_all = _numeric([str(r[axis]) for r in have])
        if xs_all is None or len(set(xs_all)) < 2:
            continue
        others = [a for a in axes if a != axis and len({str(r.get(a, "-")) for r in have}) > 1]
        for metric in metrics:
            if not all(isinstance(r.get(metric), (int, float)) for r in have):
                continue
            fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
            groups: dict[tuple[str, ...], list[tuple[float, float]]] = {}
            for r, x in zip(have, xs_all):
                groups.setdefault(tuple(str(r.get(o, "-")) for o in others), []).append((x, float(r[metric])))
            for key, pts in groups.items():
                pts.sort()
                label = ", ".join(f"{o}={v}" for o, v in zip(others, key)) or metric
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
            ax.set_xlabel(axis)
            ax.set_ylabel(metric)
            ax.set_title(f"{metric} vs {axis}")
            ax.grid(alpha=0.3)
            if others:
                ax.legend(fontsize=8)
            fig.tight_layout()
            path = out / f"plot_{re.sub(r'[^A-Za-z0-9._-]+', '_', metric)}_vs_{re.sub(r'[^A-Za-z0-9._-]+', '_', axis)}.png"
            fig.savefig(path)
            plt.close(fig)
            paths.append(path)
    return paths


def run_ablation_cli(*, grid: Path, root: Path, subset: str, split: str, out: Path, tiny: bool, device: str,
                     dtype: str, limit: int | None, batch_videos: int, cache_dir: Path | None, no_cache: bool,
                     repair: bool = False, executor: ExecutorOptions | None = None, report: bool = True) -> int:
    from avseg.executors import make_executor
    from avseg.runtime import make_runtime

    runtime = make_runtime(tiny=tiny, device=device, dtype=dtype, cache_dir=cache_dir, no_cache=no_cache)
    clip_runner = make_executor(executor)
    try:
        rows = run_ablation(grid_path=grid, root=root, subset=subset, split=split, out=out, runtime=runtime,
                            limit=limit, batch_videos=batch_videos, repair=repair, executor=clip_runner)
    finally:
        clip_runner.close()
    print((out / "results.md").read_text())
    plots = sorted(out.glob("plot_*.png"))
    print(f"wrote {out / 'results.csv'}, {out / 'results.md'} and {len(plots)} plot(s)" if plots else
          f"wrote {out / 'results.csv'} and {out / 'results.md'}; no plots (no axis with two or more numeric values)")
    if report:
        from avseg.report import write_report

        print(f"report: {write_report(out, root=root)}")
    return 1 if any(r["failed"] for r in rows) else 0
