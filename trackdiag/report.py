"""Report folders: ``summary.json`` and a self-contained ``index.html`` built from sections.

Every user-provided string (paths, run names, tags, keys, values) is HTML-escaped here, in one place.
Sections are produced by the analyzers' offline entry points (tiling, pixel, loss, latent, dataset,
comparison); this module only lays them out.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .verdicts import Verdict

__all__ = ["Figure", "Verdict", "Section", "Cell", "write_report", "write_json", "json_default"]


@dataclass
class Figure:
    """A figure file inside the report folder, with how to read it."""

    path: str  # relative to the report folder
    title: str
    how_to_read: str = ""


@dataclass(frozen=True)
class Cell:
    """A table cell with a style: ``css`` is ``"best"``, ``"bad"``, ``"warn"`` or ``""``; ``title`` a tooltip."""

    value: Any
    css: str = ""
    title: str = ""

    def __str__(self) -> str:
        return str(self.value)


@dataclass
class Section:
    title: str
    summary: Mapping[str, Any] = field(default_factory=dict)
    figures: Sequence[Figure] = field(default_factory=list)
    verdicts: Sequence[Verdict] = field(default_factory=list)
    tables: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    notes: Sequence[str] = field(default_factory=list)


def json_default(obj: Any) -> Any:
    """JSON encoder fallback for numpy / torch scalars and paths."""
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite_or_none(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def write_json(data: Any, path: str | Path) -> Path:
    """Write strict JSON (NaN/Inf become null) with a trailing newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite_or_none(json.loads(json.dumps(data, default=json_default))), indent=2,
                      sort_keys=False, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;
font-size:.9em} th{background:#f3f3f3}
.verdict{border-left:5px solid #e0a000;padding:.4em 1em;margin:.6em 0;background:#fffaf0}
.verdict.bad{border-color:#c62828;background:#fff0f0} .verdict.info{border-color:#2e7d32;background:#f0fff0}
figure{display:inline-block;margin:.6em;vertical-align:top;max-width:540px}
figure img{max-width:520px;border:1px solid #ddd} figcaption{font-size:.85em;color:#444}
td.best{background:#e8f5e9;font-weight:bold} td.bad{background:#ffebee;color:#b71c1c} td.warn{background:#fff8e1}
"""


def _e(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:.6g}"
    return html.escape(str(value), quote=True)


def _td(value: Any) -> str:
    if isinstance(value, Cell):
        cls = f" class='{_e(value.css)}'" if value.css else ""
        tip = f" title='{_e(value.title)}'" if value.title else ""
        return f"<td{cls}{tip}>{_e(value.value)}</td>"
    return f"<td>{_e(value)}</td>"


def _table_html(rows: Sequence[Mapping[str, Any]], max_rows: int = 500) -> str:
    if not rows:
        return "<p><em>empty</em></p>"
    cols: list[str] = []
    for row in rows:
        cols.extend(k for k in row if k not in cols)
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(_td(r.get(c, "")) for c in cols) + "</tr>" for r in rows[:max_rows]
    )
    more = f"<p>… {len(rows) - max_rows} more rows</p>" if len(rows) > max_rows else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _img_src(root: Path, rel: str, embed: bool) -> str:
    if embed and (root / rel).is_file():
        data = base64.b64encode((root / rel).read_bytes()).decode("ascii")
        return f"data:image/png;base64,{data}"
    return html.escape(rel, quote=True)


def write_report(out_dir: str | Path, sections: Sequence[Section], *, title: str = "trackdiag report",
                 embed_images: bool = False, summary: Optional[Mapping[str, Any]] = None) -> Path:
    """Write ``index.html`` (and ``summary.json`` when ``summary`` is given) into ``out_dir``.

    ``embed_images=True`` inlines PNGs as data URIs so the HTML file is self-contained.
    Returns the path of ``index.html``.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    if summary is not None:
        write_json(summary, root / "summary.json")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"]
    for sec in sections:
        parts.append(f"<section><h2>{_e(sec.title)}</h2>")
        if sec.verdicts:
            parts.append("<h3>Likely causes</h3>")
            for v in sec.verdicts:
                ev = ", ".join(f"{_e(k)} = {_e(val)}" for k, val in v.evidence.items())
                parts.append(f"<div class='verdict {_e(v.severity)}'><b>{_e(v.title)}</b><br>"
                             f"Evidence: {ev}<br>Fix: {_e(v.fix)}</div>")
        for note in sec.notes:
            parts.append(f"<p>{_e(note)}</p>")
        if sec.summary:
            parts.append(_table_html([{"key": k, "value": v} for k, v in sec.summary.items()]))
        for fig in sec.figures:
            src = _img_src(root, fig.path, embed_images)
            parts.append(f"<figure><img src='{src}' alt='{_e(fig.title)}'><figcaption><b>{_e(fig.title)}"
                         f"</b><br>{_e(fig.how_to_read)}</figcaption></figure>")
        for name, rows in sec.tables.items():
            parts.append(f"<h3>{_e(name)}</h3>{_table_html(list(rows))}")
        parts.append("</section>")
    parts.append("</body></html>")
    index = root / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index
