"""Timestep buckets of a diffusion loss and the per-bucket offsets that normalise it (numpy, no state).

Each timestep bucket ``b`` has an offset ``o_b``, its loss level relative to the others (in transformed
units: log-loss when ``log``, else the loss). A batch's normalised value is its transformed loss minus the
offset of its timestep mix, :func:`batch_offset`; :func:`learn_offsets` moves the offsets towards the
residuals of a normal batch. :class:`trackdiag.analyzers.loss_detector.LossDetector` holds the offsets and the
counts; ``docs/loss.md`` explains the normalisation.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..errors import InputValueError

__all__ = ["timestep_buckets", "bucket_shares", "guess_t_max", "batch_offset", "normalize_batch",
           "learn_offsets", "bucket_profile"]


def timestep_buckets(t: np.ndarray, *, buckets: int, t_max: float) -> np.ndarray:
    """Bucket index in ``[0, buckets)`` of each timestep, shape ``(B,)`` → ``(B,)`` int64."""
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    if not np.isfinite(t).all():
        raise InputValueError("timesteps contain NaN or Inf.")
    idx = (t * (buckets / float(t_max))).astype(np.int64)
    return np.minimum(np.maximum(idx, 0), buckets - 1)


def bucket_shares(idx: np.ndarray, *, buckets: int) -> np.ndarray:
    """Share of the batch in each bucket, ``(buckets,)`` float64 summing to 1."""
    counts = np.bincount(np.asarray(idx, dtype=np.int64), minlength=buckets).astype(np.float64)
    return counts / max(1.0, float(counts.sum()))


def guess_t_max(t: np.ndarray) -> float:
    """The largest timestep of a schedule, guessed from timesteps ``(B,)``: 1.0 when all are <= 1, else
    1000 (or the next multiple of 1000)."""
    hi = float(np.max(t)) if t.size else 1.0
    if hi <= 1.0:
        return 1.0
    return float(max(1000.0, 1000.0 * math.ceil(hi / 1000.0)))


def batch_offset(shares: np.ndarray, offsets: np.ndarray, *, log: bool) -> float:
    """Offset of a batch with bucket shares ``s`` and offsets ``o`` (both ``(K,)``): ``log Σ s_b e^{o_b}``
    (``log``) or ``Σ s_b o_b``."""
    if log:
        return math.log(float(shares @ np.exp(offsets)))
    return float(shares @ offsets)


def normalize_batch(x: np.ndarray, offsets: np.ndarray, buckets: Optional[np.ndarray],
                    shares: Optional[np.ndarray], *, by_sample: bool, log: bool) -> tuple[float, np.ndarray]:
    """Normalised batch value ``n`` and per-sample normalised values (``(B,)``, or ``(1,)``).

    ``x``: transformed losses ``(B,)`` (or ``(1,)``); ``buckets``/``shares``: the batch's bucket indices
    ``(B,)`` and shares ``(K,)``, both or neither; ``by_sample``: each loss has its own timestep (else the
    batch's mix is subtracted). ``n`` is the log of the mean loss (``log``) or the mean.
    """
    if buckets is None:
        per = x
    elif by_sample:
        per = x - offsets[buckets]
    else:
        assert shares is not None, "bucket shares come with the buckets"
        per = x - batch_offset(shares, offsets, log=log)
    if per.size == 1:
        return float(per[0]), per
    if log:
        m = float(per.max())
        return m + math.log(float(np.mean(np.exp(per - m)))), per
    return float(per.sum()) / per.size, per


def learn_offsets(offsets: np.ndarray, counts: np.ndarray, x: np.ndarray, buckets: np.ndarray,
                  shares: np.ndarray, ref: float, *, by_sample: bool, rate: float, log: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The offsets and counts (both ``(K,)``) after one normal batch: the offsets move towards the residuals
    ``x - ref`` (a running mean at first, then an EMA with rate ``rate``), then are centred over the visited
    buckets. ``x``, ``buckets``, ``shares``, ``by_sample`` as in :func:`normalize_batch`. New arrays."""
    offsets = offsets.copy()
    k = offsets.size
    if by_sample:
        cnt = np.bincount(buckets, minlength=k).astype(np.float64)
        resid_sum = np.bincount(buckets, weights=x - ref - offsets[buckets], minlength=k)
        present = cnt > 0
        counts = counts + cnt
        step = np.maximum(rate, cnt / np.maximum(counts, 1.0))
        offsets[present] += step[present] * resid_sum[present] / cnt[present]
    else:
        resid = float(x.sum()) / x.size - ref - batch_offset(shares, offsets, log=log)
        present = shares > 0
        counts = counts + shares
        step = np.maximum(rate, shares / np.maximum(counts, 1e-12))
        offsets[present] += step[present] * resid * shares[present] / float(shares @ shares)
    seen = counts > 0
    offsets[seen] -= float(offsets[seen].sum()) / int(seen.sum())
    return offsets, counts


def bucket_profile(offsets: np.ndarray, counts: np.ndarray, *, log: bool) -> np.ndarray:
    """Relative loss level per timestep bucket, ``(K,)``: a factor (``log``, geometric mean 1 over the
    visited buckets) or an offset (linear); NaN for buckets never seen."""
    seen = counts > 0
    out = np.full(offsets.size, np.nan)
    out[seen] = np.exp(offsets[seen]) if log else offsets[seen]
    return out
