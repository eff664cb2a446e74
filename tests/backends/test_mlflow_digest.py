"""The MLflow backend's history digest (issue 13 item 4): at close every run holds one artifact with every
metric point trackdiag delivered to it — exactly the points the store holds for those keys, whether the run
was new, continued by a second session, completed by ``trackdiag sync`` after a crash, or had a delivery fail
after the store took it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

import trackdiag
from tests.support.probes import batch, mean_config
from tests.support.servers import sqlite_store
from trackdiag.backends.base import RunInfo
from trackdiag.backends.mlflow import MlflowBackend, MlflowParams
from trackdiag.backends.mlflow_digest import ARTIFACT, TAG, DigestError, check, decode, encode, latest
from trackdiag.backends.spool import Spool
from trackdiag.sync import sync


def digest_of(uri: str, run_id: str):
    client = MlflowClient(uri)
    with tempfile.TemporaryDirectory() as tmp:
        return decode(Path(client.download_artifacts(run_id, ARTIFACT, tmp)).read_bytes())


def assert_digest_is_the_store(uri: str, run_id: str) -> int:
    """Every key of the digest holds exactly the store's points of that key (a set: the store keeps an
    identical point once); the tag gives their number. Returns the number of points."""
    client = MlflowClient(uri)
    digest = digest_of(uri, run_id)
    assert digest.run_id == run_id
    for key, (steps, ts, values) in digest.keys.items():
        stored = sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key))
        got = sorted(zip(steps.tolist(), ts.tolist(), values.tolist(), strict=True))
        assert len(got) == len(stored), key
        for (s1, t1, v1), (s2, t2, v2) in zip(got, stored, strict=True):
            assert (s1, t1) == (s2, t2) and (v1 == v2 or (v1 != v1 and v2 != v2)), key
    run = client.get_run(run_id)
    assert int(run.data.tags[TAG]) == digest.points
    for m in run.data._metric_objs:  # the reader's check accepts every key of a fresh digest
        if m.key in digest.keys:
            assert check(digest.keys[m.key], m) is None, m.key
    return digest.points


def session(**kw):
    return trackdiag.init(config=mean_config(), overrides=["analyzer=[]"], allow_external_targets=True,
                          backend="mlflow", on_error="raise", **kw)


def test_a_training_session_leaves_the_digest_of_what_it_logged(store):
    s = session(tracking_uri=store)
    for step in range(6):
        s.log(step, batch(seed=step))
    s.finish()
    client = MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("trackdiag").experiment_id])
    digest = digest_of(store, run.info.run_id)
    assert digest.keys["trackdiag/mean/mean"][0].tolist() == list(range(6))
    assert set(digest.keys) == {k for k in run.data.metrics if k.startswith("trackdiag/")}
    assert assert_digest_is_the_store(store, run.info.run_id) >= 6


def test_attached_to_the_users_run_only_trackdiags_keys(store):
    with mlflow.start_run(run_name="users") as active:
        mlflow.log_metric("train/loss", 0.5, step=0)
        s = session()
        s.log(0, batch(seed=0))
        s.log(1, batch(seed=1))
        s.finish()
        mlflow.log_metric("train/loss", 0.4, step=1)  # the user's key: never in the digest
    digest = digest_of(store, active.info.run_id)
    assert "train/loss" not in digest.keys and digest.keys["trackdiag/mean/mean"][0].tolist() == [0, 1]
    assert_digest_is_the_store(store, active.info.run_id)


def _backend(uri: str, **params) -> MlflowBackend:
    return MlflowBackend(MlflowParams(tracking_uri=uri, **params), run=RunInfo(experiment="dg", run_name="r"))


def test_repeats_nan_and_resends_are_kept_as_the_store_keeps_them(store):
    b = _backend(store)
    b.open()
    b.log_metrics_many([(0, 10, {"trackdiag/a": 1.0, "trackdiag/b": float("nan")}),
                        (1, 11, {"trackdiag/a": 2.0})])
    b.log_metrics({"trackdiag/a": 2.5}, 1, timestamp_ms=12)  # the same step again, later
    b.log_metrics_many([(1, 11, {"trackdiag/a": 2.0})])  # a resend (after a crash): stored once
    b.log_metrics({"trackdiag/b": float("nan")}, 0, timestamp_ms=10)
    b.close()
    assert assert_digest_is_the_store(store, str(b.run_id)) == 4
    steps, ts, values = digest_of(store, str(b.run_id)).keys["trackdiag/a"]
    assert latest(steps, ts, values) == (1, 12, 2.5)


def test_a_continued_run_gets_the_digest_of_both_sessions(store):
    first = _backend(store)
    first.open()
    first.log_metrics_many([(s, 100 + s, {"trackdiag/a": s * 0.1}) for s in range(5)])
    first.close()
    assert digest_of(store, str(first.run_id)).keys["trackdiag/a"][0].tolist() == list(range(5))
    second = _backend(store, run_id=first.run_id)  # a second session in the same run
    second.open()
    second.log_metrics_many([(s, 100 + s, {"trackdiag/a": s * 0.1, "trackdiag/c": 1.0}) for s in range(5, 9)])
    second.close()
    assert digest_of(store, str(first.run_id)).keys["trackdiag/a"][0].tolist() == list(range(9))
    assert assert_digest_is_the_store(store, str(first.run_id)) == 13


def test_a_delivery_that_failed_after_the_store_took_it_is_read_back(store):
    b = _backend(store)
    b.open()
    b.log_metrics({"trackdiag/a": 1.0}, 0, timestamp_ms=1)
    real = b.client.log_batch

    def stored_then_timed_out(*args, **kwargs):
        real(*args, **kwargs)
        raise TimeoutError("the answer never came")

    b.client.log_batch = stored_then_timed_out
    with pytest.raises(TimeoutError):
        b.log_metrics({"trackdiag/a": 2.0}, 1, timestamp_ms=2)
    b.client.log_batch = real
    b.log_metrics({"trackdiag/a": 3.0}, 2, timestamp_ms=3)  # the tracker is back; step 1 was never resent
    b.close()
    assert digest_of(store, str(b.run_id)).keys["trackdiag/a"][0].tolist() == [0, 1, 2]
    assert_digest_is_the_store(store, str(b.run_id))


def test_no_digest_while_the_tracker_fails_at_close(store):
    """A tracker that failed the last delivery is not waited for once more at close (a hung server would
    cost finish() another timeout); sync writes the digest when it delivers the rest."""
    b = _backend(store)
    b.open()
    b.log_metrics({"trackdiag/a": 1.0}, 0, timestamp_ms=1)
    real = b.client.log_batch
    b.client.log_batch = lambda *a, **k: (_ for _ in ()).throw(TimeoutError("hung"))
    with pytest.raises(TimeoutError):
        b.log_metrics({"trackdiag/a": 2.0}, 1, timestamp_ms=2)
    b.client.log_batch = real
    b.close()
    assert TAG not in MlflowClient(store).get_run(str(b.run_id)).data.tags


def test_sync_after_a_crash_writes_the_digest_of_the_whole_run(tmp_path):
    """The process delivered steps 0-2 and died; the spool still holds steps 2-5 (step 2's acknowledgement
    was lost) and the close. sync attaches to the run and the digest holds steps 0-5, each once."""
    uri = sqlite_store(tmp_path / "mlruns.db")
    backend = MlflowBackend(MlflowParams(tracking_uri=uri), run=RunInfo(experiment="died", out_dir=tmp_path))
    backend.open()
    backend.log_metrics_many([(s, 1000 + s, {"trackdiag/x": float(s)}) for s in range(3)])
    spool = Spool(tmp_path / "spool")
    spool.describe("mlflow", target="trackdiag.backends.mlflow.MlflowBackend", params=backend.resume_params(),
                   run={"experiment": "died", "out_dir": str(tmp_path)})
    for s in range(2, 6):
        spool.put("mlflow", "metrics", {"step": s, "timestamp_ms": 1000 + s,
                                        "metrics": {"trackdiag/x": float(s)}})
    spool.put("mlflow", "close", {"status": "FINISHED"})
    spool.close()
    assert sync(tmp_path / "spool").ok
    digest = digest_of(uri, str(backend.run_id))
    assert digest.keys["trackdiag/x"][0].tolist() == list(range(6))
    assert_digest_is_the_store(uri, str(backend.run_id))


def test_no_digest_when_turned_off_or_too_big(store):
    client = MlflowClient(store)
    off = _backend(store, history_digest=False)
    off.open()
    off.log_metrics({"trackdiag/a": 1.0}, 0, timestamp_ms=1)
    off.close()
    big = _backend(store)
    big.open()
    big._digest.max_points = 10
    big.log_metrics_many([(s, s, {"trackdiag/a": 1.0}) for s in range(11)])
    big.close()
    for b in (off, big):
        assert TAG not in client.get_run(str(b.run_id)).data.tags
        assert not client.list_artifacts(str(b.run_id), "trackdiag")


def test_the_check_finds_a_stale_key_and_the_format_is_strict():
    data, n = encode("r", ["k"], np.zeros(3, np.int32), np.array([0, 1, 2]), np.array([5, 6, 7]),
                     np.array([0.1, 0.2, 0.3]))
    d = decode(data)

    class Latest:
        def __init__(self, step, timestamp, value):
            self.step, self.timestamp, self.value = step, timestamp, value

    assert check(d.keys["k"], Latest(2, 7, 0.3)) is None
    assert "stale" in str(check(d.keys["k"], Latest(3, 8, 0.4)))  # a point logged after the digest
    assert "stale" in str(check(d.keys["k"], Latest(2, 9, 0.3)))  # the last step logged again
    assert "stale" in str(check(d.keys["k"], Latest(2, 7, 0.5)))  # same step and time, a greater value
    inf = decode(encode("r", ["k"], np.zeros(1, np.int32), np.array([0]), np.array([0]),
                        np.array([np.inf]))[0])
    assert check(inf.keys["k"], Latest(0, 0, 1.7976931348623157e308)) == "infinite values"
    for bad in (b"", b"PK\x03\x04garbage", data[: len(data) // 2]):
        with pytest.raises(DigestError):
            decode(bad)
