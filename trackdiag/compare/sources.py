"""Read runs from the trackers: MLflow (by experiment + filter, by run ids or names), local run folders,
W&B offline run folders and TensorBoard log folders.

Every reader reads in batches:

* MLflow (a database such as sqlite or PostgreSQL, or an ``mlflow server``): one bulk read per metric key
  and up to 100 runs (:mod:`trackdiag.compare.mlflow_bulk`), through the store method the server itself
  answers with, so a database and a server give the same rows; a ``file:`` store reads per key with
  ``get_metric_history``.
* local folders: one read of ``metrics.jsonl``; W&B offline / TensorBoard folders: one pass over the run's
  log file through :mod:`trackdiag.logreaders`.

Every reader takes ``select``: a function from the logged keys of each run to the keys to fetch. It is
called once, after the runs are found and before any history is read, so that a typo in a metric name
fails fast and only the selected histories are read.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

from ..errors import ConfigError
from ..logreaders import WANDB_STEP_KEYS, wandb_step_key  # noqa: F401 - WANDB_STEP_KEYS: the old home
from ..values import ROOT
from .data import MissingRunError, RunData, Series, series_from_points, unique_names
from .mlflow_bulk import bulk_reader

__all__ = ["read_runs", "read_mlflow", "read_local", "read_logreader", "expand_folders", "SOURCES",
           "COMPARISON_TAG", "KeyPlan", "keys_per_run"]

#: From the metric keys of each run (one list per run) to the keys to read.
Select = Callable[[Sequence[Sequence[str]]], Sequence[str]]

class KeyPlan(list):  # type: ignore[type-arg]
    """The keys a ``select`` function returns (a list of str), with one refinement readers that read per key
    may use: ``only_without_verdicts`` are keys (``trackdiag/<analyzer>/<name>``) needed only from the runs
    that logged no ``trackdiag/<analyzer>/verdict/…`` metric (they serve to recompute those verdicts); a
    run that logged its verdicts is not asked for them (:func:`keys_per_run`)."""

    def __init__(self, keys: Sequence[str] = (), *, only_without_verdicts: Sequence[str] = ()) -> None:
        super().__init__(keys)
        self.only_without_verdicts = frozenset(only_without_verdicts)


def keys_per_run(keys: Sequence[str], logged: Sequence[str]) -> set[str]:
    """The keys of ``keys`` to read from a run that logged ``logged``: those it logged, less the
    :class:`KeyPlan` ``only_without_verdicts`` keys of analyzers whose verdicts it logged."""
    mine = set(keys).intersection(logged)
    cond: frozenset[str] = getattr(keys, "only_without_verdicts", frozenset())
    if not cond:
        return mine
    judged = {k.split("/")[1] for k in logged if k.startswith(ROOT + "/") and "/verdict/" in k}
    return {k for k in mine if not (k in cond and k.split("/")[1] in judged)}


#: Tag set on the comparison runs this tool writes, so that a later comparison does not compare them.
COMPARISON_TAG = ("trackdiag.kind", "comparison")

SOURCES = ("mlflow", "wandb", "tensorboard", "local")

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


# -- MLflow ----------------------------------------------------------------------------------------------
def _sqlite_path(uri: str) -> Optional[Path]:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):])


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    path = _sqlite_path(tracking_uri)
    if path is not None and str(path) != ":memory:" and not path.is_file():
        # MlflowClient would silently create an empty store here.
        raise MissingRunError(f"no MLflow store at {path.resolve()} (tracking_uri={tracking_uri}). Give the "
                              "store the runs were logged to: mlflow.tracking_uri=sqlite:///path/to/mlruns.db")
    return MlflowClient(tracking_uri=tracking_uri)


def _find_mlflow_runs(client: Any, *, experiment: str, filter_string: str, runs: Sequence[str],
                      max_runs: int) -> list[Any]:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(experiment) if experiment else None
    if runs:
        found: list[Any] = []
        missing: list[str] = []
        by_name: Optional[dict[str, list[Any]]] = None
        for ref in runs:
            ref = str(ref)
            if _RUN_ID.match(ref):
                try:
                    found.append(client.get_run(ref))
                    continue
                except MlflowException:
                    pass
            if by_name is None:  # one search for every name-given run
                by_name = {}
                if exp is not None:
                    for run in client.search_runs([exp.experiment_id], filter_string,
                                                  max_results=max(1, max_runs)):
                        by_name.setdefault(run.info.run_name, []).append(run)
            hits = by_name.get(ref, [])
            if hits:
                found.extend(sorted(hits, key=lambda r: r.info.start_time or 0))
            else:
                missing.append(ref)
        if missing:
            known = sorted(by_name or {})
            where = (f"experiment {experiment!r}" if exp is not None else
                     f"the store (experiment {experiment!r} does not exist)")
            listing = ", ".join(known[:20]) + (" …" if len(known) > 20 else "")
            raise MissingRunError(f"MLflow run(s) {missing} not found by id, nor by name in {where}. "
                                  f"Runs there: {listing or 'none'}.")
        return found
    if exp is None:
        names = [e.name for e in client.search_experiments()]
        raise MissingRunError(f"MLflow experiment {experiment!r} does not exist in this store; experiments: "
                              f"{names}. Set mlflow.experiment=<name> or give runs=[<run id>, …].")
    found = [r for r in client.search_runs([exp.experiment_id], filter_string, max_results=max(1, max_runs))
             if r.data.tags.get(COMPARISON_TAG[0]) != COMPARISON_TAG[1]]
    if not found:
        what = f" matching filter {filter_string!r}" if filter_string else ""
        raise MissingRunError(f"no runs{what} in MLflow experiment {experiment!r}.")
    return sorted(found, key=lambda r: r.info.start_time or 0)


def _client_histories(client: Any, run_id: str, keys: Sequence[str]) -> dict[str, Series]:
    """Fallback for stores without SQL access: one ``get_metric_history`` call per key."""
    out = {}
    for key in keys:
        hist = client.get_metric_history(run_id, key)
        if hist:
            out[key] = series_from_points([m.step for m in hist], [m.value for m in hist],
                                          [m.timestamp for m in hist])
    return out


def read_mlflow(*, tracking_uri: str, experiment: str, filter_string: str = "", runs: Sequence[str] = (),
                max_runs: int = 1000, select: Select, batched: bool = True) -> list[RunData]:
    """Runs from an MLflow store: ``runs`` (ids or names) or every run of ``experiment`` that matches
    ``filter_string`` (an MLflow search filter). ``batched=False`` forces the per-key fallback."""
    client = _client(tracking_uri)
    found = _find_mlflow_runs(client, experiment=experiment, filter_string=filter_string, runs=runs,
                              max_runs=max_runs)
    chosen = select([list(r.data.metrics) for r in found])
    keys = list(chosen)
    names = unique_names([r.info.run_name or r.info.run_id for r in found], [r.info.run_id for r in found])
    ids = [r.info.run_id for r in found]
    # only what each run logged, and only what the comparison needs from it (KeyPlan)
    keys_of = {r.info.run_id: keys_per_run(chosen, list(r.data.metrics)) for r in found}
    reader = bulk_reader(tracking_uri) if batched else None
    if reader is not None:
        try:
            histories = reader.histories(ids, keys, keys_of=keys_of)
        finally:
            reader.close()
    else:
        histories = {rid: _client_histories(client, rid, [k for k in keys if k in keys_of[rid]])
                     for rid in ids}
    out = []
    for run, name in zip(found, names, strict=True):
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        out.append(RunData(name=name, run_id=run.info.run_id, source="mlflow",
                           metrics=histories.get(run.info.run_id, {}), tags=tags))
    return out


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
    :func:`trackdiag.logreaders.read_wandb_offline` / :func:`trackdiag.logreaders.read_tensorboard`."""
    from .. import logreaders

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
    (:func:`trackdiag.logreaders.wandb_step_key`: ``trackdiag/step`` when the rows carry it, else
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
                           filter_string=mlflow.filter, runs=runs, max_runs=mlflow.max_runs, select=select)
    if backend == "local":
        return read_local(runs=runs, select=select)
    if backend in ("wandb", "tensorboard"):
        return read_logreader(backend, runs=runs, select=select)
    raise ConfigError(f"backend must be one of {SOURCES}; got {backend!r}.")
