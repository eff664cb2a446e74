"""One latent batch's flat metrics from the per-sample arrays the device gave (numpy on the CPU, no state).

:func:`latent_batch` pools the moments, the stripe measures and the periodic peaks of one latent name
(``<name>/c<k>/<key>`` per channel, ``<name>/<key>`` aggregates); :func:`drift_metrics` writes the drift
scan's outcome. :class:`~trackdiag.analyzers.latent.LatentAnalyzer` keeps the drift state between batches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ..functional.latent_drift import DriftScan, image_statistics
from ..functional.latent_moments import ChannelStats, pool_moments
from ..functional.latent_periodic import gamma_threshold, periodic_peaks_from
from .latent_limits import STRIPE_EXCESS_WARN, STRIPE_Z_WARN
from .latent_params import LatentParams

__all__ = ["PER_SAMPLE", "LatentBatch", "latent_batch", "drift_metrics"]

#: The per-sample ``B×C`` arrays the device computes for each latent name (``<name>/<key>``).
PER_SAMPLE = ("n", "mean", "m2", "m3", "m4", "stripe_rows", "stripe_cols", "stripe_rows_excess",
              "stripe_cols_excess", "stripe_rows_z", "stripe_cols_z")


@dataclass
class LatentBatch:
    """One latent name's batch: its metrics (all but the drift), the periodic pattern's kind, the pooled
    per-channel statistics, the per-image statistics ``(B, 2, C)`` for the drift scan and the ``7×C``
    channel table of the figure (mean, std, skew, kurtosis, row and column stripe energy, periodic excess)."""

    metrics: dict[str, float]
    periodic_kind: str
    stats: ChannelStats
    per_image: np.ndarray
    channel_stats: np.ndarray


def latent_batch(name: str, host: Mapping[str, np.ndarray], *, params: LatentParams) -> LatentBatch:
    """The metrics of latent ``name`` from ``host`` (``<name>/<key>`` for every key of :data:`PER_SAMPLE`,
    ``B×C``; ``<name>/nonfinite`` ``(B,)``; ``<name>/prom`` and ``<name>/share`` ``B×C'×h×w``)."""
    p = params
    m: dict[str, float] = {}
    arr = {k: np.asarray(host[f"{name}/{k}"], dtype=np.float64) for k in PER_SAMPLE}
    stats = pool_moments(arr["n"], arr["mean"], arr["m2"], arr["m3"], arr["m4"])
    b, c = arr["mean"].shape
    nonfinite = float(np.mean(host[f"{name}/nonfinite"]))
    rows, cols = _nanmean0(arr["stripe_rows"]), _nanmean0(arr["stripe_cols"])
    ex_r, ex_c = _nanmean0(arr["stripe_rows_excess"]), _nanmean0(arr["stripe_cols_excess"])
    z_r, z_c = _nanmean0(arr["stripe_rows_z"]), _nanmean0(arr["stripe_cols_z"])
    prom = torch.from_numpy(np.asarray(host[f"{name}/prom"], dtype=np.float32)).mean(dim=0)
    share = torch.from_numpy(np.asarray(host[f"{name}/share"], dtype=np.float32)).mean(dim=0)
    found = periodic_peaks_from(prom, share, samples=b, min_cycles=p.periodic_min_cycles,
                                p_bin=p.periodic_p_bin)
    thr = gamma_threshold(b, p.periodic_p_bin)
    with np.errstate(divide="ignore", invalid="ignore"):
        img_std = np.sqrt(arr["m2"] / arr["n"])
    for ch in range(min(c, p.max_channels)):
        f = found[ch]
        for key, value in (("mean", stats.mean[ch]), ("std", stats.std[ch]), ("skew", stats.skew[ch]),
                           ("kurtosis", stats.kurtosis[ch]), ("stripe_rows", rows[ch]),
                           ("stripe_cols", cols[ch]), ("stripe_rows_excess", ex_r[ch]),
                           ("stripe_cols_excess", ex_c[ch]), ("stripe_rows_z", z_r[ch]),
                           ("stripe_cols_z", z_c[ch]), ("periodic_excess", f.ratio / thr),
                           ("period_px", f.period_px if f.found else math.nan),
                           ("periodic_share", f.share)):
            m[f"{name}/c{ch}/{key}"] = float(value)
    if len(found) > c:
        m[f"{name}/pc1/periodic_excess"] = found[c].ratio / thr
        m[f"{name}/pc1/period_px"] = found[c].period_px if found[c].found else math.nan
    periodic = [i for i, f in enumerate(found) if f.found]
    best = max(range(len(found)), key=lambda i: (found[i].found, found[i].ratio))
    fb = found[best]
    m[f"{name}/nonfinite_share"] = nonfinite
    m[f"{name}/std_mean"] = float(np.nanmean(stats.std)) if np.isfinite(stats.std).any() else math.nan
    m[f"{name}/abs_mean_max"] = _nanmax(np.abs(stats.mean))
    m[f"{name}/kurtosis_max"] = _nanmax(np.abs(stats.kurtosis))
    m[f"{name}/stripe_rows_max"] = _nanmax(rows)
    m[f"{name}/stripe_cols_max"] = _nanmax(cols)
    m[f"{name}/periodic_excess"] = fb.ratio / thr
    m[f"{name}/periodic_channel"] = float(-1 if best >= c else best)
    m[f"{name}/periodic_share"] = fb.share
    m[f"{name}/period_px"] = fb.period_px if fb.found else math.nan
    m[f"{name}/periodic_channels"] = float(len([i for i in periodic if i < c]))
    # stripes: the most striped channel that is not periodic (a grid's lines are its own finding)
    score = np.fmin(np.fmax(ex_r, ex_c) / STRIPE_EXCESS_WARN, np.fmax(z_r, z_c) / STRIPE_Z_WARN)
    score = np.where([found[i].found for i in range(c)], -np.inf, np.nan_to_num(score, nan=-np.inf))
    sc = int(np.argmax(score))
    axis = 0 if min(ex_r[sc] / STRIPE_EXCESS_WARN, z_r[sc] / STRIPE_Z_WARN) >= \
        min(ex_c[sc] / STRIPE_EXCESS_WARN, z_c[sc] / STRIPE_Z_WARN) else 1
    m[f"{name}/stripe_channel"] = float(sc)
    m[f"{name}/stripe_axis"] = float(axis)
    m[f"{name}/stripe_excess"] = float((ex_r if axis == 0 else ex_c)[sc]) if np.isfinite(score[sc]) else 0.0
    m[f"{name}/stripe_z"] = float((z_r if axis == 0 else z_c)[sc]) if np.isfinite(score[sc]) else 0.0
    table = np.stack([stats.mean, stats.std, stats.skew, stats.kurtosis, rows, cols,
                      np.asarray([found[i].ratio / thr for i in range(c)])])
    return LatentBatch(metrics=m, periodic_kind=fb.kind, stats=stats,
                       per_image=image_statistics(arr["mean"], img_std), channel_stats=table)


def drift_metrics(name: str, dist: float, scan: DriftScan) -> dict[str, float]:
    """``<name>/drift…``: the distance from the previous batches' moments and the drift scan's outcome
    (``drift_excess`` >= 1: a drift; ``drift_stat`` 0 mean, 1 std)."""
    return {
        f"{name}/drift": dist,
        f"{name}/drift_p": scan.p,
        f"{name}/drift_excess": (-math.log10(max(scan.p, 1e-300)) / -math.log10(scan.limit)
                                 if math.isfinite(scan.p) and math.isfinite(scan.limit) else math.nan),
        f"{name}/drift_z": scan.z,
        f"{name}/drift_channel": float(scan.channel),
        f"{name}/drift_stat": 0.0 if scan.stat == "mean" else 1.0,
        f"{name}/drift_delta": scan.delta,
        f"{name}/drift_lag": float(scan.lag),
    }


def _nanmean0(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    ok = np.isfinite(a)
    cnt = ok.sum(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(cnt > 0, np.where(ok, a, 0.0).sum(axis=0) / np.maximum(cnt, 1), np.nan)


def _nanmax(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else math.nan
