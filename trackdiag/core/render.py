"""Where figures are drawn: in a separate process, so matplotlib never holds the training thread's GIL.

``worker.render: process`` (the default) draws every figure in one render process per Python process
(``python -m trackdiag.core.render``, started on the first figure, shared by every session, ended at exit; a
plain
subprocess, so the user's script is never imported a second time): the worker thread only pickles the
analyzer and its small host result (maps are at most ``map_max_side`` pixels a side) and waits for the RGB
array. ``thread`` draws on the worker thread, as before (less memory, no process; the GIL is shared with the
training loop while a figure is drawn). When the process cannot be used (a result that does not pickle, a
platform without processes, a render process that died) the figure is drawn on the thread instead, and the
reason is logged once. An analyzer whose render job does not pickle (a custom analyzer holding a lambda, a
patched instance) has its own figures drawn on the thread from then on; the others stay in the process.
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


class _Server:
    """One ``python -m trackdiag.core.render`` child: length-prefixed pickles in on stdin, out on stdout.

    A plain subprocess, not ``multiprocessing``: a spawned multiprocessing child re-imports the user's main
    script, which would run a training script without a ``__main__`` guard a second time.
    """

    def __init__(self) -> None:
        import os
        import subprocess
        import sys

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the same imports as this process
        self.proc = subprocess.Popen([sys.executable, "-m", "trackdiag.core.render"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, start_new_session=True)
        self.lock = threading.Lock()

    def call(self, data: bytes, timeout_s: float) -> dict[str, np.ndarray]:
        """Send one pickled :class:`RenderJob` and wait for its figures."""
        import pickle

        with self.lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(len(data).to_bytes(8, "little") + data)
            self.proc.stdin.flush()
            timer = threading.Timer(timeout_s, self.proc.kill)
            timer.start()
            try:
                head = _read(self.proc.stdout, 8)
                ok, value = pickle.loads(_read(self.proc.stdout, int.from_bytes(head, "little")))
            finally:
                timer.cancel()
        if not ok:
            raise _FigureError(value)
        return value

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except Exception:
            self.proc.kill()


class _FigureError(RuntimeError):
    """The figure code raised in the render process (its message and type name are kept)."""


def _read(stream: Any, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = stream.read(n - len(out))
        if not chunk:
            raise EOFError("the render process ended")
        out += chunk
    return out


def _serve() -> None:  # in the render process
    import importlib
    import pickle
    import sys

    try:  # the in-loop figures are drawn with Pillow: warm its fonts and the colour maps they use
        raster = importlib.import_module("trackdiag.plots.raster")
        raster.warm()
    except Exception:
        pass
    src, dst = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything the figure code prints must not corrupt the channel
    while True:
        try:
            head = _read(src, 8)
        except EOFError:
            return
        job = pickle.loads(_read(src, int.from_bytes(head, "little")))
        try:
            reply: tuple[bool, Any] = (True, dict(job()))
        except Exception as exc:
            reply = (False, f"{type(exc).__name__}: {exc}")
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        dst.write(len(data).to_bytes(8, "little") + data)
        dst.flush()


_SERVER: Optional[_Server] = None
_LOCK = threading.Lock()
_NO_PROCESS: Optional[str] = None
_UNPICKLABLE: set[str] = set()  # analyzers whose jobs cannot be sent: drawn on the worker thread


def _server() -> _Server:
    global _SERVER
    with _LOCK:
        if _SERVER is None or _SERVER.proc.poll() is not None:
            _SERVER = _Server()
        return _SERVER


def shutdown() -> None:
    """End the render process (at exit, after the sessions were finished)."""
    global _SERVER
    with _LOCK:
        server, _SERVER = _SERVER, None
    if server is not None:
        server.close()


def prepare() -> None:
    """Nothing to import ahead any more (kept for callers); the process starts with the first figure."""


class ProcessRenderer:
    """Draw a :class:`RenderJob` in the shared render process; on the calling thread when that fails."""

    def __init__(self, *, timeout_s: float = 120.0) -> None:
        self.timeout_s = timeout_s

    def __call__(self, job: Any) -> Mapping[str, np.ndarray]:
        if not isinstance(job, RenderJob):
            return job()
        name = str(getattr(job.analyzer, "name", type(job.analyzer).__name__))
        if name in _UNPICKLABLE:
            return job()
        import pickle

        try:
            data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:  # this analyzer cannot be sent
            _UNPICKLABLE.add(name)
            log.warning("trackdiag: %s's figures are drawn on the worker thread from now on (its render job "
                        "does not pickle: %s: %s)", name, type(exc).__name__, exc)
            return job()
        global _NO_PROCESS
        if _NO_PROCESS is None:
            try:
                server = _server()
            except OSError as exc:  # no process can be started here: every figure on the thread from now on
                _NO_PROCESS = f"{type(exc).__name__}: {exc}"
                log.warning("trackdiag: figures are drawn on the worker thread from now on (no render "
                            "process: %s)", _NO_PROCESS)
            else:  # a figure that fails, or takes too long (its process is killed), raises: this figure only
                return server.call(data, self.timeout_s)
        return job()


if __name__ == "__main__":
    _serve()
