"""Multi-GPU semantics on the CPU: 2 processes on gloo. One run per job (rank 0 writes), and the batch metrics
equal the single-process value over the union of the samples, also with unequal batches per rank."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trackdiag.analyzers.base import Analyzer, AnalyzerParams

CHECKOUT = Path(__file__).resolve().parents[2]
SIZES = (3, 1)  # unequal: an unweighted mean of the two ranks would be wrong
STEPS = 3


class BatchMeanAnalyzer(Analyzer):
    """Returns a batch-level scalar ``()`` (not per-sample): the reduction must weight ranks by batch size."""

    name = "bmean"
    Params = AnalyzerParams

    def compute(self, inputs):
        return {"batch_mean": inputs.pred.mean(), "per_sample_max": inputs.pred.amax(dim=(1, 2, 3))}


def data(step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(100 + step)
    return torch.rand(sum(SIZES), 3, 8, 8, generator=g)


def config(store_uri: str) -> dict:
    return {"analyzer": {"mean": {"_target_": "tests.support.probes.MeanAnalyzer", "schedule": {"every": 1}},
                         "bmean": {"_target_": "tests.core.test_ddp.BatchMeanAnalyzer",
                                   "schedule": {"every": 1}}},
            "backend": {"mlflow": {"tracking_uri": store_uri}, "local": {}}}


def _rank_main(rank: int, world: int, init_file: str, out_dir: str, store_uri: str) -> None:
    sys.path.insert(0, str(CHECKOUT))
    import torch.distributed as dist

    import trackdiag

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        s = trackdiag.init(config=config(store_uri), overrides=["analyzer=[]"], allow_external_targets=True,
                           experiment="ddp", run_name="ddp", out_dir=out_dir, on_error="raise")
        lo = sum(SIZES[:rank])
        for step in range(STEPS):
            s.log(step, data(step)[lo:lo + SIZES[rank]])
        summary = s.finish()
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(
            {"backends": [b.name for b in s.backends], "undelivered": summary.undelivered, "rank": s.rank}))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned ranks: 13 s on a loaded 2-core box
def test_two_ranks_one_run_and_metrics_over_the_union(tmp_path):
    import torch.multiprocessing as mp
    from mlflow import MlflowClient

    import trackdiag.core.session  # noqa: F401  (imported before the fork, so the children need not)
    from tests.support.servers import sqlite_store
    from trackdiag.backends.local import read_metrics

    uri = sqlite_store(tmp_path / "mlruns.db")
    out = tmp_path / "out"
    out.mkdir()
    # fork: the children reuse this process's imports (torch, mlflow, hydra), seconds instead of ~25 s of CPU
    mp.start_processes(_rank_main, args=(2, str(tmp_path / "init"), str(out), uri), nprocs=2, join=True,
                       start_method="fork")

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["backends"] == ["mlflow", "local"] and ranks[1]["backends"] == []  # only rank 0 writes
    assert ranks[0]["undelivered"] == 0
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("ddp").experiment_id])  # one run per job
    # one local run folder and the config.yaml that rank 0 uploaded, no spool
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["configs", "ddp"]

    expected = {
        "trackdiag/mean/mean": {s: float(data(s).mean(dim=(1, 2, 3)).mean()) for s in range(STEPS)},
        "trackdiag/bmean/batch_mean": {s: float(data(s).mean()) for s in range(STEPS)},
        "trackdiag/bmean/per_sample_max": {s: float(data(s).amax(dim=(1, 2, 3)).mean())
                                           for s in range(STEPS)},
    }
    local = read_metrics(out / "ddp")
    for key, values in expected.items():
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
        assert history == pytest.approx(values, rel=1e-5), key
        assert local[key] == pytest.approx(values, rel=1e-5), key
    # an unweighted mean over the ranks would differ here (that is what the test guards against)
    naive = np.mean([float(data(0)[:3].mean()), float(data(0)[3:].mean())])
    assert abs(naive - expected["trackdiag/bmean/batch_mean"][0]) > 1e-3
