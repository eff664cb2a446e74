"""Drift of per-channel latent moments between batches: a change-point scan with Student-t tests.

Each image of a batch gives, per channel, two statistics: its mean and the log of its standard deviation.
A drift is a change of either, persisting from some batch on. With the history of earlier batches (one
statistic of one channel: the values ``x`` of every image), for every lag ``ℓ = 1 … max_lag`` the images of
the last ``ℓ`` batches are compared with the images of all batches before them:

    t_ℓ = (mean(recent x) - mean(earlier x)) / (s · sqrt(1/m + 1/n)),  m, n = the numbers of images

with ``s`` the image-to-image spread of the earlier images: a two-sample statistic, Student-t with
``n - 1`` degrees of freedom under no change (images of random batches are independent). Working on
images rather than on batch means gives the reference spread ``B`` times more degrees of freedom
(12 batches of 4 images: 47 instead of 11), which is what makes a 0.5 σ shift detectable within 5 batches
at a low false-alarm rate. The smallest two-sided p-value over lags, channels and the two statistics is
compared with a per-batch false-alarm rate divided by the number of tests (Bonferroni; the tests
overlap, so the measured rate is lower than the nominal one).

Why this rather than a CUSUM: the spread ``s`` is not known in advance (it depends on the data's per-image
variation), a CUSUM with ``s`` estimated from 12 batches has a false-alarm rate that depends strongly on that
estimate, whereas the t-law accounts for it exactly;
and scanning lags 1…5 gives what a CUSUM gives (a small persistent shift builds up over batches, a large
one is found at once) with a false-alarm rate that can be set in advance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["image_statistics", "drift_scan", "DriftScan", "channel_drift"]


def image_statistics(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(B, 2, C)``: per image the per-channel mean and log standard deviation (NaN where unknown).

    ``mean`` and ``std`` are ``B×C`` (per-sample, per-channel moments of one batch).
    """
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(std > 0, np.log(std), np.nan)
    return np.stack([mean, logs], axis=1)


class DriftScan:
    """Result of :func:`drift_scan`: ``p`` the smallest p-value, ``z`` its normal-equivalent |z|,
    ``stat`` (``"mean"``/``"std"``), ``channel``, ``lag`` (batches since the change), ``delta`` (the change:
    in σ of the channel's pixels for the mean, as a factor for the std), ``n_ref`` (earlier batches),
    ``limit`` (the p-value limit) and ``drift`` the decision."""

    __slots__ = ("p", "z", "stat", "channel", "lag", "delta", "n_ref", "drift", "limit")

    def __init__(self, p: float = math.nan, z: float = math.nan, stat: str = "", channel: int = -1,
                 lag: int = 0, delta: float = math.nan, n_ref: int = 0, drift: bool = False,
                 limit: float = math.nan) -> None:
        self.p, self.z, self.stat, self.channel, self.lag = p, z, stat, channel, lag
        self.delta, self.n_ref, self.drift, self.limit = delta, n_ref, drift, limit


def drift_scan(history: Sequence[np.ndarray], *, max_lag: int = 5, min_reference: int = 8,
               false_alarm: float = 0.005) -> DriftScan:
    """Test whether the last ``1 … max_lag`` batches of ``history`` differ from the batches before them.

    Args:
        history: per batch a ``(B_t, 2, C)`` array (:func:`image_statistics`), oldest first, the current
            batch last.
        min_reference: no decision with fewer earlier batches than this.
        false_alarm: nominal false-alarm probability per batch (split over the tests).
    """
    # scipy.special, not scipy.stats (the same functions; scipy.stats takes ~1.5 s to import, on the training
    # thread at the first due log(); init() imports scipy.special ahead)
    from scipy.special import ndtri, stdtr

    total = len(history)
    if total < min_reference + 1:
        return DriftScan(n_ref=max(0, total - 1))
    arrays = [np.asarray(x, dtype=np.float64).reshape(-1, *np.shape(x)[-2:]) for x in history]
    c = arrays[-1].shape[-1]
    if any(a.shape[-1] != c for a in arrays):
        arrays = [a for a in arrays if a.shape[-1] == c]
        total = len(arrays)
        if total < min_reference + 1:
            return DriftScan(n_ref=max(0, total - 1))
    best = DriftScan()
    tests = 0
    for lag in range(1, max_lag + 1):
        if total - lag < min_reference:
            break
        ref = np.concatenate(arrays[: total - lag])  # images × 2 × C
        recent = np.concatenate(arrays[total - lag:])
        with np.errstate(invalid="ignore", divide="ignore"):
            n = np.isfinite(ref).sum(axis=0)
            m = np.isfinite(recent).sum(axis=0)
            mu = np.nanmean(ref, axis=0)
            sd = np.nanstd(ref, axis=0, ddof=1)
            cur = np.nanmean(recent, axis=0)
            tstat = (cur - mu) / (sd * np.sqrt(1.0 / m + 1.0 / n))
        ok = np.isfinite(tstat) & (n >= 3) & (m >= 1)
        if not ok.any():
            continue
        p = np.where(ok, 2.0 * stdtr(np.maximum(n - 1, 1), -np.abs(np.where(ok, tstat, 0.0))), np.nan)
        tests += int(ok.sum())
        k = int(np.nanargmin(p))
        s, ch = divmod(k, c)
        if not math.isfinite(best.p) or p[s, ch] < best.p:
            if s == 0:
                # in σ of the channel's pixels: within-image spread and image-to-image spread together
                pix = math.sqrt(math.exp(2 * float(mu[1, ch])) + float(np.nanvar(ref[:, 0, ch])))
                delta = float((cur[s, ch] - mu[s, ch]) / pix)
            else:
                delta = float(math.exp(cur[s, ch] - mu[s, ch]))
            best = DriftScan(p=float(p[s, ch]), stat="mean" if s == 0 else "std", channel=ch, lag=lag,
                             delta=delta, n_ref=total - lag)
    if not math.isfinite(best.p) or tests == 0:
        return best
    best.limit = false_alarm / tests
    best.z = float(-ndtri(max(best.p, 1e-300) / 2.0))
    best.drift = best.p < best.limit
    return best


def channel_drift(mean: np.ndarray, std: np.ndarray, ref_mean: np.ndarray, ref_std: np.ndarray) -> float:
    """Distance of a batch's per-channel (mean, std) from a reference, in reference σ (all ``(C,)``).

    ``mean_c sqrt((μ_c - μ_ref,c)² + (σ_c - σ_ref,c)²) / σ_ref,c`` (the 2-Wasserstein distance between normal
    approximations, per channel, averaged). 0 for an identical batch; 1 for a shift of one σ.
    """
    mean, std, ref_mean, ref_std = (np.asarray(a, dtype=np.float64) for a in (mean, std, ref_mean, ref_std))
    ok = np.isfinite(mean) & np.isfinite(std) & np.isfinite(ref_mean) & (ref_std > 0)
    if not ok.any():
        return math.nan
    d = np.sqrt((mean - ref_mean) ** 2 + (std - ref_std) ** 2) / np.where(ok, ref_std, 1.0)
    return float(d[ok].mean())
