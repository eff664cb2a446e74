"""PyTorch Lightning: a ``Callback`` that runs a trackdiag session next to the Trainer.

::

    from trackdiag.integrations.lightning import TrackdiagCallback

    class WallModule(L.LightningModule):
        def training_step(self, batch, batch_idx):
            pred = self(batch["image"])                                  # B×C×H×W in [0, 1]
            loss = ((pred - batch["target"]) ** 2).mean(dim=(1, 2, 3))    # per sample, (B,)
            return {"loss": loss.mean(),
                    "trackdiag": {"pred": pred, "mask": batch["mask"], "loss": loss}}

    trainer = L.Trainer(callbacks=[TrackdiagCallback(overrides=["analyzer=[tiling,loss]"])])

The callback reads the ``"trackdiag"`` entry of what ``training_step`` returns (the keyword arguments of
:func:`trackdiag.log`: ``pred``, ``mask``, ``ref``, ``target``, ``latents``, ``loss``, ``timesteps``,
``sample_ids``) and logs it at ``trainer.global_step``. A custom ``extract(trainer, pl_module, outputs,
batch)`` can build that mapping instead. The session starts in ``setup("fit")`` and finishes in ``teardown``
(``FAILED`` when training raised); its analyzer state is part of Lightning checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import InputValueError, MissingDependencyError

try:
    from lightning.pytorch import Callback
except ImportError:  # pragma: no cover - exercised only without lightning
    try:
        from pytorch_lightning import Callback  # type: ignore[no-redef,assignment]  # same class, old package
    except ImportError:
        raise MissingDependencyError("lightning", purpose="trackdiag.integrations.lightning") from None

__all__ = ["LOG_KEYS", "TrackdiagCallback"]

#: The keys an extracted mapping may have: the keyword arguments of ``trackdiag.log``.
LOG_KEYS = frozenset({"pred", "mask", "ref", "target", "latents", "loss", "timesteps", "sample_ids"})

Extract = Callable[[Any, Any, Any, Any], Mapping[str, Any] | None]


class TrackdiagCallback(Callback):
    """Feed trackdiag from a Lightning ``Trainer``.

    Args:
        key: the entry of ``training_step``'s returned dict that holds the ``trackdiag.log`` keywords.
        extract: ``extract(trainer, pl_module, outputs, batch) -> mapping or None`` instead of ``key``.
        session: an existing :class:`~trackdiag.core.session.Session` (the caller finishes it); by default the
            callback starts its own in ``setup("fit")`` and finishes it in ``teardown``.
        config, overrides: as in :func:`trackdiag.init`.
        attach_to_logger: when the Trainer's logger is Lightning's ``MLFlowLogger``, write the diagnostics
        into
            its run (same tracking URI and run id) instead of creating a second run. Default True.
        validation: also log what ``validation_step`` returns under ``key`` (at the current global step). Its
            ``loss``/``timesteps`` are left out, so validation losses never feed the training-loss detectors.
        **options: the keyword shortcuts of :func:`trackdiag.init` (``backend``, ``run_name``, ``out_dir`` …).
    """

    def __init__(self, *, key: str = "trackdiag", extract: Extract | None = None, session: Any = None,
                 config: Any = None, overrides: Sequence[str] = (), attach_to_logger: bool = True,
                 validation: bool = False, **options: Any) -> None:
        super().__init__()
        self.key = key
        self.extract = extract
        self._owns_session = session is None
        self.session = session
        self._config = config
        self._overrides = tuple(overrides)
        self._options = dict(options)
        self.attach_to_logger = attach_to_logger
        self.validation = validation
        self._pending_state: Mapping[str, Any] | None = None
        self._final_state: dict[str, Any] = {}
        #: What ``finish()`` reported, once the callback finished its own session.
        self.summary: Any = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.session is not None or stage != "fit":
            return
        import trackdiag

        options = dict(self._options)
        backend = options.get("backend")
        mlflow_selected = backend is None or "mlflow" in ([backend] if isinstance(backend, str) else backend)
        if self.attach_to_logger and mlflow_selected and "run_id" not in options:
            options.update(_mlflow_logger_target(trainer))
        self.session = trackdiag.init(self._config, overrides=self._overrides, **options)
        if self._pending_state is not None:
            self.session.load_state_dict(self._pending_state)
            self._pending_state = None

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":
            self._finish("FINISHED")

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._finish("FAILED")

    def _finish(self, status: str) -> None:
        if self._owns_session and self.session is not None:
            self._final_state = self.session.state_dict()
            self.summary = self.session.finish(status)
            self.session = None

    # -- data -----------------------------------------------------------------------------------------------
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        inputs = self._inputs(trainer, pl_module, outputs, batch)
        if inputs is not None and self.session is not None:
            self.session.log(int(trainer.global_step), **inputs)

    def on_validation_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        if not self.validation or trainer.sanity_checking or self.session is None:
            return
        inputs = self._inputs(trainer, pl_module, outputs, batch)
        if inputs is not None:
            inputs = {k: v for k, v in inputs.items() if k not in ("loss", "timesteps")}
            if inputs:
                self.session.log(int(trainer.global_step), **inputs)

    def _inputs(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any) -> dict[str, Any] | None:
        if self.extract is not None:
            found = self.extract(trainer, pl_module, outputs, batch)
        else:
            found = outputs.get(self.key) if isinstance(outputs, Mapping) else None
        if found is None:
            return None
        if not isinstance(found, Mapping):
            raise InputValueError(f"TrackdiagCallback: outputs[{self.key!r}] must be a dict of trackdiag.log "
                                  f"keywords; got {type(found).__name__}.")
        unknown = set(found) - LOG_KEYS
        if unknown:
            raise InputValueError(f"TrackdiagCallback: unknown keys {sorted(unknown)}; use "
                                  f"{sorted(LOG_KEYS)}.")
        return dict(found)

    # -- checkpoints: the analyzers' streaming state resumes with the Trainer -------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The session's state; after ``fit`` (e.g. ``trainer.save_checkpoint`` then) its final state."""
        return self.session.state_dict() if self.session is not None else dict(self._final_state)

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        if not state_dict:
            return
        if self.session is not None:
            self.session.load_state_dict(state_dict)
        else:
            self._pending_state = dict(state_dict)


def _mlflow_logger_target(trainer: Any) -> dict[str, Any]:
    """``run_id``/``tracking_uri``/``backend`` options that point at the Trainer's MLFlowLogger run, if
    any."""
    try:
        from lightning.pytorch.loggers import MLFlowLogger
    except ImportError:  # pragma: no cover
        return {}
    for logger in getattr(trainer, "loggers", []) or []:
        if isinstance(logger, MLFlowLogger):
            run_id = logger.run_id  # creates the run on rank 0; None elsewhere (other ranks never write)
            uri = getattr(logger, "_tracking_uri", None)
            if run_id is None or uri is None:
                return {}
            return {"run_id": run_id, "tracking_uri": uri}
    return {}
