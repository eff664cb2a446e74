"""W&B offline run folders: the ``.wandb`` record log parsed with wandb's own protobuf classes (one pass),
with one step axis (:data:`WANDB_STEP_KEYS`)."""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ...errors import InputFileError, MissingDependencyError
from ._common import ScalarSeries, _check_file, _Collector, _number, _truncated

#: The step of a W&B history row, the one axis every reader uses: trackdiag's W&B backend writes the trainer's
#: step as ``trackdiag/step`` (it never passes ``step=`` to ``run.log``); other runs have W&B's own ``_step``.
WANDB_STEP_KEYS = ("trackdiag/step", "_step")

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


