"""Where figures are drawn: in a separate process, so matplotlib never holds the training thread's GIL.

``worker.render: process`` (the default) draws every figure in one render process per Python process
(spawned on the first figure, shared by every session, ended at exit): the worker thread only pickles the
analyzer and its small host result (maps are at most ``map_max_side`` pixels a side) and waits for the RGB
array. ``thread`` draws on the worker thread, as before (less memory, no process; the GIL is shared with the
training loop while a figure is drawn). When the process cannot be used (a result that does not pickle, a
platform without processes, a render process that died) the figure is drawn on the thread instead, and the
reason is logged once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

__all__ = ["RenderJob", "ProcessRenderer", "thread_render"]

log = logging.getLogger("trackdiag")


@dataclass
class RenderJob:
    """One analyzer's figures for one step (picklable: it is sent to the render process)."""

    analyzer: Any
    result: Any

    def __call__(self) -> dict[str, np.ndarray]:
        from .values import metric_key

        return {metric_key(self.analyzer.name, k): v for k, v in self.analyzer.render(self.result).items()}


def thread_render(job: Any) -> Mapping[str, np.ndarray]:
    return job()


def _run(job: Any) -> dict[str, np.ndarray]:  # in the render process
    return dict(job())


def _warm() -> bool:  # in the render process: the figure code's imports, once
    import importlib

    for module in ("matplotlib", "trackdiag.plots"):
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001
            pass
    return True


_POOL: Any = None
_POOL_LOCK = threading.Lock()
_BROKEN: Optional[str] = None


def _pool() -> Any:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            _POOL = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            _POOL.submit(_warm)
        return _POOL


def shutdown() -> None:
    """End the render process (at exit, after the sessions were finished)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        except Exception:  # noqa: BLE001 - exit path
            pass


def prepare() -> None:
    """Import the process machinery now (in ``init()``), so that its exit hook is registered before
    trackdiag's own and the render process is still there when ``finish()`` runs at exit."""
    import concurrent.futures.process  # noqa: F401


class ProcessRenderer:
    """Draw a :class:`RenderJob` in the shared render process; on the calling thread when that fails."""

    def __init__(self, *, timeout_s: float = 120.0) -> None:
        self.timeout_s = timeout_s

    def __call__(self, job: Any) -> Mapping[str, np.ndarray]:
        global _BROKEN
        if _BROKEN is None and isinstance(job, RenderJob):
            try:
                return _pool().submit(_run, job).result(timeout=self.timeout_s)
            except TimeoutError:
                raise
            except Exception as exc:  # pickling, a dead process, shutdown at exit
                if not _is_job_error(exc):
                    _BROKEN = f"{type(exc).__name__}: {exc}"
                    log.warning("trackdiag: figures are drawn on the worker thread from now on (the render "
                                "process failed: %s)", _BROKEN)
                else:
                    raise
        return job()


def _is_job_error(exc: BaseException) -> bool:
    """An error raised by the figure code itself in the render process (it carries the remote traceback),
    not by the process machinery (pickling, a dead process, shutdown)."""
    from concurrent.futures.process import _RemoteTraceback

    return isinstance(exc.__cause__, _RemoteTraceback)
