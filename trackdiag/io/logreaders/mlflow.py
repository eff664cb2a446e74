"""MLflow runs: the one reader (:func:`read_mlflow`) for ``diagnose --run-id`` and ``compare_ckpts``.

Runs are found by id, by name, or as every run of an experiment matching a search filter; their histories
are read in batches (:mod:`trackdiag.compare.mlflow_bulk`: one bulk read per metric key and up to 100 runs
on a database or a server, the same rows either way; from a server, first the runs' checked history digests,
:mod:`trackdiag.compare.mlflow_digests`); a ``file:`` store reads per key with
``get_metric_history``. ``select`` sees every run's logged keys before any history is read, so a typo fails
fast and only the selected histories are read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ...compare.mlflow_bulk import bulk_reader

if TYPE_CHECKING:
    from ...compare.data import RunData
    from ..series import Series

__all__ = ["read_mlflow", "COMPARISON_TAG", "Select", "KeyPlan", "keys_per_run"]

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
    from ...core.values import ROOT

    mine = set(keys).intersection(logged)
    cond: frozenset[str] = getattr(keys, "only_without_verdicts", frozenset())
    if not cond:
        return mine
    judged = {k.split("/")[1] for k in logged if k.startswith(ROOT + "/") and "/verdict/" in k}
    return {k for k in mine if not (k in cond and k.split("/")[1] in judged)}

#: Tag set on the comparison runs ``compare_ckpts`` writes, so that a later comparison does not compare them.
COMPARISON_TAG = ("trackdiag.kind", "comparison")

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def _sqlite_path(uri: str) -> Optional[Path]:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):])


def _client(tracking_uri: Optional[str]) -> Any:
    from mlflow import MlflowClient

    from ...compare.data import MissingRunError

    path = _sqlite_path(tracking_uri) if tracking_uri else None
    if path is not None and str(path) != ":memory:" and not path.is_file():
        # MlflowClient would silently create an empty store here.
        raise MissingRunError(f"no MLflow store at {path.resolve()} (tracking_uri={tracking_uri}). Give the "
                              "store the runs were logged to: mlflow.tracking_uri=sqlite:///path/to/mlruns.db")
    return MlflowClient(tracking_uri=tracking_uri)


def _find_mlflow_runs(client: Any, *, experiment: str, filter_string: str, runs: Sequence[str],
                      max_runs: int) -> list[Any]:
    from mlflow.exceptions import MlflowException

    from ...compare.data import MissingRunError

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
    from ...compare.data import series_from_points

    out = {}
    for key in keys:
        hist = client.get_metric_history(run_id, key)
        if hist:
            out[key] = series_from_points([m.step for m in hist], [m.value for m in hist],
                                          [m.timestamp for m in hist])
    return out


def read_mlflow(runs: Sequence[str] = (), *, tracking_uri: Optional[str] = None, experiment: str = "",
                filter_string: str = "", max_runs: int = 1000, select: Optional[Select] = None,
                batched: bool = True, digests: bool = True, stats: Optional[dict[str, Any]] = None
                ) -> list[RunData]:
    """Runs from an MLflow store with the histories of the selected metrics.

    ``runs``: run ids or run names (names are looked up in ``experiment``); empty: every run of
    ``experiment`` that matches ``filter_string`` (an MLflow search filter), earlier comparison runs left
    out. ``select`` maps each run's logged keys to the keys to read (default: all of them).
    ``tracking_uri`` None: MLflow's default. ``batched=False`` forces the per-key fallback. From a server,
    ``digests`` reads what trackdiag logged from the runs' checked history digests first
    (:mod:`trackdiag.compare.mlflow_digests`); ``stats``, when given, receives how the histories were read
    (``digest_runs``, ``digest_keys``, ``digest_skipped``, ``bulk_calls``).
    Raises :class:`~trackdiag.compare.data.MissingRunError` for a missing store, experiment or run.
    """
    from ...compare.data import RunData, unique_names

    client = _client(tracking_uri)
    found = _find_mlflow_runs(client, experiment=experiment, filter_string=filter_string, runs=runs,
                              max_runs=max_runs)
    per_run = [list(r.data.metrics) for r in found]
    chosen: Sequence[str] = (select(per_run) if select is not None
                             else list(dict.fromkeys(k for ks in per_run for k in ks)))
    keys = list(chosen)
    names = unique_names([r.info.run_name or r.info.run_id for r in found], [r.info.run_id for r in found])
    ids = [r.info.run_id for r in found]
    # only what each run logged, and only what the caller needs from it (KeyPlan)
    keys_of = {r.info.run_id: keys_per_run(chosen, list(r.data.metrics)) for r in found}
    reader = bulk_reader(tracking_uri or client.tracking_uri) if batched and keys else None
    if reader is not None:
        try:
            from_digests = None
            if digests and reader.is_server:
                from ...compare.mlflow_digests import digest_histories

                from_digests = digest_histories(reader.uri, found, keys_of)
                keys_of = from_digests.remaining
            histories = reader.histories([r for r in ids if keys_of.get(r)], keys, keys_of=keys_of)
        finally:
            reader.close()
        if from_digests is not None:
            for rid, got in from_digests.histories.items():
                histories.setdefault(rid, {}).update(got)
        if stats is not None:
            stats.update(bulk_calls=reader.calls, digest_runs=from_digests.runs if from_digests else 0,
                         digest_keys=from_digests.keys if from_digests else 0,
                         digest_skipped=dict(from_digests.skipped) if from_digests else {})
    else:
        histories = {rid: _client_histories(client, rid, [k for k in keys if k in keys_of[rid]])
                     for rid in ids}
    out = []
    for run, name in zip(found, names, strict=True):
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        out.append(RunData(name=name, run_id=run.info.run_id, source="mlflow",
                           metrics=histories.get(run.info.run_id, {}), tags=tags))
    return out
