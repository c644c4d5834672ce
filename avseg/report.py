"""``avseg report DIR``: one self-contained ``DIR/report.html`` over an eval or an ablate folder.

The page needs no server and no network: styles and the sorting script are inline, images are
PNG files under ``DIR/report_files/`` linked by relative paths (or the ablation's own plots).

- eval folder (``metrics.json`` + ``per_clip.csv``): the headline metrics, per-clip mIoU and F
  (sortable, worst first), and per clip a contact sheet of its annotated frames (ground truth
  beside the prediction, false positives red and false negatives blue), with the audio tags and
  every proposal's scores and drop reason when the eval recorded debug traces (``--debug``);
- ablate folder (``results.csv`` + ``cells/``): the results table, the plots, and a link to each
  cell's own report (written too).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avseg.contact_sheet import FN, FP, TP, contact_sheet, iou, read_mask
from avseg.errors import AvsegError, InputError, OutputError, UsageError, one_line, printable
from avseg.outputs import atomic_write_bytes, atomic_write_json
from avseg.trace import to_json as trace_json

if TYPE_CHECKING:
    from avseg.data import Dataset
    from avseg.types import FrameResult

REPORT = "report.html"
FILES = "report_files"
DEBUG_DIR = "debug"
MAX_SHEET_FRAMES = 10
METRIC_COLUMNS = ("miou", "fscore", "fscore_dataset", "semantic_miou")


def _env() -> Any:
    """The templates (avseg/templates/*.html), autoescaped: the one escaping path of the report."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("avseg", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["num"] = _fmt
    return env


def _render(template: str, **values: Any) -> bytes:
    # errors="replace": a value that is not valid Unicode (a non-UTF-8 path) never loses the page
    return printable(str(_env().get_template(template).render(**values))).encode("utf-8")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120] or "_"


def _fmt(v: Any, digits: int = 4) -> str:
    """A value as text (escaped by the template, whatever it is): floats to ``digits`` places."""
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return v if isinstance(v, str) else str(v) if v is not None else ""


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _read_text(path: Path) -> str:
    """A file the report reads back, as text: bytes that are not UTF-8 are shown replaced."""
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"cannot read {path}: not valid JSON ({one_line(exc, 120, with_type=False)})") from None


def _inside(folder: Path, path: Path, what: str) -> Path:
    """``path`` when it resolves inside ``folder`` (no symlink out of it); else an OutputError."""
    try:
        real, base = path.resolve(), folder.resolve()
    except (OSError, RuntimeError) as exc:
        raise OutputError(f"report: cannot resolve {path}: {one_line(exc, 120, with_type=False)}") from None
    if real != base and base not in real.parents:
        raise OutputError(f"report: {what} {path} leads outside {folder} (to {real}); refusing to write there: "
                          "remove the link")
    return path


# -- debug traces written by `avseg eval --debug` ---------------------------------------------
def clip_trace(clip_id: str, frames: Sequence[FrameResult]) -> dict[str, Any]:
    """A clip's per-frame audio tags and proposal traces (every filter's score, drop reasons)."""
    return {"clip": clip_id, "frames": [
        {"frame": fr.index, "tags": fr.tags.as_dict() if fr.tags is not None else None, "items": trace_json(fr.trace)}
        for fr in frames]}


def save_clip_trace(out: Path, clip_id: str, frames: Sequence[FrameResult]) -> None:
    atomic_write_json(out / DEBUG_DIR / f"{_slug(clip_id)}.json", clip_trace(clip_id, frames))


def _load_trace(folder: Path, clip_id: str) -> list[dict[str, Any]]:
    """The clip's debug trace, normalised to what the template shows; an unreadable or
    malformed trace is no trace (its values are shown escaped, whatever their types)."""
    path = folder / DEBUG_DIR / f"{_slug(clip_id)}.json"
    if not path.is_file():
        return []
    try:
        data = _read_json(path)
    except InputError:
        return []
    frames = data.get("frames") if isinstance(data, dict) else None
    out: dict[int, dict[str, Any]] = {}
    for f in frames if isinstance(frames, list) else []:
        if not isinstance(f, dict) or _number(f.get("frame")) is None:
            continue
        items = [r for r in f.get("items") or [] if isinstance(r, dict)] if isinstance(f.get("items"), list) else []
        tags = f.get("tags")
        props = []
        for r in (r for r in items if "box" in r):
            scores = r["scores"] if isinstance(r.get("scores"), dict) else {}
            props.append({"id": _fmt(r.get("id")), "label": _fmt(r.get("label")), "kept": r.get("kept", True) is not False,
                          "score": r.get("score", 0), "scores": {str(k): v for k, v in scores.items()},
                          "dropped_by": _fmt(r.get("dropped_by", "?")), "reason": _fmt(r.get("reason", ""))})
        props.sort(key=lambda r: (not r["kept"], -(_number(r["score"]) or 0.0)))
        out[int(f["frame"])] = {
            "index": int(f["frame"]),
            "tags": None if tags is None else [(k, p) for k, p in list(tags.items())[:6]] if isinstance(tags, dict) else [],
            "dropped_tags": [(r.get("tag"), r.get("dropped_by")) for r in items if r.get("kind") == "tag"][:5],
            "filters": list(dict.fromkeys(k for r in props for k in r["scores"])),
            "props": props, "kept": sum(1 for r in props if r["kept"]),
        }
    return [out[k] for k in sorted(out)]


# -- eval folder --------------------------------------------------------------------------------
def is_eval_folder(folder: Path) -> bool:
    return (folder / "metrics.json").is_file()


def is_ablate_folder(folder: Path) -> bool:
    return (folder / "results.csv").is_file() and (folder / "cells").is_dir()


def _per_clip(folder: Path) -> list[dict[str, Any]]:
    path = folder / "per_clip.csv"
    if not path.is_file():
        return []
    try:
        rows = list(csv.DictReader(io.StringIO(_read_text(path), newline="")))
    except csv.Error as exc:
        raise InputError(f"cannot read {path}: {one_line(exc, 120, with_type=False)}") from None
    out = []
    for r in rows:
        try:
            j, f = float(r["j"]), float(r["f"])
        except (KeyError, ValueError, TypeError):
            continue
        if not isinstance(r.get("clip"), str) or not (math.isfinite(j) and math.isfinite(f)):
            continue
        out.append({"clip": r["clip"], "anchor": _slug(r["clip"]), "category": _fmt(r.get("category")),
                    "n_frames": _fmt(r.get("n_frames")), "time_s": _fmt(r.get("time_s")), "j": j, "f": f})
    return sorted(out, key=lambda r: (r["j"], r["f"], r["clip"]))  # worst first


def _open_dataset(metrics: dict[str, Any], root: Path | None) -> tuple[Dataset | None, str]:
    from avseg.data import open_dataset

    where = root or (Path(metrics["root"]) if isinstance(metrics.get("root"), str) and metrics["root"] else None)
    if where is None:
        return None, "the dataset root is unknown (pass --root): no contact sheets"
    try:
        return open_dataset(where, str(metrics.get("subset")), str(metrics.get("split", "test"))), ""
    except (AvsegError, OSError, ValueError) as exc:
        return None, f"cannot open the dataset for contact sheets: {exc}"


def _clip_sheet(folder: Path, dataset: Dataset, clip_id: str) -> tuple[str | None, list[str]]:
    """Write the clip's contact sheet; returns (relative image path, per-frame captions)."""
    from avseg.outputs import save_png

    try:
        clip = dataset.clip(clip_id)
        frames = dataset.annotated_frames(clip)[:MAX_SHEET_FRAMES]
        cols = []
        for i in frames:
            frame = clip.frame(i)
            gt = dataset.gt_mask(clip, i)
            pred = read_mask(folder / "masks" / dataset.pred_relpath(clip, i))
            if pred is not None and pred.shape != frame.shape[:2]:
                pred = None
            if gt is not None and gt.shape != frame.shape[:2]:
                gt = None
            caption = f"#{i}" + (f" IoU {iou(pred, gt):.2f}" if pred is not None and gt is not None else "")
            cols.append((caption, frame, gt, pred))
    except (AvsegError, OSError, KeyError, IndexError):
        return None, []
    if not cols:
        return None, []
    rel = f"{FILES}/{_slug(clip_id)}.png"
    _inside(folder, folder / FILES, "the images folder")
    save_png(folder / rel, contact_sheet(cols))
    return rel, [c[0] for c in cols]


def _headline(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    sem = metrics.get("semantic") if isinstance(metrics.get("semantic"), dict) else {}
    failed = metrics.get("failed")
    items = [("mIoU (J)", metrics.get("miou")), ("F-score (official)", metrics.get("fscore")),
             ("F-score (dataset-level)", metrics.get("fscore_dataset"))]
    if sem:
        items += [("semantic mIoU", sem.get("miou")), ("semantic F", sem.get("fscore"))]
    items += [("clips", metrics.get("n_clips")), ("frames", metrics.get("n_frames")),
              ("failed clips", len(failed) if isinstance(failed, list) else failed)]
    return [(k, v) for k, v in items if v is not None]


def _visibility(metrics: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    """Issue 24: empty-prediction shares, resized predictions and the plugin metrics as rows, and the
    dead-pipeline warnings (metrics.json is untrusted: the template escapes every value)."""
    rows: list[tuple[str, str]] = []
    for label, key in (("frames predicted empty", "empty_prediction_share"),
                       ("GT-positive frames predicted empty", "gt_positive_predicted_empty_share")):
        v = _number(metrics.get(key))
        if v is not None:
            rows.append((label, f"{v:.1%}"))
    resized = metrics.get("resized_predictions")
    if isinstance(resized, dict) and resized.get("frames"):
        rows.append(("predictions resized to their GT", _fmt(resized.get("frames"))))
    plugin = metrics.get("plugin_metrics")
    for key, v in (plugin.items() if isinstance(plugin, dict) else []):
        rows.append((f"{_fmt(key)} (plugin)", "failed" if v is None else _fmt(v)))
    warnings = metrics.get("warnings")
    warn = [w for w in (warnings if isinstance(warnings, list) else []) if isinstance(w, str) and "empty prediction" in w]
    return rows, warn


def _step_label(step: Any) -> str | None:
    """"kind:name" of a recorded step: ``{kind: {type: name, ...}}`` or the previous version's string."""
    if isinstance(step, dict) and len(step) == 1:
        ((kind, body),) = step.items()
        name = body.get("type") if isinstance(body, dict) else body
        return f"{_fmt(kind)}:{name}" if isinstance(name, str) else None
    return step if isinstance(step, str) else None


def _config_summary(config: Any, components: Any = None) -> str:
    """The header line: the executed steps, the combiner, and which distribution (and version)
    provided each component. Both are untrusted: any type."""
    config = config if isinstance(config, dict) else {}
    steps = config.get("steps")
    labels = [_step_label(x) for x in steps] if isinstance(steps, list) else []
    if labels and None not in labels:
        parts = [f"steps: {' -> '.join(str(x) for x in labels)}"]
    else:  # a record from before steps (or a tampered one): the legacy keys
        parts = [f"{k}: {_fmt(config[k].get('type'))}" for k in ("tagger", "proposer", "embedder", "segmenter")
                 if isinstance(config.get(k), dict)]
        flt = config.get("filters") if isinstance(config.get("filters"), list) else []
        parts.append(f"filters: {', '.join(_fmt(f.get('type')) for f in flt if isinstance(f, dict)) or 'none'}")
    combiner = config.get("combiner")
    parts.append(f"combiner: {_fmt(combiner.get('type')) if isinstance(combiner, dict) else 'union'}")
    if isinstance(components, dict):
        by: dict[str, list[str]] = {}
        for name, who in components.items():
            if isinstance(who, dict):
                by.setdefault(f"{_fmt(who.get('provider', '?'))} {_fmt(who.get('version', '?'))}", []).append(str(name))
        if by:
            parts.append("providers: " + ", ".join(f"{p} ({', '.join(n)})" for p, n in sorted(by.items())))
    return "; ".join(parts)


def _dump(value: Any, as_yaml: bool) -> str:
    """A metrics.json section as text for a <pre> (escaped by the template)."""
    import yaml

    try:
        return yaml.safe_dump(value, sort_keys=False) if as_yaml else json.dumps(value, indent=2)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        return f"(cannot show: {one_line(exc, 120)})"


def eval_report(folder: Path, *, root: Path | None = None, max_sheets: int | None = None) -> Path:
    """Write ``folder/report.html`` over an ``avseg eval`` output folder; returns its path."""
    metrics = _read_json(folder / "metrics.json")
    if not isinstance(metrics, dict):
        raise InputError(f"cannot read {folder / 'metrics.json'}: expected a JSON object, got {type(metrics).__name__}")
    clips = _per_clip(folder)
    dataset, note = _open_dataset(metrics, root)
    title = f"avseg eval {_fmt(metrics.get('subset', '?'))}/{_fmt(metrics.get('split', '?'))}: {folder.name}"
    failed = metrics["failed"] if isinstance(metrics.get("failed"), list) else []
    for n, r in enumerate(clips):
        r["sheet"] = None
        if dataset is not None and (max_sheets is None or n < max_sheets):
            r["sheet"], _ = _clip_sheet(folder, dataset, r["clip"])
        r["trace"] = _load_trace(folder, r["clip"])
    rest = {k: metrics[k] for k in ("timings", "counters", "weights", "wall_time") if k in metrics}
    page = _render(
        "eval.html", title=title, summary=_config_summary(metrics.get("config"), metrics.get("components")),
        tiny=metrics.get("tiny") is True, visibility=_visibility(metrics),
        headline=_headline(metrics), clips=clips, note=note,
        failed=[{"clip": _fmt(f.get("clip")), "reason": _fmt(f.get("reason"))} for f in failed if isinstance(f, dict)],
        colours={"tp": TP, "fp": FP, "fn": FN}, config_text=_dump(metrics.get("config") or {}, True),
        rest_text=_dump(rest, False))
    path = folder / REPORT
    atomic_write_bytes(path, page)  # replaces a link at that name; never writes through it
    return path


# -- ablate folder ------------------------------------------------------------------------------
CELL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+,-]*")


def _cell_folder(folder: Path, name: str) -> Path | None:
    """``folder/cells/<name>`` when ``name`` is one plain folder name inside cells/ (not a link
    out of it); None otherwise: a ``cell`` column holding ``../..`` or an absolute path is refused."""
    if not CELL_NAME.fullmatch(name) or len(name) > 255:
        return None
    cell = folder / "cells" / name
    if cell.is_symlink() or not is_eval_folder(cell):
        return None
    try:
        _inside(folder / "cells", cell, "cell")
    except OutputError:
        return None
    return cell


def ablate_report(folder: Path, *, root: Path | None = None, max_sheets: int | None = None) -> Path:
    """Write ``folder/report.html`` over an ``avseg ablate`` folder, and each cell's own report."""
    path = folder / "results.csv"
    try:
        rows = [r for r in csv.DictReader(io.StringIO(_read_text(path), newline=""))]
    except csv.Error as exc:
        raise InputError(f"cannot read {path}: {one_line(exc, 120, with_type=False)}") from None
    cols = [c for c in (rows[0] if rows else {}) if isinstance(c, str)]
    links: dict[str, str] = {}
    for r in rows:
        name = r.get("cell")
        cell = _cell_folder(folder, name) if isinstance(name, str) else None
        if cell is not None and isinstance(name, str):
            eval_report(cell, root=root, max_sheets=max_sheets)
            links[name] = f"cells/{name}/{REPORT}"

    def sort_key(r: dict[str, Any]) -> float:
        try:
            v = -float(r.get("miou") or "nan")
        except (TypeError, ValueError):
            return 0.0
        return v if math.isfinite(v) else 0.0

    table = []
    for r in sorted(rows, key=sort_key):
        cells = []
        for c in cols:
            v = r.get(c)
            v = v if isinstance(v, str) else "" if v is None else ",".join(map(str, v)) if isinstance(v, list) else str(v)
            if c == "cell" and v in links:
                # the axis columns already say what the cell is: its number links to its report
                cells.append({"link": links[v], "value": v, "shown": v.split("-")[0], "numeric": False})
                continue
            num = re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", v) is not None
            shown = f"{float(v):.4f}" if num and c in METRIC_COLUMNS else v
            cells.append({"link": None, "value": v, "shown": shown, "numeric": num})
        table.append(cells)
    grid_file = folder / "grid.yaml"
    grid = _read_text(grid_file) if grid_file.is_file() else ""
    plots = sorted(p.name for p in folder.glob("plot_*.png") if p.is_file() and not p.is_symlink())
    page = _render("ablate.html", title=f"avseg ablation: {folder.name}", columns=cols, rows=table, plots=plots,
                   grid=grid)
    out = folder / REPORT
    atomic_write_bytes(out, page)
    return out


def write_report(folder: str | Path, *, root: str | Path | None = None, max_sheets: int | None = None) -> Path:
    """``folder/report.html`` over an eval folder or an ablate folder; returns its path."""
    folder = Path(folder)
    r = Path(root) if root is not None else None
    if not folder.is_dir():
        raise UsageError(f"report: {folder} is not a folder")
    if max_sheets is not None and (isinstance(max_sheets, bool) or not isinstance(max_sheets, int) or max_sheets < 0):
        raise UsageError(f"report --max-sheets {max_sheets}: expected 0 or more (contact sheets for the N worst clips)")
    if r is not None and not r.is_dir():
        raise UsageError(f"report --root {r}: {'is not a folder' if r.exists() else 'does not exist'} "
                         "(the dataset root, for the contact sheets)")
    if is_ablate_folder(folder):
        return ablate_report(folder, root=r, max_sheets=max_sheets)
    if is_eval_folder(folder):
        return eval_report(folder, root=r, max_sheets=max_sheets)
    raise UsageError(f"report: {folder} is neither an eval folder (metrics.json) nor an ablate folder "
                     "(results.csv and cells/)")
