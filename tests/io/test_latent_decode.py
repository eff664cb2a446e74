"""x0 from ε-, v- and flow predictions with a real diffusers scheduler, decoded by a real AutoencoderKL."""

from __future__ import annotations

import pytest
import torch

from trackdiag.errors import InputValueError, ShapeError
from trackdiag.io.latent_decode import LatentDecoder, predicted_x0

diffusers = pytest.importorskip("diffusers")


def _latents(seed: int = 0) -> torch.Tensor:
    return torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_x0_is_recovered_from_each_prediction_type(prediction_type):
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, prediction_type=prediction_type)
    x0 = _latents(0)
    eps = _latents(1)
    t = torch.tensor([10, 500, 990])
    xt = sched.add_noise(x0, eps, t)
    target = {"epsilon": eps, "v_prediction": sched.get_velocity(x0, eps, t), "sample": x0}[prediction_type]
    got = predicted_x0(xt, target, t, prediction_type=prediction_type, alphas_cumprod=sched.alphas_cumprod)
    assert torch.allclose(got, x0, atol=2e-3 if prediction_type == "epsilon" else 1e-4)
    # a wrong prediction type gives a wrong x0 (the helper is not a no-op)
    if prediction_type != "sample":
        other = "v_prediction" if prediction_type == "epsilon" else "epsilon"
        wrong = predicted_x0(xt, target, t, prediction_type=other, alphas_cumprod=sched.alphas_cumprod)
        assert (wrong - x0).abs().mean() > 0.1


def test_flow_matching_x0():
    sched = diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000)
    x0, eps = _latents(2), _latents(3)
    idx = torch.tensor([0, 300, 900])
    sigma = sched.sigmas[idx].reshape(-1, 1, 1, 1)
    xt = (1 - sigma) * x0 + sigma * eps
    got = predicted_x0(xt, eps - x0, idx, prediction_type="flow", sigmas=sched.sigmas)
    assert torch.allclose(got, x0, atol=1e-5)


def test_bad_inputs_raise_typed_errors():
    with pytest.raises(ShapeError):
        predicted_x0(
            _latents(),
            _latents()[:2],
            torch.tensor([1, 2, 3]),
            prediction_type="epsilon",
            alphas_cumprod=torch.ones(10),
        )
    with pytest.raises(InputValueError):
        predicted_x0(_latents(), _latents(), torch.tensor([1, 2, 3]), prediction_type="epsilon")
    with pytest.raises(InputValueError):
        LatentDecoder(lambda z: z, every=0)


@pytest.mark.slow
def test_decoder_decodes_the_models_x0_every_n_steps_and_reports_cost():
    from trackdiag.testing.tiny_models import grid_texture, tiny_vae

    vae = tiny_vae(upsample="resize")
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, prediction_type="v_prediction")
    images = grid_texture(4, 64, seed=1)
    with torch.no_grad():
        z0 = vae.encode(images * 2 - 1).latent_dist.mean * vae.config.scaling_factor
    eps = torch.randn(z0.shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([100, 400, 700, 900])
    zt = sched.add_noise(z0, eps, t)
    perfect = sched.get_velocity(z0, eps, t)  # a model that predicts v exactly
    dec = LatentDecoder(vae, sched, every=50, max_samples=2)
    assert dec(49, zt, perfect, t) is None  # not due: nothing decoded, nothing spent
    assert dec.decodes == 0
    out = dec(100, zt, perfect, t)
    assert out is not None and out.images.shape == (2, 3, 64, 64)
    with torch.no_grad():
        want = ((vae.decode(z0[:2] / vae.config.scaling_factor).sample + 1) / 2).clamp(0, 1)
    assert torch.allclose(out.images, want, atol=1e-3)
    # the decoded pixels are the clean images up to the VAE's own (8× pooling) loss
    assert (out.images - images[:2]).abs().mean() < 0.05
    noisy = dec(150, zt, torch.zeros_like(perfect), t)  # a model that predicts nothing useful
    assert (
        noisy is not None
        and (noisy.images - images[:2]).abs().mean() > 2 * (out.images - images[:2]).abs().mean()
    )
    assert out.cost_ms > 0 and noisy.total_cost_ms == pytest.approx(out.cost_ms + noisy.cost_ms)
    assert noisy.metrics()["trackdiag/latent_decode/decodes"] == 2.0
