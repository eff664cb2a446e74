"""Per-channel moments of latent batches and the stripe energy (torch on the device, numpy to pool them).

:func:`channel_moments` gives per-sample central moment sums over the finite values (exact to pool under a
DDP gather); :func:`pool_moments` combines them into per-channel statistics over the batch;
:func:`nonfinite_share` and :func:`finite_filled` handle NaN/Inf; :func:`stripe_energy` is the raw share
of the variance in whole rows or columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.checks import check_image_batch

__all__ = ["channel_moments", "ChannelStats", "pool_moments", "nonfinite_share", "finite_filled",
           "stripe_energy"]


def channel_moments(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample, per-channel count and central moment sums over the finite values of ``x`` (B×C×h×w).

    Returns ``n``, ``mean``, ``m2``, ``m3``, ``m4``, each ``B×C`` float32, where ``m_k = Σ (x - mean)^k``.
    A channel without finite values has ``n = 0`` and NaN moments.
    """
    x = check_image_batch(x, name="latents")
    finite = torch.isfinite(x)
    n = finite.sum(dim=(-2, -1)).to(torch.float32)
    x0 = torch.where(finite, x, torch.zeros((), dtype=x.dtype, device=x.device)).float()
    mean = x0.sum(dim=(-2, -1)) / n
    d = torch.where(finite, x0 - mean[..., None, None], torch.zeros((), device=x.device))
    d2 = d * d
    return {"n": n, "mean": mean, "m2": d2.sum(dim=(-2, -1)), "m3": (d2 * d).sum(dim=(-2, -1)),
            "m4": (d2 * d2).sum(dim=(-2, -1))}


@dataclass
class ChannelStats:
    """Pooled per-channel statistics, each ``(C,)`` float64 (NaN where a channel had no finite value)."""

    count: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    skew: np.ndarray
    kurtosis: np.ndarray  # excess kurtosis: 0 for a normal distribution


def pool_moments(n: np.ndarray, mean: np.ndarray, m2: np.ndarray, m3: np.ndarray, m4: np.ndarray
                 ) -> ChannelStats:
    """Combine per-sample central moment sums (each ``B×C``) into per-channel statistics over the batch.

    Exact shift formulas: with ``δ_i = mean_i - μ``, ``M2 = Σ m2_i + n_i δ_i²``,
    ``M3 = Σ m3_i + 3 δ_i m2_i + n_i δ_i³``, ``M4 = Σ m4_i + 4 δ_i m3_i + 6 δ_i² m2_i + n_i δ_i⁴``.
    """
    n, mean, m2, m3, m4 = (np.asarray(a, dtype=np.float64) for a in (n, mean, m2, m3, m4))
    ok = n > 0
    w = np.where(ok, n, 0.0)
    total = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.where(ok, mean * w, 0.0).sum(axis=0) / total
        delta = np.where(ok, mean - mu, 0.0)
        z2, z3, z4 = (np.where(ok, a, 0.0) for a in (m2, m3, m4))
        M2 = (z2 + w * delta ** 2).sum(axis=0)
        M3 = (z3 + 3 * delta * z2 + w * delta ** 3).sum(axis=0)
        M4 = (z4 + 4 * delta * z3 + 6 * delta ** 2 * z2 + w * delta ** 4).sum(axis=0)
        var = M2 / total
        std = np.sqrt(var)
        skew = np.where(var > 0, (M3 / total) / np.power(var, 1.5), np.nan)
        kurt = np.where(var > 0, (M4 / total) / var ** 2 - 3.0, np.nan)
    nan = total <= 0
    return ChannelStats(total, np.where(nan, np.nan, mu), np.where(nan, np.nan, std),
                        np.where(nan, np.nan, skew), np.where(nan, np.nan, kurt))


def nonfinite_share(x: torch.Tensor) -> torch.Tensor:
    """Share of NaN/Inf values per sample, ``B×C×h×w`` → ``(B,)`` float32."""
    return (~torch.isfinite(x)).flatten(1).float().mean(dim=1)


def finite_filled(x: torch.Tensor) -> torch.Tensor:
    """``x`` (B×C×h×w) as float32 with non-finite values replaced by their sample-channel's finite mean (zero
    when none)."""
    finite = torch.isfinite(x)
    if bool(finite.all()):
        return x.float()
    mom = channel_moments(x)
    fill = torch.nan_to_num(mom["mean"], nan=0.0)[..., None, None].expand_as(x)
    return torch.where(finite, x.float(), fill)


def stripe_energy(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Variance of the row means and of the column means over the total variance, per sample and channel.

    ``x``: B×C×h×w → ``(rows, cols)``, each ``B×C`` in [0, 1]. ``rows`` is the share of the variance that
    lies in horizontal stripes (whole rows brighter or darker), ``cols`` in vertical stripes. White noise
    gives about ``1/w`` and ``1/h``. Non-finite values are replaced by the channel mean first.
    """
    x = finite_filled(x)
    total = x.var(dim=(-2, -1), unbiased=False)
    rows = x.mean(dim=-1).var(dim=-1, unbiased=False)
    cols = x.mean(dim=-2).var(dim=-1, unbiased=False)
    tiny = torch.finfo(torch.float32).tiny
    return rows / total.clamp_min(tiny), cols / total.clamp_min(tiny)
