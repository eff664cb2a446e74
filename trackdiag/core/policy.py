"""What happens to a problem: ``on_error="warn"`` (default) warns once per kind and counts; ``"raise"``
raises."""

from __future__ import annotations

import threading
import warnings
from collections import Counter

from ..errors import TrackdiagError

__all__ = ["ErrorPolicy", "TrackdiagWarning"]


class TrackdiagWarning(UserWarning):
    """A diagnostic problem that was skipped instead of raised (``on_error="warn"``)."""


class ErrorPolicy:
    def __init__(self, mode: str = "warn") -> None:
        if mode not in ("warn", "raise"):
            raise ValueError(f"on_error must be 'warn' or 'raise'; got {mode!r}")
        self.mode = mode
        self.skipped: Counter = Counter()
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def handle(self, exc: BaseException, *, kind: str | None = None, items: int = 1, what: str = "") -> None:
        """Raise ``exc`` under ``raise``; otherwise count ``items`` skipped under ``kind`` and warn once."""
        if self.mode == "raise":
            raise exc
        kind = kind or (exc.kind if isinstance(exc, TrackdiagError) else f"unexpected:{type(exc).__name__}")
        with self._lock:
            self.skipped[kind] += items
            first = kind not in self._warned
            self._warned.add(kind)
        if first:
            prefix = f"{what}: " if what else ""
            warnings.warn(f"trackdiag skipped {prefix}{exc} (further '{kind}' problems are counted, not "
                          "repeated; see finish())", TrackdiagWarning, stacklevel=4)
