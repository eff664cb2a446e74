"""Metric histories of many MLflow runs in few calls, the same way from a database and from a server.

MLflow's public client reads one history per call (``get_metric_history(run_id, key)``): 1,000 runs × 20
metrics are 20,000 calls, each a query (database) or a round trip (server). Both kinds of store answer a
*bulk* read instead: every point of one key for up to 100 runs at once.

* a server (``http://…``, ``https://…``): ``GET /ajax-api/2.0/mlflow/metrics/get-history-bulk``
  (``run_id`` repeated, ``metric_key``, ``max_results`` ≤ 25,000), the endpoint MLflow's own UI charts
  with; credentials from the usual ``MLFLOW_TRACKING_TOKEN`` / ``_USERNAME`` / ``_PASSWORD`` variables;
* a database (``sqlite:///…``, ``postgresql://…``, ``mysql://…``): one plain ``SELECT`` on MLflow's
  ``metrics`` table (its stable, migrated columns: run_uuid, key, step, timestamp, value, is_nan) per 500
  runs for every key at once, as tuples — what the server's bulk read returns, without one Python object
  per point (about 30 µs each in MLflow's store). ``tests/test_compare_server.py`` checks that a database
  and a server give the same table, ranking and onsets.

A reply that fills ``max_results`` may be cut off: the batch is split in two and read again, so no point
is ever dropped. ``calls`` counts the reads made (the benchmark reports it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from .data import Series, series_from_points

__all__ = ["BulkReader", "bulk_reader", "host_creds", "MAX_RUNS_PER_CALL", "MAX_POINTS_PER_CALL"]

#: MLflow's bounds on one bulk request (``server/handlers.py``: 100 run ids, 25,000 points).
MAX_RUNS_PER_CALL = 100
MAX_POINTS_PER_CALL = 25_000
_ENGINES: dict[str, Any] = {}
_DB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql")


class BulkReader:
    """Reads ``(run_id, key) -> Series`` for many runs and keys; subclasses fetch one batch."""

    #: Requests in flight at once.
    parallel = 4
    #: A tracking server (its runs may carry history digests, :mod:`trackdiag.compare.mlflow_digests`).
    is_server = False

    def __init__(self) -> None:
        self.calls = 0
        self.uri = ""

    def _fetch(self, run_ids: Sequence[str], key: str, max_results: int
               ) -> list[tuple[str, int, int, float]]:
        """``(run_id, step, timestamp, value)`` rows of ``key`` for ``run_ids`` (at most ``max_results``)."""
        raise NotImplementedError

    def histories(self, run_ids: Sequence[str], keys: Sequence[str], *,
                  keys_of: Optional[dict[str, set[str]]] = None) -> dict[str, dict[str, Series]]:
        """``run_id -> key -> Series`` for every run and key (the last point logged at a step wins).

        ``keys_of``: the keys each run logged (from ``search_runs``); a key is asked only of those runs.
        """
        out: dict[str, dict[str, Series]] = {r: {} for r in run_ids}
        for key, rows in self.rows(run_ids, keys, keys_of=keys_of).items():
            for run_id, series in _group(rows).items():
                out.setdefault(run_id, {})[key] = series
        return out

    def rows(self, run_ids: Sequence[str], keys: Sequence[str], *,
             keys_of: Optional[dict[str, set[str]]] = None) -> dict[str, list[tuple[str, int, int, float]]]:
        """``key -> [(run_id, step, timestamp, value), …]``: every logged point, repeats included."""
        from concurrent.futures import ThreadPoolExecutor

        jobs = []
        for key in keys:
            ids = [r for r in run_ids if keys_of is None or key in keys_of.get(r, ())]
            jobs += [(key, ids[start:start + MAX_RUNS_PER_CALL]) for start in range(0, len(ids),
                                                                                    MAX_RUNS_PER_CALL)]
        # a few requests in flight: a server (gunicorn/uvicorn workers) answers them side by side
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            results = list(pool.map(lambda job: self._batch(job[1], job[0]), jobs))
        by_key: dict[str, list[tuple[str, int, int, float]]] = {k: [] for k in keys}
        for (key, _), got in zip(jobs, results, strict=True):
            by_key[key].extend(got)
        return by_key

    def _batch(self, ids: Sequence[str], key: str) -> list[tuple[str, int, int, float]]:
        self.calls += 1
        rows = self._fetch(ids, key, MAX_POINTS_PER_CALL)
        if len(rows) < MAX_POINTS_PER_CALL:
            return rows
        if len(ids) == 1:  # one run with more points than one reply holds: MLflow's paged per-key read
            return self._single(ids[0], key)
        half = len(ids) // 2
        return self._batch(ids[:half], key) + self._batch(ids[half:], key)

    def _single(self, run_id: str, key: str) -> list[tuple[str, int, int, float]]:
        from mlflow import MlflowClient

        hist = MlflowClient(tracking_uri=self.uri).get_metric_history(run_id, key)  # type: ignore[attr-defined]
        return [(run_id, int(m.step), int(m.timestamp), float(m.value)) for m in hist]

    def close(self) -> None:
        """Release what the reader holds (a database connection, a client); the base holds nothing."""


class _DatabaseReader(BulkReader):
    """A database store: one plain ``SELECT`` on MLflow's ``metrics`` table per batch of 500 runs, for every
    key at once (the table's documented columns, not MLflow's Python store classes), returning tuples."""

    RUNS_PER_QUERY = 500  # far below SQLite's bound on query parameters

    def __init__(self, uri: str) -> None:
        super().__init__()
        import sqlalchemy

        self.uri = uri
        engine = _ENGINES.get(uri)
        if engine is None:
            engine = _ENGINES[uri] = sqlalchemy.create_engine(uri)
        self.engine = engine

    def rows(self, run_ids: Sequence[str], keys: Sequence[str], *,
             keys_of: Optional[dict[str, set[str]]] = None) -> dict[str, list[tuple[str, int, int, float]]]:
        import sqlalchemy as sa

        by_key: dict[str, list[tuple[str, int, int, float]]] = {k: [] for k in keys}
        if not keys or not run_ids:
            return by_key
        stmt = sa.text("SELECT run_uuid, key, step, timestamp, value, is_nan FROM metrics "
                       "WHERE run_uuid IN :ids AND key IN :keys").bindparams(
            sa.bindparam("ids", expanding=True), sa.bindparam("keys", expanding=True))
        # runs asked for the same keys share a query (usually all of them: one group)
        groups: dict[frozenset[str], list[str]] = {}
        for r in run_ids:
            mine = frozenset(keys) if keys_of is None else frozenset(keys).intersection(keys_of.get(r, ()))
            if mine:
                groups.setdefault(mine, []).append(r)
        with self.engine.connect() as conn:
            for wanted, members in groups.items():
                for start in range(0, len(members), self.RUNS_PER_QUERY):
                    self.calls += 1
                    ids = members[start:start + self.RUNS_PER_QUERY]
                    found = conn.execute(stmt, {"ids": ids, "keys": sorted(wanted)})
                    for run_id, key, step, ts, value, is_nan in found:
                        by_key[key].append((run_id, int(step), int(ts),
                                            float("nan") if is_nan else float(value)))
        return by_key

    def close(self) -> None:
        pass


def host_creds(host: str) -> Any:
    """MLflow's ``MlflowHostCreds`` for ``host`` from the usual environment (``MLFLOW_TRACKING_TOKEN`` /
    ``_USERNAME`` / ``_PASSWORD``, ``MLFLOW_TRACKING_INSECURE_TLS``)."""
    from mlflow.utils.rest_utils import MlflowHostCreds

    env = os.environ.get
    return MlflowHostCreds(host=host.rstrip("/"), username=env("MLFLOW_TRACKING_USERNAME"),
                           password=env("MLFLOW_TRACKING_PASSWORD"), token=env("MLFLOW_TRACKING_TOKEN"),
                           ignore_tls_verification=env("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true")


class _RestReader(BulkReader):
    ENDPOINT = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
    #: The server's ORM costs ~20-40 µs of CPU per point: the read is bound by the server's workers
    #: (MLflow's default is 4), so keep two requests per worker in flight while this side parses replies.
    parallel = 8
    is_server = True

    def __init__(self, uri: str) -> None:
        super().__init__()
        self.uri = uri
        self.creds = host_creds(uri)

    def _fetch(self, run_ids: Sequence[str], key: str, max_results: int
               ) -> list[tuple[str, int, int, float]]:
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        params: list[tuple[str, Any]] = [("run_id", r) for r in run_ids]
        params += [("metric_key", key), ("max_results", max_results)]
        resp = verify_rest_response(http_request(self.creds, self.ENDPOINT, "GET", params=params),
                                    self.ENDPOINT)
        got = resp.json().get("metrics", [])
        return [(m["run_id"], int(m.get("step", 0)), int(m.get("timestamp", 0)), _value(m.get("value")))
                for m in got]

    def close(self) -> None:
        pass


def _value(v: Any) -> float:
    """A JSON metric value: a number, or MLflow's ``"NaN"`` / ``"Infinity"`` strings."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _sort_value(v: float) -> float:
    return float("inf") if v != v else v


def _group(rows: Sequence[tuple[str, int, int, float]]) -> dict[str, Series]:
    """Rows of one key → ``run_id -> Series`` (at a repeated step the last timestamp wins)."""
    by_run: dict[str, list[tuple[int, int, float]]] = {}
    # one order whatever the source: by step, timestamp, then value (MLflow's own order of a history)
    for run_id, step, ts, value in sorted(rows, key=lambda r: (r[0], r[1], r[2], _sort_value(r[3]))):
        by_run.setdefault(run_id, []).append((step, ts, value))
    out = {}
    for run_id, pts in by_run.items():
        arr = np.array(pts, dtype=np.float64)
        out[run_id] = series_from_points(arr[:, 0], arr[:, 2], arr[:, 1])
    return out


def bulk_reader(tracking_uri: str) -> Optional[BulkReader]:
    """The bulk reader of a store, or None for a store that has none (a ``file:`` store: read per key)."""
    scheme = tracking_uri.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in ("http", "https"):
        return _RestReader(tracking_uri)
    if scheme in _DB_SCHEMES:
        return _DatabaseReader(tracking_uri)
    return None
