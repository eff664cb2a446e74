"""The spool: an append-only local store of everything a tracker did not accept, replayed when it is back.

One spool per session, under the session's ``out_dir``::

    <out_dir>/spool/<YYYYmmdd-HHMMSS>-<pid>-<token>/
      spool.jsonl          append-only journal, one JSON object per line (see below)
      files/000012.png     the figure of entry 12
      files/000013/...     a copy of the report folder of entry 13 (artifacts)

Journal lines (``op``):

* ``{"op": "meta", "backend": name, "target": "pkg.Class", "params": {...}, "run": {...}}``: how to rebuild
  the backend and attach it to the same run (the last ``meta`` line of a backend wins);
* ``{"op": "put", "id": n, "backend": name, "kind": k, "payload": {...}, "error": "..."}``: one undelivered
  item. ``kind`` is ``params | metrics | image | table | artifacts | close`` (:data:`KINDS`);
* ``{"op": "ack", "ids": [n, ...]}``: delivered (by the worker's automatic replay or by ``trackdiag.sync``);
* ``{"op": "reject", "id": n, "error": "..."}``: the tracker refused the item for a reason a retry will not
  fix (a 4xx, a bad value). It is kept: the automatic replay skips it, ``python -m trackdiag.sync`` retries
  it.

An entry is *undelivered* until it is acked. Nothing is ever rewritten or deleted, so a crash at any moment
loses at most the line being written. Metrics keep their original timestamp, and MLflow stores identical
``(key, step, timestamp, value)`` points once, so replaying a batch that in fact arrived does not duplicate
it.
NaN and ±Inf are written as the JSON extensions ``NaN`` / ``Infinity`` (Python's json reads them back).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

__all__ = ["Spool", "Entry", "KINDS", "apply", "find_spools"]

log = logging.getLogger("trackdiag")

KINDS = ("params", "metrics", "image", "table", "artifacts", "findings", "close")
JOURNAL = "spool.jsonl"


def apply(backend: Any, kind: str, payload: Mapping[str, Any]) -> None:
    """Make the one backend call that delivers an item of ``kind`` (the same path live and on replay)."""
    if kind == "params":
        backend.log_params(payload["params"])
    elif kind == "metrics":
        backend.log_metrics(payload["metrics"], int(payload["step"]),
                            timestamp_ms=int(payload["timestamp_ms"]))
    elif kind == "image":
        backend.log_image(payload["key"], payload["image"], int(payload["step"]))
    elif kind == "table":
        backend.log_table(payload["key"], payload["rows"], int(payload["step"]))
    elif kind == "artifacts":
        backend.log_artifacts(Path(payload["path"]), payload["name"])
    elif kind == "findings":
        backend.publish_findings(payload["findings"], int(payload["step"]))
    elif kind == "close":
        backend.close(payload.get("status", "FINISHED"))
    else:
        raise ValueError(f"unknown spool item kind {kind!r}; expected one of {KINDS}")


@dataclass
class Entry:
    """One undelivered item, as journaled. ``payload`` is JSON; images are files (see :meth:`Spool.load`)."""

    id: int
    backend: str
    kind: str
    payload: dict[str, Any]
    error: str = ""
    rejected: Optional[str] = None


class Spool:
    """Append-only journal of undelivered items for one run. Thread-safe; ``put`` never raises.

    Created lazily: nothing is written until the first undelivered item.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._meta: dict[str, dict[str, Any]] = {}
        self._meta_written: dict[str, str] = {}
        self._entries: dict[int, Entry] = {}  # undelivered, in id order
        self._next_id = 1
        self._fh: Any = None
        self.write_errors = 0
        if (self.path / JOURNAL).is_file():
            self._load()

    @classmethod
    def for_run(cls, out_dir: str | Path) -> Spool:
        """A fresh spool folder for one session under ``<out_dir>/spool/`` (not created until needed)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return cls(Path(out_dir) / "spool" / f"{stamp}-{os.getpid()}-{secrets.token_hex(3)}")

    @classmethod
    def open(cls, path: str | Path) -> Spool:
        """An existing spool: its folder or its ``spool.jsonl``."""
        p = Path(path)
        if p.name == JOURNAL:
            p = p.parent
        if not (p / JOURNAL).is_file():
            from .errors import InputFileError

            raise InputFileError(f"{path}: not a trackdiag spool (no {JOURNAL}); pass a folder printed by "
                                 "finish(), e.g. trackdiag_runs/spool/<run>.")
        return cls(p)

    @property
    def exists(self) -> bool:
        return (self.path / JOURNAL).is_file()

    # -- writing ------------------------------------------------------------------------------------------
    def describe(self, backend: str, *, target: str, params: Mapping[str, Any], run: Mapping[str, Any]
                 ) -> None:
        """Record how to rebuild ``backend`` (class, parameters to re-attach to its run, run info)."""
        meta = {"op": "meta", "backend": backend, "target": target, "params": dict(params), "run": dict(run)}
        with self._lock:
            self._meta[backend] = meta
            if self._fh is not None or self.exists:
                try:
                    self._write_meta(backend)
                except Exception as exc:  # best effort; never raises into the worker
                    self.write_errors += 1
                    log.error("trackdiag: could not write the spool %s: %s", self.path, exc)

    def put(self, backend: str, kind: str, payload: Mapping[str, Any], *, error: str = "",
            rejected: Optional[str] = None) -> Optional[int]:
        """Journal one undelivered item; its id, or None when the disk refused it (logged, counted)."""
        with self._lock:
            try:
                self._ensure_open()
                self._write_meta(backend)
                entry_id = self._next_id
                self._next_id += 1
                data = self._externalize(entry_id, kind, payload)
                line: dict[str, Any] = {"op": "put", "id": entry_id, "backend": backend, "kind": kind,
                                        "payload": data, "error": error[:500]}
                self._append(line)
                entry = Entry(entry_id, backend, kind, data, error=error[:500])
                self._entries[entry_id] = entry
                if rejected is not None:
                    self._append({"op": "reject", "id": entry_id, "error": rejected[:500]})
                    entry.rejected = rejected[:500]
                return entry_id
            except Exception as exc:  # the spool must never take the run down
                self.write_errors += 1
                if self.write_errors == 1:
                    log.error("trackdiag: could not write the spool %s (%s: %s); undelivered items are lost",
                              self.path, type(exc).__name__, exc)
                return None

    def ack(self, ids: list[int] | int) -> None:
        """Mark entries delivered."""
        ids = [ids] if isinstance(ids, int) else list(ids)
        if not ids:
            return
        with self._lock:
            for i in ids:
                self._entries.pop(i, None)
            self._safe_append({"op": "ack", "ids": ids})

    def reject(self, entry_id: int, error: str) -> None:
        """Mark an entry refused for good (kept; only ``trackdiag.sync`` retries it)."""
        with self._lock:
            if entry_id in self._entries:
                self._entries[entry_id].rejected = error[:500]
            self._safe_append({"op": "reject", "id": entry_id, "error": error[:500]})

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    # -- reading ------------------------------------------------------------------------------------------
    def pending(self, backend: Optional[str] = None, *, include_rejected: bool = True) -> list[Entry]:
        """Undelivered entries in journal order (of one backend or all; refused ones optionally left out)."""
        with self._lock:
            return [e for e in self._entries.values()
                    if (backend is None or e.backend == backend) and (include_rejected or e.rejected is None)]

    def undelivered(self) -> int:
        with self._lock:
            return len(self._entries)

    def meta(self, backend: str) -> Optional[dict[str, Any]]:
        with self._lock:
            return self._meta.get(backend)

    def backends(self) -> list[str]:
        """Backends with undelivered entries, in order of first appearance."""
        with self._lock:
            seen: dict[str, None] = {}
            for e in self._entries.values():
                seen.setdefault(e.backend, None)
            return list(seen)

    def load(self, entry: Entry) -> dict[str, Any]:
        """The entry's payload as the backend call wants it (an image becomes an ``H×W×3`` uint8 array)."""
        payload = dict(entry.payload)
        if entry.kind == "image":
            from PIL import Image

            with Image.open(self.path / payload.pop("file")) as im:
                payload["image"] = np.asarray(im.convert("RGB"))
        elif entry.kind == "artifacts" and payload.get("copy"):
            payload["path"] = str(self.path / payload.pop("copy"))
        return payload

    # -- internals ----------------------------------------------------------------------------------------
    def _ensure_open(self) -> None:
        if self._fh is None:
            self.path.mkdir(parents=True, exist_ok=True)
            journal = self.path / JOURNAL
            torn = False
            if journal.is_file() and journal.stat().st_size:
                with open(journal, "rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    torn = fh.read(1) != b"\n"
            self._fh = open(journal, "a", encoding="utf-8")
            if torn:  # a crash cut the last line: start a fresh one so the next line stays readable
                self._fh.write("\n")

    def _append(self, line: Mapping[str, Any]) -> None:
        self._ensure_open()
        self._fh.write(json.dumps(line, default=_json_default) + "\n")
        self._fh.flush()

    def _safe_append(self, line: Mapping[str, Any]) -> None:
        try:
            self._append(line)
        except Exception as exc:  # a lost ack means a possible duplicate on replay, not a loss
            self.write_errors += 1
            log.error("trackdiag: could not write the spool %s (%s: %s)", self.path, type(exc).__name__, exc)

    def _write_meta(self, backend: str) -> None:
        meta = self._meta.get(backend)
        if meta is None:
            return
        text = json.dumps(meta, default=_json_default, sort_keys=True)
        if self._meta_written.get(backend) != text:
            self._ensure_open()
            self._fh.write(text + "\n")
            self._fh.flush()
            self._meta_written[backend] = text

    def _externalize(self, entry_id: int, kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        data = dict(payload)
        if kind == "image" and "image" in data:
            from .plots import save_rgb_png

            rel = f"files/{entry_id:06d}.png"
            save_rgb_png(np.asarray(data.pop("image")), self.path / rel)
            data["file"] = rel
        elif kind == "artifacts":
            src = Path(data["path"])
            if src.is_dir():
                rel = f"files/{entry_id:06d}"
                shutil.copytree(src, self.path / rel, dirs_exist_ok=True)
                data["copy"] = rel
        return data

    def _load(self) -> None:
        entries: dict[int, Entry] = {}
        with open(self.path / JOURNAL, encoding="utf-8") as fh:
            for n, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    line = json.loads(text)
                except json.JSONDecodeError:
                    log.warning("trackdiag: %s line %d is not JSON (cut off by a crash?); skipped",
                                self.path / JOURNAL, n)
                    continue
                op = line.get("op")
                if op == "meta":
                    self._meta[line["backend"]] = line
                    self._meta_written[line["backend"]] = json.dumps(line, sort_keys=True)
                elif op == "put":
                    entries[int(line["id"])] = Entry(int(line["id"]), line["backend"], line["kind"],
                                                     line["payload"], error=line.get("error", ""))
                    self._next_id = max(self._next_id, int(line["id"]) + 1)
                elif op == "ack":
                    for i in line["ids"]:
                        entries.pop(int(i), None)
                elif op == "reject" and int(line["id"]) in entries:
                    entries[int(line["id"])].rejected = line.get("error", "")
        self._entries = dict(sorted(entries.items()))


def find_spools(path: str | Path) -> list[Path]:
    """Spool folders at ``path``: the folder itself, or every spool below it (``trackdiag_runs/spool``)."""
    p = Path(path)
    if p.name == JOURNAL:
        return [p.parent]
    if (p / JOURNAL).is_file():
        return [p]
    return sorted(j.parent for j in p.rglob(JOURNAL)) if p.is_dir() else []


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def iter_lines(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every readable journal line of a spool (for inspection and tests); a torn line is skipped."""
    with open(Path(path) / JOURNAL, encoding="utf-8") as fh:
        for text in fh:
            try:
                yield json.loads(text)
            except json.JSONDecodeError:
                continue
