"""The background worker: renders figures and writes to every backend, off the training thread.

The training thread only calls :meth:`Worker.submit`, which never does I/O. Records wait in an ordered
queue; the number of records that still carry media (figures, tables) is bounded by ``queue_size``. When
that bound is reached, the ``drop_media`` policy strips the new record's media (counted, reported at
``finish()``) and keeps its scalars; ``block`` first waits up to ``block_timeout_s``. Scalar metrics are
never dropped, and records are delivered in submission order, so a tracker never sees a step go down.

Each backend is driven independently: one that fails does not stop the others. A failed delivery is
handed to the spool (when configured) and counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol

import numpy as np

from .backends.base import Backend

__all__ = ["Record", "Worker", "Stats", "Undelivered"]

log = logging.getLogger("trackdiag")

Renderer = Callable[[], Mapping[str, np.ndarray]]


@dataclass
class Record:
    """One unit of work for the backends. ``figures`` are rendered lazily on the worker."""

    step: int
    timestamp_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    figures: list[Renderer] = field(default_factory=list)
    params: Optional[dict[str, str]] = None
    artifacts: Optional[tuple[Path, str]] = None

    @property
    def has_media(self) -> bool:
        return bool(self.figures or self.tables)

    def drop_media(self) -> int:
        n = len(self.figures) + len(self.tables)
        self.figures, self.tables = [], {}
        return n


class Undelivered(Protocol):
    """Where deliveries that failed go (the spool). ``put`` must not raise."""

    def put(self, backend: str, kind: str, payload: dict[str, Any]) -> None: ...


@dataclass
class Stats:
    """Counters reported by ``finish()``. Thread-safe through the worker's lock."""

    skipped: Counter = field(default_factory=Counter)  # kind → items skipped on the training side
    dropped_media: int = 0
    failed: Counter = field(default_factory=Counter)  # "backend:kind" → failed deliveries
    delivered: Counter = field(default_factory=Counter)  # backend → records delivered
    errors: dict[str, str] = field(default_factory=dict)  # backend → last error message


class _Slot:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.opened = False
        self.next_open_try = 0.0


class Worker:
    """Drives the backends from one daemon thread."""

    def __init__(self, backends: list[Backend], *, queue_size: int = 256, when_full: str = "drop_media",
                 block_timeout_s: float = 5.0, spool: Optional[Undelivered] = None,
                 reopen_after_s: float = 5.0) -> None:
        self.stats = Stats()
        self._slots = [_Slot(b) for b in backends]
        self._queue_size = max(1, queue_size)
        self._when_full = when_full
        self._block_timeout_s = block_timeout_s
        self._spool = spool
        self._reopen_after_s = reopen_after_s
        self._items: deque[Record] = deque()
        self._media_pending = 0
        self._busy = False
        self._closed = False
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="trackdiag-worker", daemon=True)
        self._thread.start()

    @property
    def backends(self) -> list[Backend]:
        return [s.backend for s in self._slots]

    # -- training-thread side ------------------------------------------------------------------------
    def submit(self, record: Record) -> None:
        """Queue a record. Never does I/O; waits only under the ``block`` policy, and boundedly."""
        with self._cv:
            if self._closed:
                raise RuntimeError("worker is closed")
            if record.has_media and self._media_pending >= self._queue_size:
                if self._when_full == "block":
                    self._cv.wait_for(lambda: self._media_pending < self._queue_size, self._block_timeout_s)
                if self._media_pending >= self._queue_size:
                    self.stats.dropped_media += record.drop_media()
            self._items.append(record)
            if record.has_media:
                self._media_pending += 1
            self._cv.notify_all()

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until every queued record was handled. Returns False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._items and not self._busy, timeout)

    def pending(self) -> int:
        with self._cv:
            return len(self._items) + int(self._busy)

    def close(self, status: str = "FINISHED", timeout: Optional[float] = None) -> bool:
        """Flush, close every backend, stop the thread. Returns False when the flush timed out."""
        drained = self.flush(timeout)
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(timeout=5.0)
        for slot in self._slots:
            if slot.opened:
                self._call(slot, "close", lambda b: b.close(status), payload=None)
        return drained

    # -- worker side ------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._items or self._closed)
                if not self._items:
                    return
                record = self._items.popleft()
                self._busy = True
            try:
                self._deliver(record)
            except Exception:  # pragma: no cover - _deliver guards every call; this is a last resort
                log.exception("trackdiag worker: unexpected error")
            finally:
                with self._cv:
                    if record.has_media:
                        self._media_pending -= 1
                    self._busy = False
                    self._cv.notify_all()

    def _render(self, record: Record) -> dict[str, np.ndarray]:
        images: dict[str, np.ndarray] = {}
        for render in record.figures:
            try:
                images.update(render())
            except Exception as exc:  # a broken figure must not cost the scalars
                with self._cv:
                    self.stats.skipped[f"render:{type(exc).__name__}"] += 1
                log.warning("trackdiag: a figure could not be rendered: %s", exc)
        return images

    def _deliver(self, record: Record) -> None:
        images = self._render(record) if record.figures else {}
        for slot in self._slots:
            if not self._ensure_open(slot):
                self._spool_record(slot.backend.name, record, images, reason="not open")
                continue
            ok = True
            if record.params:
                ok &= self._call(slot, "params", lambda b: b.log_params(record.params),
                                 payload={"params": record.params})
            if record.metrics:
                ok &= self._call(slot, "metrics",
                                 lambda b: b.log_metrics(record.metrics, record.step,
                                                         timestamp_ms=record.timestamp_ms),
                                 payload={"step": record.step, "timestamp_ms": record.timestamp_ms,
                                          "metrics": record.metrics})
            for key, image in images.items():
                ok &= self._call(slot, "image", lambda b, k=key, im=image: b.log_image(k, im, record.step),
                                 payload={"step": record.step, "key": key, "image": image})
            for key, rows in record.tables.items():
                ok &= self._call(slot, "table", lambda b, k=key, r=rows: b.log_table(k, r, record.step),
                                 payload={"step": record.step, "key": key, "rows": rows})
            if record.artifacts is not None:
                path, name = record.artifacts
                ok &= self._call(slot, "artifacts", lambda b: b.log_artifacts(path, name),
                                 payload={"path": str(path), "name": name})
            if ok:
                with self._cv:
                    self.stats.delivered[slot.backend.name] += 1

    def _ensure_open(self, slot: _Slot) -> bool:
        if slot.opened:
            return True
        now = time.monotonic()
        if now < slot.next_open_try:
            return False
        try:
            slot.backend.open()
        except Exception as exc:
            slot.next_open_try = now + self._reopen_after_s
            self._note_error(slot, "open", exc)
            return False
        slot.opened = True
        self._on_reopen(slot)
        return True

    def _on_reopen(self, slot: _Slot) -> None:
        """Hook for the spool: replay what this backend missed. Default: nothing."""

    def _call(self, slot: _Slot, kind: str, fn: Callable[[Backend], Any], *, payload: Optional[dict]) -> bool:
        try:
            fn(slot.backend)
            return True
        except Exception as exc:
            self._note_error(slot, kind, exc)
            if payload is not None and self._spool is not None:
                self._spool.put(slot.backend.name, kind, payload)
            return False

    def _spool_record(self, backend: str, record: Record, images: Mapping[str, np.ndarray], *, reason: str
                      ) -> None:
        with self._cv:
            self.stats.failed[f"{backend}:{reason}"] += 1
        if self._spool is None:
            return
        if record.params:
            self._spool.put(backend, "params", {"params": record.params})
        if record.metrics:
            self._spool.put(backend, "metrics", {"step": record.step, "timestamp_ms": record.timestamp_ms,
                                                 "metrics": record.metrics})
        for key, image in images.items():
            self._spool.put(backend, "image", {"step": record.step, "key": key, "image": image})
        for key, rows in record.tables.items():
            self._spool.put(backend, "table", {"step": record.step, "key": key, "rows": rows})

    def _note_error(self, slot: _Slot, kind: str, exc: BaseException) -> None:
        name = slot.backend.name
        first = False
        with self._cv:
            key = f"{name}:{kind}"
            first = self.stats.failed[key] == 0
            self.stats.failed[key] += 1
            self.stats.errors[name] = f"{type(exc).__name__}: {exc}"
        if first:
            log.warning("trackdiag: backend %s failed to %s (%s: %s); will keep trying", name, kind,
                        type(exc).__name__, exc)
