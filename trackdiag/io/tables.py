"""The one home of row tables written as CSV: the union of the rows' columns, one spelling of "no value".

Every CSV trackdiag writes (``events.csv``, ``comparison.csv``, ``per_image.csv``, the per-image tables of the
diagnose sections) goes through :func:`write_csv`, so a value that could not be measured reads the same
everywhere: ``None``, NaN and ±Inf are written as an **empty cell** (spreadsheets and ``pandas.read_csv``
read it back as missing/NaN).

>>> union_columns([{"a": 1, "b": 2}, {"c": 3, "a": 4}])
['a', 'b', 'c']
>>> [csv_cell(v) for v in (None, float("nan"), float("inf"), 1.5, "x")]
['', '', '', 1.5, 'x']
>>> csv_cell(0.123456789, float_format=".3g")
'0.123'
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Optional

__all__ = ["union_columns", "csv_cell", "write_csv"]


def union_columns(rows: Iterable[Mapping[str, Any]], *, first: Sequence[str] = ()) -> list[str]:
    """Every key of ``rows``, in order of first appearance, after the names in ``first``."""
    cols: list[str] = list(first)
    seen = set(cols)
    for row in rows:
        for key in row:
            if key not in seen:
                seen.add(key)
                cols.append(key)
    return cols


def csv_cell(value: Any, *, float_format: Optional[str] = None) -> Any:
    """A value as a CSV cell: ``""`` for None, NaN and ±Inf; floats formatted with ``float_format`` if
    given."""
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return format(value, float_format) if float_format else value
    return value


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]], *, columns: Optional[Sequence[str]] = None,
              float_format: Optional[str] = None,
              extra: Literal["raise", "ignore"] = "raise") -> Path:
    """Write ``rows`` to ``path`` (parent folders created) and return the path.

    ``columns``: the header, default the union of the rows' keys (:func:`union_columns`); a row without a
    column gets an empty cell; ``extra="ignore"`` drops keys outside ``columns`` (default: an error).
    Cells go through :func:`csv_cell` (missing values as empty cells, ``float_format`` for floats).
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = list(columns) if columns is not None else union_columns(rows)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction=extra)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: csv_cell(v, float_format=float_format) for k, v in row.items()})
    return out
