"""Histories from the runs' *history digests* on an MLflow server, checked before they are trusted.

A server builds one ORM object per metric point it returns (~35-40 µs of server CPU each), so even its bulk
endpoint cannot read 1,000 runs × 20 metrics × 50 points fast. trackdiag's MLflow backend leaves a digest
of every point it logged in each run (:mod:`trackdiag.backends.mlflow_digest`, tag
``trackdiag.history_digest``). Reading a server:

1. the run search (already made to find the runs) gives each run's tags and its latest metric per key
   (step, timestamp, value);
2. the digests of the runs tagged with one are downloaded, a few requests in flight, straight from the
   server's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts/…``, no database work) or, for runs whose
   artifacts are not proxied, ``/get-artifact``;
3. each needed key of a digest is checked against the run's latest metric of that key
   (:func:`trackdiag.backends.mlflow_digest.check`): a point logged after the digest at a later step or
   time makes the latest metric differ, and the key is *stale*.

What is not covered — a run without a digest, a digest that cannot be read or belongs to another run, a key
missing from it (a metric the user logged with MLflow directly), a stale key — is left to the bulk history
read (:mod:`trackdiag.compare.mlflow_bulk`) in :attr:`DigestRead.remaining`. Not detected: a point logged
after the digest at an earlier step *and* an earlier ``(step, timestamp)`` than the key's latest point (a
back-filled point); ``mlflow_digests=false`` reads every history instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..backends.mlflow_digest import ARTIFACT, TAG, DigestError, check, decode
from .data import Series, series_from_points
from .mlflow_bulk import host_creds

__all__ = ["DigestRead", "digest_histories"]


@dataclass
class DigestRead:
    """What the digests gave: ``histories`` run id → key → Series; ``remaining`` run id → the keys still to
    read from the store; ``runs`` how many runs had a digest that was used; ``skipped`` run id → why a
    digest (or a key of it, ``run_id:key``) was not used."""

    histories: dict[str, dict[str, Series]] = field(default_factory=dict)
    remaining: dict[str, set[str]] = field(default_factory=dict)
    runs: int = 0
    keys: int = 0
    requests: int = 0
    skipped: dict[str, str] = field(default_factory=dict)


def _download(tracking_uri: str, run: Any) -> Optional[bytes]:
    """The digest file of ``run``, or None when the server has none (or refuses)."""
    from mlflow.utils.rest_utils import http_request

    root = str(run.info.artifact_uri or "")
    if root.startswith("mlflow-artifacts:"):
        from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

        base = MlflowArtifactsRepository.resolve_uri(root, tracking_uri)
        resp = http_request(host_creds(base), "/" + ARTIFACT, "GET", max_retries=1, backoff_factor=0.5)
    else:
        resp = http_request(host_creds(tracking_uri), "/get-artifact", "GET", max_retries=1,
                            backoff_factor=0.5, params={"run_uuid": run.info.run_id, "path": ARTIFACT})
    if resp.status_code != 200:
        return None
    return bytes(resp.content)


def _series(steps: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Series:
    """The Series a history read gives for these points (ordered by step, timestamp, value; the last point
    at a step wins), as :func:`trackdiag.compare.mlflow_bulk._group` builds it."""
    order = np.lexsort((np.where(np.isnan(values), np.inf, values), ts, steps))
    return series_from_points(steps[order], values[order], ts[order])


def digest_histories(tracking_uri: str, runs: Sequence[Any], keys_of: dict[str, set[str]], *,
                     parallel: int = 8) -> DigestRead:
    """Histories of ``keys_of[run_id]`` from the runs' digests (``runs``: MLflow ``Run`` objects from a run
    search, with their tags and latest metrics); the rest in :attr:`DigestRead.remaining`."""
    from concurrent.futures import ThreadPoolExecutor

    out = DigestRead(remaining={r.info.run_id: set(keys_of.get(r.info.run_id, ())) for r in runs})
    tagged = [r for r in runs if TAG in r.data.tags and out.remaining[r.info.run_id]]
    for r in runs:
        if r not in tagged and out.remaining[r.info.run_id]:
            out.skipped[r.info.run_id] = "no digest"

    def fetch(run: Any) -> tuple[Any, Optional[bytes], str]:
        try:
            return run, _download(tracking_uri, run), ""
        except Exception as exc:  # a failed download: read this run's histories instead
            return run, None, f"{type(exc).__name__}: {exc}"[:200]

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        fetched = list(pool.map(fetch, tagged))
    out.requests = len(tagged)
    for run, data, error in fetched:
        rid = run.info.run_id
        if data is None:
            out.skipped[rid] = error or "digest not found"
            continue
        try:
            digest = decode(data)
        except DigestError as exc:
            out.skipped[rid] = str(exc)
            continue
        if digest.run_id != rid:
            out.skipped[rid] = f"the digest belongs to run {digest.run_id}"
            continue
        latest = {m.key: m for m in getattr(run.data, "_metric_objs", None) or ()}
        used = 0
        for key in sorted(out.remaining[rid]):
            points = digest.keys.get(key)
            if points is None:
                continue  # logged outside trackdiag: read from the store
            why = "not among the run's latest metrics" if key not in latest else check(points, latest[key])
            if why is not None:
                out.skipped[f"{rid}:{key}"] = why
                continue
            out.histories.setdefault(rid, {})[key] = _series(*points)
            out.remaining[rid].discard(key)
            used += 1
        out.runs += used > 0
        out.keys += used
    return out
