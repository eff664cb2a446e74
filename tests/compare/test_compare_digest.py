"""History digests on a team server (issue 13 item 4): runs logged by trackdiag's own MLflow backend leave a
digest of their points; ``compare_ckpts`` reading an ``mlflow server`` on PostgreSQL takes what it can from
the digests, checked against each run's latest metrics, and the rest from the history endpoint. The answer
is the one a history read gives: the same table, ranking and onsets as the bulk path and as sqlite, with a
stale digest (points logged after it), a run without one and a key the user logged with MLflow directly."""

from __future__ import annotations

import numpy as np
import pytest

from trackdiag.testing import postgres

pytestmark = pytest.mark.slow

KEYS = ("trackdiag/tiling/checkerboard_score", "trackdiag/pixel/diff_rmse", "trackdiag/tiling/band_score",
        "trackdiag/loss/train_loss")
STEPS = np.arange(0, 1000, 50)


def _series(rng, onset):
    rmse = 0.05 + 0.2 * np.exp(-STEPS / 250) + rng.normal(0, 0.003, STEPS.size)
    cb = np.abs(0.0005 + rng.normal(0, 0.0002, STEPS.size))
    if onset is not None:
        cb[STEPS >= onset] += 0.3
    band = 0.01 + rng.normal(0, 0.001, STEPS.size)
    return cb, rmse, band


def _fill(uri: str, seed: int = 0) -> dict[str, str]:
    """Five runs of 20 checkpoints; returns run name → id.

    * ``clean``, ``grid`` (a checkerboard from step 500): logged by trackdiag's backend (digest at close);
      ``grid`` repeats a step with a later timestamp (the last value wins) and has one NaN loss point;
    * ``stale``: logged by the backend up to step 700, then a checkerboard from step 750 on and its last
      checkpoints logged with MLflow directly (after the digest);
    * ``mixed``: logged by the backend, but ``band_score`` logged with MLflow directly (not in the digest);
    * ``plain``: logged with MLflow directly (no digest).
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from trackdiag.backends.base import RunInfo
    from trackdiag.backends.mlflow import MlflowBackend, MlflowParams

    rng = np.random.default_rng(seed)
    client = MlflowClient(uri)
    if client.get_experiment_by_name("team") is None:
        client.create_experiment("team")
    ids = {}
    for name, onset in (("clean", None), ("grid", 500), ("stale", 750), ("mixed", None), ("plain", None)):
        cb, rmse, band = _series(rng, onset)
        loss_steps = np.arange(1000)
        loss = 0.02 + 0.2 * np.exp(-loss_steps / 200) * np.exp(rng.normal(0, 0.05, loss_steps.size))
        if name == "grid":
            loss[37] = np.nan
        direct: list[Metric] = []
        batches = []
        for i, s in enumerate(STEPS):
            row = {KEYS[0]: cb[i], KEYS[1]: rmse[i], KEYS[2]: band[i]}
            if name == "mixed":
                direct.append(Metric(KEYS[2], float(row.pop(KEYS[2])), 1_000 + int(s), int(s)))
            if name == "stale" and s >= 750:
                direct += [Metric(k, float(v), 1_000 + int(s), int(s)) for k, v in row.items()]
                continue
            batches.append((int(s), 1_000 + int(s), row))
        batches += [(int(s), 1_000 + int(s), {KEYS[3]: float(v)})
                    for s, v in zip(loss_steps, loss, strict=True)]
        if name == "grid":  # the same step again, later: its value wins in every reader
            batches.append((500, 5_000, {KEYS[0]: 0.41}))
        if name == "plain":
            direct += [Metric(k, float(v), ts, s) for s, ts, row in batches for k, v in row.items()]
            run = client.create_run(client.get_experiment_by_name("team").experiment_id, run_name=name)
            rid = run.info.run_id
        else:
            backend = MlflowBackend(MlflowParams(tracking_uri=uri),
                                    run=RunInfo(experiment="team", run_name=name))
            backend.open()
            backend.log_metrics_many(batches[:40])  # two deliveries, as the worker sends them
            backend.log_metrics_many(batches[40:])
            backend.close()
            rid = str(backend.run_id)
        for start in range(0, len(direct), 1000):
            client.log_batch(rid, metrics=direct[start:start + 1000])
        if name == "plain":
            client.set_terminated(rid)
        ids[name] = rid
    return ids


def _compare(uri: str, out, *extra: str):
    from trackdiag.compare_ckpts import compare

    return compare(overrides=[f"mlflow.tracking_uri={uri}", "mlflow.experiment=team", "publish.to=none",
                              f"output.dir={out}", "output.formats=[json]", "output.plots=false",
                              "metrics=[checkerboard_score,diff_rmse,band_score]", *extra]).comparison


def _same(a, b) -> None:
    assert b.run == a.run
    np.testing.assert_array_equal(b.step, a.step)
    np.testing.assert_array_equal(b.values, a.values)
    np.testing.assert_array_equal(b.rank, a.rank)
    assert [(o["run"], o["metric"], o["since"]) for o in b.onsets] == \
        [(o["run"], o["metric"], o["since"]) for o in a.onsets]
    assert b.verdict == a.verdict


@pytest.mark.skipif(postgres.available() is not None, reason=str(postgres.available()))
def test_digests_give_the_answer_of_the_history_reads(tmp_path):
    from tests.support.servers import sqlite_store
    from trackdiag.io.logreaders import read_mlflow

    lite = sqlite_store(tmp_path / "lite.db")
    _fill(lite)
    with postgres.Postgres() as pg:
        with postgres.MlflowOnPostgres(pg.create_db("mlflow")) as server:
            ids = _fill(server.url)
            stats: dict = {}
            runs = read_mlflow(tracking_uri=server.url, experiment="team", stats=stats)
            bulk = read_mlflow(tracking_uri=server.url, experiment="team", digests=False)
            fast = _compare(server.url, tmp_path / "a")
            slow = _compare(server.url, tmp_path / "b", "mlflow.digests=false")
            lite_cmp = _compare(lite, tmp_path / "c")
    # every series is the history read's, point for point (duplicates count included)
    assert [r.run_id for r in runs] == [r.run_id for r in bulk]
    for a, b in zip(runs, bulk, strict=True):
        assert sorted(a.metrics) == sorted(b.metrics) == sorted(KEYS), a.name
        for key in KEYS:
            np.testing.assert_array_equal(a.metrics[key].steps, b.metrics[key].steps)
            np.testing.assert_array_equal(a.metrics[key].values, b.metrics[key].values)
            assert a.metrics[key].duplicates == b.metrics[key].duplicates
    by_name = {r.name: r for r in runs}
    assert np.isnan(by_name["grid"].metrics[KEYS[3]].values[37])
    grid_cb = by_name["grid"].metrics[KEYS[0]]
    assert grid_cb.values[10] == 0.41 and grid_cb.duplicates == 1
    # what came from the digests: 4 runs; the stale keys, the direct key and the plain run from the server
    assert stats["digest_runs"] == 4
    assert stats["digest_keys"] == 4 + 4 + 1 + 3  # clean, grid, stale (loss only), mixed (no band_score)
    skipped = stats["digest_skipped"]
    assert skipped[ids["plain"]] == "no digest"
    assert {k for k in skipped if k.startswith(ids["stale"])} == {f"{ids['stale']}:{k}" for k in KEYS[:3]}
    assert all("stale" in skipped[f"{ids['stale']}:{k}"] for k in KEYS[:3])
    assert not any(k.startswith((ids["clean"], ids["grid"], ids["mixed"])) for k in skipped)
    # the comparison: the same table, ranking and onsets from the digests, the bulk path and sqlite
    _same(slow, fast)
    _same(lite_cmp, fast)
    found = {(o["run"], o["metric"], o["since"]) for o in fast.onsets}
    assert ("grid", "tiling/checkerboard_score", 500) in found
    assert ("stale", "tiling/checkerboard_score", 750) in found  # seen only in the points after the digest
