"""Read training logs: TensorBoard, CSV, JSONL, MLflow runs, W&B offline runs; one module per tracker.

:func:`read_loss_log` is the one entry point for a loss curve: it recognises the format, lists the numeric
series, picks the loss (``tag=`` or a guess, see :func:`guess_loss_tag`) and a timestep series when there is
one (``timestep``/``timesteps``/``t``), and returns a :class:`LossLog` with the two aligned on the step.

Problems raise :class:`~trackdiag.errors.InputFileError` with the path and the fix: a missing or empty
file, a corrupt record, no numeric series, no loss series (the message lists what *is* there). A log whose
last record is cut off (the run crashed or is still writing) is refused unless ``allow_truncated=True``:
then the complete records are read and the cut is noted in :attr:`LossLog.warnings`.

Modules: :mod:`.tensorboard`, :mod:`.textlogs` (CSV, JSONL), :mod:`.mlflow` (:func:`read_mlflow`, the one
MLflow reader, also used by ``compare_ckpts``), :mod:`.wandb` (:func:`read_wandb_offline`, with wandb's own
protobuf classes; the tests of the W&B backend reuse it), :mod:`.losslog` (format detection and the loss
entry point); what they share is in :mod:`._common`. Every series is a :class:`trackdiag.io.series.Series`
(``ScalarSeries`` here).
"""

from __future__ import annotations

from ..series import Series
from ._common import (
    LOSS_TAG_PREFERENCE,
    STEP_KEYS,
    TIMESTEP_TAGS,
    LossLog,
    ScalarSeries,
    guess_loss_tag,
    guess_timestep_tag,
)
from .losslog import detect_format, read_loss_log, read_scalars
from .mlflow import read_mlflow
from .tensorboard import read_tensorboard
from .textlogs import read_csv, read_jsonl
from .wandb import (
    WANDB_STEP_KEYS,
    WandbRun,
    iter_wandb_records,
    read_wandb_offline,
    wait_for_wandb_run,
    wandb_step_key,
)

__all__ = [
    "ScalarSeries", "LossLog", "WandbRun", "LOSS_TAG_PREFERENCE", "TIMESTEP_TAGS", "STEP_KEYS",
    "guess_loss_tag", "guess_timestep_tag", "read_loss_log", "read_scalars", "read_tensorboard", "read_csv",
    "read_jsonl", "read_mlflow", "read_wandb_offline", "wait_for_wandb_run", "iter_wandb_records",
    "detect_format", "WANDB_STEP_KEYS", "wandb_step_key", "Series",
]
