"""Text logs: CSV (one column per series) and JSON lines (one object per step)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from ...errors import InputFileError
from ._common import STEP_KEYS, ScalarSeries, _Collector, _norm, _number, _read_text, _truncated


def _step_key(keys: Sequence[str]) -> Optional[str]:
    lower = {_norm(k): k for k in keys}
    for name in STEP_KEYS:
        if name in lower:
            return lower[name]
    return None


def read_csv(path: str | Path, *, allow_truncated: bool = False,
             warnings: Optional[list[str]] = None) -> dict[str, ScalarSeries]:
    """Numeric columns of a CSV log (wide: one column per series; or long: ``key``/``value``/``step``).

    The step column is one of :data:`STEP_KEYS` (else the row number). Empty cells are skipped, so sparse
    logs (Lightning's ``metrics.csv``) work.
    """
    path = Path(path)
    warnings = warnings if warnings is not None else []
    text = _read_text(path)
    if not text.strip():
        raise InputFileError(f"{path}: the CSV file has no header and no rows.")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if r]
    if not body:
        raise InputFileError(f"{path}: the CSV file has a header but no rows.")
    ends_cleanly = text.endswith("\n")
    for i, row in enumerate(body):
        if len(row) != len(header):
            last = i == len(body) - 1
            if last and not ends_cleanly and len(row) < len(header):
                _truncated(str(path), f"the last row (line {i + 2}) is cut off", allow_truncated, warnings, i)
                body = body[:-1]
                break
            raise InputFileError(f"{path}: line {i + 2} has {len(row)} fields, the header has {len(header)}.")
    col = _Collector()
    lower = [_norm(h) for h in header]
    key_col = next((lower.index(k) for k in ("key", "metric", "tag", "name") if k in lower), None)
    val_col = lower.index("value") if "value" in lower else None
    step_name = _step_key(header)
    step_col = header.index(step_name) if step_name is not None else None
    if step_col is None:
        warnings.append(f"{path}: no step column ({', '.join(STEP_KEYS)}); the row number is the step.")
    for i, row in enumerate(body):
        step = i
        if step_col is not None:
            s = _number(row[step_col])
            if s is None or not math.isfinite(s):
                continue
            step = int(s)
        if key_col is not None and val_col is not None:
            v = _number(row[val_col])
            if v is not None:
                col.add(row[key_col].strip(), step, v)
            continue
        for j, cell in enumerate(row):
            if j == step_col:
                continue
            v = _number(cell)
            if v is not None:
                col.add(header[j], step, v)
    return col.series()


def _flatten(obj: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            yield from _flatten(v, name + "/")
        else:
            yield name, v


def read_jsonl(path: str | Path, *, allow_truncated: bool = False,
               warnings: Optional[list[str]] = None) -> dict[str, ScalarSeries]:
    """Numeric fields of a JSON-lines log (one object per line; nested objects become ``a/b`` keys).

    The step is one of :data:`STEP_KEYS` (else the line number).
    """
    path = Path(path)
    warnings = warnings if warnings is not None else []
    text = _read_text(path)
    lines = text.splitlines()
    numbered = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip()]
    if not numbered:
        raise InputFileError(f"{path}: the JSONL file has no records.")
    col = _Collector()
    for k, (lineno, line) in enumerate(numbered):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            if k == len(numbered) - 1 and not text.endswith("\n"):
                _truncated(str(path), f"the last line ({lineno}) is cut off", allow_truncated, warnings, k)
                break
            raise InputFileError(f"{path}: line {lineno} is not valid JSON ({exc.msg}).") from None
        if not isinstance(rec, Mapping):
            raise InputFileError(f"{path}: line {lineno} is a JSON {type(rec).__name__}, expected an object.")
        flat = dict(_flatten(rec))
        step_name = _step_key(list(flat))
        step = k
        if step_name is not None:
            s = _number(flat.pop(step_name))
            if s is None or not math.isfinite(s):
                continue
            step = int(s)
        for key, value in flat.items():
            v = _number(value) if not isinstance(value, str) else None
            if v is not None:
                col.add(key, step, v)
    return col.series()


