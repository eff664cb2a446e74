"""The entry point: recognise a log's format, read its numeric series, pick the loss and the timesteps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from ...errors import InputFileError
from ._common import (
    LossLog,
    ScalarSeries,
    _check_file,
    _listing,
    _resolve_tag,
    _select,
    guess_loss_tag,
    guess_timestep_tag,
)
from .mlflow import read_mlflow
from .tensorboard import read_tensorboard
from .textlogs import read_csv, read_jsonl
from .wandb import read_wandb_offline


def detect_format(path: str | Path) -> str:
    """``tensorboard`` | ``csv`` | ``jsonl`` | ``wandb`` for a file or folder; raises when none fits."""
    p = Path(path)
    _check_file(p)
    if p.is_file():
        name = p.name.lower()
        if name.startswith("events.out.tfevents"):
            return "tensorboard"
        if p.suffix.lower() in (".csv", ".tsv"):
            return "csv"
        if p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            return "jsonl"
        if p.suffix.lower() == ".wandb":
            return "wandb"
        raise InputFileError(f"{p}: unsupported log file; expected a TensorBoard event file, .csv, .jsonl or "
                             ".wandb (or a folder holding them).")
    if any(p.glob("*.wandb")) or (p / "latest-run").exists() or any(p.glob("*run-*/*.wandb")) or \
            any(p.glob("wandb/*run-*/*.wandb")):
        return "wandb"
    if next(p.rglob("events.out.tfevents.*"), None) is not None:
        return "tensorboard"
    for pattern, fmt in (("*.csv", "csv"), ("*.jsonl", "jsonl"), ("*.ndjson", "jsonl")):
        found = sorted(p.rglob(pattern))
        if len(found) == 1:
            return fmt
        if len(found) > 1:
            raise InputFileError(f"{p}: several {pattern} logs ({', '.join(str(f) for f in found[:5])}); "
                                 "pass the file.")
    raise InputFileError(f"{p}: no training log found (TensorBoard events, *.csv, *.jsonl, W&B offline run). "
                         "For an MLflow run pass --run-id (and --tracking-uri).")


def read_scalars(path: str | Path, *, allow_truncated: bool = False, warnings: Optional[list[str]] = None
                 ) -> tuple[str, dict[str, ScalarSeries]]:
    """``(format, series)`` of a log file or folder (any format but MLflow)."""
    warnings = warnings if warnings is not None else []
    fmt = detect_format(path)
    p = Path(path)
    if fmt == "tensorboard":
        return fmt, read_tensorboard(p, allow_truncated=allow_truncated, warnings=warnings)
    if fmt == "wandb":
        run = read_wandb_offline(p, allow_truncated=allow_truncated)
        warnings.extend(run.warnings)
        return fmt, run.series()
    if p.is_dir():
        pattern = "*.csv" if fmt == "csv" else "*.jsonl"
        found = sorted(p.rglob(pattern)) or sorted(p.rglob("*.ndjson"))
        p = found[0]
    reader = read_csv if fmt == "csv" else read_jsonl
    return fmt, reader(p, allow_truncated=allow_truncated, warnings=warnings)


def read_loss_log(path: str | Path | None = None, *, tag: Optional[str] = None,
                  timestep_tag: Optional[str] = None, run_id: Optional[str] = None,
                  tracking_uri: Optional[str] = None, allow_truncated: bool = False) -> LossLog:
    """Read the loss series (and the timesteps when logged) from a log file/folder or an MLflow run.

    ``run_id`` selects an MLflow run (``tracking_uri`` or ``path`` as its tracking URI, else MLflow's
    default); otherwise ``path`` is a TensorBoard folder/event file, a CSV or JSONL file, or a W&B offline
    run folder. ``tag``: the loss series (default: :func:`guess_loss_tag`); ``timestep_tag``: default
    :func:`guess_timestep_tag`.
    """
    warnings: list[str] = []
    if run_id:
        uri = tracking_uri or (str(path) if path is not None else None)
        if uri is not None and "://" not in uri and Path(uri).suffix == ".db":
            uri = f"sqlite:///{Path(uri).resolve()}"
        return _read_mlflow_loss(run_id, uri, tag=tag, timestep_tag=timestep_tag)
    if path is None:
        raise InputFileError("no log given: pass --logdir PATH (or --run-id for an MLflow run).")
    fmt, series = read_scalars(path, allow_truncated=allow_truncated, warnings=warnings)
    return _select(series, source=str(path), fmt=fmt, tag=tag, timestep_tag=timestep_tag, warnings=warnings)


def _read_mlflow_loss(run_id: str, uri: Optional[str], *, tag: Optional[str], timestep_tag: Optional[str]
                      ) -> LossLog:
    """The loss (and timesteps) of one MLflow run, through :func:`read_mlflow`: the names are chosen from
    the run's logged keys before any history is read, and only those two histories are read."""
    from ...compare.data import MissingRunError
    from ...errors import TrackdiagError

    source = f"mlflow:{uri or 'default'}#{run_id}"
    where = f"MLflow run {run_id!r} at {uri or 'the default tracking URI'}"
    chosen: dict[str, Any] = {}

    def select(per_run: Sequence[Sequence[str]]) -> list[str]:
        all_keys = sorted(per_run[0])
        if not all_keys:
            raise InputFileError(f"{source}: the run has no metrics.")
        loss_tag = _resolve_tag(tag, all_keys, source) if tag else guess_loss_tag(all_keys)
        if loss_tag is None:
            raise InputFileError(f"{source}: no loss series found. Available metrics: {_listing(all_keys)}. "
                                 "Pass the loss name with --loss-tag.")
        t_tag = _resolve_tag(timestep_tag, all_keys, source) if timestep_tag else guess_timestep_tag(
            [k for k in all_keys if k != loss_tag])
        chosen.update(all_keys=all_keys, loss_tag=loss_tag, t_tag=t_tag)
        return [k for k in (loss_tag, t_tag) if k]

    try:
        (run,) = read_mlflow([run_id], tracking_uri=uri, select=select)
    except MissingRunError as exc:
        raise InputFileError(f"{where}: cannot open the run ({exc}). Check --run-id and --tracking-uri.") \
            from None
    except TrackdiagError:
        raise
    except Exception as exc:
        raise InputFileError(f"{where}: cannot reach the tracking store ({type(exc).__name__}: "
                             f"{exc}).") from None
    warnings: list[str] = []
    log = _select(run.metrics, source=source, fmt="mlflow", tag=chosen["loss_tag"],
                  timestep_tag=chosen["t_tag"], warnings=warnings)
    log.tags = chosen["all_keys"]
    return log
