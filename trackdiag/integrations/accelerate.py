"""🤗 accelerate: a tracker so that ``Accelerator(log_with="trackdiag")`` runs a trackdiag session.

::

    from accelerate import Accelerator
    import trackdiag
    from trackdiag.integrations.accelerate import register

    register()                                            # once, before Accelerator(...)
    accelerator = Accelerator(log_with="trackdiag")       # or log_with=["mlflow", "trackdiag"]
    accelerator.init_trackers("walls", config=vars(args),
                              init_kwargs={"trackdiag": {"overrides": ["analyzer=[tiling,loss]"]}})
    for step, batch in enumerate(loader):
        ...
        accelerator.log({"train/loss": loss.item()}, step=step)       # scalars: every tracker, ours too
        trackdiag.log(step, pred, batch["mask"], loss=per_sample_loss, timesteps=t)   # tensor analyzers
    accelerator.end_training()                            # finishes the trackdiag session

``accelerator.log`` only carries scalars and strings, so the tensor analyzers are fed next to it with
``trackdiag.log(...)`` (the tracker makes its session the current one) or with
``accelerator.get_tracker("trackdiag", unwrap=True).log(...)`` (the :class:`~trackdiag.core.session.Session`).
Call it on **every** process: under ``torch.distributed`` the session gathers the per-sample results of all
ranks and only rank 0 writes. That is why this tracker is not ``main_process_only``.

When accelerate's own MLflow tracker is also in ``log_with`` (and comes first), its run is already active
when this tracker starts; trackdiag then writes its diagnostics into *that* run instead of creating a second
one, and leaves the scalars of ``accelerator.log`` to accelerate's tracker (no duplicate series).

On accelerate versions without ``register_tracker_class`` (it is in 1.15, which CI runs), pass an instance:
``Accelerator(log_with=[TrackdiagTracker("walls")])``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError, MissingDependencyError

try:
    from accelerate.tracking import GeneralTracker
except ImportError:  # pragma: no cover - exercised only without accelerate
    raise MissingDependencyError("accelerate", purpose="trackdiag.integrations.accelerate") from None

__all__ = ["TRACKER_NAME", "TrackdiagTracker", "register"]

TRACKER_NAME = "trackdiag"


class TrackdiagTracker(GeneralTracker):
    """An accelerate ``GeneralTracker`` backed by a trackdiag :class:`~trackdiag.core.session.Session`.

    Args:
        project_name: accelerate passes ``init_trackers``' ``project_name`` here; it becomes the trackdiag
            experiment (``run.experiment``) unless ``experiment=`` is given.
        config, overrides: as in :func:`trackdiag.init` (a config node, Hydra override strings).
        share_mlflow_run: write into the MLflow run that is active on this thread when the tracker starts
            (accelerate's ``"mlflow"`` tracker listed before ``"trackdiag"``). Default True.
        log_scalars: send ``accelerator.log`` values through trackdiag. ``None`` (default): yes, unless the
            diagnostics share a run with accelerate's MLflow tracker, which already logs them.
        **options: the keyword shortcuts of :func:`trackdiag.init` (``backend``, ``tracking_uri``,
            ``run_id``, ``run_name``, ``out_dir``, ``on_error`` …).

    The session is created in :meth:`start` (accelerate calls it after the process group exists) and made
    current, so ``trackdiag.log(...)`` in the training loop reaches it.
    """

    name = TRACKER_NAME
    requires_logging_directory = False
    #: Every rank needs the session: trackdiag gathers across ranks itself and writes from rank 0 only.
    main_process_only = False

    def __init__(self, project_name: str = "trackdiag", *, config: Any = None, overrides: Sequence[str] = (),
                 share_mlflow_run: bool = True, log_scalars: bool | None = None, **options: Any) -> None:
        super().__init__()
        self.project_name = project_name
        self._config = config
        self._overrides = tuple(overrides)
        self._options = dict(options)
        self._options.setdefault("experiment", project_name)
        self.share_mlflow_run = share_mlflow_run
        self._log_scalars = log_scalars
        self.shared_run_id: str | None = None
        self._session: Any = None
        self._last_step = 0

    # -- GeneralTracker interface -------------------------------------------------------------------------
    def start(self) -> None:
        if self._session is not None:
            return
        import trackdiag

        options = dict(self._options)
        if self.share_mlflow_run and "run_id" not in options:
            shared = _active_mlflow_run()
            if shared is not None:
                run_id, uri = shared
                options.update(run_id=run_id, tracking_uri=uri)
                if options.get("backend") is None and self._config is None:
                    options["backend"] = ["mlflow"]
                self.shared_run_id = run_id
        try:
            self._session = trackdiag.init(self._config, overrides=self._overrides, **options)
        except ConfigError as exc:
            raise ConfigError(f"Accelerator(log_with='trackdiag'): {exc} (set init_kwargs={{'trackdiag': "
                              "{...}} in accelerator.init_trackers)") from None

    @property
    def tracker(self) -> Any:
        """The trackdiag :class:`~trackdiag.core.session.Session` (starts it when accelerate has not yet)."""
        self.start()
        return self._session

    @property
    def log_scalars(self) -> bool:
        return self._log_scalars if self._log_scalars is not None else self.shared_run_id is None

    def store_init_configuration(self, values: Mapping[str, Any]) -> None:
        """Store ``init_trackers(config=...)`` as run parameters (prefixed ``config.``)."""
        from ..config import flatten

        if self.shared_run_id is not None:
            return  # accelerate's MLflow tracker stores the same values in the same run
        self.tracker.log_params(flatten(dict(values), "config."))

    def log(self, values: Mapping[str, Any], step: int | None = None, **kwargs: Any) -> None:
        """Log ``accelerator.log`` scalars (and strings, as a table) at ``step`` (the last step when None)."""
        if step is not None:
            self._last_step = int(step)
        if self.log_scalars:
            self.tracker.log_scalars(values, self._last_step)

    def finish(self) -> None:
        if self._session is not None:
            self._session.finish()


def register() -> type[TrackdiagTracker]:
    """Make ``"trackdiag"`` a valid ``log_with`` name. Call once before ``Accelerator(...)``; idempotent."""
    try:
        from accelerate.tracking import LOGGER_TYPE_TO_CLASS, register_tracker_class
    except ImportError:
        raise ConfigError("this accelerate version has no accelerate.tracking.register_tracker_class. "
                          "Pass an instance instead: "
                          "Accelerator(log_with=[TrackdiagTracker('project')]).") from None
    if LOGGER_TYPE_TO_CLASS.get(TRACKER_NAME) is not TrackdiagTracker:
        register_tracker_class(TrackdiagTracker)
    return TrackdiagTracker


def _active_mlflow_run() -> tuple[str, str] | None:
    """``(run_id, tracking_uri)`` of the MLflow run active on this thread, or None."""
    try:
        import mlflow
    except ImportError:  # pragma: no cover - mlflow is a core dependency
        return None
    run = mlflow.active_run()
    if run is None:
        return None
    return run.info.run_id, mlflow.get_tracking_uri()

