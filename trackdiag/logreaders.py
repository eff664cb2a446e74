"""Read loss series from training logs: TensorBoard, CSV, JSONL, an MLflow run, a W&B offline run.

:func:`read_loss_log` is the one entry point: it recognises the format, lists the numeric series, picks the
loss (``tag=`` or a guess, see :func:`guess_loss_tag`) and a timestep series when there is one
(``timestep``/``timesteps``/``t``), and returns a :class:`LossLog` with the two aligned on the step.

Problems raise :class:`~trackdiag.errors.InputFileError` with the path and the fix: a missing or empty
file, a corrupt record, no numeric series, no loss series (the message lists what *is* there). A log whose
last record is cut off (the run crashed or is still writing) is refused unless ``allow_truncated=True``:
then the complete records are read and the cut is noted in :attr:`LossLog.warnings`.

:func:`read_wandb_offline` parses a W&B offline run folder (the ``.wandb`` record log) with wandb's own
protobuf classes; tests of the W&B backend reuse it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import struct
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .errors import InputFileError, MissingDependencyError
from .series import Series

__all__ = [
    "ScalarSeries", "LossLog", "WandbRun", "LOSS_TAG_PREFERENCE", "TIMESTEP_TAGS", "guess_loss_tag",
    "guess_timestep_tag", "read_loss_log", "read_scalars", "read_tensorboard", "read_csv", "read_jsonl",
    "read_mlflow", "read_wandb_offline", "wait_for_wandb_run", "iter_wandb_records", "detect_format",
    "WANDB_STEP_KEYS", "wandb_step_key", "Series",
]

#: Loss names tried first, in order (compared case-insensitively).
LOSS_TAG_PREFERENCE = ("train_loss", "train/loss", "loss/train", "training_loss", "train/loss_step",
                       "train_loss_step", "loss", "train/loss_epoch", "train_loss_epoch")
#: Timestep series names (compared case-insensitively, also as the last ``/``-segment).
TIMESTEP_TAGS = ("timestep", "timesteps", "t")
#: Step columns/keys of CSV and JSONL logs, in order.
STEP_KEYS = ("step", "global_step", "_step", "trainer/global_step", "iteration", "iter")
#: The step of a W&B history row, the one axis every reader uses: trackdiag's W&B backend writes the trainer's
#: step as ``trackdiag/step`` (it never passes ``step=`` to ``run.log``); other runs have W&B's own ``_step``.
WANDB_STEP_KEYS = ("trackdiag/step", "_step")
_EVAL_WORDS = re.compile(r"(^|[/_.\-])(val|valid|validation|eval|test)([/_.\-]|$)", re.IGNORECASE)


#: The one series type (:class:`trackdiag.series.Series`), under the name this module always gave it.
ScalarSeries = Series


@dataclass
class LossLog:
    """The loss series of one log, with its timesteps aligned on the steps (NaN where none was logged)."""

    source: str
    format: str
    tag: str
    steps: np.ndarray
    values: np.ndarray
    timesteps: Optional[np.ndarray] = None
    timestep_tag: Optional[str] = None
    tags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------------
# Series helpers
# ------------------------------------------------------------------------------------------------------
class _Collector:
    """Accumulates ``(step, value)`` points per key; duplicates keep the last value written."""

    def __init__(self) -> None:
        self.points: dict[str, dict[int, float]] = {}
        self.duplicates: dict[str, int] = {}

    def add(self, key: str, step: int, value: float) -> None:
        series = self.points.setdefault(key, {})
        if step in series:
            self.duplicates[key] = self.duplicates.get(key, 0) + 1
        series[int(step)] = float(value)

    def series(self) -> dict[str, ScalarSeries]:
        out = {}
        for key, pts in self.points.items():
            if not pts:
                continue
            steps = np.fromiter(pts.keys(), dtype=np.int64, count=len(pts))
            values = np.fromiter(pts.values(), dtype=np.float64, count=len(pts))
            order = np.argsort(steps, kind="stable")
            out[key] = ScalarSeries(steps[order], values[order], self.duplicates.get(key, 0))
        return out


def _number(value: Any) -> Optional[float]:
    """A float for JSON/CSV numbers (NaN/Inf included), None for anything else (bools included)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _norm(tag: str) -> str:
    return tag.strip().lower()


def guess_loss_tag(tags: Iterable[str]) -> Optional[str]:
    """The training-loss series among ``tags``, or None.

    Order: the names in :data:`LOSS_TAG_PREFERENCE`; then a tag whose last segment is one of them; then
    any tag containing ``loss`` that is not a validation/eval/test series, preferring ones with ``train``,
    then the shortest name.
    """
    tags = list(tags)
    by_norm = {_norm(t): t for t in tags}
    for name in LOSS_TAG_PREFERENCE:
        if name in by_norm:
            return by_norm[name]
    for name in LOSS_TAG_PREFERENCE:
        for t in tags:
            if _norm(t).rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1] and not _EVAL_WORDS.search(t):
                return t
    cands = [t for t in tags if "loss" in _norm(t) and not _EVAL_WORDS.search(t)]
    if not cands:
        return None
    cands.sort(key=lambda t: (0 if "train" in _norm(t) else 1, len(t), t))
    return cands[0]


def guess_timestep_tag(tags: Iterable[str]) -> Optional[str]:
    """A timestep series among ``tags`` (``timestep``, ``timesteps``, ``t``, also as the last segment)."""
    tags = list(tags)
    for name in TIMESTEP_TAGS:
        for t in tags:
            if _norm(t) == name:
                return t
    for name in TIMESTEP_TAGS:
        for t in tags:
            if _norm(t).rsplit("/", 1)[-1] == name:
                return t
    return None


def _resolve_tag(tag: str, tags: Sequence[str], source: str) -> str:
    if tag in tags:
        return tag
    for t in tags:
        if _norm(t) == _norm(tag):
            return t
    raise InputFileError(f"{source}: no series named {tag!r}. Available numeric series: "
                         f"{_listing(tags)}. Pass one of them with --loss-tag.")


def _listing(tags: Sequence[str], limit: int = 40) -> str:
    shown = ", ".join(repr(t) for t in sorted(tags)[:limit])
    more = f" … ({len(tags) - limit} more)" if len(tags) > limit else ""
    return (shown + more) if tags else "none"


def _select(series: Mapping[str, ScalarSeries], *, source: str, fmt: str, tag: Optional[str],
            timestep_tag: Optional[str], warnings: list[str]) -> LossLog:
    tags = sorted(series)
    if not tags:
        raise InputFileError(f"{source}: the {fmt} log holds no numeric series (empty, or nothing logged "
                             "yet).")
    if tag:
        loss_tag = _resolve_tag(tag, tags, source)
    else:
        guessed = guess_loss_tag(tags)
        if guessed is None:
            raise InputFileError(f"{source}: no loss series found in the {fmt} log. Available numeric "
                                 f"series: {_listing(tags)}. Pass the loss name with --loss-tag.")
        loss_tag = guessed
    loss = series[loss_tag]
    if loss.steps.size == 0:
        raise InputFileError(f"{source}: the loss series {loss_tag!r} is empty.")
    if loss.duplicates:
        warnings.append(f"{source}: {loss.duplicates} {loss_tag!r} points were logged again at an existing "
                        "step (a resumed run?); the last value of each step was kept.")
    t_tag = _resolve_tag(timestep_tag, tags, source) if timestep_tag else guess_timestep_tag(
        [t for t in tags if t != loss_tag])
    timesteps = None
    if t_tag is not None:
        ts = series[t_tag]
        idx = np.searchsorted(ts.steps, loss.steps)
        idx_c = np.clip(idx, 0, max(ts.steps.size - 1, 0))
        hit = (idx < ts.steps.size) & (ts.steps[idx_c] == loss.steps) if ts.steps.size else np.zeros(
            loss.steps.size, bool)
        timesteps = np.where(hit, ts.values[idx_c] if ts.steps.size else np.nan, np.nan)
        if not hit.any():
            warnings.append(f"timestep series {t_tag!r} shares no step with {loss_tag!r}; not used.")
            timesteps, t_tag = None, None
    return LossLog(source=source, format=fmt, tag=loss_tag, steps=loss.steps, values=loss.values,
                   timesteps=timesteps, timestep_tag=t_tag, tags=tags, warnings=warnings)


def _truncated(source: str, what: str, allow: bool, warnings: list[str], complete: int) -> None:
    msg = (f"{source}: {what} (the run crashed or is still writing); {complete} complete records before "
           "the cut")
    if not allow:
        raise InputFileError(msg + ". Pass --allow-truncated-logs (allow_truncated=True) to read them.")
    warnings.append(msg + " were read.")


def _read_text(path: Path) -> str:
    """The UTF-8 text of a log file (a BOM is dropped), with a clear error when it cannot be read."""
    _check_file(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read as UTF-8 text ({exc}).") from None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputFileError(f"{path}: no such file or folder.")
    if path.is_file() and path.stat().st_size == 0:
        raise InputFileError(f"{path}: the file is empty.")


# ------------------------------------------------------------------------------------------------------
# TensorBoard
# ------------------------------------------------------------------------------------------------------
def _tfrecord_check(path: Path) -> tuple[int, Optional[str]]:
    """Walk the TFRecord framing of an event file: (complete records, problem or None).

    The length header's masked CRC-32C is checked (it tells corruption from a cut); payload CRCs are left
    to TensorBoard's reader.
    """
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    data = path.read_bytes()
    pos, count = 0, 0
    while pos < len(data):
        if pos + 12 > len(data):
            return count, f"truncated: the record header at byte {pos} is incomplete"
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        (crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked_crc32c(data[pos:pos + 8]) != crc:
            return count, f"corrupt: bad record header at byte {pos} (not a TensorBoard event file?)"
        end = pos + 12 + length + 4
        if end > len(data):
            return count, f"truncated: the record at byte {pos} ends after the end of the file"
        pos, count = end, count + 1
    return count, None


def read_tensorboard(path: str | Path, *, allow_truncated: bool = False,
                     warnings: Optional[list[str]] = None) -> dict[str, ScalarSeries]:
    """Scalar series of a TensorBoard log folder (searched recursively) or one event file.

    Series of event files in sub-folders get the sub-folder as a prefix (``sub/tag``) when there are
    several folders. Uses tensorboard's ``EventAccumulator`` (scalars and scalar tensors).
    """
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.util import tensor_util
    except ImportError:  # pragma: no cover - optional dependency
        raise MissingDependencyError("tensorboard", "tensorboard", "reading TensorBoard logs") from None
    root = Path(path)
    _check_file(root)
    warnings = warnings if warnings is not None else []
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("events.out.tfevents.*") if p.is_file())
    if not files:
        raise InputFileError(f"{root}: no TensorBoard event files (events.out.tfevents.*) below this folder.")
    for f in files:
        if f.stat().st_size == 0:
            warnings.append(f"{f}: empty event file, skipped.")
            continue
        count, problem = _tfrecord_check(f)
        if problem is not None:
            if problem.startswith("corrupt"):
                raise InputFileError(f"{f}: {problem}.")
            _truncated(str(f), f"event file {problem}", allow_truncated, warnings, count)
    base = root if root.is_dir() else root.parent
    dirs = sorted({f.parent for f in files})
    col = _Collector()
    for d in dirs:
        prefix = "" if len(dirs) == 1 or d == base else d.relative_to(base).as_posix() + "/"
        target = str(root) if root.is_file() else str(d)
        acc = EventAccumulator(target, size_guidance={"scalars": 0, "tensors": 0})
        try:
            acc.Reload()
        except Exception as exc:  # tensorboard raises assorted errors on damaged files
            raise InputFileError(f"{d}: TensorBoard could not read the events ({type(exc).__name__}: "
                                 f"{exc}).") \
                from None
        tags = acc.Tags()
        for tag in tags.get("scalars", []):
            for ev in acc.Scalars(tag):
                col.add(prefix + tag, ev.step, ev.value)
        for tag in tags.get("tensors", []):
            for ev in acc.Tensors(tag):
                try:
                    arr = tensor_util.make_ndarray(ev.tensor_proto)
                except Exception:
                    break
                if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
                    break
                col.add(prefix + tag, ev.step, float(arr.reshape(-1)[0]))
    return col.series()


# ------------------------------------------------------------------------------------------------------
# CSV / JSONL
# ------------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------------
# MLflow
# ------------------------------------------------------------------------------------------------------
def read_mlflow(run_id: str, *, tracking_uri: Optional[str] = None, keys: Optional[Sequence[str]] = None,
                ) -> tuple[dict[str, ScalarSeries], list[str]]:
    """Metric histories of an MLflow run: ``(series for keys, every metric key of the run)``.

    ``keys=None`` fetches every metric. Uses an explicit ``MlflowClient`` (no global run state). The
    histories come from :mod:`trackdiag.compare.mlflow_bulk`: one ``SELECT`` for every key on a database
    store, bulk reads on a server (the same rows either way); a ``file:`` store reads per key.
    """
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:  # pragma: no cover - mlflow is a core dependency
        raise MissingDependencyError("mlflow", purpose="reading MLflow runs") from None
    where = f"MLflow run {run_id!r} at {tracking_uri or 'the default tracking URI'}"
    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        run = client.get_run(run_id)
    except MlflowException as exc:
        why = getattr(exc, "message", exc)
        raise InputFileError(f"{where}: cannot open the run ({why}). Check --run-id and --tracking-uri.") \
            from None
    except Exception as exc:
        raise InputFileError(f"{where}: cannot reach the tracking store ({type(exc).__name__}: "
                             f"{exc}).") from None
    all_keys = sorted(run.data.metrics)
    wanted = all_keys if keys is None else [k for k in keys if k in run.data.metrics]
    col = _Collector()
    from .compare.mlflow_bulk import bulk_reader

    uri = client.tracking_uri
    reader = bulk_reader(uri) if wanted else None
    if reader is not None:  # a database or a server: every key in one read (or one per key on a server)
        try:
            rows = reader.rows([run_id], wanted)
        except Exception as exc:
            raise InputFileError(f"{where}: cannot read the metrics ({type(exc).__name__}: {exc}).") from None
        for key in wanted:
            for _, step, _, value in sorted(rows.get(key, []), key=lambda r: (r[1], r[2])):
                col.add(key, step, value)
        return col.series(), all_keys
    for key in wanted:  # a file store: MLflow's per-key read
        try:
            history = client.get_metric_history(run_id, key)
        except MlflowException as exc:
            raise InputFileError(f"{where}: cannot read metric {key!r} ({exc}).") from None
        for m in sorted(history, key=lambda m: (m.step, m.timestamp)):
            col.add(key, m.step, m.value)
    return col.series(), all_keys


# ------------------------------------------------------------------------------------------------------
# W&B offline runs
# ------------------------------------------------------------------------------------------------------
_WB_BLOCK = 32768
_WB_HEADER = 7
_WB_IDENT = b":W&B"
_WB_MAGIC = 0xBEE1
_WB_FULL, _WB_FIRST, _WB_MIDDLE, _WB_LAST = 1, 2, 3, 4


@dataclass
class WandbRun:
    """What a W&B offline run folder holds, decoded.

    ``history``: one dict per ``run.log`` row (``_step`` included; media are the JSON dicts W&B stored,
    e.g. ``{"_type": "image-file", "path": ...}``); ``summary``/``config``: the final values; ``files``:
    paths saved with the run; ``record_counts``: records per type; ``exit_code``: None while running.
    """

    path: Path
    run_id: str = ""
    project: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)  # nested key paths become nested dicts
    config: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    record_counts: dict[str, int] = field(default_factory=dict)
    exit_code: Optional[int] = None
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)

    def series(self) -> dict[str, ScalarSeries]:
        """Numeric history series keyed by name (internal ``_``-keys left out), on :func:`wandb_step_key`'s
        axis (``trackdiag/step`` when the rows carry it, else ``_step``, else the row's position)."""
        step_key = wandb_step_key(self.history)
        col = _Collector()
        for i, row in enumerate(self.history):
            step = row.get(step_key, i) if step_key is not None else i
            if not isinstance(step, (int, float)) or isinstance(step, bool):
                continue
            for key, value in row.items():
                if key.startswith("_") or key == step_key:
                    continue
                v = _number(value) if not isinstance(value, str) else None
                if v is not None:
                    col.add(key, int(step), v)
        return col.series()


def wandb_step_key(history: Sequence[Mapping[str, Any]]) -> Optional[str]:
    """The step key of W&B history rows: the first of :data:`WANDB_STEP_KEYS` that any row carries."""
    return next((k for k in WANDB_STEP_KEYS if any(k in row for row in history)), None)


def _find_wandb_file(path: Path) -> Path:
    _check_file(path)
    if path.is_file():
        if path.suffix != ".wandb":
            raise InputFileError(f"{path}: not a W&B run file (expected run-<id>.wandb).")
        return path
    here = sorted(path.glob("*.wandb"))
    if len(here) == 1:
        return here[0]
    if len(here) > 1:
        raise InputFileError(f"{path}: several .wandb files ({', '.join(p.name for p in here)}); pass one.")
    latest = path / "latest-run"
    if latest.exists():
        return _find_wandb_file(latest.resolve())
    runs = sorted(p for p in path.glob("*run-*") if p.is_dir() and any(p.glob("*.wandb")))
    if not runs and (path / "wandb").is_dir():
        return _find_wandb_file(path / "wandb")
    if len(runs) == 1:
        return _find_wandb_file(runs[0])
    if len(runs) > 1:
        raise InputFileError(f"{path}: several W&B runs ({', '.join(p.name for p in runs)}); pass one run "
                             "folder.")
    raise InputFileError(f"{path}: no W&B run here (expected a run-<id>.wandb file or offline-run-* folder).")


def iter_wandb_records(path: str | Path, *, allow_truncated: bool = False,
                       warnings: Optional[list[str]] = None) -> Iterator[Any]:
    """Yield the ``wandb_internal_pb2.Record`` messages of a ``.wandb`` file (or a run folder).

    The file is W&B's LevelDB-style log: a 7-byte header (``:W&B``, magic 0xBEE1, version), then 32 KiB
    blocks of chunks ``crc32 (4) | length (2) | type (1) | data``; records span chunks (FIRST/MIDDLE/LAST).
    Chunk CRCs are checked (zlib CRC-32 seeded with the type byte, as W&B writes them).
    """
    try:
        from wandb.proto import wandb_internal_pb2 as pb
    except ImportError:  # pragma: no cover - optional dependency
        raise MissingDependencyError("wandb", "wandb", "reading W&B offline runs") from None
    file = _find_wandb_file(Path(path))
    warnings = warnings if warnings is not None else []
    data = file.read_bytes()
    if len(data) < _WB_HEADER:
        raise InputFileError(f"{file}: too short to be a W&B run file ({len(data)} bytes).")
    ident, magic, _version = struct.unpack("<4sHB", data[:_WB_HEADER])
    if ident != _WB_IDENT or magic != _WB_MAGIC:
        raise InputFileError(f"{file}: not a W&B run file (bad header {data[:_WB_HEADER]!r}).")
    pos, count, pending = _WB_HEADER, 0, None
    crc_seed = {t: zlib.crc32(bytes([t])) for t in range(256)}
    while pos < len(data):
        left = _WB_BLOCK - pos % _WB_BLOCK
        if left < _WB_HEADER:
            pos += left
            continue
        if pos + _WB_HEADER > len(data):
            if not data[pos:].strip(b"\x00"):
                break
            _truncated(str(file), f"the chunk header at byte {pos} is incomplete", allow_truncated, warnings,
                       count)
            return
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + _WB_HEADER])
        if kind == 0 and length == 0:
            if not data[pos:].strip(b"\x00"):
                break
            raise InputFileError(f"{file}: corrupt W&B record at byte {pos} (zero chunk type).")
        start, end = pos + _WB_HEADER, pos + _WB_HEADER + length
        if end > len(data):
            _truncated(str(file), f"the record at byte {pos} ends after the end of the file", allow_truncated,
                       warnings, count)
            return
        payload = data[start:end]
        if zlib.crc32(payload, crc_seed[kind]) & 0xFFFFFFFF != crc:
            raise InputFileError(f"{file}: corrupt W&B record at byte {pos} (checksum mismatch).")
        pos = end
        if kind == _WB_FULL:
            chunks = [payload]
        elif kind == _WB_FIRST:
            pending = [payload]
            continue
        elif kind == _WB_MIDDLE and pending is not None:
            pending.append(payload)
            continue
        elif kind == _WB_LAST and pending is not None:
            chunks, pending = pending + [payload], None
        else:
            raise InputFileError(f"{file}: corrupt W&B record at byte {pos - length - _WB_HEADER} "
                                 f"(unexpected chunk type {kind}).")
        rec = pb.Record()  # type: ignore[attr-defined]  # generated protobuf module, no stubs
        try:
            rec.ParseFromString(b"".join(chunks))
        except Exception as exc:
            raise InputFileError(f"{file}: a W&B record does not decode ({exc}).") from None
        count += 1
        yield rec
    if pending is not None:
        _truncated(str(file), "the last record is cut off", allow_truncated, warnings, count)


def _wb_path(item: Any) -> list[str]:
    nested = list(getattr(item, "nested_key", []))
    return nested if nested else [item.key]


def _wb_set(target: dict[str, Any], item: Any, value: Any) -> None:
    """Store ``value`` under the item's key path (W&B splits media and nested dicts into key paths)."""
    path = _wb_path(item)
    node = target
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def _wb_value(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def read_wandb_offline(run_dir: str | Path, *, allow_truncated: bool = False) -> WandbRun:
    """Decode a W&B offline run (its folder, the ``wandb/`` folder with one run, or the ``.wandb`` file)."""
    file = _find_wandb_file(Path(run_dir))
    out = WandbRun(path=file)
    counts: dict[str, int] = {}
    for rec in iter_wandb_records(file, allow_truncated=allow_truncated, warnings=out.warnings):
        kind = rec.WhichOneof("record_type") or "unknown"
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "history":
            row: dict[str, Any] = {}
            for it in rec.history.item:
                _wb_set(row, it, _wb_value(it.value_json))
            if "_step" not in row and rec.history.HasField("step"):
                row["_step"] = int(rec.history.step.num)
            out.history.append(row)
        elif kind == "summary":
            for it in rec.summary.update:
                _wb_set(out.summary, it, _wb_value(it.value_json))
            for it in rec.summary.remove:
                out.summary.pop(_wb_path(it)[0], None)
        elif kind == "run":
            out.run_id = rec.run.run_id or out.run_id
            out.project = rec.run.project or out.project
            for it in rec.run.config.update:
                _wb_set(out.config, it, _wb_value(it.value_json))
        elif kind == "config":
            for it in rec.config.update:
                _wb_set(out.config, it, _wb_value(it.value_json))
            for it in rec.config.remove:
                out.config.pop(_wb_path(it)[0], None)
        elif kind == "files":
            out.files.extend(f.path for f in rec.files.files)
        elif kind == "exit":
            out.exit_code = int(rec.exit.exit_code)
    out.record_counts = counts
    out.truncated = any("cut" in w or "truncated" in w or "incomplete" in w for w in out.warnings)
    # W&B stores config values as {"value": v, "desc": ...}
    out.config = {k: (v.get("value") if isinstance(v, Mapping) and "value" in v else v)
                  for k, v in out.config.items()}
    return out


def wait_for_wandb_run(run_dir: str | Path, *, timeout_s: float = 30.0, poll_s: float = 0.2) -> WandbRun:
    """Read an offline run once W&B has written all of it (its exit record), waiting up to ``timeout_s``.

    ``run.finish()`` returns before wandb-core has flushed the record log to disk, so a folder read just
    after it may still be missing records. Returns the last read (``exit_code`` None when it timed out);
    raises :class:`InputFileError` only when no readable run file appeared at all.
    """
    deadline = time.monotonic() + max(0.0, timeout_s)
    run: Optional[WandbRun] = None
    while True:
        try:
            run = read_wandb_offline(run_dir, allow_truncated=True)
            if run.exit_code is not None and not run.truncated:
                return run
        except InputFileError:
            if time.monotonic() >= deadline and run is None:
                raise
        if time.monotonic() >= deadline and run is not None:
            return run
        time.sleep(poll_s)


# ------------------------------------------------------------------------------------------------------
# The entry point
# ------------------------------------------------------------------------------------------------------
def detect_format(path: str | Path) -> str:
    """``tensorboard`` | ``csv`` | ``jsonl`` | ``wandb`` for a file or folder; raises when none fits."""
    p = Path(path)
    _check_file(p)
    if p.is_file():
        name = p.name.lower()
        if name.startswith("events.out.tfevents"):
            return "tensorboard"
        if p.suffix.lower() in (".csv", ".tsv"):
            return "csv"
        if p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            return "jsonl"
        if p.suffix.lower() == ".wandb":
            return "wandb"
        raise InputFileError(f"{p}: unsupported log file; expected a TensorBoard event file, .csv, .jsonl or "
                             ".wandb (or a folder holding them).")
    if any(p.glob("*.wandb")) or (p / "latest-run").exists() or any(p.glob("*run-*/*.wandb")) or \
            any(p.glob("wandb/*run-*/*.wandb")):
        return "wandb"
    if next(p.rglob("events.out.tfevents.*"), None) is not None:
        return "tensorboard"
    for pattern, fmt in (("*.csv", "csv"), ("*.jsonl", "jsonl"), ("*.ndjson", "jsonl")):
        found = sorted(p.rglob(pattern))
        if len(found) == 1:
            return fmt
        if len(found) > 1:
            raise InputFileError(f"{p}: several {pattern} logs ({', '.join(str(f) for f in found[:5])}); "
                                 "pass the file.")
    raise InputFileError(f"{p}: no training log found (TensorBoard events, *.csv, *.jsonl, W&B offline run). "
                         "For an MLflow run pass --run-id (and --tracking-uri).")


def read_scalars(path: str | Path, *, allow_truncated: bool = False, warnings: Optional[list[str]] = None
                 ) -> tuple[str, dict[str, ScalarSeries]]:
    """``(format, series)`` of a log file or folder (any format but MLflow)."""
    warnings = warnings if warnings is not None else []
    fmt = detect_format(path)
    p = Path(path)
    if fmt == "tensorboard":
        return fmt, read_tensorboard(p, allow_truncated=allow_truncated, warnings=warnings)
    if fmt == "wandb":
        run = read_wandb_offline(p, allow_truncated=allow_truncated)
        warnings.extend(run.warnings)
        return fmt, run.series()
    if p.is_dir():
        pattern = "*.csv" if fmt == "csv" else "*.jsonl"
        found = sorted(p.rglob(pattern)) or sorted(p.rglob("*.ndjson"))
        p = found[0]
    reader = read_csv if fmt == "csv" else read_jsonl
    return fmt, reader(p, allow_truncated=allow_truncated, warnings=warnings)


def read_loss_log(path: str | Path | None = None, *, tag: Optional[str] = None,
                  timestep_tag: Optional[str] = None, run_id: Optional[str] = None,
                  tracking_uri: Optional[str] = None, allow_truncated: bool = False) -> LossLog:
    """Read the loss series (and the timesteps when logged) from a log file/folder or an MLflow run.

    ``run_id`` selects an MLflow run (``tracking_uri`` or ``path`` as its tracking URI, else MLflow's
    default); otherwise ``path`` is a TensorBoard folder/event file, a CSV or JSONL file, or a W&B offline
    run folder. ``tag``: the loss series (default: :func:`guess_loss_tag`); ``timestep_tag``: default
    :func:`guess_timestep_tag`.
    """
    warnings: list[str] = []
    if run_id:
        uri = tracking_uri or (str(path) if path is not None else None)
        if uri is not None and "://" not in uri and Path(uri).suffix == ".db":
            uri = f"sqlite:///{Path(uri).resolve()}"
        _, all_keys = read_mlflow(run_id, tracking_uri=uri, keys=[])
        source = f"mlflow:{uri or 'default'}#{run_id}"
        if not all_keys:
            raise InputFileError(f"{source}: the run has no metrics.")
        loss_tag = _resolve_tag(tag, all_keys, source) if tag else guess_loss_tag(all_keys)
        if loss_tag is None:
            raise InputFileError(f"{source}: no loss series found. Available metrics: {_listing(all_keys)}. "
                                 "Pass the loss name with --loss-tag.")
        t_tag = _resolve_tag(timestep_tag, all_keys, source) if timestep_tag else guess_timestep_tag(
            [k for k in all_keys if k != loss_tag])
        series, _ = read_mlflow(run_id, tracking_uri=uri, keys=[k for k in (loss_tag, t_tag) if k])
        log = _select(series, source=source, fmt="mlflow", tag=loss_tag, timestep_tag=t_tag,
                      warnings=warnings)
        log.tags = all_keys
        return log
    if path is None:
        raise InputFileError("no log given: pass --logdir PATH (or --run-id for an MLflow run).")
    fmt, series = read_scalars(path, allow_truncated=allow_truncated, warnings=warnings)
    return _select(series, source=str(path), fmt=fmt, tag=tag, timestep_tag=timestep_tag, warnings=warnings)
