"""The background worker: renders figures and writes to every backend, off the training thread.

The training thread only calls :meth:`Worker.submit`, which never does I/O. Records wait in an ordered
queue; the number of records that still carry media (figures, tables) is bounded by ``queue_size``. When
that bound is reached, the ``drop_media`` policy strips the new record's media (counted, reported at
``finish()``) and keeps its scalars; ``block`` first waits up to ``block_timeout_s``. Scalar metrics are
never dropped, and records are delivered in submission order, so a tracker never sees a step go down.

Threads: one *dispatcher* renders each record's figures once, then hands the record to one *lane* per
backend. Each lane has its own thread, so a slow or dead tracker delays only itself, never the others.

Faults (per lane):

* a call that fails with a *transient* error (connection refused or reset, timeout, HTTP 5xx; the backend's
  ``is_transient(exc)`` decides when it has one) marks the backend *down*: this item and everything after it
  go to the spool (:mod:`trackdiag.spool`) without touching the network, until ``retry_s`` has passed. Then
  the lane re-opens the backend if needed and replays the spool in order before anything new, so the tracker
  still sees steps in order. Nothing is called twice in a row against a dead server.
* a *permanent* failure (a value the tracker refuses) spools that item as rejected and goes on with the
  next one; ``python -m trackdiag.sync`` can retry it after a fix.
* a backend whose ``open()`` fails permanently (bad configuration) is disabled for the run; everything meant
  for it is kept in the spool.

At ``close()`` each lane makes one last replay attempt, then closes its backend. What is still undelivered
stays in the spool (with a ``close`` item, so ``trackdiag.sync`` can also finish the run).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol

import numpy as np

from .backends.base import Backend, is_transient_error

__all__ = ["Record", "Worker", "Stats", "Undelivered", "is_transient_error"]

log = logging.getLogger("trackdiag")

Renderer = Callable[[], Mapping[str, np.ndarray]]
Op = tuple[str, dict[str, Any]]  # (kind, payload) as in trackdiag.spool.apply


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
    #: The run's current findings (:meth:`trackdiag.findings.RunFindings.payload`), published after the rest.
    findings: Optional[dict[str, Any]] = None

    @property
    def has_media(self) -> bool:
        return bool(self.figures or self.tables)

    def drop_media(self) -> int:
        n = len(self.figures) + len(self.tables)
        self.figures, self.tables = [], {}
        return n

    def operations(self, images: Mapping[str, np.ndarray]) -> list[Op]:
        """The backend calls that deliver this record, in order (``images`` are the rendered figures)."""
        ops: list[Op] = []
        if self.params:
            ops.append(("params", {"params": self.params}))
        if self.metrics:
            ops.append(("metrics", {"step": self.step, "timestamp_ms": self.timestamp_ms,
                                    "metrics": self.metrics}))
        ops += [("image", {"step": self.step, "key": k, "image": im}) for k, im in images.items()]
        ops += [("table", {"step": self.step, "key": k, "rows": rows}) for k, rows in self.tables.items()]
        if self.artifacts is not None:
            ops.append(("artifacts", {"path": str(self.artifacts[0]), "name": self.artifacts[1]}))
        if self.findings is not None:
            ops.append(("findings", {"step": self.step, "findings": self.findings}))
        return ops


class Undelivered(Protocol):
    """Where deliveries that failed go (:class:`trackdiag.spool.Spool`). No method may raise."""

    path: Path

    def put(self, backend: str, kind: str, payload: dict[str, Any], *, error: str = "",
            rejected: Optional[str] = None) -> Optional[int]: ...

    def describe(self, backend: str, *, target: str, params: Mapping[str, Any], run: Mapping[str, Any]
                 ) -> None: ...

    def pending(self, backend: Optional[str] = None, *, include_rejected: bool = True) -> list[Any]: ...

    def load(self, entry: Any) -> dict[str, Any]: ...

    def ack(self, ids: Any) -> None: ...

    def reject(self, entry_id: int, error: str) -> None: ...

    def undelivered(self) -> int: ...


@dataclass
class Stats:
    """Counters reported by ``finish()``. Thread-safe through the worker's lock."""

    skipped: Counter = field(default_factory=Counter)  # kind → items skipped on the training side
    dropped_media: int = 0
    failed: Counter = field(default_factory=Counter)  # "backend:kind" → failed calls
    delivered: Counter = field(default_factory=Counter)  # backend → records delivered
    errors: dict[str, str] = field(default_factory=dict)  # backend → last error message
    spooled: Counter = field(default_factory=Counter)  # backend → items written to the spool
    replayed: Counter = field(default_factory=Counter)  # backend → spooled items delivered later
    lost: int = 0  # items that failed with no spool to keep them


class _Job:
    __slots__ = ("ops", "remaining", "media")

    def __init__(self, ops: list[Op], lanes: int, media: bool) -> None:
        self.ops = ops
        self.remaining = lanes
        self.media = media


class _Lane:
    """One backend's queue, thread and health."""

    def __init__(self, backend: Backend, retry_s: float) -> None:
        self.backend = backend
        self.name = backend.name
        self.items: deque[_Job] = deque()
        self.busy = False
        self.opened = False
        self.dead: Optional[str] = None  # why the backend was disabled (a permanent open failure)
        self.retry_at = 0.0
        self.retry_s = retry_s
        self.backlog = False  # the spool holds items of this backend that are to be replayed
        self.thread: Optional[threading.Thread] = None


class Worker:
    """Drives the backends: one dispatcher thread, one delivery thread per backend."""

    def __init__(self, backends: list[Backend], *, queue_size: int = 256, when_full: str = "drop_media",
                 block_timeout_s: float = 5.0, spool: Optional[Undelivered] = None,
                 reopen_after_s: float = 5.0) -> None:
        self.stats = Stats()
        self._lanes = [_Lane(b, float(getattr(b.params, "retry_s", reopen_after_s))) for b in backends]
        self._queue_size = max(1, queue_size)
        self._when_full = when_full
        self._block_timeout_s = block_timeout_s
        self._spool = spool
        self._items: deque[Record] = deque()
        self._media_pending = 0
        self._dispatching = False
        self._closed = False
        self._dispatch_done = False
        self._abort = False
        self._cv = threading.Condition()
        for lane in self._lanes:
            self._describe(lane)
            lane.thread = threading.Thread(target=self._lane_loop, args=(lane,), daemon=True,
                                           name=f"trackdiag-{lane.name}")
            lane.thread.start()
        self._thread = threading.Thread(target=self._dispatch_loop, name="trackdiag-worker", daemon=True)
        self._thread.start()

    @property
    def backends(self) -> list[Backend]:
        return [lane.backend for lane in self._lanes]

    @property
    def spool_path(self) -> Optional[Path]:
        """The spool folder, once something was written to it."""
        if self._spool is None or not (Path(self._spool.path) / "spool.jsonl").is_file():
            return None
        return Path(self._spool.path)

    def undelivered(self) -> int:
        """Items not delivered: still in the spool, or lost because there was no spool to keep them."""
        return (self._spool.undelivered() if self._spool is not None else 0) + self.stats.lost

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

    def _idle(self) -> bool:
        return not self._items and not self._dispatching and all(
            not lane.items and not lane.busy for lane in self._lanes)

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until every queued record was handled by every backend. Returns False on timeout."""
        with self._cv:
            return self._cv.wait_for(self._idle, timeout)

    def pending(self) -> int:
        with self._cv:
            return len(self._items) + int(self._dispatching) + sum(
                len(lane.items) + int(lane.busy) for lane in self._lanes)

    def close(self, status: str = "FINISHED", timeout: Optional[float] = None) -> bool:
        """Flush, replay what the spool holds once more, close every backend. False when the flush timed out.

        A backend still stuck in a call after the flush timeout is left alone; what was queued for it goes
        to the spool.
        """
        drained = self.flush(timeout)
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(timeout=5.0 if drained else 1.0)
        with self._cv:
            self._abort = True
            leftover = list(self._items)
            self._items.clear()
            self._cv.notify_all()
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(timeout=5.0 if drained else 1.0)
        for record in leftover:  # the dispatcher is stuck: keep the scalars, count the figures as dropped
            self.stats.dropped_media += len(record.figures)
            ops = record.operations({})
            for lane in self._lanes:
                self._spool_ops(lane, ops, error="not delivered before the flush timeout")
        for lane in self._lanes:
            with self._cv:
                jobs = list(lane.items)
                lane.items.clear()
            for job in jobs:
                self._spool_ops(lane, job.ops, error="not delivered before the flush timeout")
            if lane.thread is not None and lane.thread.is_alive():
                log.warning("trackdiag: backend %s is still busy after the flush timeout; not closing it",
                            lane.name)
                continue
            self._finish_lane(lane, status)
        if self._spool is not None and hasattr(self._spool, "close"):
            self._spool.close()  # reopened on demand if a stuck backend still hands something over
        return drained

    # -- dispatcher ---------------------------------------------------------------------------------------
    def _dispatch_loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._items or self._closed)
                if not self._items:
                    self._dispatch_done = True
                    self._cv.notify_all()
                    return
                record = self._items.popleft()
                self._dispatching = True
            media = record.has_media
            try:
                images = self._render(record) if record.figures and self._lanes else {}
                job = _Job(record.operations(images), len(self._lanes), media)
            except Exception:  # pragma: no cover - operations() is plain data handling
                log.exception("trackdiag worker: unexpected error")
                job = _Job([], 0, media)
            with self._cv:
                for lane in self._lanes:
                    lane.items.append(job)
                if job.remaining == 0 and media:
                    self._media_pending -= 1
                self._dispatching = False
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

    # -- lanes ----------------------------------------------------------------------------------------------
    def _lane_loop(self, lane: _Lane) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: lane.items or self._dispatch_done or self._abort)
                if not lane.items:
                    return
                job = lane.items.popleft()
                lane.busy = True
            try:
                self._deliver(lane, job.ops)
            except Exception:  # pragma: no cover - _deliver guards every call; this is a last resort
                log.exception("trackdiag worker: unexpected error in backend %s", lane.name)
            finally:
                with self._cv:
                    lane.busy = False
                    job.remaining -= 1
                    if job.remaining == 0 and job.media:
                        self._media_pending -= 1
                    self._cv.notify_all()

    def _deliver(self, lane: _Lane, ops: list[Op]) -> None:
        from .spool import apply

        if not ops:
            return
        if not self._ready(lane):
            self._spool_ops(lane, ops, error=lane.dead or self.stats.errors.get(lane.name, "backend down"))
            return
        ok = True
        for i, (kind, payload) in enumerate(ops):
            try:
                apply(lane.backend, kind, payload)
            except Exception as exc:
                ok = False
                message = f"{type(exc).__name__}: {exc}"
                self._note_error(lane, kind, exc)
                if self._transient(lane, exc):
                    lane.retry_at = time.monotonic() + lane.retry_s
                    self._spool_ops(lane, ops[i:], error=message)
                    return
                self._spool_ops(lane, [(kind, payload)], error=message, rejected=message)
        if ok:
            with self._cv:
                self.stats.delivered[lane.name] += 1

    def _ready(self, lane: _Lane) -> bool:
        """Open the backend and replay its spooled items when due. False while it is down or disabled."""
        if lane.dead:
            return False
        if lane.opened and not lane.backlog:
            return True
        if time.monotonic() < lane.retry_at:
            return False
        if not lane.opened:
            try:
                lane.backend.open()
            except Exception as exc:
                self._note_error(lane, "open", exc)
                if self._transient(lane, exc):
                    lane.retry_at = time.monotonic() + lane.retry_s
                else:
                    lane.dead = f"{type(exc).__name__}: {exc}"
                    log.warning("trackdiag: backend %s could not be opened and is disabled for this run "
                                "(%s); everything meant for it is kept in the spool%s", lane.name, lane.dead,
                                f" {self._spool.path}" if self._spool is not None else "")
                return False
            lane.opened = True
            self._describe(lane)
            self._on_reopen(lane)
        if lane.backlog:
            return self._replay(lane)
        return True

    def _on_reopen(self, lane: _Lane) -> None:
        """Called each time a backend was (re)opened, before its spool is replayed."""

    def _replay(self, lane: _Lane) -> bool:
        """Deliver the spooled items of ``lane`` in order. False (and down again) on a transient failure."""
        from .spool import apply

        if self._spool is None:
            lane.backlog = False
            return True
        for entry in self._spool.pending(lane.name, include_rejected=False):
            if entry.kind == "close":
                continue
            try:
                payload = self._spool.load(entry)
            except Exception as exc:
                self._spool.reject(entry.id, f"unreadable spool entry: {type(exc).__name__}: {exc}")
                continue
            try:
                apply(lane.backend, entry.kind, payload)
            except Exception as exc:
                self._note_error(lane, f"replay {entry.kind}", exc)
                if self._transient(lane, exc):
                    lane.retry_at = time.monotonic() + lane.retry_s
                    return False
                self._spool.reject(entry.id, f"{type(exc).__name__}: {exc}")
                continue
            self._spool.ack(entry.id)
            with self._cv:
                self.stats.replayed[lane.name] += 1
        lane.backlog = False
        log.info("trackdiag: backend %s is back; the spool was replayed", lane.name)
        return True

    def _finish_lane(self, lane: _Lane, status: str) -> None:
        """At close: one last replay attempt, then close the backend (or spool the close when still down)."""
        from .spool import apply

        if lane.backlog and not lane.dead:
            lane.retry_at = 0.0
            self._ready(lane)
        if lane.backlog or lane.dead:
            self._spool_ops(lane, [("close", {"status": status})], error="still undelivered at close")
            return
        if not lane.opened:
            return
        try:
            apply(lane.backend, "close", {"status": status})
        except Exception as exc:
            self._note_error(lane, "close", exc)
            if self._transient(lane, exc):
                self._spool_ops(lane, [("close", {"status": status})], error=f"{type(exc).__name__}: {exc}")

    # -- helpers ------------------------------------------------------------------------------------------
    def _transient(self, lane: _Lane, exc: BaseException) -> bool:
        try:
            return bool(lane.backend.is_transient(exc))
        except Exception:  # pragma: no cover - a broken judge must not break delivery
            return is_transient_error(exc)

    def _spool_ops(self, lane: _Lane, ops: list[Op], *, error: str, rejected: Optional[str] = None) -> None:
        for kind, payload in ops:
            entry_id = self._spool.put(lane.name, kind, payload, error=error, rejected=rejected) \
                if self._spool is not None else None
            with self._cv:
                if entry_id is None:
                    self.stats.lost += 1
                else:
                    self.stats.spooled[lane.name] += 1
            if entry_id is not None and rejected is None:
                lane.backlog = True

    def _describe(self, lane: _Lane) -> None:
        """Tell the spool how to rebuild this backend and re-attach it to its run (for ``trackdiag.sync``)."""
        if self._spool is None:
            return
        backend = lane.backend
        try:
            params = dict(backend.resume_params())
            run = dataclasses.asdict(backend.run) if dataclasses.is_dataclass(backend.run) else {}
            run = {k: (str(v) if isinstance(v, Path) else v) for k, v in run.items()}
            cls = type(backend)
            self._spool.describe(lane.name, target=f"{cls.__module__}.{cls.__qualname__}", params=params,
                                 run=run)
        except Exception as exc:  # pragma: no cover - describing is best effort
            log.warning("trackdiag: could not describe backend %s for the spool: %s", lane.name, exc)

    def _note_error(self, lane: _Lane, kind: str, exc: BaseException) -> None:
        name = lane.name
        with self._cv:
            key = f"{name}:{kind}"
            first = self.stats.failed[key] == 0
            self.stats.failed[key] += 1
            self.stats.errors[name] = f"{type(exc).__name__}: {exc}"[:500]
        if first:
            log.warning("trackdiag: backend %s failed to %s (%s: %s); what it did not take is kept in the "
                        "spool", name, kind, type(exc).__name__, str(exc)[:300])
