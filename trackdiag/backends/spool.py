"""The spool: a write-ahead journal of every item meant for a tracker, durable *before* it is delivered.

One spool per session, under the session's ``out_dir``::

    <out_dir>/spool/<YYYYmmdd-HHMMSS>-<pid>-<token>/
      spool.jsonl          append-only journal, one JSON object per line (see below)
      files/000012.png     the figure of entry 12
      files/000013/...     a copy of the report folder of entry 13 (artifacts)

The background worker (never the training thread) appends every item with :meth:`Spool.put` and makes the
appended lines durable with :meth:`Spool.commit` (write, flush, ``fsync``) in batches of at most
``worker.spool_batch`` records or ``worker.spool_batch_ms`` milliseconds; an item is handed to a tracker
only after the batch that holds it was committed. A delivered item is acknowledged. After a crash
(SIGKILL, power loss) ``python -m trackdiag.sync`` delivers what was committed and not acknowledged; only
the batch that was being written can be lost.

Journal lines (``op``):

* ``{"op": "meta", "backend": name, "target": "pkg.Class", "params": {...}, "run": {...}}``: how to rebuild
  the backend and attach it to the same run (the last ``meta`` line of a backend wins);
* ``{"op": "put", "id": n, "backends": [name, ...], "kind": k, "payload": {...}, "error": "..."}``: one
  item for those backends. ``kind`` is ``params | metrics | image | table | artifacts | close``
  (:data:`KINDS`). (Journals of older versions have ``"backend": name``; they are read as well.)
* ``{"op": "ack", "ids": [n, ...], "backend": name}``: delivered to that backend (no ``backend``: to all);
* ``{"op": "reject", "id": n, "backend": name, "error": "..."}``: that tracker refused the item for a reason
  a retry will not fix (a 4xx, an invalid name). It is kept: the worker does not send it again,
  ``python -m trackdiag.sync`` retries it after a fix.

Acknowledgements of figures, tables and artifacts are committed at once (their delivery is not idempotent);
acknowledgements of metrics ride with the next batch, so a crash can leave a delivered metrics batch
unacknowledged and ``sync`` sends it again: MLflow stores an identical ``(key, step, timestamp, value)``
point once (every item keeps its original timestamp).

Disk full (``ENOSPC``) or any other write error never raises: the lines that could not be written stay in
memory, the journal is cut back to its last whole line, and the next commit writes them again. What is not
durable is counted (:meth:`Spool.not_durable`), so ``finish()`` can say exactly what a crash would lose and
what was lost. NaN and ±Inf are written as the JSON extensions ``NaN`` / ``Infinity``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

__all__ = ["Spool", "Entry", "KINDS", "MEDIA_KINDS", "apply", "find_spools", "iter_lines"]

log = logging.getLogger("trackdiag")

KINDS = ("params", "metrics", "image", "table", "artifacts", "findings", "close", "render")
#: Kinds whose delivery is not idempotent (a second delivery would duplicate them).
MEDIA_KINDS = frozenset({"image", "table", "artifacts", "render"})
JOURNAL = "spool.jsonl"


def apply(backend: Any, kind: str, payload: Mapping[str, Any]) -> None:
    """Make the one backend call that delivers an item of ``kind`` (the same path live and on replay)."""
    if kind == "params":
        backend.log_params(payload["params"])
    elif kind == "metrics":
        backend.log_metrics(payload["metrics"], int(payload["step"]),
                            timestamp_ms=int(payload["timestamp_ms"]))
    elif kind == "image":
        from .base import ImageItem

        stamp = payload.get("timestamp_ms")
        item = ImageItem(str(payload["key"]), int(payload["step"]), None if stamp is None else int(stamp),
                         image=payload.get("image"), png=payload.get("png"))
        if hasattr(backend, "log_images"):
            backend.log_images([item])
        else:  # a tracker object that only has the basic call
            backend.log_image(item.key, item.array(), item.step)
    elif kind == "table":
        backend.log_table(payload["key"], payload["rows"], int(payload["step"]))
    elif kind == "artifacts":
        backend.log_artifacts(Path(payload["path"]), payload["name"])
    elif kind == "findings":
        backend.publish_findings(payload["findings"], int(payload["step"]))
    elif kind == "close":
        backend.close(payload.get("status", "FINISHED"))
    elif kind == "render":  # a figure finish() left undrawn: draw it now, then deliver it
        for key, image in draw_deferred(payload).items():
            backend.log_image(key, image, int(payload["step"]))
    else:
        raise ValueError(f"unknown spool item kind {kind!r}; expected one of {KINDS}")


def draw_deferred(payload: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Draw a deferred figure from its inputs: the analyzer (a ``trackdiag.`` class, rebuilt from its
    parameters and state) and the step's result (metrics, texts, maps)."""
    from omegaconf import OmegaConf

    from ..analyzers.base import Result
    from ..config import build_component
    from ..core.values import metric_key

    node = OmegaConf.create({"_target_": payload["analyzer"], **(payload.get("params") or {})})
    analyzer = build_component(node, allow_external=False, what="deferred figure")
    if payload.get("state"):
        analyzer.load_state_dict(payload["state"])
    result = Result(metrics=dict(payload.get("metrics") or {}), texts=dict(payload.get("texts") or {}),
                    maps={k: np.asarray(v) for k, v in (payload.get("maps") or {}).items()})
    return {metric_key(analyzer.name, k): v for k, v in analyzer.render(result).items()}


@dataclass
class Entry:
    """One item waiting for one backend. ``payload`` is JSON; images are files (see :meth:`Spool.load`)."""

    id: int
    backend: str
    kind: str
    payload: dict[str, Any]
    error: str = ""
    rejected: Optional[str] = None


@dataclass
class _Item:
    kind: str
    payload: dict[str, Any]  # journal form (an image is a file name once externalized)
    waiting: dict[str, Optional[str]]  # backend → None (pending) or the reason it was refused
    error: str = ""
    image: Optional[np.ndarray] = None  # kept in memory until its file is written
    maps: Optional[dict[str, np.ndarray]] = None  # a deferred figure's maps, until written
    durable: bool = False
    line: Optional[str] = field(default=None, repr=False)  # the put line until it is written


class Spool:
    """Write-ahead journal of one run's tracker items. Thread-safe; no method raises on a write error."""

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.RLock()
        self._meta: dict[str, dict[str, Any]] = {}
        self._meta_written: dict[str, str] = {}
        self._items: dict[int, _Item] = {}  # items some backend still waits for, in id order
        self._buffer: list[tuple[str, Optional[int]]] = []  # lines not yet written (text, put id)
        self._next_id = 1
        self._fh: Any = None
        self.write_errors = 0
        self.last_error = ""
        self._closed = False  # after close(): a late commit (a hung call that came back) reopens and closes
        if (self.path / JOURNAL).is_file():
            self._load()

    @classmethod
    def for_run(cls, out_dir: str | Path, *, fsync: bool = True) -> Spool:
        """A fresh spool folder for one session under ``<out_dir>/spool/`` (not created until needed)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return cls(Path(out_dir) / "spool" / f"{stamp}-{os.getpid()}-{secrets.token_hex(3)}", fsync=fsync)

    @classmethod
    def open(cls, path: str | Path) -> Spool:
        """An existing spool: its folder or its ``spool.jsonl``."""
        p = Path(path)
        if p.name == JOURNAL:
            p = p.parent
        if not (p / JOURNAL).is_file():
            from ..errors import InputFileError

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
        text = json.dumps(meta, default=_json_default, sort_keys=True)
        with self._lock:
            self._meta[backend] = meta
            if self._meta_written.get(backend) != text:
                self._meta_written[backend] = text
                self._buffer.append((text, None))

    def put(self, backends: str | Sequence[str], kind: str, payload: Mapping[str, Any], *, error: str = "",
            rejected: Optional[str] = None) -> int:
        """Journal one item for ``backends`` (buffered until :meth:`commit`); returns its id. Never raises."""
        names = [backends] if isinstance(backends, str) else list(backends)
        with self._lock:
            entry_id = self._next_id
            self._next_id += 1
            data = dict(payload)
            image = None
            if kind == "image" and "image" in data:
                image = np.asarray(data.pop("image"))
                data["file"] = f"files/{entry_id:06d}.png"
            elif kind == "render":
                maps = data.pop("maps", {})
                data["file"] = f"files/{entry_id:06d}.npz"
            item = _Item(kind, data, {n: None for n in names}, error=error[:500], image=image)
            if kind == "render":
                item.maps = {str(k): np.asarray(v) for k, v in maps.items()}
            self._items[entry_id] = item
            try:
                if kind == "artifacts":
                    data = self._copy_artifacts(entry_id, data)
                    item.payload = data
                item.line = json.dumps({"op": "put", "id": entry_id, "backends": names, "kind": kind,
                                        "payload": data, "error": error[:500]}, default=_json_default)
            except Exception as exc:  # pragma: no cover - payloads are plain data
                self._note_write_error(exc)
                item.line = None
            self._buffer.append((item.line or "", entry_id))
            if rejected is not None:
                for n in names:
                    self.reject(entry_id, rejected, backend=n)
            return entry_id

    def ack(self, ids: list[int] | int, backend: Optional[str] = None, *, commit: bool = False) -> None:
        """Mark entries delivered (to ``backend``, or to every backend they were meant for)."""
        ids = [ids] if isinstance(ids, int) else list(ids)
        if not ids:
            return
        with self._lock:
            for i in ids:
                item = self._items.get(i)
                if item is None:
                    continue
                if backend is None:
                    item.waiting.clear()
                else:
                    item.waiting.pop(backend, None)
                if not item.waiting:
                    self._forget(i)
            line: dict[str, Any] = {"op": "ack", "ids": ids}
            if backend is not None:
                line["backend"] = backend
            self._buffer.append((json.dumps(line), None))
            if commit:
                self.commit()

    def reject(self, entry_id: int, error: str, *, backend: Optional[str] = None) -> None:
        """Mark an entry refused for good by ``backend`` (kept; only ``trackdiag.sync`` retries it)."""
        with self._lock:
            item = self._items.get(entry_id)
            names = ([backend] if backend is not None else list(item.waiting)) if item is not None else []
            for n in names:
                if item is not None and n in item.waiting:
                    item.waiting[n] = error[:500]
                self._buffer.append((json.dumps({"op": "reject", "id": entry_id, "backend": n,
                                                 "error": error[:500]}), None))

    def commit(self) -> bool:
        """Write every buffered line and ``fsync`` the journal. False (nothing raised) when the disk refused;
        the lines stay buffered and the next commit writes them again."""
        with self._lock:
            if not self._buffer:
                return True
            good = -1
            try:
                self._ensure_open()
                good = self._fh.tell()
                written: list[int] = []
                chunks = []
                for text, entry_id in self._buffer:
                    if entry_id is not None:
                        item = self._items.get(entry_id)
                        if item is None or item.line is None:
                            continue  # acknowledged before it was ever written: nothing to keep
                        self._externalize(entry_id, item)
                        written.append(entry_id)
                        text = item.line
                    chunks.append(text + "\n")
                self._fh.write("".join(chunks))
                self._fh.flush()
                if self.fsync:
                    os.fsync(self._fh.fileno())
            except Exception as exc:  # ENOSPC, EIO, a read-only folder: keep the lines, cut the torn tail
                self._note_write_error(exc)
                self._truncate(good)
                return False
            for i in written:
                item = self._items.get(i)
                if item is not None:
                    item.durable, item.image, item.maps = True, None, None
            self._buffer.clear()
            if self._closed:
                self._close_file()
            return True

    def close(self) -> bool:
        """Commit what is buffered and close the journal. Never raises; False when something is not
        durable."""
        with self._lock:
            ok = self.commit()
            self._closed = True
            self._close_file()
            return ok

    def _close_file(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except Exception as exc:  # pragma: no cover - close after a failed write
                self._note_write_error(exc)
            self._fh = None

    def remove_if_done(self) -> bool:
        """Delete the spool folder when nothing in it is waiting for a tracker (a clean run leaves
        nothing)."""
        with self._lock:
            if self._items or self._buffer:
                return False
            self.close()
            shutil.rmtree(self.path, ignore_errors=True)
            try:
                self.path.parent.rmdir()  # <out_dir>/spool, when no other run's spool is there
            except OSError:
                pass
            return True

    # -- reading ------------------------------------------------------------------------------------------
    def pending(self, backend: Optional[str] = None, *, include_rejected: bool = True) -> list[Entry]:
        """Entries waiting for a backend, in journal order (refused ones optionally left out)."""
        with self._lock:
            out = []
            for i, item in self._items.items():
                for name, rejected in item.waiting.items():
                    if (backend is None or name == backend) and (include_rejected or rejected is None):
                        out.append(Entry(i, name, item.kind, item.payload, error=item.error,
                                         rejected=rejected))
            return out

    def undelivered(self) -> int:
        """(item, backend) pairs not delivered yet."""
        with self._lock:
            return sum(len(item.waiting) for item in self._items.values())

    def not_durable(self) -> int:
        """(item, backend) pairs not delivered and not on disk: what a crash now, or an exit, loses."""
        with self._lock:
            return sum(len(item.waiting) for item in self._items.values() if not item.durable)

    def meta(self, backend: str) -> Optional[dict[str, Any]]:
        with self._lock:
            return self._meta.get(backend)

    def backends(self) -> list[str]:
        """Backends with undelivered entries, in order of first appearance."""
        with self._lock:
            seen: dict[str, None] = {}
            for item in self._items.values():
                for name in item.waiting:
                    seen.setdefault(name, None)
            return list(seen)

    def payload_of(self, entry_id: int) -> Optional[dict[str, Any]]:
        """The journal form of an item still waiting (an image as its file name), or None."""
        with self._lock:
            item = self._items.get(entry_id)
            return dict(item.payload) if item is not None else None

    def file_of(self, entry_id: int) -> Optional[Path]:
        """The PNG file of a figure still waiting, once it is durable (None before, or for other kinds)."""
        with self._lock:
            item = self._items.get(entry_id)
            if item is None or item.kind != "image" or not item.durable or "file" not in item.payload:
                return None
            return self.path / item.payload["file"]

    def load(self, entry: Entry) -> dict[str, Any]:
        """The entry's payload as the backend call wants it (an image becomes an ``H×W×3`` uint8 array)."""
        with self._lock:
            item = self._items.get(entry.id)
            image = item.image if item is not None else None
        payload = dict(entry.payload)
        if entry.kind == "image":
            rel = payload.pop("file")
            if (self.path / rel).is_file():
                payload["png"] = self.path / rel  # a tracker that stores PNG files uploads it as it is
            if image is not None:
                payload["image"] = image
            else:
                from PIL import Image

                with Image.open(self.path / rel) as im:
                    payload["image"] = np.asarray(im.convert("RGB"))
        elif entry.kind == "render":
            rel = payload.pop("file")
            if item is not None and item.maps is not None:
                payload["maps"] = item.maps
            else:
                with np.load(self.path / rel, allow_pickle=False) as npz:
                    payload["maps"] = {k: npz[k] for k in npz.files}
        elif entry.kind == "artifacts" and payload.get("copy"):
            payload["path"] = str(self.path / payload.pop("copy"))
        return payload

    # -- internals ----------------------------------------------------------------------------------------
    def _note_write_error(self, exc: BaseException) -> None:
        self.write_errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if self.write_errors == 1:
            log.error("trackdiag: could not write the spool %s (%s); what is not on disk is kept in memory "
                      "and reported by finish()", self.path, self.last_error)

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

    def _truncate(self, size: int) -> None:
        """Cut the journal back to ``size`` bytes (the last whole line before a failed write)."""
        fh, self._fh = self._fh, None
        try:
            if fh is not None:
                try:
                    fh.close()
                except Exception:
                    pass
            if size >= 0:
                os.truncate(self.path / JOURNAL, size)
        except Exception:
            pass

    def _externalize(self, entry_id: int, item: _Item) -> None:
        if item.kind == "render" and item.maps is not None:
            target = self.path / item.payload["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp.npz")
            np.savez(tmp, **item.maps)  # type: ignore[arg-type]
            os.replace(tmp, target)
        if item.kind == "image" and item.image is not None:
            from PIL import Image

            target = self.path / item.payload["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            # the one PNG encode of this figure (trackers that store PNG files upload this file): zlib level 1
            # is 2-3x faster than Pillow's default 6 for figures, at about 10 % more bytes
            Image.fromarray(np.asarray(item.image, dtype=np.uint8)).save(tmp, format="PNG", compress_level=1)
            if self.fsync:
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.replace(tmp, target)

    def _copy_artifacts(self, entry_id: int, data: dict[str, Any]) -> dict[str, Any]:
        src = Path(data["path"])
        if src.is_dir():
            rel = f"files/{entry_id:06d}"
            shutil.copytree(src, self.path / rel, dirs_exist_ok=True)
            data = {**data, "copy": rel}
        return data

    def _forget(self, entry_id: int) -> None:
        item = self._items.pop(entry_id)
        if item.kind in ("image", "render") and item.durable:
            try:
                (self.path / item.payload["file"]).unlink()
            except OSError:
                pass

    def _load(self) -> None:
        items: dict[int, _Item] = {}
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
                    names = line.get("backends") or [line["backend"]]
                    i = int(line["id"])
                    items[i] = _Item(line["kind"], line["payload"], {b: None for b in names},
                                     error=line.get("error", ""), durable=True)
                    self._next_id = max(self._next_id, i + 1)
                elif op == "ack":
                    for i in line["ids"]:
                        item = items.get(int(i))
                        if item is None:
                            continue
                        if line.get("backend") is None:
                            item.waiting.clear()
                        else:
                            item.waiting.pop(line["backend"], None)
                        if not item.waiting:
                            del items[int(i)]
                elif op == "reject" and int(line["id"]) in items:
                    item = items[int(line["id"])]
                    for b in ([line["backend"]] if line.get("backend") else list(item.waiting)):
                        if b in item.waiting:
                            item.waiting[b] = line.get("error", "")
        self._items = dict(sorted(items.items()))


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
