"""The comparison's report folder: ``comparison.csv``, ``comparison.json``, ``comparison.md``, a
self-contained ``index.html``, ``comparison.pdf`` and ``plots/trend_*.png``.

Escaping, per format: HTML goes through :mod:`trackdiag.report.folder`, which escapes every string; Markdown
cells are HTML-escaped and their Markdown punctuation backslash-escaped (a Markdown viewer renders raw
HTML); matplotlib text has ``$`` escaped (no mathtext). CSV and JSON carry the raw strings: they are data.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..io.tables import write_csv as write_rows_csv
from ..report.folder import Cell, Figure, Section, write_report
from ..verdicts import Verdict
from .plots import HOW_TO_READ, mpl_text, trend_figure, trend_groups
from .ranking import fmt
from .table import Comparison

__all__ = ["FORMATS", "write_outputs", "flat_rows", "to_json", "md_text"]

FORMATS = ("csv", "json", "md", "html", "pdf")
#: Rows of the HTML table (the report writer's own limit); above it the best rows by rank are shown.
HTML_ROWS = 500
#: Typographic characters of our own texts → Latin-1, so that a page can use the PDF core fonts.
_TYPOGRAPHIC = str.maketrans({"…": "...", "–": "-", "—": "-", "★": "*", "▲": "!", "→": "->", "×": "x"})
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|#<>"})


def md_text(text: Any) -> str:
    """A string that a Markdown viewer shows as plain text (no HTML, no emphasis, no table breaks)."""
    return html.escape(str(text), quote=False).translate(_MD_SPECIAL).replace("\n", " ")


def _num(value: float) -> Optional[float]:
    return float(value) if np.isfinite(value) else None


def _cells(arr: np.ndarray) -> list[list[Optional[float]]]:
    """An ``(R, M)`` float array as nested lists with None for NaN/inf (vectorised, no per-cell calls)."""
    out = np.asarray(arr, dtype=np.float64).astype(object)
    out[~np.isfinite(np.asarray(arr, dtype=np.float64))] = None
    return out.tolist()


def flat_rows(c: Comparison) -> list[dict[str, Any]]:
    """One flat dict per row (table order): the CSV, the tracker table."""
    labels = [s.label for s in c.specs]
    values, deltas = _cells(c.values), _cells(c.delta)
    score = _cells(np.round(c.score, 6)[:, None]) if len(c.score) else [[None]] * len(c)
    best, flagged = c.best, c.flagged
    rows = []
    for i in range(len(c)):
        row: dict[str, Any] = {"rank": int(c.rank[i]), "run": c.run[i], "run_id": c.run_id[i],
                               "checkpoint": c.checkpoint[i], "step": int(c.step[i]), "score": score[i][0],
                               "baseline": i == c.baseline,
                               "best_in": ";".join(labels[j] for j in np.flatnonzero(best[i])),
                               "flagged": ";".join(labels[j] for j in np.flatnonzero(flagged[i]))}
        for j, label in enumerate(labels):
            row[label] = values[i][j]
            row[f"{label} delta"] = deltas[i][j]
        rows.append(row)
    return rows


def to_json(c: Comparison, config: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """The whole comparison as JSON-ready data."""
    order = np.argsort(c.rank, kind="stable")
    labels = [s.label for s in c.specs]
    values, deltas = _cells(c.values), _cells(c.delta)
    logged, best = c.logged.tolist(), c.best.tolist()
    regressed, over = c.regressed.tolist(), c.over_limit.tolist()
    score = _cells(c.score[:, None]) if len(c.score) else [[None]] * len(c)
    rows = []
    for i in range(len(c)):
        cells = {label: {"value": values[i][j], "logged_step": logged[i][j], "delta": deltas[i][j],
                         "best": best[i][j], "regressed": regressed[i][j], "over_limit": over[i][j]}
                 for j, label in enumerate(labels)}
        rows.append({"rank": int(c.rank[i]), "run": c.run[i], "run_id": c.run_id[i],
                     "checkpoint": c.checkpoint[i], "step": int(c.step[i]), "score": score[i][0],
                     "reason": c.reasons[i], "cells": cells})
    return {
        "mode": c.mode,
        "baseline": {"row": int(c.baseline), "run": c.run[c.baseline], "checkpoint": c.checkpoint[c.baseline],
                     "step": int(c.step[c.baseline])},
        "metrics": [{"key": s.key, "label": s.label, "goal": s.goal, "goal_assumed": s.goal_assumed,
                     "weight": s.weight, "tolerance": _num(c.tolerance[j]), "limit": s.limit}
                    for j, s in enumerate(c.specs)],
        "verdict": list(c.verdict),
        "ranking": [{"rank": int(c.rank[i]), "run": c.run[i], "checkpoint": c.checkpoint[i],
                     "step": int(c.step[i]), "score": score[i][0], "reason": c.reasons[i]} for i in order],
        "onsets": list(c.onsets),
        "rows": rows,
        "runs": [{"name": r.name, "run_id": r.run_id, "source": r.source, "tags": dict(r.tags)}
                 for r in c.runs],
        "notes": list(c.notes),
        "config": dict(config or {}),
    }


def _cell_text(c: Comparison, i: int, j: int) -> str:
    v = c.values[i, j]
    text = fmt(v)
    if i != c.baseline and np.isfinite(c.delta[i, j]):
        d = c.delta[i, j]
        text += f" ({'+' if d > 0 else ''}{d:.3g})"
    if c.logged[i, j] >= 0 and c.logged[i, j] != c.step[i] and c.checkpoint[i].isdigit():
        text += f" @{int(c.logged[i, j])}"
    if c.best[i, j]:
        text += " ★"
    if c.flagged[i, j]:
        text += " ▲"
    return text


def _cell_title(c: Comparison, i: int, j: int) -> str:
    s = c.specs[j]
    out = []
    if c.best[i, j]:
        out.append("best")
    if c.regressed[i, j]:
        out.append(f"regressed: worse than the baseline by more than {fmt(c.tolerance[j])}")
    if c.over_limit[i, j]:
        out.append(f"over the limit {fmt(s.limit)}")
    return "; ".join(out)


def _display_rows(c: Comparison, cells: bool, rows_idx: Optional[Sequence[int] | np.ndarray] = None
                  ) -> list[dict[str, Any]]:
    """Rows for people (formatted cells), for ``rows_idx`` (default: every row in table order)."""
    rows = []
    for i in (range(len(c)) if rows_idx is None else rows_idx):
        row: dict[str, Any] = {"rank": int(c.rank[i]), "run": c.run[i], "checkpoint": c.checkpoint[i]}
        for j, s in enumerate(c.specs):
            text = _cell_text(c, i, j)
            if cells:
                css = "bad" if c.flagged[i, j] else "best" if c.best[i, j] else ""
                row[s.label] = Cell(text, css=css, title=_cell_title(c, i, j))
            else:
                row[s.label] = text
        if i == c.baseline:
            row["run"] = f"{c.run[i]} (baseline)"
        rows.append(row)
    return rows


def _legend_text(c: Comparison) -> str:
    goals = ", ".join(f"{s.label}: {'lower' if s.goal == 'min' else 'higher'} is better"
                      + (f", limit {fmt(s.limit)}" if s.limit is not None else "")
                      + (", not ranked" if s.weight == 0 else "")
                      for s in c.specs if s.goal != "none")
    return (f"Cells: value (delta vs the baseline) [@logged step when it differs from the checkpoint]; "
            f"★ best in the column; ▲ flagged (regressed beyond its tolerance, or over its limit). {goals}.")


def _write_strict_json(data: Any, path: Path) -> Path:
    """Strict JSON in one pass (non-finite numbers are already None here; ``allow_nan=False`` proves it).
    :func:`trackdiag.report.folder.write_json` cleans arbitrary data in three passes, too slow for 100 000
    cells."""
    import json

    from ..report.folder import json_default

    # Indented for people when small; compact above that (json's C encoder only runs without indent).
    indent = 1 if len(data.get("rows", ())) <= 200 else None
    text = json.dumps(data, indent=indent, allow_nan=False, default=json_default)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def write_csv(c: Comparison, path: Path) -> Path:
    rows = flat_rows(c)
    return write_rows_csv(path, rows, columns=list(rows[0]) if rows else ["rank"])


def write_markdown(c: Comparison, path: Path, figures: Sequence[Figure]) -> Path:
    order = np.argsort(c.rank, kind="stable")
    lines = ["# Checkpoint comparison", ""]
    lines += [f"- {md_text(v)}" for v in c.verdict] + [""]
    lines += ["## Ranking", ""]
    lines += [f"- {md_text(c.reasons[i])}" for i in order] + [""]
    lines += ["## Table", "", md_text(_legend_text(c)), ""]
    cols = ["rank", "run", "checkpoint"] + [s.label for s in c.specs]
    lines.append("| " + " | ".join(md_text(x) for x in cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for row in _display_rows(c, cells=False):  # cells are our own numbers and marks: only names need escaping
        lines.append("| " + " | ".join(md_text(row[x]) if x in ("run", "checkpoint") else str(row[x])
                                       for x in cols) + " |")
    lines.append("")
    if figures:
        lines += ["## Trends", "", md_text(HOW_TO_READ), ""]
        lines += [f"![{md_text(f.title)}]({f.path})" for f in figures] + [""]
    lines += ["## Runs", ""]
    for r in c.runs:
        tags = ", ".join(f"{md_text(k)}={md_text(v)}" for k, v in sorted(r.tags.items()))
        lines.append(f"- **{md_text(r.name)}** ({md_text(r.source)} {md_text(r.run_id)})"
                     + (f": {tags}" if tags else ""))
    if c.notes:
        lines += ["", "## Notes", ""] + [f"- {md_text(n)}" for n in c.notes]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def comparison_verdicts(c: Comparison) -> list[Verdict]:
    """The best checkpoint (``info``) and every metric that got worse (``bad``), as verdicts."""
    order = np.argsort(c.rank, kind="stable")
    verdicts = [Verdict(code="best_checkpoint", title=f"Best: {c.row_label(int(order[0]))}",
                        evidence={s.label: fmt(c.values[int(order[0]), j]) for j, s in enumerate(c.specs)
                                  if s.weight > 0},
                        fix="Use this checkpoint (see the ranking for the reason).", severity="info")]
    for o in c.onsets:
        verdicts.append(Verdict(code="got_worse", title=f"{o['run']}: {o['metric']} got worse",
                                evidence={"since": o["checkpoint"], "value there": fmt(o["value"]),
                                          "baseline": fmt(o["baseline"])},
                                fix="Compare the checkpoints before and after this step; the trend plot "
                                    "shows the change.", severity="bad"))
    return verdicts


def write_html(c: Comparison, out_dir: Path, figures: Sequence[Figure]) -> Path:
    order = np.argsort(c.rank, kind="stable")
    verdicts = comparison_verdicts(c)
    sections = [
        Section(title="Verdict", verdicts=verdicts, notes=list(c.verdict)),
        Section(title="Ranking", notes=[c.reasons[i] for i in order[:50]]
                + ([f"… {len(c) - 50} more rows in comparison.md / comparison.json"] if len(c) > 50 else [])),
        Section(title="Comparison table", notes=[_legend_text(c)] + (
                    [f"{len(c)} rows: the {HTML_ROWS} best by rank are shown; every row is in comparison.csv "
                     "and comparison.md."] if len(c) > HTML_ROWS else []),
                tables={"one row per run and checkpoint": _display_rows(
                    c, cells=True, rows_idx=None if len(c) <= HTML_ROWS else order[:HTML_ROWS])}),
    ]
    if figures:
        sections.append(Section(title="Trends", figures=list(figures)))
    sections.append(Section(title="Runs", tables={"runs": [
        {"run": r.name, "source": r.source, "id": r.run_id,
         "tags": "; ".join(f"{k}={v}" for k, v in sorted(r.tags.items()))} for r in c.runs]}))
    if c.notes:
        sections.append(Section(title="Notes", notes=list(c.notes)))
    return write_report(out_dir, sections, title="trackdiag checkpoint comparison", embed_images=True,
                        kind="comparison")


def save_pdf_page(pdf: Any, fig: Any) -> None:
    """Add ``fig`` to the PDF. When every text on it is Latin-1, the PDF's 14 core fonts are used: no glyph
    embedding, about 10× faster for text-heavy pages; other text (Cyrillic run names …) embeds DejaVu."""
    import matplotlib
    from matplotlib.text import Text

    core = True
    for t in fig.findobj(Text):
        text = t.get_text().translate(_TYPOGRAPHIC)
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            core = False
            break
        t.set_text(text)
    if not core:
        pdf.savefig(fig)
        return
    import logging

    quiet = logging.getLogger("matplotlib.font_manager")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "Failed to find font weight normal for Courier": the medium one is right
    try:
        with matplotlib.rc_context({"pdf.use14corefonts": True}):
            pdf.savefig(fig)
    finally:
        quiet.setLevel(level)


def _text_page(pdf: Any, title: str, lines: Sequence[str], *, wrap: bool = True, landscape: bool = False
               ) -> None:
    """Monospace text pages (one text object per page: fast, and searchable in the PDF)."""
    from ..plots import new_figure

    wrapped: list[str] = []
    for line in lines:
        wrapped += (textwrap.wrap(line, 110) or [""]) if wrap else [line]
    per_page = 44 if landscape else 60
    size = (11.69, 8.27) if landscape else (8.27, 11.69)
    longest = max((len(x) for x in wrapped), default=80)
    font = min(7.5, 7.5 * 150 / max(longest, 1)) if landscape else 7.5
    for start in range(0, max(1, len(wrapped)), per_page):
        fig = new_figure(*size)
        fig.set_layout_engine("none")
        fig.text(0.04, 0.97, mpl_text(title), fontsize=11, weight="bold", va="top")
        fig.text(0.04, 0.93, mpl_text("\n".join(wrapped[start:start + per_page])), fontsize=font, va="top",
                 family="monospace", fontweight="medium")
        save_pdf_page(pdf, fig)


_A4 = (8.27, 11.69)


def _first_page(pdf: Any, c: Comparison, key: Optional[tuple[str, np.ndarray]]) -> None:
    """Page 1, A4 portrait: the verdict in large type (best checkpoint, what got worse), then the key figure
    (the trend of the first ranked metric) across the page's width."""
    from ..plots import new_figure

    fig = new_figure(*_A4)
    fig.set_layout_engine("none")
    fig.text(0.06, 0.965, "trackdiag checkpoint comparison", fontsize=15, weight="bold", va="top")
    lines: list[str] = []
    for line in c.verdict[:6]:
        lines += textwrap.wrap(mpl_text(line), 78) or [""]
    fig.text(0.06, 0.925, "\n".join(lines[:14]), fontsize=10.5, va="top", linespacing=1.4)
    if key is not None:
        label, rgb = key
        h, w = rgb.shape[:2]
        width = 0.88
        height = min(0.52, width * (h / w) * _A4[0] / _A4[1])
        top = 0.925 - 0.0175 * min(len(lines), 14) - 0.05  # just below the verdict
        ax = fig.add_axes((0.06, top - height, width, height))
        ax.imshow(rgb, interpolation="antialiased")
        ax.set_axis_off()
        fig.text(0.06, top + 0.01, mpl_text(f"Key figure: {label}"), fontsize=10, weight="bold")
    save_pdf_page(pdf, fig)


def _plot_pages(pdf: Any, plots: Sequence[tuple[str, np.ndarray]]) -> None:
    """The trend plots, two per A4 portrait page, each scaled to the page's width."""
    from ..plots import new_figure

    for start in range(0, len(plots), 2):
        fig = new_figure(*_A4)
        fig.set_layout_engine("none")
        for slot, (_label, rgb) in enumerate(plots[start:start + 2]):
            ax = fig.add_axes((0.05, 0.52 - 0.47 * slot, 0.9, 0.43))
            ax.imshow(rgb, interpolation="antialiased")
            ax.set_axis_off()
        save_pdf_page(pdf, fig)


def _table_pages(pdf: Any, c: Comparison, max_rows: int) -> None:
    """The table (best rows first) as monospace text pages: ``*`` best, ``!`` flagged."""
    order = np.argsort(c.rank, kind="stable")[:max_rows]
    rows = _display_rows(c, cells=False, rows_idx=order)
    cols = ["rank", "run", "checkpoint"] + [s.label for s in c.specs]
    per_cols = 5
    for col0 in range(3, max(4, len(cols)), per_cols):
        use = cols[:3] + cols[col0:col0 + per_cols]
        text = [[textwrap.shorten(str(r[k]), 26, placeholder="~")
                 for k in use] for r in rows]
        head = [textwrap.shorten(k, 26, placeholder="~") for k in use]
        widths = [max(len(h), *(len(t[k]) for t in text)) if text else len(h) for k, h in enumerate(head)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
        lines += ["  ".join(x.ljust(w) for x, w in zip(t, widths, strict=True)) for t in text]
        title = (f"Comparison table, best first ({len(rows)} of {len(c)} rows; columns {col0 - 2}–"
                 f"{min(len(cols), col0 + per_cols) - 3} of {len(cols) - 3}). * best in column, ! flagged")
        _text_page(pdf, title, lines, wrap=False, landscape=True)


def write_outputs(c: Comparison, out_dir: str | Path, *, formats: Sequence[str] = FORMATS, plots: bool = True,
                  pdf_rows: int = 80, config: Optional[Mapping[str, Any]] = None
                  ) -> tuple[dict[str, Path], dict[str, np.ndarray]]:
    """Write the report folder. Returns ``(files, images)``: format → path, and metric label → trend plot
    (``H×W×3`` uint8, for the trackers)."""
    from ..plots import figure_to_rgb

    bad = [f for f in formats if f not in FORMATS]
    if bad:
        from ..errors import ConfigError

        raise ConfigError(f"unknown output format(s) {bad}; choose from {list(FORMATS)}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    images: dict[str, np.ndarray] = {}
    figures: list[Figure] = []
    pdf = None
    if "pdf" in formats:
        from matplotlib.backends.backend_pdf import PdfPages

        files["pdf"] = out / "comparison.pdf"
        pdf = PdfPages(files["pdf"])
    rendered: list[tuple[str, np.ndarray]] = []
    try:
        if plots:
            (out / "plots").mkdir(exist_ok=True)
            for stale in (out / "plots").glob("trend_*.png"):  # from an earlier comparison in this folder
                stale.unlink()
            from ..plots import save_rgb_png

            for label, cols in trend_groups(c):
                fig = trend_figure(c, cols[0], extra=cols[1:])
                rgb = figure_to_rgb(fig)
                name = "trend_" + "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in label) + ".png"
                save_rgb_png(rgb, out / "plots" / name)
                images[label] = rgb
                figures.append(Figure(path=f"plots/{name}", title=label, how_to_read=HOW_TO_READ))
                rendered.append((label, rgb))
        if pdf is not None:  # verdict and key figure first, then the reasons, the plots and the table
            order = np.argsort(c.rank, kind="stable")
            _first_page(pdf, c, rendered[0] if rendered else None)
            _text_page(pdf, "Why this ranking", [c.reasons[i] for i in order[:20]] + [""] + c.notes[:40])
            _plot_pages(pdf, rendered[1:])
            _table_pages(pdf, c, pdf_rows)
    finally:
        if pdf is not None:
            pdf.close()
    if "csv" in formats:
        files["csv"] = write_csv(c, out / "comparison.csv")
    if "json" in formats:
        files["json"] = _write_strict_json(to_json(c, config), out / "comparison.json")
    if "md" in formats:
        files["md"] = write_markdown(c, out / "comparison.md", figures)
    if "html" in formats:
        files["html"] = write_html(c, out, figures)
    return files, images
