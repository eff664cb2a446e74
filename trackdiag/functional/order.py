"""Order statistics (sorted values, medians, the k-th smallest) that give exactly torch's values, faster.

Pure functions; the results are bit-identical to the torch expressions they stand for (an order statistic
is one of its inputs: no arithmetic is involved):

* :func:`sorted_values`: ``t.sort(dim).values``. On the CPU, numpy sorts values only (torch's CPU sort
  also sorts an int64 index: 3–7× slower on 10⁴–10⁵-long rows); elsewhere torch.
* :func:`nanmedian`: ``t.nanmedian(dim).values`` (the lower median of the non-NaN values, NaN where all
  are NaN), by one values-only sort on the CPU.
* :func:`masked_median`: the same over the rows a per-row mask selects (``N×P`` rows of ``N×P×...``),
  by one partition per sample on the CPU.
* :func:`rank_range_sum`: ``t.sort(1).values[:, lo:hi].sum(1)`` per row (a trimmed or interquartile
  sum), by one partition per row on the CPU (no sort); the same values up to the summation's rounding.
* :func:`kth_smallest`: the ``r``-th smallest of a few equal-shape tensors, element-wise, by a pruned
  Batcher odd–even merge network (``torch.minimum`` / ``torch.maximum`` of whole tensors): the median
  of ``k`` shifted views of one tensor costs a few dozen element-wise passes instead of a copy of the
  ``k``-wide windows and a per-row median (``torch.median`` over a short last axis runs row by row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch

__all__ = ["host_ok", "kth_smallest", "masked_median", "nanmedian", "range_max", "rank_range_sum",
           "running_max", "running_min", "sorted_values"]

_NUMPY_DTYPES = (torch.float32, torch.float64)


def host_ok(t: torch.Tensor) -> bool:
    """Whether ``t``'s values may be read on the host (numpy) without a device synchronisation or a lost
    gradient: a float32/float64 CPU tensor that does not require grad. The switch of this module's numpy
    paths and of every other host-side shortcut (:mod:`.doubling`, :mod:`..analyzers.bands`)."""
    return t.device.type == "cpu" and t.dtype in _NUMPY_DTYPES and not t.requires_grad


def sorted_values(t: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``t.sort(dim=dim).values`` (ascending; NaN last, as torch sorts them)."""
    if not host_ok(t):
        return t.sort(dim=dim).values
    return torch.from_numpy(np.sort(t.numpy(), axis=dim))


def nanmedian(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``t.nanmedian(dim=dim).values``: the lower median of the non-NaN values along ``dim`` (NaN where
    there are none); ``dim`` removed."""
    if 2 <= t.shape[dim] <= _SMALL_SORT and t.is_floating_point():
        return _small_nanmedian(t, dim)
    if not host_ok(t) or t.shape[dim] == 0:
        return t.nanmedian(dim=dim).values
    a = np.sort(np.moveaxis(t.numpy(), dim, -1), axis=-1)  # NaN sort last
    cnt = a.shape[-1] - np.isnan(a).sum(axis=-1)
    idx = np.maximum(cnt - 1, 0) // 2
    return torch.from_numpy(np.ascontiguousarray(np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]))



#: :func:`masked_median` sorts rows up to this long (numpy's vectorised sort; longer ones: a partition).
_SORT_ROWS = 256

#: Along axes up to this long, :func:`nanmedian` sorts by a network of element-wise minima and maxima.
_SMALL_SORT = 8


def _small_nanmedian(t: torch.Tensor, dim: int) -> torch.Tensor:
    """:func:`nanmedian` along a short axis (``2..._SMALL_SORT`` entries): the entries as whole tensors (NaN
    read as +inf, which sorts last as NaN does) through Batcher's sorting network, then the entry of rank
    ``(count − 1) // 2`` of each position's non-NaN count (NaN where it is 0). The values are order
    statistics of the inputs, so exactly torch's; a few element-wise passes instead of a sort of many
    short rows (numpy's per-row call costs ~0.3 µs)."""
    n = t.shape[dim]
    m = 1
    while m < n:
        m *= 2
    lanes = [t.select(dim, i) for i in range(n)]
    nan = [torch.isnan(v) for v in lanes]
    cnt = (~nan[0]).to(torch.int32)
    for q in nan[1:]:
        cnt += ~q
    v: list[torch.Tensor | None] = [torch.where(q, float("inf"), a) for a, q in zip(lanes, nan, strict=True)]
    v += [None] * (m - n)  # None: +inf padding
    for i, j in _batcher(m):
        a, b = v[i], v[j]
        if b is None:
            continue
        if a is None:
            v[i], v[j] = b, None
            continue
        v[i], v[j] = torch.minimum(a, b), torch.maximum(a, b)
    rank = (cnt - 1).clamp_min(0) // 2
    out = torch.where(cnt > 0, v[0], float("nan"))  # type: ignore[arg-type]
    for r in range(1, (n - 1) // 2 + 1):
        out = torch.where(rank == r, v[r], out)  # type: ignore[arg-type]
    return out


def rank_range_sum(t: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Sum of the values of each row of ``t`` (``N×M``) at sorted ranks ``lo ≤ r < hi`` (``lo``, ``hi``:
    ``(N,)`` integers, ``0 ≤ lo``, ``hi ≤ M``; 0 where ``hi ≤ lo``): ``N``. On the CPU one partition per row
    at the two ranks, summed in float64; elsewhere a sort and a prefix sum (no host synchronisation)."""
    if not host_ok(t):
        srt = t.sort(dim=1).values
        fin = torch.where(torch.isfinite(srt), srt, torch.zeros_like(srt))
        cs = torch.cat([torch.zeros_like(fin[:, :1]), torch.cumsum(fin, dim=1)], dim=1)
        return (cs.gather(1, hi[:, None].long())[:, 0] - cs.gather(1, lo[:, None].long())[:, 0]).where(
            hi > lo, torch.zeros_like(cs[:, 0]))
    a = t.numpy()
    out = np.zeros(a.shape[0], dtype=np.float64)
    for i, (l_, h_) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
        if h_ <= l_:
            continue
        # one partition at lo, then the part above it at hi − 1 in place (a partition at both ranks at
        # once costs ~1.6× as much): the same values in [lo, hi)
        part = np.partition(a[i], l_)
        upper = part[l_:]
        if h_ - l_ < upper.shape[0]:
            upper.partition(h_ - 1 - l_)
        out[i] = upper[: h_ - l_].sum(dtype=np.float64)
    return torch.from_numpy(out.astype(a.dtype))


def masked_median(t: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """``torch.where(ok, t, nan).nanmedian(dim=1).values`` for ``t`` ``N×P×...`` and ``ok`` ``N×P`` (bool,
    broadcast over the trailing axes): the lower median over the rows ``ok`` selects. On the CPU each
    sample's selected rows are partitioned once (their count is the same at every trailing position: no
    sort, no NaN bookkeeping), unless they hold NaN themselves."""
    if not host_ok(t):
        okb = ok.reshape(*ok.shape, *([1] * (t.dim() - 2)))
        return torch.where(okb, t, float("nan")).nanmedian(dim=1).values
    a, sel = t.numpy(), ok.numpy()
    out = np.full((t.shape[0], *t.shape[2:]), np.nan, dtype=a.dtype)
    for i in range(t.shape[0]):
        rows = a[i] if sel[i].all() else a[i][sel[i]]  # C×... (a view when every row is selected)
        c = rows.shape[0]
        if c == 0:
            continue
        if np.isnan(rows).any():
            out[i] = nanmedian(torch.from_numpy(np.ascontiguousarray(rows)), dim=0).numpy()
            continue
        r = (c - 1) // 2
        # each trailing position's c values made contiguous first (partitioning the strided transpose
        # is 2× slower; torch's blocked transpose copy is ~5× faster than numpy's), then sorted: numpy's
        # vectorised sort of short rows beats a partition (the same order statistic)
        cols = torch.from_numpy(rows.reshape(c, -1)).T.contiguous().numpy()
        srt = np.sort(cols, axis=-1) if c <= _SORT_ROWS else np.partition(cols, r, axis=-1)
        out[i] = srt[:, r].reshape(rows.shape[1:])
    return torch.from_numpy(out)

def _batcher(m: int) -> list[tuple[int, int]]:
    """Comparators ``(i, j)``, ``i < j`` (min to ``i``), of Batcher's odd–even merge sort of ``m = 2^p``."""
    out: list[tuple[int, int]] = []
    p = 1
    while p < m:
        k = p
        while k >= 1:
            for j in range(k % p, m - k, 2 * k):
                for i in range(min(k, m - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        out.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return out


@lru_cache(maxsize=64)
def _selection_network(n: int, r: int) -> tuple[int, tuple[tuple[int, int, bool, bool], ...]]:
    """The sorting network of ``n`` inputs (padded to a power of two with +inf) pruned to what output ``r``
    needs: ``(m, ((i, j, need_min, need_max), ...))``."""
    m = 1
    while m < n:
        m *= 2
    need = {r}
    keep: list[tuple[int, int, bool, bool]] = []
    for i, j in reversed(_batcher(m)):
        wi, wj = i in need, j in need
        if wi or wj:
            keep.append((i, j, wi, wj))
            need |= {i, j}
    return m, tuple(reversed(keep))


def kth_smallest(values: Sequence[torch.Tensor], r: int) -> torch.Tensor:
    """Element-wise ``r``-th smallest (0-based) of ``values`` (equal shapes): the same as
    ``torch.stack(values, -1).sort(-1).values[..., r]``, hence ``torch.stack(values, -1).median(-1).values``
    for ``r = (len(values) - 1) // 2``. A NaN anywhere gives NaN there."""
    n = len(values)
    if not 0 <= r < n:
        raise ValueError(f"r={r} outside 0..{n - 1}")
    m, net = _selection_network(n, r)
    v: list[torch.Tensor | None] = [*values, *([None] * (m - n))]  # None: +inf padding
    for i, j, need_lo, need_hi in net:
        a, b = v[i], v[j]
        if b is None:  # (a, +inf) is already in order
            continue
        if a is None:
            v[i], v[j] = b, None
            continue
        v[i] = torch.minimum(a, b) if need_lo else None
        v[j] = torch.maximum(a, b) if need_hi else None
    out = v[r]
    assert out is not None
    return out


def _running(t: torch.Tensor, k: int, dim: int, op: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
             ) -> torch.Tensor:
    n_out = t.shape[dim] - k + 1
    out, span = t, 1
    while span * 2 <= k:
        n = out.shape[dim]
        out = op(out.narrow(dim, 0, n - span), out.narrow(dim, span, n - span))
        span *= 2
    if span < k:  # two overlapping runs of length span cover the k entries
        return op(out.narrow(dim, 0, n_out), out.narrow(dim, k - span, n_out))
    return out


def running_min(t: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Minimum over every run of ``k`` consecutive entries along ``dim`` (length ``n - k + 1`` there): the
    same as ``t.unfold(dim, k, 1).amin(-1)`` (``.all(-1)`` for bool), by doubling spans: ``log2 k``
    element-wise minima instead of a ``k``-wide window."""
    return _running(t, k, dim, torch.minimum)


def running_max(t: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Maximum over every run of ``k`` consecutive entries along ``dim``: ``t.unfold(dim, k, 1).amax(-1)``,
    i.e. a stride-1 ``max_pool`` of width ``k`` along ``dim``, as :func:`running_min`."""
    return _running(t, k, dim, torch.maximum)


def range_max(t: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Maximum of ``t[..., lo[q] : hi[q] + 1]`` for every query ``q`` (``lo``, ``hi``: ``(Q,)`` long,
    inclusive, ``0 ≤ lo ≤ hi < L``): ``...×L`` → ``...×Q``. A sparse table of running maxima over spans
    ``2^j`` (``log2 L`` element-wise maxima); each range is two overlapping spans. Exactly the values of a
    per-range ``amax``."""
    length = t.shape[-1]
    n_q = lo.shape[0]
    size = hi - lo + 1
    out = torch.full((*t.shape[:-1], n_q), float("nan"), device=t.device, dtype=t.dtype)
    level, span = t, 1
    while span <= length:
        fits = (size >= span) & (size < 2 * span)  # ranges answered by two spans of this level
        a = level.index_select(-1, lo.clamp(0, level.shape[-1] - 1))
        b = level.index_select(-1, (hi - span + 1).clamp(0, level.shape[-1] - 1))
        out = torch.where(fits, torch.maximum(a, b), out)
        if 2 * span > length:
            break
        level = torch.maximum(level[..., :-span], level[..., span:])  # max over t[i : i + 2·span]
        span *= 2
    return out
