"""How a process ends: finish open sessions first, with the right status.

* **Normal exit without ``finish()``**: the flush runs in :func:`threading._register_atexit` (Python ≥ 3.9),
  i.e. in ``threading._shutdown``, *before* ``atexit`` handlers and before ``concurrent.futures`` refuses new
  work, so MLflow's own exit teardown has not run yet and table or artifact uploads still work. Where that
  hook does not exist, a plain ``atexit`` handler is used.
* **Uncaught exception** in the main thread: ``sys.excepthook`` finishes the session as ``FAILED``, then
  calls the previous hook.
* **``sys.exit(code)``** with a non-zero code (or a message): noted; the exit hook then finishes the session
  as ``FAILED`` (a ``SystemExit`` that is caught, by a CLI framework or a notebook, does not end the session).
  (``raise SystemExit(3)`` written out, and ``os._exit``, are not seen: use
  ``sys.exit`` or call ``finish("FAILED")``.)

Hooks are installed once per process and act only on sessions of the process that opened them (a forked
child does not finish its parent's sessions).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = ["register", "unregister"]

log = logging.getLogger("trackdiag")

_sessions: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
_pids: dict[int, int] = {}
_installed = False
_exit_status = "FINISHED"  # what the last sys.exit() call asked for
_lock = threading.Lock()


def register(session: Any) -> None:
    """Finish ``session`` (``session.finish(status)``) at exit, on an uncaught exception or ``sys.exit``."""
    _install()
    with _lock:
        _sessions[id(session)] = session
        _pids[id(session)] = os.getpid()


def unregister(session: Any) -> None:
    with _lock:
        _sessions.pop(id(session), None)
        _pids.pop(id(session), None)


def _finish_all(status: str) -> None:
    with _lock:
        mine = [s for k, s in list(_sessions.items()) if _pids.get(k) == os.getpid()]
    for session in mine:
        try:
            session.finish(status)
        except BaseException:
            log.exception("trackdiag: finish at exit failed")


def _install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    register_early: Callable[[Callable[[], None]], None] | None = getattr(threading, "_register_atexit", None)
    try:
        if register_early is None:
            raise RuntimeError
        register_early(_at_exit)
    except RuntimeError:  # no early hook, or the interpreter is already shutting down
        atexit.register(_at_exit)
    atexit.register(_at_exit)  # a second chance; finish() is idempotent

    previous_hook = sys.excepthook

    def excepthook(exc_type: Any, exc: Any, tb: Any) -> None:
        if not issubclass(exc_type, SystemExit):
            _finish_all("FAILED")
        previous_hook(exc_type, exc, tb)

    sys.excepthook = excepthook

    original_exit = sys.exit

    def exit(status: Any = None) -> NoReturn:
        global _exit_status
        # Only noted here: the SystemExit may still be caught (a CLI framework, a notebook). The sessions are
        # finished by the exit hook, before MLflow's teardown, with this status.
        _exit_status = "FAILED" if status not in (None, 0) else "FINISHED"
        original_exit(status)

    exit.__doc__ = original_exit.__doc__
    sys.exit = exit  # type: ignore[assignment]


def _at_exit() -> None:
    _finish_all(_exit_status)
    from . import render

    render.shutdown()  # after the sessions: their last figures may still be drawn there
