"""``TrackdiagCallback`` with a real Lightning Trainer on the CPU, read back from the MLflow store."""

from __future__ import annotations

import lightning.pytorch as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import MLFlowLogger
from mlflow import MlflowClient
from torch.utils.data import DataLoader, Dataset

import trackdiag
from tests.support.integration_probes import TinyDecoder, every_step, history
from trackdiag.integrations.lightning import TrackdiagCallback

pytestmark = pytest.mark.filterwarnings("ignore:.*(LeafSpec|val_dataloader|log_every_n_steps).*")

N, B = 12, 4  # 3 optimizer steps per epoch


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('pl') / 'mlruns.db'}"


class Walls(Dataset):
    def __init__(self, n: int = N) -> None:
        g = torch.Generator().manual_seed(0)
        self.clean = torch.rand(n, 3, 16, 16, generator=g)
        self.noisy = (self.clean + 0.2 * torch.randn(n, 3, 16, 16, generator=g)).clamp(0, 1)
        self.mask = (torch.rand(n, 1, 16, 16, generator=g) > 0.3).float()

    def __len__(self) -> int:
        return len(self.clean)

    def __getitem__(self, i: int):
        return {"x": self.noisy[i], "y": self.clean[i], "mask": self.mask[i], "id": f"wall{i}"}


class Module(L.LightningModule):
    def __init__(self, fail_at: int = -1) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = TinyDecoder()
        self.fail_at = fail_at
        self.seen: list[tuple[float, float, float]] = []

    def training_step(self, batch, batch_idx):
        if self.global_step == self.fail_at:
            raise RuntimeError("planted failure")
        pred = self.net(batch["x"])
        per_sample = F.mse_loss(pred, batch["y"], reduction="none").mean(dim=(1, 2, 3))
        self.seen.append((float(per_sample.detach().mean()), float(pred.detach().mean()),
                          float((batch["mask"] > 0.5).float().mean())))
        return {"loss": per_sample.mean(),
                "trackdiag": {"pred": pred, "mask": batch["mask"], "loss": per_sample,
                              "sample_ids": batch["id"]}}

    def validation_step(self, batch, batch_idx):
        return {"trackdiag": {"pred": self.net(batch["x"]), "loss": torch.full((len(batch["x"]),), 99.0)}}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def trainer(tmp_path, callback, logger=False, epochs=1, **kw):
    return L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=logger, callbacks=[callback],
                     enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                     default_root_dir=tmp_path, num_sanity_val_steps=0, **kw)


def callback(store, *names, **kw):
    return TrackdiagCallback(config=every_step(*names), overrides=["analyzer=[]"],
                             allow_external_targets=True,
                             backend="mlflow", tracking_uri=store, on_error="raise", **kw)


def test_callback_logs_into_the_mlflow_loggers_run(store, tmp_path):
    logger = MLFlowLogger(experiment_name="pl", tracking_uri=store, run_name="pl-run")
    cb = callback(store, "prec", "rec", "loss", validation=True)
    module = Module()
    loader = DataLoader(Walls(), batch_size=B)
    trainer(tmp_path, cb, logger=logger).fit(module, loader, DataLoader(Walls(4), batch_size=4))
    assert cb.session is None and cb.summary.clean, str(cb.summary)

    client = MlflowClient(store)
    run_id = logger.run_id
    assert len(client.search_runs([logger.experiment_id])) == 1  # the logger's run, no second one
    # on_train_batch_end sees trainer.global_step after the optimizer step: 1, 2, 3.
    steps = [1, 2, 3]
    preds = history(client, run_id, "trackdiag/prec/pred_mean")
    losses = history(client, run_id, "trackdiag/rec/loss_mean")
    masks = history(client, run_id, "trackdiag/prec/mask_mean")
    assert sorted(losses) == steps
    assert [losses[s] for s in steps] == pytest.approx([s[0] for s in module.seen], rel=1e-5)
    assert [masks[s] for s in steps] == pytest.approx([s[2] for s in module.seen], rel=1e-6)
    train_loss = history(client, run_id, "trackdiag/loss/train_loss")
    assert [train_loss[s] for s in steps] == pytest.approx([s[0] for s in module.seen], rel=1e-5)
    # Validation predictions are logged at the last global step; their loss (99) never reached the detectors.
    assert 99.0 not in losses.values() and 99.0 not in train_loss.values()
    assert preds[3] != pytest.approx(module.seen[-1][1])  # step 3 holds the validation batch's prediction
    assert client.get_run(run_id).data.tags.get("trackdiag.analyzers") == "prec,rec,loss"


def test_exception_marks_the_run_failed(store, tmp_path):
    cb = callback(store, "rec", run_name="boom")
    with pytest.raises(RuntimeError, match="planted failure"):
        trainer(tmp_path, cb).fit(Module(fail_at=2), DataLoader(Walls(), batch_size=B))
    assert cb.summary is not None and cb.session is None
    run_id = trackdiag_run_id(store, "boom")
    client = MlflowClient(store)
    assert client.get_run(run_id).info.status == "FAILED"
    assert sorted(history(client, run_id, "trackdiag/rec/loss_mean")) == [1, 2]


def trackdiag_run_id(store: str, name: str) -> str:
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("trackdiag")
    (run,) = client.search_runs([exp.experiment_id], filter_string=f"attributes.run_name = '{name}'")
    return run.info.run_id


def test_analyzer_state_resumes_from_a_lightning_checkpoint(store, tmp_path):
    cb = callback(store, "rec", "loss", run_name="resume1")
    t = trainer(tmp_path, cb)
    t.fit(Module(), DataLoader(Walls(), batch_size=B))
    ckpt = tmp_path / "last.ckpt"
    t.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=True)["callbacks"]
    (state,) = [v for k, v in saved.items() if k.startswith("TrackdiagCallback")]
    assert state["last_step"] == 3 and state["analyzers"]["loss"]["detector"]["n_steps"] == 3

    cb2 = callback(store, "rec", "loss", run_name="resume2")
    module = Module()
    trainer(tmp_path, cb2, epochs=2).fit(module, DataLoader(Walls(), batch_size=B), ckpt_path=ckpt)
    run_id = trackdiag_run_id(store, "resume2")
    assert sorted(history(MlflowClient(store), run_id, "trackdiag/rec/loss_mean")) == [4, 5, 6]
    assert cb2.state_dict()["analyzers"]["loss"]["detector"]["n_steps"] == 6  # 3 restored + 3 new


def test_outputs_with_unknown_keys_are_rejected(store, tmp_path):
    cb = callback(store, "rec", extract=lambda tr, m, out, batch: {"loss": out["loss"].reshape(1), "prd": 1})
    with pytest.raises(trackdiag.InputValueError, match=r"unknown keys \['prd'\]"):
        trainer(tmp_path, cb).fit(Module(), DataLoader(Walls(), batch_size=B))
