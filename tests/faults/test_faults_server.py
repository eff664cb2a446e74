"""Faults of a real ``mlflow server`` on 127.0.0.1: a read-only artifact root (scalars must not wait behind
figures, and a refused upload must not cost the scalar call after it), a server that was never up (``sync``
creates the run later and finishes it), an artifact name the server refuses (refused for good, the rest goes
on). Each test counts what was logged against what arrived."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

import trackdiag
from tests.support.probes import batch, mean_config
from tests.support.servers import MlflowServer, free_port, shared_mlflow
from trackdiag.backends.base import RunInfo
from trackdiag.backends.mlflow import MlflowBackend, MlflowParams
from trackdiag.sync import main as sync_main

KEY = "trackdiag/mean/mean"
pytestmark = pytest.mark.slow


class ArtifactServer(MlflowServer):
    """An ``mlflow server`` whose artifact destination is ``artifacts`` (which the test makes unwritable)."""

    def __init__(self, root: Path, artifacts: Path, port=None) -> None:
        super().__init__(root, port)
        self.artifacts = artifacts

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("--artifacts-destination") + 1] = str(self.artifacts)
        return cmd


def read_only_dir(path: Path) -> tuple[Path, str]:
    """A folder no process can write, even root: a read-only tmpfs mount, else a path below a plain file."""
    path.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode == 0:
        return path, "mount"
    blocker = path / "not-a-folder"
    blocker.write_text("a file where the artifact store expects a folder")
    return blocker / "artifacts", "file"


@pytest.fixture(scope="module")
def read_only_server(tmp_path_factory):
    """One ``mlflow server`` for this module whose artifact store refuses every write."""
    artifacts, how = read_only_dir(tmp_path_factory.mktemp("ro") / "ro")
    server = ArtifactServer(Path(tempfile.mkdtemp(prefix="trackdiag_ro_")), artifacts)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if how == "mount":
            subprocess.run(["umount", str(artifacts)], check=False)
        shutil.rmtree(server.root, ignore_errors=True)


def start(url: str, tmp: Path, **kw):
    config = {**mean_config(), "backend": {"mlflow": {"tracking_uri": url, "retry_s": 0.5,
                                                      "http_timeout_s": 3.0}}}
    return trackdiag.init(config=config, overrides=["analyzer=[]", "worker.flush_timeout_s=60"],
                          allow_external_targets=True, experiment="faults", run_name=f"r-{tmp.name}",
                          out_dir=str(tmp / "out"), on_error="raise", **kw)


def test_a_refused_upload_does_not_cost_the_next_scalar_call(read_only_server):
    """The server answers a refused upload with HTTP 500 and then closes that keep-alive connection; MLflow's
    process-wide pool hands it to the next call. Every scalar call right after a refused upload arrives, once
    (before the fix about 60 % of them failed with 'connection reset by peer')."""
    url = read_only_server.url
    backend = MlflowBackend(MlflowParams(tracking_uri=url, http_timeout_s=3.0, retry_s=0.5),
                            run=RunInfo(experiment="dropped", run_name="refused-then-scalar"))
    backend.open()
    n, refused = 30, 0
    for step in range(n):
        try:
            backend.log_image("img", np.full((32, 32, 3), step, np.uint8), step=step)
        except Exception:
            refused += 1
        backend.log_metrics({"m": float(step)}, step=step, timestamp_ms=1_000 + step)
        backend.log_params({f"p{step}": str(step)})
    backend.close("FINISHED")
    client = MlflowClient(url)
    run = client.get_run(backend.run_id)
    assert refused == n  # ground truth: the artifact store takes nothing
    assert [m.step for m in client.get_metric_history(backend.run_id, "m")] == list(range(n))  # once each
    assert run.data.params == {f"p{i}": str(i) for i in range(n)}
    assert run.info.status == "FINISHED"


def test_read_only_artifact_root_scalars_still_arrive_and_the_run_is_finished(tmp_path, read_only_server):
    s = start(read_only_server.url, tmp_path)
    n = 30
    for step in range(n):
        s.log(step, batch(seed=step))  # a metric and a figure per step
        s.log_scalars({"note": f"step {step}"}, step=step)  # a table append per step
    summary = s.finish()
    run_id = s.backends[0].run_id
    client = MlflowClient(read_only_server.url)
    run = client.get_run(run_id)
    # every scalar arrived although every figure and table was refused by the artifact store
    assert sorted(m.step for m in client.get_metric_history(run_id, KEY)) == list(range(n))
    assert run.info.status == "FINISHED"
    # n figures, n table appends and the config.yaml artifact, exactly
    assert summary.undelivered == 2 * n + 1 and summary.lost == 0
    assert "kept in spool" in str(summary)


def test_never_up_server_then_sync_creates_and_finishes_the_run(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    s = start(url, tmp_path)
    n = 10
    for step in range(n):
        s.log(step, batch(seed=step))
    summary = s.finish()
    assert summary.undelivered == summary.kept > 0 and summary.lost == 0
    assert summary.status == "FINISHED"

    server = MlflowServer(Path(tempfile.mkdtemp(prefix="trackdiag_late_")), port=port)
    try:
        server.start()
        assert sync_main([summary.spool]) == 0
        client = MlflowClient(url)
        (run,) = client.search_runs([client.get_experiment_by_name("faults").experiment_id])
        assert run.info.status == "FINISHED"  # the run sync had to create is finished, not left RUNNING
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, KEY)) == list(range(n))
        images = [a for a in client.list_artifacts(run.info.run_id, "images") if a.path.endswith(".png")]
        assert len(images) == n
        assert run.data.params["analyzer.mean.schedule"] == "every step"  # the few params that matter
        assert sync_main([summary.spool]) == 0  # nothing twice
        assert len(client.get_metric_history(run.info.run_id, KEY)) == n
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


def test_an_artifact_name_the_server_refuses_is_kept_and_the_rest_goes_on(request, tmp_path):
    # the shared server of this pytest process (already up when the spool's server test ran; its own run
    # here): a server of its own cost a second boot
    server = shared_mlflow(request)
    report = tmp_path / "report"
    report.mkdir()
    (report / "index.html").write_text("<p>report</p>")
    s = start(server.url, tmp_path)
    for step in range(10):
        s.log(step, batch(seed=step))
        if step == 3:
            s.log_artifacts(report, "../outside", step=step)  # refused: a path out of the run
        if step == 6:
            s.log_artifacts(report, "reports/good", step=step)
    summary = s.finish()
    run_id = s.backends[0].run_id
    client = MlflowClient(server.url)
    assert sorted(m.step for m in client.get_metric_history(run_id, KEY)) == list(range(10))
    assert [a.path for a in client.list_artifacts(run_id, "reports/good")] == ["reports/good/index.html"]
    images = [a for a in client.list_artifacts(run_id, "images") if a.path.endswith(".png")]
    assert len(images) == 10
    assert summary.undelivered == 1 and (summary.refused.get("mlflow") == 1
                                         or s.worker.stats.parked["mlflow"] == 1)
    assert client.get_run(run_id).info.status == "FINISHED"
