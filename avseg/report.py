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
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avseg.errors import AvsegError, InputError, UsageError
from avseg.outputs import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    from avseg.data import Dataset
    from avseg.types import FrameResult

REPORT = "report.html"
FILES = "report_files"
DEBUG_DIR = "debug"
THUMB = 128  # contact-sheet tile height (px)
MAX_SHEET_FRAMES = 10
METRIC_COLUMNS = ("miou", "fscore", "fscore_dataset", "semantic_miou")

TP, FP, FN = (40, 200, 70), (235, 50, 50), (40, 110, 255)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;
 background:#fff;padding:0 1em}
h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f3f3f3}table.sortable th{cursor:pointer}table.sortable th:after{content:" \\2195";color:#999}
td.num{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#b00}.muted{color:#777}
.metric{display:inline-block;margin:0 1.2em .6em 0}.metric b{font-size:1.6em;display:block}
img.sheet{max-width:100%;border:1px solid #ccc}section.clip{margin-bottom:2em}
.key span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 .8em;vertical-align:middle}
details{margin:.3em 0}pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:.85em}
tr.dropped td{color:#888}
"""

# Click a header to sort by it (numbers numerically); click again to reverse.
SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
    var body=t.tBodies[0],rows=Array.from(body.rows),asc=th.dataset.dir!=='asc';th.dataset.dir=asc?'asc':'desc';
    rows.sort(function(a,b){var x=a.cells[i].dataset.v??a.cells[i].textContent,y=b.cells[i].dataset.v??b.cells[i].textContent;
      var nx=parseFloat(x),ny=parseFloat(y),c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c;});
    rows.forEach(function(r){body.appendChild(r);});});});});
"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120] or "_"


def _page(title: str, body: str) -> str:
    return (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><style>{CSS}</style></head>"
            f"<body>\n{body}\n<script>{SORT_JS}</script></body></html>\n")


def _fmt(v: Any, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


# -- debug traces written by `avseg eval --debug` ---------------------------------------------
def clip_trace(clip_id: str, frames: Sequence[FrameResult]) -> dict[str, Any]:
    """A clip's per-frame audio tags and proposal traces (every filter's score, drop reasons)."""
    return {"clip": clip_id, "frames": [
        {"frame": fr.index, "tags": fr.tags.as_dict() if fr.tags is not None else None, "items": fr.trace}
        for fr in frames]}


def save_clip_trace(out: Path, clip_id: str, frames: Sequence[FrameResult]) -> None:
    atomic_write_json(out / DEBUG_DIR / f"{_slug(clip_id)}.json", clip_trace(clip_id, frames))


def _load_trace(folder: Path, clip_id: str) -> dict[int, dict[str, Any]]:
    path = folder / DEBUG_DIR / f"{_slug(clip_id)}.json"
    try:
        data = json.loads(path.read_text())
        return {int(f["frame"]): f for f in data["frames"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


# -- images ----------------------------------------------------------------------------------
def _tint(frame: np.ndarray, layers: Sequence[tuple[np.ndarray, tuple[int, int, int]]], alpha: float = 0.55) -> np.ndarray:
    out = frame.astype(np.float32) * 0.75  # dimmed so that the colours stand out
    for m, colour in layers:
        out[m] = (1 - alpha) * out[m] + alpha * np.asarray(colour, np.float32)
    return out.clip(0, 255).astype(np.uint8)


def _diff_layers(pred: np.ndarray, gt: np.ndarray) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
    return [(pred & gt, TP), (pred & ~gt, FP), (~pred & gt, FN)]


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = int((pred | gt).sum())
    return 1.0 if union == 0 else float((pred & gt).sum()) / union


def contact_sheet(columns: Sequence[tuple[str, np.ndarray, np.ndarray | None, np.ndarray | None]]) -> np.ndarray:
    """Per column ``(caption, frame, gt or None, pred or None)``: the frame with its ground truth
    on top and the prediction below (true positives green, false positives red, false negatives
    blue); each tile ``THUMB`` px tall."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from avseg.outputs import _font

    font = _font(12)
    tiles = []
    for caption, frame, gt, pred in columns:
        h, w = frame.shape[:2]
        tw = max(1, round(w * THUMB / max(1, h)))
        top = _tint(frame, [(gt, TP)]) if gt is not None else frame
        if pred is None:
            bottom = frame
        elif gt is None:
            bottom = _tint(frame, [(pred, FP)])
        else:
            bottom = _tint(frame, _diff_layers(pred, gt))
        col = PILImage.new("RGB", (tw, 18 + 2 * THUMB + 2), (255, 255, 255))
        ImageDraw.Draw(col).text((2, 2), caption, fill=(30, 30, 30), font=font)
        col.paste(PILImage.fromarray(top).resize((tw, THUMB)), (0, 18))
        col.paste(PILImage.fromarray(bottom).resize((tw, THUMB)), (0, 20 + THUMB))
        tiles.append(col)
    width = sum(t.width for t in tiles) + 4 * max(0, len(tiles) - 1)
    sheet = PILImage.new("RGB", (max(1, width), 20 + 2 * THUMB), (255, 255, 255))
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.width + 4
    return np.asarray(sheet)


def _read_mask(path: Path) -> np.ndarray | None:
    from PIL import Image as PILImage

    try:
        with PILImage.open(path) as im:
            return np.asarray(im.convert("L")) > 127
    except (OSError, ValueError):
        return None


# -- eval folder --------------------------------------------------------------------------------
def is_eval_folder(folder: Path) -> bool:
    return (folder / "metrics.json").is_file()


def is_ablate_folder(folder: Path) -> bool:
    return (folder / "results.csv").is_file() and (folder / "cells").is_dir()


def _per_clip(folder: Path) -> list[dict[str, Any]]:
    path = folder / "per_clip.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        try:
            out.append({**r, "j": float(r["j"]), "f": float(r["f"])})
        except (KeyError, ValueError):
            continue
    return sorted(out, key=lambda r: (r["j"], r["f"], r["clip"]))  # worst first


def _open_dataset(metrics: dict[str, Any], root: Path | None) -> tuple[Dataset | None, str]:
    from avseg.data import open_dataset

    where = root or (Path(metrics["root"]) if metrics.get("root") else None)
    if where is None:
        return None, "the dataset root is unknown (pass --root): no contact sheets"
    try:
        return open_dataset(where, str(metrics.get("subset")), str(metrics.get("split", "test"))), ""
    except AvsegError as exc:
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
            pred = _read_mask(folder / "masks" / dataset.pred_relpath(clip, i))
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
    save_png(folder / rel, contact_sheet(cols))
    return rel, [c[0] for c in cols]


def _trace_html(trace: dict[int, dict[str, Any]]) -> str:
    if not trace:
        return ("<p class='muted'>No debug trace for this clip: rerun <code>avseg eval --debug</code> "
                "to record audio tags and every proposal's scores.</p>")
    parts = []
    for idx in sorted(trace):
        fr = trace[idx]
        tags = fr.get("tags")
        tag_text = ("no audio tagger" if tags is None else "audio " + (
            ", ".join(f"{esc(n)} {float(p):.2f}" for n, p in list(tags.items())[:6]) or "no tag kept"))
        items = [r for r in fr.get("items", []) if "box" in r]
        dropped_tags = [r for r in fr.get("items", []) if r.get("kind") == "tag"]
        filters = list(dict.fromkeys(k for r in items for k in (r.get("scores") or {})))
        head = "".join(f"<th>{esc(f)}</th>" for f in filters)
        rows = []
        for r in sorted(items, key=lambda r: (not r.get("kept", True), -float(r.get("score", 0)))):
            sc = "".join(f"<td class='num'>{_fmt(r.get('scores', {}).get(f, ''), 3)}</td>" for f in filters)
            fate = "kept" if r.get("kept", True) else f"dropped by {esc(r.get('dropped_by', '?'))}: {esc(r.get('reason', ''))}"
            rows.append(f"<tr class='{'kept' if r.get('kept', True) else 'dropped'}'><td>{esc(r.get('id'))}</td>"
                        f"<td>{esc(r.get('label') or '')}</td><td class='num'>{float(r.get('score', 0)):.3f}</td>"
                        f"{sc}<td>{fate}</td></tr>")
        kept = sum(1 for r in items if r.get("kept", True))
        dt = (f"; dropped tags: {', '.join(esc(r.get('tag')) + ' (' + esc(r.get('dropped_by')) + ')' for r in dropped_tags[:5])}"
              if dropped_tags else "")
        parts.append(f"<details><summary>frame {idx}: {tag_text}{dt}; kept {kept} of {len(items)} proposals"
                     f"</summary><table><thead><tr><th>#</th><th>label</th><th>score</th>{head}<th>fate</th></tr>"
                     f"</thead><tbody>{''.join(rows)}</tbody></table></details>")
    return "".join(parts)


def _headline(metrics: dict[str, Any]) -> str:
    items = [("mIoU (J)", metrics.get("miou")), ("F-score (official)", metrics.get("fscore")),
             ("F-score (dataset-level)", metrics.get("fscore_dataset"))]
    sem = metrics.get("semantic") or {}
    if sem:
        items += [("semantic mIoU", sem.get("miou")), ("semantic F", sem.get("fscore"))]
    items += [("clips", metrics.get("n_clips")), ("frames", metrics.get("n_frames")),
              ("failed clips", len(metrics.get("failed", [])))]
    return "".join(f"<div class='metric'><b>{_fmt(v)}</b>{esc(k)}</div>" for k, v in items if v is not None)


def _visibility(metrics: dict[str, Any]) -> str:
    """Issue 24: empty-prediction shares, the dead-pipeline warning, resized predictions and the
    plugin metrics (metrics.json is untrusted: every value goes through _fmt or esc)."""
    rows = []
    for label, key in (("frames predicted empty", "empty_prediction_share"),
                       ("GT-positive frames predicted empty", "gt_positive_predicted_empty_share")):
        v = metrics.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            rows.append((label, f"{float(v):.1%}"))
    resized = metrics.get("resized_predictions")
    if isinstance(resized, dict) and resized.get("frames"):
        rows.append(("predictions resized to their GT", _fmt(resized.get("frames"))))
    plugin = metrics.get("plugin_metrics")
    for key, v in (plugin.items() if isinstance(plugin, dict) else []):
        rows.append((f"{key} (plugin)", "failed" if v is None else _fmt(v)))
    warn = [w for w in metrics.get("warnings") or [] if isinstance(w, str) and "empty prediction" in w]
    out = "".join(f"<p class='bad'>{esc(w)}</p>" for w in warn)
    if rows:
        out += ("<table id='visibility'>" + "".join(f"<tr><td>{esc(k)}</td><td class='num'>{esc(v)}</td></tr>"
                                                    for k, v in rows) + "</table>")
    return out


def _config_summary(config: dict[str, Any], components: Any = None) -> str:
    """The header line: the executed steps (or the legacy stages), the filters, the combiner, and
    which distribution (and version) provided each component."""
    steps = config.get("steps")
    if isinstance(steps, list) and steps and all(isinstance(x, str) for x in steps):
        parts = [f"steps: {' -> '.join(steps)}"]
    else:
        parts = [f"{k}: {config[k]['type']}" for k in ("tagger", "proposer", "embedder", "segmenter")
                 if isinstance(config.get(k), dict)]
        filters = ", ".join(str(f.get("type")) for f in config.get("filters", []) if isinstance(f, dict))
        parts.append(f"filters: {filters or 'none'}")
    combiner = config.get("combiner")
    parts.append(f"combiner: {combiner.get('type') if isinstance(combiner, dict) else 'union'}")
    if isinstance(components, dict):
        by: dict[str, list[str]] = {}
        for name, who in components.items():
            if isinstance(who, dict):
                by.setdefault(f"{who.get('provider', '?')} {who.get('version', '?')}", []).append(str(name))
        if by:
            parts.append("providers: " + ", ".join(f"{p} ({', '.join(n)})" for p, n in sorted(by.items())))
    return "; ".join(parts)


def eval_report(folder: Path, *, root: Path | None = None, max_sheets: int | None = None) -> Path:
    """Write ``folder/report.html`` over an ``avseg eval`` output folder; returns its path."""
    import yaml

    try:
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {folder / 'metrics.json'}: {exc}") from None
    clips = _per_clip(folder)
    dataset, note = _open_dataset(metrics, root)
    title = f"avseg eval {metrics.get('subset', '?')}/{metrics.get('split', '?')}: {folder.name}"
    body = [f"<h1>{esc(title)}</h1>",
            f"<p>{esc(_config_summary(metrics.get('config') or {}, metrics.get('components')))}"
            f"{' &middot; <b>tiny weights (plumbing check)</b>' if metrics.get('tiny') else ''}</p>",
            _headline(metrics), _visibility(metrics)]
    if metrics.get("failed"):
        body.append("<h2>Failed clips</h2><table><tr><th>clip</th><th>reason</th></tr>" + "".join(
            f"<tr><td>{esc(f.get('clip'))}</td><td class='bad'>{esc(f.get('reason'))}</td></tr>"
            for f in metrics["failed"]) + "</table>")
    body.append("<h2>Per clip, worst first</h2><p class='muted'>Click a column to sort.</p>"
                "<table id='clips' class='sortable'><thead><tr><th>clip</th><th>category</th><th>mIoU</th>"
                "<th>F</th><th>frames</th><th>time (s)</th></tr></thead><tbody>")
    for r in clips:
        body.append(f"<tr data-clip='{esc(r['clip'])}'><td><a href='#clip-{esc(_slug(r['clip']))}'>{esc(r['clip'])}</a></td>"
                    f"<td>{esc(r.get('category', ''))}</td><td class='num' data-v='{r['j']:.6f}'>{r['j']:.4f}</td>"
                    f"<td class='num' data-v='{r['f']:.6f}'>{r['f']:.4f}</td><td class='num'>{esc(r.get('n_frames', ''))}</td>"
                    f"<td class='num'>{esc(r.get('time_s', ''))}</td></tr>")
    body.append("</tbody></table>")
    body.append("<h2>Clips</h2><p class='key'>Top row: ground truth<span style='background:rgb"
                f"{TP}'></span>. Bottom row: prediction: true positive<span style='background:rgb{TP}'></span>"
                f"false positive<span style='background:rgb{FP}'></span>false negative"
                f"<span style='background:rgb{FN}'></span></p>")
    if note:
        body.append(f"<p class='muted'>{esc(note)}</p>")
    for n, r in enumerate(clips):
        cid = r["clip"]
        img = None
        if dataset is not None and (max_sheets is None or n < max_sheets):
            img, _ = _clip_sheet(folder, dataset, cid)
        sheet = (f"<img class='sheet' loading='lazy' src='{esc(img)}' alt='contact sheet of {esc(cid)}'>" if img
                 else "<p class='muted'>no contact sheet</p>")
        body.append(f"<section class='clip' id='clip-{esc(_slug(cid))}'><h3>{esc(cid)} "
                    f"<span class='muted'>{esc(r.get('category', ''))} &middot; mIoU {r['j']:.4f} &middot; "
                    f"F {r['f']:.4f}</span></h3>{sheet}{_trace_html(_load_trace(folder, cid))}</section>")
    cfg = yaml.safe_dump(metrics.get("config") or {}, sort_keys=False)
    rest = {k: metrics[k] for k in ("timings", "counters", "weights", "wall_time") if k in metrics}
    body.append(f"<h2>Configuration</h2><details><summary>resolved pipeline</summary><pre>{esc(cfg)}</pre></details>"
                f"<details><summary>timings, counters, weights</summary><pre>{esc(json.dumps(rest, indent=2))}</pre></details>")
    path = folder / REPORT
    atomic_write_bytes(path, _page(title, "\n".join(body)).encode())
    return path


# -- ablate folder ------------------------------------------------------------------------------
def ablate_report(folder: Path, *, root: Path | None = None, max_sheets: int | None = None) -> Path:
    """Write ``folder/report.html`` over an ``avseg ablate`` folder, and each cell's own report."""
    with (folder / "results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    cols = list(rows[0]) if rows else []
    links: dict[str, str] = {}
    for r in rows:
        cell = folder / "cells" / r.get("cell", "")
        if r.get("cell") and is_eval_folder(cell):
            eval_report(cell, root=root, max_sheets=max_sheets)
            links[r["cell"]] = f"cells/{r['cell']}/{REPORT}"

    def sort_key(r: dict[str, str]) -> float:
        try:
            return -float(r.get("miou", "nan"))
        except ValueError:
            return 0.0

    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    trs = []
    for r in sorted(rows, key=sort_key):
        tds = []
        for c in cols:
            v = r.get(c, "")
            if c == "cell" and v in links:
                # the axis columns already say what the cell is: its number links to its report
                tds.append(f"<td><a href='{esc(links[v])}' title='{esc(v)}'>{esc(v.split('-')[0])}</a></td>")
            else:
                num = re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", v or "") is not None
                shown = f"{float(v):.4f}" if num and c in METRIC_COLUMNS else v
                tds.append(f"<td class='num' data-v='{esc(v)}'>{esc(shown)}</td>" if num else f"<td>{esc(v)}</td>")
        trs.append("<tr>" + "".join(tds) + "</tr>")
    grid = (folder / "grid.yaml").read_text() if (folder / "grid.yaml").is_file() else ""
    plots = sorted(p.name for p in folder.glob("plot_*.png"))
    title = f"avseg ablation: {folder.name}"
    body = [f"<h1>{esc(title)}</h1>", f"<p>{len(rows)} cells, best mIoU first; click a column to sort, "
            "a cell's name for its own report.</p>",
            f"<table id='results' class='sortable'><thead><tr>{head}</tr></thead><tbody>{''.join(trs)}</tbody></table>"]
    if plots:
        body.append("<h2>Plots</h2><div style='display:flex;flex-wrap:wrap;gap:8px'>" + "".join(
            f"<img class='plot' src='{esc(p)}' alt='{esc(p)}' style='max-width:49%'>" for p in plots) + "</div>")
    if grid:
        body.append(f"<h2>Grid</h2><pre>{esc(grid)}</pre>")
    path = folder / REPORT
    atomic_write_bytes(path, _page(title, "\n".join(body)).encode())
    return path


def write_report(folder: str | Path, *, root: str | Path | None = None, max_sheets: int | None = None) -> Path:
    """``folder/report.html`` over an eval folder or an ablate folder; returns its path."""
    folder = Path(folder)
    r = Path(root) if root is not None else None
    if not folder.is_dir():
        raise UsageError(f"report: {folder} is not a folder")
    if is_ablate_folder(folder):
        return ablate_report(folder, root=r, max_sheets=max_sheets)
    if is_eval_folder(folder):
        return eval_report(folder, root=r, max_sheets=max_sheets)
    raise UsageError(f"report: {folder} is neither an eval folder (metrics.json) nor an ablate folder "
                     "(results.csv and cells/)")
