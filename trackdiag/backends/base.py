"""The backend contract: a small abstract base that every tracker adapter implements in full.

All calls happen on the background worker thread, never on the training thread. Values arrive already
converted by the core (:mod:`trackdiag.core.values`): metric keys are final, values are floats (NaN allowed),
images are ``H×W×3`` uint8 arrays, table rows hold only str/float/int/None cells.
"""

from __future__ import annotations

import errno
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np

__all__ = ["Backend", "BackendParams", "ImageItem", "RunInfo", "is_dropped_connection", "is_transient_error"]


_TRANSIENT_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT,
                     errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EPIPE, errno.EAGAIN,
                     errno.EBUSY, errno.EIO, errno.ENOSPC, errno.EDQUOT}


def is_transient_error(exc: BaseException) -> bool:
    """Whether a failure is worth retrying later: a network error or timeout anywhere in the cause chain."""
    seen: set[int] = set()
    cur: Optional[BaseException] = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (ConnectionError, TimeoutError)):
            return True
        if isinstance(cur, OSError) and cur.errno in _TRANSIENT_ERRNOS:
            return True
        name = type(cur).__name__
        module = type(cur).__module__ or ""
        # requests / urllib3 / httpx connection problems (without importing them)
        if module.split(".")[0] in ("requests", "urllib3", "httpx", "httpcore") and any(
                s in name for s in ("Connection", "Timeout", "Protocol", "MaxRetry", "NewConnection",
                                    "RemoteDisconnected", "ReadError", "WriteError")):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def is_dropped_connection(exc: BaseException) -> bool:
    """Whether a request failed because the connection it was sent on broke (reset, aborted, closed by the
    server without an answer), anywhere in the cause chain, as opposed to a server that cannot be reached
    (connection refused) or does not answer (timeout).

    A pooled keep-alive connection that the server closed after its previous answer fails this way when it is
    reused before its close reached the client; a new connection is the remedy, not waiting.

    >>> is_dropped_connection(RuntimeError("request failed"))
    False
    >>> err = RuntimeError("request failed")
    >>> err.__context__ = ConnectionResetError(104, "Connection reset by peer")
    >>> is_dropped_connection(err), is_dropped_connection(ConnectionRefusedError(111, "refused"))
    (True, False)
    """
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        cur = todo.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
            return True
        name, module = type(cur).__name__, type(cur).__module__ or ""
        if name == "RemoteDisconnected" or (module.split(".")[0] == "urllib3" and name == "ProtocolError"):
            return True  # http.client's / urllib3's "connection aborted" (the OSError is only in its args)
        todo += [c for c in (cur.__cause__, cur.__context__, getattr(cur, "reason", None))
                 if isinstance(c, BaseException)]
    return False


@dataclass
class ImageItem:
    """One figure on its way to a tracker: the ``H×W×3`` uint8 array while it is in memory, and its PNG file
    once the spool wrote it (``png``), so that a tracker that stores PNG files uploads those bytes instead
    of encoding the image a second time."""

    key: str
    step: int
    #: When the figure's step was logged (milliseconds); None for journals written before it was kept.
    timestamp_ms: Optional[int] = None
    image: Optional[np.ndarray] = None
    png: Optional[Path] = None

    def array(self) -> np.ndarray:
        """The image as an ``H×W×3`` uint8 array (decoded from ``png`` when it is not in memory)."""
        if self.image is not None:
            return self.image
        if self.png is None:
            raise ValueError(f"image {self.key!r} at step {self.step} has neither pixels nor a file")
        from PIL import Image

        with Image.open(self.png) as im:
            return np.asarray(im.convert("RGB"))


@dataclass
class BackendParams:
    """Base of every backend's typed parameters."""


@dataclass
class RunInfo:
    """What every backend needs to know about the run it writes."""

    experiment: str = "trackdiag"
    run_name: Optional[str] = None
    tags: dict[str, str] = field(default_factory=dict)
    out_dir: Path = Path("trackdiag_runs")


class Backend(ABC):
    """One tracker. ``open`` is called once on the worker before anything else; ``close`` once at the end."""

    name: ClassVar[str]
    Params: ClassVar[type[BackendParams]] = BackendParams

    def __init__(self, params: Optional[BackendParams] = None, *, run: Optional[RunInfo] = None) -> None:
        self.params = params if params is not None else self.Params()
        self.run = run if run is not None else RunInfo()

    @abstractmethod
    def open(self) -> None:
        """Connect and create (or attach to) the run. May raise; the worker retries later."""

    @abstractmethod
    def log_metrics(self, metrics: Mapping[str, float], step: int, *, timestamp_ms: int) -> None:
        """Write a batch of scalar metrics at one step, in as few calls as the tracker allows."""

    def log_metrics_many(self, batches: Sequence[tuple[int, int, Mapping[str, float]]]) -> None:
        """Write several ``(step, timestamp_ms, metrics)`` batches; one store write where the tracker allows
        (the worker sends consecutive metrics items this way). The default calls :meth:`log_metrics`."""
        for step, timestamp_ms, metrics in batches:
            self.log_metrics(metrics, step, timestamp_ms=timestamp_ms)

    @abstractmethod
    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        """Write one ``H×W×3`` uint8 figure under ``key`` at ``step``."""

    def log_images(self, items: Sequence[ImageItem]) -> None:
        """Write several figures (the worker sends consecutive figures this way). A tracker that stores PNG
        files overrides it to upload ``item.png`` as it is and to send the batch in as few calls as it can;
        the default calls :meth:`log_image` for each."""
        for item in items:
            self.log_image(item.key, item.array(), int(item.step))

    @abstractmethod
    def log_table(self, key: str, rows: Sequence[Mapping[str, Any]], step: int) -> None:
        """Write (append) table rows under ``key``; rows carry their own ``step`` column where relevant."""

    @abstractmethod
    def log_artifacts(self, local_dir: Path, name: str) -> None:
        """Upload a folder (a report) under the artifact path ``name``."""

    @abstractmethod
    def log_params(self, params: Mapping[str, str]) -> None:
        """Write the flattened configuration as run parameters."""

    @abstractmethod
    def close(self, status: str = "FINISHED") -> None:
        """Finish the run (``FINISHED`` or ``FAILED``) if this backend created it; release resources."""

    def location(self) -> str:
        """Where a person looks at the results (a URI, a folder, a command)."""
        return self.name

    def publish_findings(self, findings: Mapping[str, Any], step: int) -> None:
        """Show the run's current findings (:meth:`trackdiag.core.findings.RunFindings.payload`: ``verdict``,
        ``causes``, ``findings``, ``markdown``, ``text``) where the tracker's users look. Default: nothing."""
        return None

    # -- optional hooks with defaults (used by the worker's fault handling and by trackdiag.sync) --------
    def is_transient(self, exc: BaseException) -> bool:
        """Whether a failed call is worth retrying later (tracker down) rather than refused for good."""
        return is_transient_error(exc)

    def resume_params(self) -> dict[str, Any]:
        """Parameters that rebuild this backend attached to the same run (``trackdiag.sync`` uses them)."""
        return asdict(self.params) if is_dataclass(self.params) else {}

    def last_step(self) -> Optional[int]:
        """After ``open()``: the last step of trackdiag's metrics that a *continued* run already holds (None
        for a new run). The worker leaves out steps at or below it (``on_resume="skip"``)."""
        return None

    def release(self) -> None:
        """Let go of the run without finishing it (``trackdiag.sync`` after a partial replay)."""
        return None
