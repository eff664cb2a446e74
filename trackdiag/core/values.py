"""Conversion of diagnostic values, once, in the core, the same way for every backend.

* metric keys become ``trackdiag/<analyzer>/<key>``; characters outside ``[A-Za-z0-9_./ -]`` become ``_``
  (valid on MLflow, W&B and TensorBoard). Seed keys such as ``E2f_over_Ef`` keep their case.
* values: bool → 0.0/1.0, ints, floats, numpy and 0-d torch scalars → float. NaN and ±Inf are kept (they mean
  "could not be measured" and are never dropped). Anything else is a text value, not a metric.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["ROOT", "metric_key", "to_float", "split_values", "table_rows", "finite_mean", "column_means"]

ROOT = "trackdiag"
_BAD = re.compile(r"[^A-Za-z0-9_./ \-]")


def metric_key(analyzer: str, key: str) -> str:
    """The tracker key of an analyzer's metric: ``trackdiag/<analyzer>/<key>``."""
    return f"{ROOT}/{_BAD.sub('_', analyzer)}/{_BAD.sub('_', key)}"


def to_float(value: Any) -> float | None:
    """A float for numeric values (bool included), ``None`` for anything that is not a number."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 1) == 0:
        try:
            out = item()
        except (TypeError, ValueError, RuntimeError):
            return None
        return to_float(out) if not isinstance(out, (str, bytes)) else None
    return None


def split_values(values: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """Split a mapping into numeric metrics and text values (``str(value)``)."""
    metrics: dict[str, float] = {}
    texts: dict[str, str] = {}
    for key, value in values.items():
        f = to_float(value)
        if f is None:
            texts[key] = str(value)
        else:
            metrics[key] = f
    return metrics, texts


def table_rows(rows: Any) -> list[dict[str, Any]]:
    """Rows with JSON-friendly cells: numbers as float/int (NaN → None), everything else as str."""
    out = []
    for row in rows:
        clean: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, (bool, int)) and not isinstance(value, bool):
                clean[str(key)] = int(value)
                continue
            f = to_float(value)
            if f is not None:
                clean[str(key)] = f if math.isfinite(f) else None
            elif value is None:
                clean[str(key)] = None
            elif isinstance(value, (list, tuple)):
                clean[str(key)] = ",".join(str(v) for v in value)
            else:
                clean[str(key)] = str(value)
        out.append(clean)
    return out


def finite_mean(values: Any) -> float:
    """The NaN-aware batch mean: the mean of the finite entries of ``values`` (any shape), NaN when none is.

    The one reduction of per-sample values to a batch metric (analyzers, the diagnose sections).

    >>> finite_mean([1.0, float("nan"), 3.0, float("inf")]), math.isnan(finite_mean([float("nan")]))
    (2.0, True)
    """
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    return float(finite.mean()) if finite.size else float("nan")


def column_means(rows: Any) -> dict[str, float]:
    """:func:`finite_mean` of every float column of a list of row dicts (columns named by the first row;
    a row without the column counts as NaN)."""
    if not rows:
        return {}
    return {key: finite_mean([r.get(key, math.nan) for r in rows])
            for key, value in rows[0].items() if isinstance(value, float)}
