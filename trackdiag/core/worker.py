"""The background worker: journals, renders and delivers, off the training thread.

One design for durability and overhead (see ``docs/backends.md``)::

    training thread ──submit()──▶ memory queue ──▶ journal thread ──▶ spool (write-ahead, fsync in batches)
                                                      │ figures                     │ committed items
                                                      ▼                             ▼
                                                render thread ──▶ spool ──▶ lanes: one "scalars" and one
                                                                            "media" thread per backend

* :meth:`Worker.submit` is the only call on the training thread: it appends to a memory queue and never does
  I/O. Scalars are never dropped; when more than ``queue_size`` records wait with unrendered figures, the
  figures of the *oldest* waiting record are dropped (counted), so the latest figures and always the last
  step's are kept (``when_full="block"`` first waits up to ``block_timeout_s``).
* The *journal thread* appends every item to the spool (:mod:`trackdiag.backends.spool`) and commits (write +
fsync)
  after at most ``batch_records`` records or ``batch_ms`` milliseconds; only committed items are handed to
  the lanes ("durable before delivery"). Figures go to the *render thread*, which renders them, journals the
  images and hands them over the same way.
* Each backend has two *lanes* (threads): ``scalars`` (params, metrics, close) and ``media`` (figures,
  tables, artifacts), so scalars never wait behind media. Consecutive metrics items are sent in one call
  (``Backend.log_metrics_many``: MLflow ``log_batch``).

Failures are classified per item (the backend's ``is_transient``):

* *permanent* (a value or a name the tracker refuses, MLflow's ``INVALID_PARAMETER_VALUE``): the item is
  marked refused in the spool and the lane goes on; ``python -m trackdiag.sync`` retries it after a fix;
* *transient* (connection refused, timeout, HTTP 5xx, ``ENOSPC``): the lane tries the next item once. If
  that one is delivered, only the first item is at fault: it is *parked* (kept in the spool, tried again
  at ``close()``) and the lane goes on. If the next one fails too, the tracker is down: the lane waits
  ``retry_s`` and tries again, in order. A tracker that was full (``ENOSPC``) is retried the same way.
* a backend whose ``open()`` fails permanently (bad configuration) is disabled for the run; everything meant
  for it stays in the spool.

:meth:`Worker.close` waits at most ``timeout`` seconds in all, makes one last attempt for every waiting item
of a tracker that was down, closes the backends and never raises. Whatever is not delivered stays in the
spool (with a ``close`` item so that ``trackdiag.sync`` also finishes the run) or, when the disk refused
it, is counted as lost.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..backends.base import Backend, ImageItem, is_transient_error
from ..backends.spool import MEDIA_KINDS, Spool, apply

__all__ = ["Record", "Worker", "Stats", "is_transient_error"]

log = logging.getLogger("trackdiag")

Renderer = Callable[[], Mapping[str, np.ndarray]]
Op = tuple[str, dict[str, Any]]  # (kind, payload) as in trackdiag.backends.spool.apply
SCALARS, MEDIA = "scalars", "media"
#: Most figures sent to a backend in one call (``Backend.log_images``: one MLflow upload).
IMAGE_BATCH = 16
#: The most a metrics write carries: consecutive steps' metrics up to this many values (MLflow's log_batch
#: limit) or this many steps.
METRICS_PER_WRITE, STEPS_PER_WRITE = 1000, 256


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
    # : The run's current findings (:meth:`trackdiag.core.findings.RunFindings.payload`), published after the
    # rest.
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
        ops += [("image", {"step": self.step, "timestamp_ms": self.timestamp_ms, "key": k, "image": im})
                for k, im in images.items()]
        ops += [("table", {"step": self.step, "key": k, "rows": rows}) for k, rows in self.tables.items()]
        if self.artifacts is not None:
            ops.append(("artifacts", {"path": str(self.artifacts[0]), "name": self.artifacts[1]}))
        if self.findings is not None:
            ops.append(("findings", {"step": self.step, "findings": self.findings}))
        return ops


@dataclass
class Stats:
    """Counters reported by ``finish()``. Thread-safe through the worker's lock."""

    skipped: Counter = field(default_factory=Counter)  # kind → items skipped on the worker side
    dropped_media: int = 0  # figures not rendered because newer ones replaced them (queue full)
    failed: Counter = field(default_factory=Counter)  # "backend:kind" → failed calls
    delivered: Counter = field(default_factory=Counter)  # backend → items delivered
    errors: dict[str, str] = field(default_factory=dict)  # backend → last error message
    spooled: Counter = field(default_factory=Counter)  # backend → items that had to wait (outage, failure)
    replayed: Counter = field(default_factory=Counter)  # backend → items delivered after waiting
    refused: Counter = field(default_factory=Counter)  # backend → items refused for good (kept in the spool)
    parked: Counter = field(default_factory=Counter)  # backend → items that kept failing (kept in the spool)
    lost: int = 0  # items neither delivered nor on disk at close (the disk refused the spool)
    unrendered: int = 0  # figures still waiting to be rendered when close() ran out of time
    deferred: int = 0  # figures left undrawn at close, their inputs kept in the spool (sync draws them)
    held: Counter = field(default_factory=Counter)  # backend → figures drawn, kept in the spool at close


class _Job:
    """One journaled item on its way to one backend."""

    __slots__ = ("id", "kind", "payload", "waited", "failures")

    def __init__(self, entry_id: int, kind: str, payload: dict[str, Any]) -> None:
        self.id = entry_id
        self.kind = kind
        self.payload = payload
        self.waited = False
        self.failures = 0


class _Backend:
    """Shared state of one backend's two lanes."""

    def __init__(self, backend: Backend, retry_s: float) -> None:
        self.backend = backend
        self.name = backend.name
        self.opened = False
        self.dead: Optional[str] = None  # why the backend was disabled (a permanent open failure)
        self.retry_s = retry_s
        self.open_lock = threading.Lock()
        self.lanes: dict[str, _Lane] = {}
        self.resume_step: Optional[int] = None  # the last step the run held when it was continued


class _Lane:
    def __init__(self, owner: _Backend, kind: str) -> None:
        self.owner = owner
        self.kind = kind
        self.jobs: deque[_Job] = deque()
        self.parked: list[_Job] = []
        self.busy = False
        self.inflight: list[_Job] = []  # the jobs of the call in progress
        self.last_metrics = 0.0  # when this lane last sent metrics (time.monotonic())
        self.retry_at = 0.0
        self.thread: Optional[threading.Thread] = None

    @property
    def name(self) -> str:
        return self.owner.name


class Worker:
    """Journals every record, then delivers it to every backend (see the module docstring)."""

    def __init__(self, backends: list[Backend], *, queue_size: int = 256, when_full: str = "drop_media",
                 block_timeout_s: float = 5.0, spool: Optional[Spool] = None, reopen_after_s: float = 5.0,
                 batch_records: int = 64, batch_ms: float = 200.0, renderer: Any = None,
                 on_resume: str = "skip", figure_wait: Optional[Callable[[], float]] = None,
                 upload_wait: Optional[Callable[[], float]] = None, metrics_every_s: float = 1.0) -> None:
        self.stats = Stats()
        self._backends = [_Backend(b, float(getattr(b.params, "retry_s", reopen_after_s))) for b in backends]
        self._lanes: list[_Lane] = []
        for owner in self._backends:
            for kind in (SCALARS, MEDIA):
                owner.lanes[kind] = lane = _Lane(owner, kind)
                self._lanes.append(lane)
        self._queue_size = max(1, queue_size)
        self._when_full = when_full
        self._block_timeout_s = block_timeout_s
        self._batch_records = max(1, int(batch_records))
        self._batch_s = max(0.0, float(batch_ms)) / 1000.0
        self._spool = spool if spool is not None else (Spool(_nowhere(), fsync=False) if backends else None)
        self._renderer = renderer
        self._on_resume = on_resume
        self._figure_wait = figure_wait
        self._upload_wait = upload_wait
        self._metrics_every_s = max(0.0, float(metrics_every_s))
        self._flushing = 0
        self._items: deque[Record] = deque()
        self._renders: deque[tuple[int, int, list[Renderer]]] = deque()  # (step, timestamp, figures)
        self._journaling = 0
        self._rendering = False
        self._current: Optional[tuple[int, int, list[Renderer]]] = None  # the figures being drawn now
        self._closed = False
        self._stop = False
        self._deadline: Optional[float] = None
        lock = threading.RLock()
        self._cv = threading.Condition(lock)
        # submit() wakes only the journal thread (the one waiting for records), not every worker thread
        self._journal_cv = threading.Condition(lock)
        self._threads: list[threading.Thread] = []
        if not backends:
            return
        for owner in self._backends:
            self._describe(owner)
        for lane in self._lanes:
            lane.thread = self._start(self._lane_loop, lane, name=f"trackdiag-{lane.name}-{lane.kind}")
        self._journal_thread = self._start(self._journal_loop, name="trackdiag-journal")
        self._render_thread = self._start(self._render_loop, name="trackdiag-render")

    def _start(self, target: Callable[..., None], *args: Any, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    @property
    def backends(self) -> list[Backend]:
        return [owner.backend for owner in self._backends]

    @property
    def spool(self) -> Optional[Spool]:
        return self._spool

    @property
    def spool_path(self) -> Optional[Path]:
        """The spool folder, while it holds something."""
        if self._spool is None or not self._spool.exists:
            return None
        return Path(self._spool.path)

    def undelivered(self) -> int:
        """(item, backend) pairs not delivered: waiting in the spool, or lost because the disk refused
        them."""
        return (self._spool.undelivered() if self._spool is not None else 0)

    def not_durable(self) -> int:
        """Undelivered (item, backend) pairs that are not on disk either."""
        return self._spool.not_durable() if self._spool is not None else 0

    # -- training-thread side ------------------------------------------------------------------------
    def submit(self, record: Record) -> None:
        """Queue a record. Never does I/O; waits only under the ``block`` policy, and boundedly."""
        if not self._backends:
            return
        with self._cv:
            if self._closed:
                raise RuntimeError("worker is closed")
            if record.figures and self._figures_waiting() >= self._queue_size:
                if self._when_full == "block":
                    self._cv.wait_for(lambda: self._figures_waiting() < self._queue_size,
                                      self._block_timeout_s)
                if self._figures_waiting() >= self._queue_size:
                    self._drop_oldest_figures()
            self._items.append(record)
            self._journal_cv.notify()

    def _figures_waiting(self) -> int:
        return len(self._renders) + sum(1 for r in self._items if r.figures)

    def _drop_oldest_figures(self) -> None:
        """Make room for a newer figure: drop the oldest waiting one (the latest are worth more)."""
        if self._renders:
            self.stats.dropped_media += len(self._renders.popleft()[2])
            return
        for r in self._items:
            if r.figures:
                self.stats.dropped_media += len(r.figures)
                r.figures = []
                return

    def _idle(self) -> bool:
        return not self._items and not self._journaling and not self._renders and not self._rendering and all(
            not lane.busy and (not lane.jobs or self._waiting_out(lane)) for lane in self._lanes)

    def _waiting_out(self, lane: _Lane) -> bool:
        """The lane cannot make progress now (its tracker is down or disabled)."""
        return bool(lane.owner.dead) or lane.retry_at < 0 or time.monotonic() < lane.retry_at

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until every queued record was journaled and handled by every backend that is up.

        Items for a tracker that is down stay in the spool (they are retried; ``close()`` tries once more).
        Returns False on timeout.
        """
        with self._cv:
            self._flushing += 1  # metrics go out now, without waiting for the next metrics interval
            self._cv.notify_all()
            try:
                return self._cv.wait_for(self._idle, timeout)
            finally:
                self._flushing -= 1

    def pending(self) -> int:
        with self._cv:
            return len(self._items) + self._journaling + len(self._renders) + sum(
                len(lane.jobs) + int(lane.busy) for lane in self._lanes)

    def close(self, status: str = "FINISHED", timeout: Optional[float] = None) -> bool:
        """Deliver what can be delivered within ``timeout`` seconds, close every backend; never raises.

        Returns False when something was still in progress when the time ran out (it stays in the spool).
        """
        try:
            return self._close(status, timeout)
        except Exception as exc:  # pragma: no cover - close must never raise into finish()
            log.exception("trackdiag: closing the worker failed: %s", exc)
            return False

    def _close(self, status: str, timeout: Optional[float]) -> bool:
        if not self._backends:
            return True
        deadline = time.monotonic() + (timeout if timeout is not None else 120.0)
        with self._cv:
            self._closed = True
            self._deadline = deadline  # lanes stop waiting for retry_s and try what waits once more
            for lane in self._lanes:
                lane.retry_at = 0.0
            self._cv.notify_all()
            self._journal_cv.notify_all()
        self._defer_figures(deadline)
        if self._upload_wait is not None and self._spool is not None:
            # once the scalars are delivered, figures get at most the upload budget; those drawn and not
            # uploaded by then wait in the spool as PNG files
            with self._cv:
                self._cv.wait_for(self._scalars_drained, max(0.0, deadline - time.monotonic()))
                until = min(deadline, time.monotonic() + max(0.0, self._upload_wait()))
                if not self._cv.wait_for(self._drained, max(0.0, until - time.monotonic())):
                    self._hold_figures()
        with self._cv:
            drained = self._cv.wait_for(self._drained, max(0.0, deadline - time.monotonic()))
            self._stop = True
            self.stats.unrendered += sum(len(figs) for _, _, figs in self._renders)
            self._renders.clear()
            self._cv.notify_all()
            self._journal_cv.notify_all()
        for thread in self._threads:
            # the render thread may still be drawing a figure whose inputs went to the spool: not waited for
            wait = 0.05 if thread is self._render_thread else min(2.0, deadline - time.monotonic())
            thread.join(timeout=max(0.05, wait))
        for owner in self._backends:
            self._finish_backend(owner, status, deadline)
        if self._spool is not None:
            self._spool.close()
            self.stats.lost = self._spool.not_durable()
            self._spool.remove_if_done()
        return drained

    def _hold_figures(self) -> None:
        """The figure budget is spent: figures drawn and durable in the spool, not uploaded yet, stay there
        for ``trackdiag.sync`` (counted in ``stats.held``); scalars, tables and artifacts are still delivered.
        Called with the lock held."""
        assert self._spool is not None
        for lane in self._lanes:
            if lane.kind != MEDIA or lane.owner.dead:
                continue
            held = [job for job in lane.jobs if job.kind == "image" and job not in lane.inflight
                    and self._spool.file_of(job.id) is not None]
            for job in held:
                lane.jobs.remove(job)
            if held:
                self.stats.held[lane.name] += len(held)
        self._cv.notify_all()

    def _defer_figures(self, deadline: float) -> Optional[float]:
        """Draw figures for at most ``figure_wait()`` seconds; keep the inputs of the rest in the spool, for
        ``trackdiag.sync`` to draw and deliver (finish() waits for what must be delivered, not for
        drawing). Returns the end of the figure budget (None: no budget)."""
        if self._figure_wait is None or self._spool is None:
            return None
        until = min(deadline, time.monotonic() + max(0.0, self._figure_wait()))
        with self._cv:
            self._cv.wait_for(lambda: not self._renders and not self._rendering and not self._items
                              and not self._journaling, max(0.0, until - time.monotonic()))
            left = list(self._renders)
            self._renders.clear()
            current = self._current
            if current is not None and all(_deferred_payload(j, current[0]) is not None for j in current[2]):
                left.insert(0, current)  # drawing it would outlast the budget: keep its inputs instead
                self._current = None
                self._rendering = False
            keep = []  # figures that cannot be drawn later (an analyzer from outside trackdiag): drawn now
            deferred = []
            for step, stamp, figures in left:
                later = [(job, _deferred_payload(job, step)) for job in figures]
                now = [job for job, payload in later if payload is None]
                deferred += [payload for _, payload in later if payload is not None]
                if now:
                    keep.append((step, stamp, now))
            self._renders.extend(keep)
            self._cv.notify_all()
        names = [owner.name for owner in self._backends]
        for payload in deferred:
            self._spool.put(names, "render", payload, error="not drawn before finish()")
            self.stats.deferred += 1
        if deferred:
            self._spool.commit()
        return until

    def _scalars_drained(self) -> bool:
        return not self._items and not self._journaling and all(
            not lane.busy and (not lane.jobs or lane.owner.dead or lane.retry_at < 0)
            for lane in self._lanes if lane.kind == SCALARS)

    def _drained(self) -> bool:
        return not self._items and not self._journaling and not self._renders and not self._rendering and all(
            not lane.busy and (not lane.jobs or lane.owner.dead or lane.retry_at < 0) for lane in self._lanes)

    # -- journal ------------------------------------------------------------------------------------------
    def _journal_loop(self) -> None:
        spool = self._spool
        assert spool is not None
        held: list[tuple[_Lane, _Job]] = []
        n_held = 0  # records journaled, not yet committed and handed over (counted in self._journaling)
        first = 0.0
        while True:
            with self._cv:
                if n_held:
                    self._journal_cv.wait_for(lambda: self._items or self._closed,
                                              max(0.0, first + self._batch_s - time.monotonic()))
                else:
                    self._journal_cv.wait_for(lambda: self._items or self._stop or self._closed)
                if self._stop or (self._closed and not self._items and not n_held):
                    return
                records = [self._items.popleft() for _ in range(min(len(self._items),
                                                                    self._batch_records - n_held))]
                self._journaling += len(records)
            if records and not n_held:
                first = time.monotonic()
            for record in records:
                held += self._journal(record)
            n_held += len(records)
            with self._cv:
                due = (n_held >= self._batch_records or time.monotonic() >= first + self._batch_s
                       or self._closed)
            if n_held and due:
                spool.commit()
                self._hand_over(held, done=n_held)
                held, n_held = [], 0

    def _journal(self, record: Record) -> list[tuple[_Lane, _Job]]:
        """Put the record's items in the spool (not yet committed); its figures go to the render thread."""
        assert self._spool is not None
        if record.figures:
            with self._cv:
                self._renders.append((record.step, record.timestamp_ms, list(record.figures)))
                self._cv.notify_all()
        return self._journal_ops(record.operations({}))

    def _journal_ops(self, ops: list[Op]) -> list[tuple[_Lane, _Job]]:
        assert self._spool is not None
        out = []
        names = [owner.name for owner in self._backends]
        for kind, payload in ops:
            entry_id = self._spool.put(names, kind, payload)
            lane_kind = MEDIA if kind in MEDIA_KINDS else SCALARS
            for owner in self._backends:
                out.append((owner.lanes[lane_kind], _Job(entry_id, kind, payload)))
        return out

    def _hand_over(self, jobs: list[tuple[_Lane, _Job]], *, done: int = 0) -> None:
        with self._cv:
            self._journaling -= done
            for lane, job in jobs:
                if lane.jobs and lane.jobs[-1].waited or self._waiting_out(lane):
                    job.waited = True
                lane.jobs.append(job)
                if lane.kind == MEDIA and len(lane.jobs) > self._queue_size:
                    self._release_image(lane.jobs[-self._queue_size - 1])
            self._cv.notify_all()

    @staticmethod
    def _release_image(job: _Job) -> None:
        """A figure far back in a slow lane: keep it on disk only (read back from the spool when its turn
        comes), so a long outage costs disk, not memory."""
        if job.kind == "image" and "image" in job.payload:
            job.payload = {k: v for k, v in job.payload.items() if k != "image"}

    # -- render -------------------------------------------------------------------------------------------
    def _render_loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._renders or self._stop or (self._closed and not self._items
                                                                          and not self._journaling))
                if not self._renders:
                    if self._stop or self._closed:
                        return
                    continue
                step, stamp, figures = self._renders.popleft()
                self._rendering = True
                self._current = (step, stamp, figures)
            try:
                images = self._render(figures)
                with self._cv:
                    abandoned = self._current is None  # close() kept its inputs in the spool meanwhile
                    self._current = None
                if abandoned:
                    continue
                ops = Record(step=step, timestamp_ms=stamp).operations(images)
                jobs = self._journal_ops(ops)
                if jobs:
                    assert self._spool is not None
                    self._spool.commit()
                    self._hand_over(jobs)
            except Exception:  # pragma: no cover - _render guards every figure
                log.exception("trackdiag worker: unexpected error while rendering")
            finally:
                with self._cv:
                    self._rendering = False
                    self._cv.notify_all()

    def _render(self, figures: list[Renderer]) -> dict[str, np.ndarray]:
        images: dict[str, np.ndarray] = {}
        for render in figures:
            try:
                images.update(self._renderer(render) if self._renderer is not None else render())
            except Exception as exc:  # a broken figure must not cost the scalars
                with self._cv:
                    self.stats.skipped[f"render:{type(exc).__name__}"] += 1
                log.warning("trackdiag: a figure could not be rendered: %s", exc)
        return images

    # -- lanes ----------------------------------------------------------------------------------------------
    def _lane_loop(self, lane: _Lane) -> None:
        while True:
            with self._cv:
                while True:
                    if self._stop:
                        return
                    if lane.jobs and not lane.owner.dead and 0 <= lane.retry_at <= time.monotonic():
                        linger = self._linger(lane)
                        if linger <= 0:
                            break
                        self._cv.wait(linger)
                        continue
                    if lane.jobs and lane.retry_at > 0 and not lane.owner.dead:
                        self._cv.wait(max(0.01, lane.retry_at - time.monotonic()))
                    else:
                        self._cv.wait(1.0 if self._closed else None)
                    if self._closed and not self._items and not self._journaling and not self._renders \
                            and not self._rendering and (not lane.jobs or lane.owner.dead):
                        return
                lane.busy = True
                jobs = lane.inflight = self._take(lane)
            try:
                self._deliver(lane, jobs)
            except Exception:  # pragma: no cover - _deliver guards every call; this is a last resort
                log.exception("trackdiag worker: unexpected error in backend %s", lane.name)
            finally:
                with self._cv:
                    lane.busy = False
                    lane.inflight = []
                    self._cv.notify_all()

    def _linger(self, lane: _Lane) -> float:
        """Seconds a scalars lane waits before its next metrics call, so that the steps of about
        ``metrics_every_s`` go to the tracker in one write (one store transaction instead of one per step:
        less CPU and less GIL taken from the training thread). The items are durable in the spool
        meanwhile; ``flush()`` and ``close()`` do not wait, and neither does a lane holding more than one
        write (a linger per write would cap it at one write, :data:`STEPS_PER_WRITE` steps, per
        ``metrics_every_s``: a fast loop's backlog then waited for ``finish()``)."""
        if lane.kind != SCALARS or self._closed or self._flushing or not lane.jobs:
            return 0.0
        head = lane.jobs[0]
        if head.kind != "metrics" or head.failures:
            return 0.0
        run = _metrics_run(lane.jobs)
        if len(run) < len(lane.jobs):  # a full write is waiting: lingering would only throttle the lane
            return 0.0
        return lane.last_metrics + self._metrics_every_s - time.monotonic()

    def _take(self, lane: _Lane) -> list[_Job]:
        """The next job, or a run of consecutive metrics jobs (one store write) or figures (one upload), still
        in the lane."""
        jobs = [lane.jobs[0]]
        if jobs[0].kind == "image" and jobs[0].failures == 0:
            for job in list(lane.jobs)[1:IMAGE_BATCH]:
                if job.kind != "image" or job.failures:
                    break
                jobs.append(job)
            return jobs
        if jobs[0].kind == "metrics" and jobs[0].failures == 0:
            jobs = _metrics_run(lane.jobs)
        return jobs

    def _deliver(self, lane: _Lane, jobs: list[_Job]) -> None:
        owner = lane.owner
        if not self._open(owner, lane):
            return
        if owner.resume_step is not None and self._on_resume == "skip":
            jobs = self._skip_resumed(lane, jobs)
            if not jobs:
                return
        if jobs[0].kind == "metrics":
            lane.last_metrics = time.monotonic()
        try:
            self._call(owner.backend, jobs)
        except Exception as exc:
            if not self._transient(owner, exc):
                if len(jobs) > 1:  # find the item at fault: one at a time from here (each counted then)
                    with self._cv:
                        for job in jobs:
                            job.failures = max(job.failures, 1)
                    return
                self._note_error(owner, jobs[0].kind, exc)
                self._done(lane, jobs, refused=f"{type(exc).__name__}: {exc}")
                return
            self._note_error(owner, jobs[0].kind, exc)
            self._transient_failure(lane, jobs, exc)
            return
        self._done(lane, jobs)

    def _skip_resumed(self, lane: _Lane, jobs: list[_Job]) -> list[_Job]:
        """Leave out steps the continued run already holds (MLflow cannot replace a point); warn once."""
        limit = lane.owner.resume_step
        assert limit is not None
        old = [j for j in jobs if j.kind in ("metrics", "image", "table") and int(j.payload["step"]) <= limit]
        if not old:
            return jobs
        assert self._spool is not None
        self._spool.ack([j.id for j in old], lane.name, commit=True)
        with self._cv:
            first = not any(k.startswith("resume:") for k in self.stats.skipped)
            for job in old:
                lane.jobs.remove(job)
                self.stats.skipped[f"resume:{lane.name}"] += 1
            self._cv.notify_all()
        if first:
            log.warning("trackdiag: the %s run already holds steps up to %d; steps at or below it are not "
                        "logged again (on_resume='log' logs them anyway)", lane.name, limit)
        return [j for j in jobs if j not in old]

    def _call(self, backend: Backend, jobs: list[_Job]) -> None:
        if jobs[0].kind == "image":
            backend.log_images([self._image_item(job) for job in jobs])
        elif len(jobs) > 1:
            backend.log_metrics_many([(int(j.payload["step"]), int(j.payload["timestamp_ms"]),
                                       j.payload["metrics"]) for j in jobs])
        else:
            apply(backend, jobs[0].kind, self._payload(jobs[0]))

    def _image_item(self, job: _Job) -> ImageItem:
        """A figure as the backend gets it: its pixels while they are in memory, and the spool's PNG file
        (written once; a tracker that stores PNG files uploads it as it is)."""
        payload = job.payload
        png = self._spool.file_of(job.id) if self._spool is not None else None
        image = payload.get("image")
        if image is None and png is None:
            return self._image_item(_Job(job.id, job.kind, self._payload(job)))
        stamp = payload.get("timestamp_ms")
        return ImageItem(str(payload["key"]), int(payload["step"]), None if stamp is None else int(stamp),
                         image=image, png=png)

    def _payload(self, job: _Job) -> dict[str, Any]:
        if job.kind == "image" and "image" not in job.payload and self._spool is not None:
            from ..backends.spool import Entry

            return self._spool.load(Entry(job.id, "", job.kind,
                                          self._spool.payload_of(job.id) or job.payload))
        return job.payload

    def _transient_failure(self, lane: _Lane, jobs: list[_Job], exc: BaseException) -> None:
        """The tracker is down, or only this item fails: probe with the next item to tell them apart."""
        with self._cv:
            for job in jobs:
                job.failures += 1
            head = jobs[0]
            rest = [j for j in lane.jobs if j not in jobs]
        if len(jobs) == 1 and rest:
            probe = rest[0]
            try:
                self._call(lane.owner.backend, [probe])
            except Exception as exc2:
                self._note_error(lane.owner, probe.kind, exc2)
            else:  # the tracker takes other items: park the one at fault, go on
                with self._cv:
                    lane.jobs.remove(head)
                    lane.parked.append(head)
                    self.stats.parked[lane.name] += 1
                self._done(lane, [probe])
                log.warning("trackdiag: backend %s keeps refusing one %s item (%s); it is kept in the spool "
                            "and the rest goes on", lane.name, head.kind, str(exc)[:200])
                return
        with self._cv:  # down: everything in the lane waits, in order
            lane.retry_at = time.monotonic() + lane.owner.retry_s
            if self._closed:
                lane.retry_at = -1.0  # close() made its last attempt: the rest stays in the spool
            for job in lane.jobs:
                if not job.waited:
                    job.waited = True
                    self.stats.spooled[lane.name] += 1
            self._cv.notify_all()

    def _done(self, lane: _Lane, jobs: list[_Job], *, refused: Optional[str] = None) -> None:
        assert self._spool is not None
        if refused is None:
            # committed at once: a delivered item must not be delivered again by trackdiag.sync
            self._spool.ack([j.id for j in jobs], lane.name, commit=True)
        else:
            for job in jobs:
                self._spool.reject(job.id, refused, backend=lane.name)
            self._spool.commit()
        with self._cv:
            for job in jobs:
                if job in lane.jobs:
                    lane.jobs.remove(job)
                if refused is None:
                    self.stats.delivered[lane.name] += 1
                    if job.waited or job.failures:
                        self.stats.replayed[lane.name] += 1
                else:
                    self.stats.refused[lane.name] += 1
            if lane.retry_at < 0:
                lane.retry_at = 0.0
            self._cv.notify_all()

    def _open(self, owner: _Backend, lane: _Lane) -> bool:
        """Open the backend once (either lane may do it). False while it cannot be opened."""
        with owner.open_lock:
            if owner.opened:
                return True
            if owner.dead:
                return False
            try:
                owner.backend.open()
            except Exception as exc:
                self._note_error(owner, "open", exc)
                if self._transient(owner, exc):
                    with self._cv:
                        for ln in owner.lanes.values():
                            ln.retry_at = -1.0 if self._closed else time.monotonic() + owner.retry_s
                            for job in ln.jobs:
                                if not job.waited:
                                    job.waited = True
                                    self.stats.spooled[ln.name] += 1
                        self._cv.notify_all()
                else:
                    with self._cv:
                        owner.dead = f"{type(exc).__name__}: {exc}"
                        self._cv.notify_all()
                    log.warning("trackdiag: backend %s could not be opened and is disabled for this run "
                                "(%s); everything meant for it is kept in the spool %s", owner.name,
                                owner.dead, self._spool.path if self._spool is not None else "")
                return False
            owner.opened = True
            try:
                owner.resume_step = owner.backend.last_step()
            except Exception as exc:
                log.warning("trackdiag: could not read the last step of the %s run: %s", owner.name, exc)
            self._describe(owner)
            return True

    def _finish_backend(self, owner: _Backend, status: str, deadline: float) -> None:
        """At close: one more try for parked items, then close the backend (or journal the close)."""
        assert self._spool is not None
        stuck = any(ln.busy or (ln.thread is not None and ln.thread.is_alive()) and ln.jobs
                    for ln in owner.lanes.values())
        if owner.opened and not owner.dead and not stuck:
            for lane in owner.lanes.values():
                for job in list(lane.parked):
                    if time.monotonic() >= deadline:
                        break
                    try:
                        self._call(owner.backend, [job])
                    except Exception as exc:
                        self._note_error(owner, job.kind, exc)
                        continue
                    lane.parked.remove(job)
                    self._done(lane, [job])
        # The tracker is down when its scalars could not be delivered. Figures alone failing (an artifact
        # store that refuses writes) do not keep the run open: it is finished and they wait in the spool.
        media_only = bool(owner.lanes[MEDIA].jobs) and not self._scalars_ok(owner)
        down = bool(owner.lanes[SCALARS].jobs) or media_only
        if stuck or down or owner.dead or not owner.opened:
            if not owner.opened and not down and not owner.dead:
                return  # nothing was ever meant for it
            self._spool.put(owner.name, "close", {"status": status}, error="still undelivered at close")
            self._spool.commit()
            if stuck:
                log.warning("trackdiag: backend %s is still busy after the flush timeout; not closing it",
                            owner.name)
            else:
                _release(owner.backend)
            return
        try:
            apply(owner.backend, "close", {"status": status})
        except Exception as exc:
            self._note_error(owner, "close", exc)
            self._spool.put(owner.name, "close", {"status": status}, error=f"{type(exc).__name__}: {exc}")
            self._spool.commit()

    def _scalars_ok(self, owner: _Backend) -> bool:
        """The backend's scalars lane delivered something and nothing waits in it."""
        return self.stats.delivered[owner.name] > 0 and not owner.lanes[SCALARS].jobs

    # -- helpers ------------------------------------------------------------------------------------------
    def _transient(self, owner: _Backend, exc: BaseException) -> bool:
        try:
            return bool(owner.backend.is_transient(exc))
        except Exception:  # pragma: no cover - a broken judge must not break delivery
            return is_transient_error(exc)

    def _describe(self, owner: _Backend) -> None:
        """Tell the spool how to rebuild this backend and re-attach it to its run (for ``trackdiag.sync``)."""
        if self._spool is None:
            return
        backend = owner.backend
        try:
            params = dict(backend.resume_params())
            run = dataclasses.asdict(backend.run) if dataclasses.is_dataclass(backend.run) else {}
            run = {k: (str(v) if isinstance(v, Path) else v) for k, v in run.items()}
            cls = type(backend)
            self._spool.describe(owner.name, target=f"{cls.__module__}.{cls.__qualname__}", params=params,
                                 run=run)
        except Exception as exc:  # pragma: no cover - describing is best effort
            log.warning("trackdiag: could not describe backend %s for the spool: %s", owner.name, exc)

    def _note_error(self, owner: _Backend, kind: str, exc: BaseException) -> None:
        name = owner.name
        with self._cv:
            key = f"{name}:{kind}"
            first = self.stats.failed[key] == 0
            self.stats.failed[key] += 1
            self.stats.errors[name] = f"{type(exc).__name__}: {exc}"[:500]
        if first:
            log.warning("trackdiag: backend %s failed to %s (%s: %s); what it did not take is kept in the "
                        "spool", name, kind, type(exc).__name__, str(exc)[:300])


def _metrics_run(jobs: Iterable[_Job]) -> list[_Job]:
    """The consecutive metrics jobs at the head of ``jobs`` that one write carries (at most
    :data:`METRICS_PER_WRITE` values and :data:`STEPS_PER_WRITE` jobs; the first always)."""
    run: list[_Job] = []
    n = 0
    for job in jobs:
        n += len(job.payload["metrics"]) if job.kind == "metrics" else 0
        if run and (job.kind != "metrics" or n > METRICS_PER_WRITE or len(run) >= STEPS_PER_WRITE):
            break
        run.append(job)
    return run


def _deferred_payload(job: Any, step: int) -> Optional[dict[str, Any]]:
    """What ``trackdiag.backends.spool.draw_deferred`` needs to draw a figure later, or None when it cannot be
    kept
    (not a :class:`trackdiag.core.render.RenderJob` of a trackdiag analyzer)."""
    import json

    from .render import RenderJob

    if not isinstance(job, RenderJob):
        return None
    analyzer, result = job.analyzer, job.result
    cls = type(analyzer)
    if not cls.__module__.startswith("trackdiag."):
        return None
    try:
        state = analyzer.state_dict()
        json.dumps(state)
    except Exception:
        state = None
    return {"step": int(step), "analyzer": f"{cls.__module__}.{cls.__qualname__}",
            "params": dataclasses.asdict(analyzer.params), "state": state,
            "metrics": dict(result.metrics), "texts": dict(result.texts), "maps": dict(result.maps)}


def _release(backend: Backend) -> None:
    try:
        backend.release()
    except Exception:
        pass


def _nowhere() -> Path:
    """A spool folder for a worker built without one (tests): a fresh temporary folder."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="trackdiag_spool_"))
