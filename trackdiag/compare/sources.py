"""Read runs from the trackers: MLflow (by experiment + filter, by run ids or names), local run folders,
W&B offline run folders and TensorBoard log folders.

Every reader reads in batches:

* MLflow (a database such as sqlite or PostgreSQL, or an ``mlflow server``): one bulk read per metric key
  and up to 100 runs (:mod:`trackdiag.compare.mlflow_bulk`), through the store method the server itself
  answers with, so a database and a server give the same rows; a ``file:`` store reads per key with
  ``get_metric_history``.
* local folders: one read of ``metrics.jsonl``; W&B offline / TensorBoard folders: one pass over the run's
  log file through :mod:`trackdiag.io.logreaders`.

Every reader takes ``select``: a function from the logged keys of each run to the keys to fetch. It is
called once, after the runs are found and before any history is read, so that a typo in a metric name
fails fast and only the selected histories are read.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io.logreaders import WANDB_STEP_KEYS, wandb_step_key  # noqa: F401 - WANDB_STEP_KEYS: the old home
from ..io.logreaders.mlflow import COMPARISON_TAG, KeyPlan, Select, keys_per_run, read_mlflow
from .data import MissingRunError, RunData, Series, series_from_points, unique_names

__all__ = ["read_runs", "read_mlflow", "read_local", "read_logreader", "expand_folders", "SOURCES",
           "COMPARISON_TAG", "KeyPlan", "keys_per_run"]

# read_mlflow (the one MLflow reader), Select, KeyPlan, keys_per_run and COMPARISON_TAG live in
# trackdiag.io.logreaders.mlflow.
SOURCES = ("mlflow", "wandb", "tensorboard", "local")


# -- folders ---------------------------------------------------------------------------------------------
def expand_folders(patterns: Sequence[str], *, what: str) -> list[Path]:
    """Folders from paths or glob patterns (sorted per pattern). Raises MissingRunError for no match."""
    if not patterns:
        raise ConfigError(f"give the {what} folders: runs=[path/to/run, …] (glob patterns work).")
    out: list[Path] = []
    missing = []
    for pattern in patterns:
        pattern = str(pattern)
        hits = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        dirs = [Path(h) for h in hits if Path(h).is_dir()]
        if not dirs:
            missing.append(pattern)
        out.extend(d for d in dirs if d not in out)
    if missing:
        raise MissingRunError(f"{what} folder(s) not found: {missing}.")
    return out


def read_local(*, runs: Sequence[str], select: Select) -> list[RunData]:
    """Run folders written by the local backend (``<run>/metrics.jsonl``, ``params.json``)."""
    import json

    from ..backends.local import read_metrics

    folders = expand_folders(runs, what="local run")
    raw = []
    for folder in folders:
        if not (folder / "metrics.jsonl").is_file():
            raise MissingRunError(f"{folder} is not a trackdiag local run folder: it has no metrics.jsonl.")
        raw.append(read_metrics(folder))
    keys = list(select([list(r) for r in raw]))
    names = unique_names([f.name for f in folders], [str(f) for f in folders])
    out = []
    for folder, name, metrics in zip(folders, names, raw, strict=True):
        series = {k: series_from_points(list(metrics[k]), list(metrics[k].values()))
                  for k in keys if k in metrics}
        params = folder / "params.json"
        tags = {}
        if params.is_file():
            tags = {k: str(v) for k, v in json.loads(params.read_text(encoding="utf-8")).items()
                    if k.startswith("run.tags.") or k == "run.run_name"}
        out.append(RunData(name=name, run_id=str(folder), source="local", metrics=series, tags=tags))
    return out


def read_logreader(kind: str, *, runs: Sequence[str], select: Select) -> list[RunData]:
    """W&B offline run folders or TensorBoard log folders, each read in one pass by
    :func:`trackdiag.io.logreaders.read_wandb_offline` / :func:`trackdiag.io.logreaders.read_tensorboard`."""
    from ..io import logreaders

    what = {"wandb": "W&B offline run", "tensorboard": "TensorBoard log"}[kind]
    folders = expand_folders(runs, what=what)
    tables: list[dict[str, Any]] = []
    names: list[str] = []
    tags: list[dict[str, str]] = []
    for folder in folders:
        if kind == "wandb":
            run = logreaders.read_wandb_offline(folder)
            tables.append(wandb_series(run.history))
            names.append(str(run.config.get("run.run_name") or run.run_id or folder.name))
            flat = {"project": run.project} if run.project else {}
            flat.update({k[len("tags."):]: str(v) for k, v in run.config.items()
                         if k.startswith("tags.") and not isinstance(v, (dict, list))})
            tags.append(flat)
        else:
            tables.append(logreaders.read_tensorboard(folder))
            names.append(folder.name)
            tags.append({})
    keys = list(select([list(t) for t in tables]))
    names = unique_names(names, [str(f) for f in folders])
    out = []
    for folder, name, table, tag in zip(folders, names, tables, tags, strict=True):
        metrics = {k: Series(table[k].steps, table[k].values) for k in keys if k in table}
        out.append(RunData(name=name, run_id=str(folder), source=kind, metrics=metrics, tags=tag))
    return out




def wandb_series(history: Sequence[dict[str, Any]]) -> dict[str, Series]:
    """Numeric series of W&B history rows, on the one W&B step axis
    (:func:`trackdiag.io.logreaders.wandb_step_key`: ``trackdiag/step`` when the rows carry it, else
    ``_step``)."""
    step_key = wandb_step_key(history)
    if step_key is None:
        return {}
    points: dict[str, tuple[list[int], list[float]]] = {}
    for row in history:
        step = row.get(step_key)
        if isinstance(step, bool) or not isinstance(step, (int, float)):
            continue
        for key, value in row.items():
            if key.startswith("_") or key == step_key or isinstance(value, bool) \
                    or not isinstance(value, (int, float)):
                continue
            steps, values = points.setdefault(key, ([], []))
            steps.append(int(step))
            values.append(float(value))
    return {k: series_from_points(st, vals) for k, (st, vals) in points.items()}


def read_runs(backend: str, *, runs: Sequence[str], mlflow: Any, select: Select) -> list[RunData]:
    """Dispatch to the reader of ``backend`` (one of :data:`SOURCES`)."""
    if backend == "mlflow":
        return read_mlflow(tracking_uri=mlflow.tracking_uri, experiment=mlflow.experiment,
                           filter_string=mlflow.filter, runs=runs, max_runs=mlflow.max_runs, select=select,
                           digests=bool(getattr(mlflow, "digests", True)))
    if backend == "local":
        return read_local(runs=runs, select=select)
    if backend in ("wandb", "tensorboard"):
        return read_logreader(backend, runs=runs, select=select)
    raise ConfigError(f"backend must be one of {SOURCES}; got {backend!r}.")
