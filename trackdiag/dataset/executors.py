"""Where the per-image work of a scan runs: in this process, in a local process pool, or on Ray Data.

Every executor yields the :class:`~trackdiag.dataset.records.ImageRecord` of each task in walk order and
batches the tasks alike (:func:`batch_size`), so the records, and hence ``flagged.csv``, do not depend on
the executor.

The local pool is the default. No worker imports torch (the period estimate is numpy,
:mod:`trackdiag.dataset.period`): :class:`PoolStart` starts the pool in a thread as soon as a scan begins
(before the folder is even counted), from a *forkserver* that imports numpy, Pillow, ``scipy.fft`` and the
worker's modules once and forks every worker from that clean process (the caller, possibly multi-threaded and
using torch, is never forked). Meanwhile this process runs the cheap tier of the first batches and keeps
what their spectral tier needs (8-bit luma and a bit-packed wall) for the pool, up to :data:`EARLY_BYTES`.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import threading
from collections.abc import Iterator
from typing import Any, Optional

from .records import ImageRecord
from .worker import Pending, Task, analyze_images, cheap_tier, init_pool_worker, init_worker, run_job

__all__ = ["EARLY_BYTES", "MAX_BATCH", "PoolStart", "batch_size", "records"]

#: Images per worker task: the spectral tier estimates their periods in one batched call (a call costs
#: ~5 ms of fixed overhead, ~0.6 ms per image at 8; 16 saved ~5 % of a 512² scan's CPU, 32 nothing more).
MAX_BATCH = 16

#: Most luma and wall bytes this process keeps for the pool while the pool starts (the cheap tier of the
#: first images runs here meanwhile): 64 MB, about 220 images of 512² (luma, and the wall packed 8 per byte).
EARLY_BYTES = 64 << 20

#: Imported once by the forkserver (workers start in milliseconds): the cheap tier's modules ...
_PRELOAD_CHEAP = ["numpy", "PIL.Image", "trackdiag.dataset.worker"]

#: ... and the spectral tier's (its period estimate and repetition test: numpy and scipy.fft, no torch).
_PRELOAD = [*_PRELOAD_CHEAP, "scipy.fft", "trackdiag.dataset.tiling", "trackdiag.dataset.period"]


def batch_size(total: int) -> int:
    """Images per worker task for a scan of ``total`` images: up to :data:`MAX_BATCH`, smaller for small
    scans (so that every worker gets work). The same for every executor, so they batch alike."""
    return max(1, min(MAX_BATCH, total // 4))


def _batches(tasks: Iterator[Task], size: int) -> Iterator[list[Task]]:
    batch: list[Task] = []
    for t in tasks:
        batch.append(t)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class PoolStart:
    """A local process pool of ``workers`` processes, started in a background thread at construction.

    Never forks the calling process: a forkserver (where the platform has one; else *spawn*) imports numpy,
    Pillow and — with ``spectral`` — the spectral tier's modules once, and forks every worker from it.
    :meth:`pool` waits for the pool and re-raises, in the caller's thread, whatever its start raised;
    :meth:`close` terminates it.
    """

    def __init__(self, workers: int, *, spectral: bool = True) -> None:
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        self._ctx = mp.get_context(method)
        if method == "forkserver":
            self._ctx.set_forkserver_preload(_PRELOAD if spectral else _PRELOAD_CHEAP)
        self._workers = workers
        self._pool: Any = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._start, name="trackdiag-dataset-pool", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            self._pool = self._ctx.Pool(self._workers, initializer=init_pool_worker)
        except BaseException as exc:  # re-raised by pool(), in the caller's thread
            self._error = exc

    def starting(self) -> bool:
        """True while the pool is still starting."""
        return self._thread.is_alive()

    def pool(self) -> Any:
        """The started ``multiprocessing.pool.Pool`` (waits for it)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._pool

    def close(self) -> None:
        """Terminate the pool (waits for its start first, so that no worker outlives the scan)."""
        self._thread.join()
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None


def _ray_analyze(row: dict[str, Any]) -> dict[str, Any]:
    """Ray Data map function: a pickled batch of Tasks in, their pickled ImageRecords out (index kept for
    the order)."""
    import pickle

    global _RAY_READY
    if not _RAY_READY:
        init_worker()
        _RAY_READY = True
    recs = analyze_images(pickle.loads(row["tasks"]))
    return {"i": row["i"], "recs": pickle.dumps(recs)}


_RAY_READY = False


def _ray_records(tasks: Iterator[Task], size: int) -> Iterator[ImageRecord]:
    """Per-image work as a Ray Data pipeline (``pip install 'trackdiag[ray]'``), records in path order.

    Uses the Ray cluster this process is connected to (``ray.init(address=...)`` first), else starts a local
    one. Every node must see the image paths (a shared file system). Records are small; they are collected
    and put back in the walk order, so ``flagged.csv`` is the same as with the local pool (the same
    batches of ``size`` images).
    """
    import pickle

    try:
        import ray
        import ray.data
    except ImportError:
        from ..errors import MissingDependencyError

        raise MissingDependencyError("ray", "ray", "the Ray Data executor") from None
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, log_to_driver=False)
    items = [{"i": i, "tasks": pickle.dumps(b)} for i, b in enumerate(_batches(tasks, size))]
    if not items:
        return
    ds = ray.data.from_items(items).map(_ray_analyze)
    done = sorted(ds.iter_rows(), key=lambda r: int(r["i"]))
    for r in done:
        yield from pickle.loads(r["recs"])


def _in_process(tasks: Iterator[Task], size: int) -> Iterator[ImageRecord]:
    # Per-image arrays are small: BLAS threads only add overhead on a busy machine. Scoped to this loop
    # (threadpoolctl, when installed), the caller's setting is restored afterwards.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        threadpool_limits = None
    limits = threadpool_limits(1) if threadpool_limits is not None else None
    try:
        for b in _batches(tasks, size):
            yield from analyze_images(b)
    finally:
        if limits is not None:
            limits.restore_original_limits()


def _pooled(tasks: Iterator[Task], size: int, start: PoolStart) -> Iterator[ImageRecord]:
    batches = _batches(tasks, size)
    # While the pool starts, this process runs the cheap tier (no torch) of the first batches and leaves
    # their spectral tier to the pool; their luma and packed wall are kept, at most EARLY_BYTES.
    early: list[tuple[list[ImageRecord], list[Pending]]] = []
    held = 0
    while start.starting() and held < EARLY_BYTES:
        batch = next(batches, None)
        if batch is None:
            break
        recs, pending = cheap_tier(batch)
        pending = [(rec, task, s.packed()) for rec, task, s in pending]
        early.append((recs, pending))
        held += sum(s.nbytes for _, _, s in pending)
    pool = start.pool()
    # In walk order: first the batches whose cheap tier ran here (the pool adds their spectral tier), then
    # the rest, whole.
    jobs = itertools.chain((("spectral", e) for e in early), (("all", b) for b in batches))
    for recs in pool.imap(run_job, jobs):
        yield from recs


def records(tasks: Iterator[Task], *, workers: int, total: int, executor: str = "local",
            start: Optional[PoolStart] = None, spectral: bool = True) -> Iterator[ImageRecord]:
    """The record of every task, in order: on Ray Data (``executor="ray"``), in this process
    (``workers <= 1``) or in a local pool of ``workers`` processes (``start``: one already starting, else one
    is started here, with the spectral tier's modules when ``spectral``; it is terminated when the records
    are done or the generator is closed)."""
    size = batch_size(total)
    if executor == "ray":
        yield from _ray_records(tasks, size)
        return
    if workers <= 1:
        yield from _in_process(tasks, size)
        return
    start = start or PoolStart(workers, spectral=spectral)
    try:
        yield from _pooled(tasks, size, start)
    finally:
        start.close()
