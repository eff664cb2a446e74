"""Report tables with every row: the full table as CSV next to the page, the HTML paged in collapsed blocks.

:func:`table_block` writes ``tables/<slug>.csv`` (every row, through :func:`trackdiag.io.tables.write_csv`)
under the report folder and returns the HTML: the first ``page_rows`` rows shown, the next ones in collapsed
``<details>`` pages of ``page_rows`` each, up to ``max_html_rows`` rows on the page; beyond that the page
says how many rows only the CSV holds, and it always links the CSV.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..io.tables import union_columns, write_csv

__all__ = ["table_slug", "unique_slug", "table_block"]


def table_slug(*parts: str) -> str:
    """A file-name-safe slug of ``parts`` (letters, digits, ``_``, ``-``; at most 80 characters).

    >>> table_slug("Pixel: anomalies", "../x y")
    'pixel_anomalies__x_y'
    """
    text = "__".join(re.sub(r"[^a-z0-9_-]+", "_", p.lower()).strip("_-") for p in parts)
    return (text.strip("_") or "table")[:80]


def unique_slug(slug: str, used: set[str]) -> str:
    """``slug``, or ``slug_2``, ``slug_3``… when already in ``used`` (which gets the result added)."""
    out, n = slug, 2
    while out in used:
        out, n = f"{slug}_{n}", n + 1
    used.add(out)
    return out


def _plain(value: Any) -> Any:
    """A report cell's value for CSV (a styled :class:`~trackdiag.report.folder.Cell` gives its value)."""
    return getattr(value, "value", value) if type(value).__name__ == "Cell" else value


def table_block(root: Path, slug: str, rows: Sequence[Mapping[str, Any]], *,
                td: Callable[[Any], str], page_rows: int = 500, max_html_rows: int = 5000) -> str:
    """Write every row of ``rows`` to ``root/tables/<slug>.csv`` and return the table's HTML (``td`` renders
    one cell as ``<td>…</td>``); the caller keeps slugs unique within one report."""
    if not rows:
        return "<p><em>empty</em></p>"
    folder = root / "tables"
    path = folder / f"{slug}.csv"
    cols = union_columns(rows)
    write_csv(path, [{k: _plain(v) for k, v in r.items()} for r in rows], columns=cols)
    rel = html.escape(f"tables/{path.name}", quote=True)
    head = "<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in cols) + "</tr>"

    def page(chunk: Sequence[Mapping[str, Any]]) -> str:
        body = "".join("<tr>" + "".join(td(r.get(c, "")) for c in cols) + "</tr>" for r in chunk)
        return f"<table>{head}{body}</table>"

    shown = min(len(rows), max(page_rows, max_html_rows))
    parts = [page(rows[:page_rows])]
    for start in range(page_rows, shown, page_rows):
        stop = min(start + page_rows, shown)
        parts.append(f"<details><summary>rows {start + 1}–{stop} of {len(rows)}</summary>"
                     f"{page(rows[start:stop])}</details>")
    note = f" ({len(rows) - shown} rows only in the CSV)" if shown < len(rows) else ""
    parts.append(f"<p class='csv'><a href='{rel}'>all {len(rows)} rows as CSV</a>{html.escape(note)}</p>")
    return "".join(parts)
