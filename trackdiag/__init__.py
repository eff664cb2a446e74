"""trackdiag: find out why a wall-material diffusion / LoRA model produces tiling artifacts, in your tracker.

Three lines in a training loop::

    import trackdiag
    trackdiag.init()                      # embedded MLflow store ./mlruns.db; configuration from conf/
    for step, batch in enumerate(loader):
        ...
        trackdiag.log(step, pred, mask)   # cheap on the training thread
    trackdiag.finish()

Heavy modules (torch, mlflow, matplotlib, hydra) load lazily, so ``import trackdiag`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

from ._version import __version__
from .errors import (
    ConfigError,
    InputFileError,
    InputValueError,
    MaskError,
    NotInitializedError,
    ShapeError,
    StepOrderError,
    TrackdiagError,
)

if TYPE_CHECKING:  # pragma: no cover
    from .core.session import FinishSummary, Session

__all__ = [
    "__version__", "init", "log", "finish", "get_session", "diagnose", "Session",
    "TrackdiagError", "ShapeError", "MaskError", "InputValueError", "InputFileError", "ConfigError",
    "NotInitializedError", "StepOrderError",
]


def init(config: Any = None, *, overrides: Sequence[str] = (), **options: Any) -> Session:
    """Start a diagnostics session and make it current for :func:`log` and :func:`finish`.

    Args:
        config: a DictConfig (e.g. ``cfg.trackdiag`` from your own ``@hydra.main`` app) or mapping.
        overrides: any Hydra override strings, e.g. ``["analyzer=[tiling,loss]", "worker.queue_size=64"]``.
        **options: shortcuts: ``backend`` (a name or a list), ``tracking_uri``, ``run_id``, ``experiment``,
            ``run_name``, ``out_dir``, ``on_error`` (``"warn"`` | ``"raise"``), ``writer`` (a TensorBoard
            SummaryWriter).

    A session that is still current is finished first.
    """
    from .core import session as _session

    current = _session._current_session()
    if current is not None:
        current.finish()
    s = _session.Session(config, overrides=overrides, **options)
    _session._set_current(s)
    return s


def get_session() -> Session:
    """The current session. Raises :class:`NotInitializedError` before :func:`init`."""
    from .core import session as _session

    current = _session._current_session()
    if current is None:
        raise NotInitializedError("trackdiag.log() was called before trackdiag.init(). Call trackdiag.init() "
                                  "once before the training loop.")
    return current


def log(step: int, pred: Any = None, mask: Any = None, *, ref: Any = None, target: Any = None,
        latents: Any = None, loss: Any = None, timesteps: Any = None,
        sample_ids: Optional[Sequence[Any]] = None, value_range: Optional[str] = None) -> None:
    """Log one training step to the current session. See :meth:`trackdiag.core.session.Session.log`."""
    get_session().log(step, pred, mask, ref=ref, target=target, latents=latents, loss=loss,
                      timesteps=timesteps, sample_ids=sample_ids, value_range=value_range)


def finish(status: str = "FINISHED") -> FinishSummary:
    """Flush and close the current session; returns what was skipped, dropped or undelivered."""
    return get_session().finish(status)


def __getattr__(name: str) -> Any:
    if name == "Session":
        from .core.session import Session

        return Session
    if name == "diagnose":
        import importlib

        # The submodule trackdiag.diagnose is callable: trackdiag.diagnose(pred, mask=..., out_dir=...).
        return importlib.import_module(".diagnose", __name__)
    raise AttributeError(f"module 'trackdiag' has no attribute {name!r}")
