"""The per-sample loss hook in a real (tiny) training loop shaped like kohya sd-scripts' NetworkTrainer.

kohya's ``NetworkTrainer.process_batch`` computes the element-wise loss, averages it to one value per sample,
calls ``self.post_process_loss(loss, args, timesteps, noise_scheduler)`` (min-SNR weighting and the like)
and returns the batch mean. ``KohyaShapedTrainer`` below follows that call sequence (sd-scripts is not a pip
package, so it cannot run in CI); the training itself is real: a conv decoder, Adam, backward.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
from mlflow import MlflowClient

import trackdiag
from tests.support.integration_probes import TinyDecoder, every_step, history
from trackdiag.backends.local import read_metrics
from trackdiag.integrations.hooks import PerSampleLossHook, TrackdiagLossMixin, track_post_process_loss

STEPS = 6
B = 4


def snr_weight(timesteps: torch.Tensor) -> torch.Tensor:
    """A min-SNR-like weight that depends on the timestep (so raw and weighted losses differ)."""
    return torch.clamp(5.0 / (1.0 + timesteps.float() / 100.0), max=1.0) + 0.1


class KohyaShapedTrainer:
    """The loss path of kohya's NetworkTrainer: per-sample loss → post_process_loss → mean."""

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model = TinyDecoder()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-2)
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.seen_raw: list[torch.Tensor] = []
        self.seen_t: list[torch.Tensor] = []

    def post_process_loss(self, loss, args, timesteps, noise_scheduler):
        return loss * snr_weight(timesteps)

    def batch(self):
        clean = torch.rand(B, 3, 16, 16, generator=self.gen)
        t = torch.randint(0, 1000, (B,), generator=self.gen)
        noisy = clean + 0.3 * torch.randn(B, 3, 16, 16, generator=self.gen)
        return noisy, clean, t

    def process_batch(self, noisy, clean, t) -> torch.Tensor:
        pred = self.model(noisy)
        loss = F.mse_loss(pred.float(), clean.float(), reduction="none").mean([1, 2, 3])
        self.seen_raw.append(loss.detach().clone())
        self.seen_t.append(t.clone())
        loss = self.post_process_loss(loss, None, t, None)
        return loss.mean()

    def train(self, steps: int) -> list[float]:
        losses = []
        for _ in range(steps):
            loss = self.process_batch(*self.batch())
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            losses.append(float(loss.detach()))
        return losses

    def validate(self) -> None:
        with torch.no_grad():
            self.process_batch(*self.batch())


class TrackedTrainer(TrackdiagLossMixin, KohyaShapedTrainer):
    pass


def test_mixin_logs_raw_per_sample_loss_with_timesteps_and_skips_validation(in_tmp):
    s = trackdiag.init(config=every_step("rec", "loss"), overrides=["analyzer=[]"],
                       allow_external_targets=True,
                       backend="mlflow", run_name="kohya", on_error="raise")
    trainer = TrackedTrainer()
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train(3)
    trainer.validate()  # under no_grad: not a training step, not logged
    trainer.train(STEPS - 3)
    summary = trackdiag.finish()
    assert summary.clean, str(summary)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(),
                                                     strict=True))  # it really trained

    train_raw = trainer.seen_raw[:3] + trainer.seen_raw[4:]  # index 3 was the validation batch
    train_t = trainer.seen_t[:3] + trainer.seen_t[4:]
    client = MlflowClient("sqlite:///" + os.path.abspath("mlruns.db"))
    run_id = s.backends[0].run_id
    logged = history(client, run_id, "trackdiag/rec/loss_mean")
    assert sorted(logged) == list(range(STEPS))
    for step in range(STEPS):
        assert logged[step] == pytest.approx(float(train_raw[step].mean()), rel=1e-5)
    t_mean = history(client, run_id, "trackdiag/rec/t_mean")
    assert [t_mean[i] for i in range(STEPS)] == pytest.approx([float(t.float().mean()) for t in train_t])
    assert set(history(client, run_id, "trackdiag/rec/n").values()) == {float(B)}
    # The real loss analyzer saw the same per-sample losses.
    train_loss = history(client, run_id, "trackdiag/loss/train_loss")
    assert [train_loss[i] for i in range(STEPS)] == pytest.approx([float(r.mean()) for r in train_raw],
                                                                  rel=1e-5)


def test_mixin_returns_the_trainers_weighted_loss_and_gradients_flow(in_tmp):
    trackdiag.init(config=every_step("rec"), overrides=["analyzer=[]"], allow_external_targets=True,
                   backend="local", run_name="grad", on_error="raise")
    plain, tracked = KohyaShapedTrainer(seed=3), TrackedTrainer(seed=3)
    assert plain.train(3) == pytest.approx(tracked.train(3), rel=1e-6)  # the hook changes nothing
    for a, b in zip(plain.model.parameters(), tracked.model.parameters(), strict=True):
        assert torch.allclose(a, b)
    trackdiag.finish()


def test_decorator_can_log_the_weighted_loss(in_tmp):
    class Weighted(KohyaShapedTrainer):
        @track_post_process_loss(weighted=True)
        def post_process_loss(self, loss, args, timesteps, noise_scheduler):
            return super().post_process_loss(loss, args, timesteps, noise_scheduler)

    trackdiag.init(config=every_step("rec"), overrides=["analyzer=[]"], allow_external_targets=True,
                   backend="local", run_name="w", on_error="raise")
    trainer = Weighted()
    trainer.train(4)
    trackdiag.finish()
    logged = read_metrics(in_tmp / "trackdiag_runs" / "w")["trackdiag/rec/loss_mean"]
    expected = [float((r * snr_weight(t)).mean()) for r, t in zip(trainer.seen_raw, trainer.seen_t,
                                                                  strict=True)]
    raw = [float(r.mean()) for r in trainer.seen_raw]
    assert [logged[i] for i in range(4)] == pytest.approx(expected, rel=1e-5)
    assert expected != pytest.approx(raw, rel=1e-3)  # the weighting really changed the values


def test_callable_hook_uses_step_fn_and_sample_ids(in_tmp):
    session = trackdiag.Session(config=every_step("rec", "loss"), overrides=["analyzer=[]"],
                                allow_external_targets=True, backend="local", run_name="c", on_error="raise")
    global_step = {"v": 0}
    hook = PerSampleLossHook(session, step_fn=lambda: global_step["v"])
    gen = torch.Generator().manual_seed(0)
    for step in (10, 20, 30):
        global_step["v"] = step
        loss = torch.rand(B, generator=gen, requires_grad=True)
        out = hook(loss, torch.tensor([1, 2, 3, 4]), sample_ids=[f"img{i}" for i in range(B)])
        assert out is loss and out.requires_grad
    session.finish()
    assert sorted(read_metrics(in_tmp / "trackdiag_runs" / "c")["trackdiag/rec/t_mean"]) == [10, 20, 30]
    assert hook.calls == 3


def test_hook_without_a_session_is_a_clear_error():
    hook = PerSampleLossHook()
    with pytest.raises(trackdiag.NotInitializedError, match="before trackdiag.init"):
        hook(torch.ones(2, requires_grad=True))
