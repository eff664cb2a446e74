"""Multi-GPU faults on the CPU, two real gloo processes: bad inputs on rank 1 (an empty mask, a float step,
``sample_ids=5``) and then rank 1 dying with an exception. Every rank takes part in every exchange with a
well-defined payload, no value pairs two different steps, rank 0 neither hangs nor dies, and the run's status
says that part of the job was lost."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

CHECKOUT = Path(__file__).resolve().parents[2]
SIZES = (3, 1)
STEPS = 8
KEY = "trackdiag/mean/mean"


def data(step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(500 + step)
    return torch.rand(sum(SIZES), 3, 8, 8, generator=g)


def _rank_main(rank: int, world: int, init_file: str, out_dir: str, store_uri: str) -> None:
    sys.path.insert(0, str(CHECKOUT))
    import torch.distributed as dist

    import trackdiag
    from tests.support.probes import mean_config

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    config = {**mean_config(), "backend": {"mlflow": {"tracking_uri": store_uri}}}
    s = trackdiag.init(config=config, overrides=["analyzer=[]"], allow_external_targets=True,
                       experiment="ddp-faults", run_name="ddp", out_dir=out_dir, on_error="warn")
    lo = sum(SIZES[:rank])
    for step in range(STEPS):
        x = data(step)[lo:lo + SIZES[rank]]
        if rank == 1 and step == 2:
            s.log(step, x, mask=torch.zeros(8, 8))  # an empty mask
        elif rank == 1 and step == 3:
            s.log(3.0, x)  # a float step
        elif rank == 1 and step == 4:
            s.log(step, x, sample_ids=5)  # not a sequence
        elif rank == 1 and step == 6:
            raise RuntimeError("rank 1 dies")  # torch.multiprocessing exits the process with sys.exit(1)
        else:
            s.log(step, x)
    summary = s.finish()
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(
        {"status": summary.status, "ranks": summary.ranks, "skipped": summary.skipped,
         "undelivered": summary.undelivered}))
    dist.destroy_process_group()


@pytest.mark.slow
def test_bad_inputs_and_a_dying_rank_never_hang_or_mislabel_rank_0(tmp_path):
    import multiprocessing

    from mlflow import MlflowClient

    import trackdiag.core.session  # noqa: F401  (imported before the fork)
    from tests.support.servers import sqlite_store

    uri = sqlite_store(tmp_path / "mlruns.db")
    out = tmp_path / "out"
    out.mkdir()
    # plain processes: torch's own launcher would SIGTERM rank 0 when rank 1 fails, which is not what is
    # tested
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_rank_main, args=(r, 2, str(tmp_path / "init"), str(out), uri)) for r in (0,
                                                                                                          1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
    alive = [p.pid for p in procs if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert not alive, "a rank hung"
    assert procs[0].exitcode == 0 and procs[1].exitcode == 1  # rank 1 died, rank 0 did not

    rank0 = json.loads((out / "rank0.json").read_text())
    assert rank0["status"] == "FAILED" and "rank" in rank0["ranks"]
    assert rank0["undelivered"] == 0
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("ddp-faults").experiment_id])
    assert run.info.status == "FAILED"
    got = {m.step: m.value for m in client.get_metric_history(run.info.run_id, KEY)}
    assert sorted(got) == list(range(STEPS))  # rank 0 logged every step
    for step in range(STEPS):
        x = data(step)
        both = step in (0, 1, 5)  # the steps where rank 1's inputs were good
        expected = x.mean(dim=(1, 2, 3)).mean() if both else x[:SIZES[0]].mean(dim=(1, 2, 3)).mean()
        assert got[step] == pytest.approx(float(expected), rel=1e-5), step  # never another step's value
