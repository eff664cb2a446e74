"""Report folders: ``summary.json`` and a self-contained ``index.html`` built from sections.

Every user-provided string (paths, run names, tags, keys, values) is HTML-escaped here, in one place.
Sections are produced by the analyzers' offline entry points (tiling, pixel, loss, latent, dataset,
comparison); this module only lays them out, the same way on every page:

1. the verdict of the whole page (worst severity) in one line;
2. per section: the key figure (the diagnosed image with the zones marked) first, then the findings with
   their severity, evidence and limits (from :mod:`trackdiag.metricspec`), then the figures, then the full
   table of values, collapsed.

One template per kind of page (:data:`TEMPLATES`: ``diagnosis``, ``dataset``, ``comparison``) names the boxes:
a diagnosis has "Findings" with "Fix", a dataset "What to do", a comparison a "Best checkpoint" box of its
own (not a finding) and "Got worse" findings.
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

from ..verdicts import Verdict
from .tables import table_block, table_slug, unique_slug

__all__ = ["Figure", "Verdict", "Section", "Cell", "write_report", "write_json", "json_default"]


@dataclass
class Figure:
    """A figure file inside the report folder, with how to read it."""

    path: str  # relative to the report folder
    title: str
    how_to_read: str = ""
    #: The section's key figure (the diagnosed image): shown first and large.
    key: bool = False


@dataclass(frozen=True)
class Cell:
    """A table cell with a style: ``css`` is ``"best"``, ``"bad"``, ``"warn"`` or ``""``; ``title`` a
    tooltip."""

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
    #: The analyzer whose metric specs give the limits shown next to the evidence (``"tiling"``…).
    analyzer: str = ""


@dataclass(frozen=True)
class Template:
    """The words of one kind of page."""

    findings: str = "Findings"
    fix: str = "Fix"
    evidence: str = "Evidence"
    none: str = "No problem found."
    best_title: str = "Best checkpoint"
    banner: str = "Verdict"


#: One template per kind of page.
TEMPLATES: dict[str, Template] = {
    "diagnosis": Template(),
    "dataset": Template(fix="What to do", none="No problem found in the dataset."),
    "comparison": Template(findings="What got worse", fix="Where to look", banner="In short",
                           none="No metric got worse than the baseline."),
}


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
.verdict.bad{border-color:#c62828;background:#fff0f0} .verdict.info{border-color:#1565c0;background:#f3f8ff}
.sev{font-weight:bold;text-transform:uppercase;font-size:.8em;padding:1px 6px;border-radius:3px;
margin-right:.5em;color:#fff;background:#e0a000} .bad .sev{background:#c62828} .info .sev{background:#1565c0}
.best{border:2px solid #2e7d32;background:#f0fff0;padding:.6em 1em;margin:.6em 0}
.banner{font-size:1.2em;padding:.6em 1em;margin:.6em 0 1.2em;border-radius:4px;background:#f0fff0;
border:1px solid #2e7d32} .banner.warn{background:#fffaf0;border-color:#e0a000}
.banner.bad{background:#fff0f0;border-color:#c62828}
figure{display:inline-block;margin:.6em;vertical-align:top;max-width:540px}
figure img{max-width:520px;border:1px solid #ddd} figcaption{font-size:.85em;color:#444}
figure.key{display:block;max-width:100%} figure.key img{max-width:100%;max-height:80vh}
details{margin:.8em 0} summary{cursor:pointer;color:#1565c0}
.limit{color:#666;font-size:.9em}
td.best{background:#e8f5e9;font-weight:bold} td.bad{background:#ffebee;color:#b71c1c}
td.warn{background:#fff8e1}
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


def _limit(analyzer: str, key: str) -> str:
    if not analyzer:
        return ""
    from ..core.findings import threshold_text

    text = threshold_text(analyzer, str(key))
    return f" <span class='limit'>(limit: {_e(text)})</span>" if text else ""


def _verdict_html(v: Verdict, analyzer: str, tpl: Template) -> str:
    ev = "; ".join(f"{_e(k)} = {_e(val)}{_limit(analyzer, k)}" for k, val in v.evidence.items())
    if v.code == "best_checkpoint":
        return (f"<div class='best'><b>{_e(tpl.best_title)}: {_e(v.title.removeprefix('Best: '))}</b><br>"
                f"{_e(tpl.evidence)}: {ev}<br>{_e(v.fix)}</div>")
    word = {"bad": "bad", "warn": "warning", "info": "note"}[v.severity]
    fix = f"<br>{_e(tpl.fix)}: {_e(v.fix)}" if v.fix else ""
    evidence = f"<br>{_e(tpl.evidence)}: {ev}" if ev else ""
    return (f"<div class='verdict {_e(v.severity)}'><span class='sev'>{word}</span><b>{_e(v.title)}</b> "
            f"<code>{_e(v.code)}</code>{evidence}{fix}</div>")


def _banner(sections: Sequence[Section], tpl: Template) -> str:
    from ..verdicts import worst_severity

    verdicts = [v for sec in sections for v in sec.verdicts if v.code != "best_checkpoint"]
    best = [v.title.removeprefix("Best: ") for sec in sections for v in sec.verdicts
            if v.code == "best_checkpoint"]
    worst = worst_severity(verdicts)
    problems = [v for v in verdicts if v.is_problem]
    if problems:
        text = "; ".join(f"{v.severity.upper()}: {v.title}" for v in
                         sorted(problems, key=lambda v: v.severity != "bad")[:4])
    else:
        text = tpl.none
    if best:
        text = f"{tpl.best_title}: {best[0]}. {text}"
    return f"<div class='banner {_e(worst)}'><b>{_e(tpl.banner)}:</b> {_e(text)}</div>"


def _figure_html(root: Path, fig: Figure, embed: bool) -> str:
    src = _img_src(root, fig.path, embed)
    cls = " class='key'" if fig.key else ""
    return (f"<figure{cls}><img src='{src}' alt='{_e(fig.title)}'><figcaption><b>{_e(fig.title)}</b><br>"
            f"{_e(fig.how_to_read)}</figcaption></figure>")


def write_report(out_dir: str | Path, sections: Sequence[Section], *, title: str = "trackdiag report",
                 embed_images: bool = False, summary: Optional[Mapping[str, Any]] = None,
                 kind: str = "diagnosis") -> Path:
    """Write ``index.html`` (and ``summary.json`` when ``summary`` is given) into ``out_dir``.

    ``embed_images=True`` inlines PNGs as data URIs so the HTML file is self-contained. ``kind`` picks the
    page's template (:data:`TEMPLATES`). Returns the path of ``index.html``.
    """
    tpl = TEMPLATES.get(kind, TEMPLATES["diagnosis"])
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    if summary is not None:
        write_json(summary, root / "summary.json")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>", _banner(sections, tpl)]
    used_slugs: set[str] = set()
    for sec in sections:
        parts.append(f"<section><h2>{_e(sec.title)}</h2>")
        for fig in sec.figures:
            if fig.key:
                parts.append(_figure_html(root, fig, embed_images))
        if sec.verdicts:
            best = [v for v in sec.verdicts if v.code == "best_checkpoint"]
            rest = [v for v in sec.verdicts if v.code != "best_checkpoint"]
            parts += [_verdict_html(v, sec.analyzer, tpl) for v in best]
            if rest:
                parts.append(f"<h3>{_e(tpl.findings)}</h3>")
                parts += [_verdict_html(v, sec.analyzer, tpl) for v in rest]
        for note in sec.notes:
            parts.append(f"<p>{_e(note)}</p>")
        parts += [_figure_html(root, fig, embed_images) for fig in sec.figures if not fig.key]
        for name, rows in sec.tables.items():  # every row: paged on the page, all of them as CSV
            slug = unique_slug(table_slug(sec.title, str(name)), used_slugs)
            parts.append(f"<h3>{_e(name)}</h3>{table_block(root, slug, list(rows), td=_td)}")
        if sec.summary:
            rows = [{"key": k, "value": v,
                     "limit": _limit_text(sec.analyzer, k)} for k, v in sec.summary.items()]
            if not any(r["limit"] for r in rows):
                rows = [{"key": r["key"], "value": r["value"]} for r in rows]
            parts.append(f"<details><summary>All {len(rows)} values</summary>"
                         f"{_table_html(rows, max_rows=len(rows))}</details>")
        parts.append("</section>")
    parts.append("</body></html>")
    index = root / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index


def _limit_text(analyzer: str, key: str) -> str:
    if not analyzer:
        return ""
    from ..core.findings import threshold_text

    return threshold_text(analyzer, str(key))
