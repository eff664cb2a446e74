"""Computing a batched function on some of its images only (gating), with no host synchronisation.

Several estimators are read on some images only (a spectral centroid trend on aperiodic walls, the 2×-period
region maps where the frame holds enough lattice periods, a pair vector where it is finite). On the CPU a
selection costs nothing to read back, so only the selected images are computed; on an accelerator reading
it would stall the device, so every image is computed and the others masked. The values are the same on
every device: :func:`on_rows` is the one home of that rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import overload

import torch

__all__ = ["on_rows"]


@overload
def on_rows(sel: torch.Tensor, fn: Callable[[torch.Tensor | None], Mapping[str, torch.Tensor]], *,
            fills: Mapping[str, float], like: torch.Tensor, shape: tuple[int, ...] = ()
            ) -> dict[str, torch.Tensor]: ...


@overload
def on_rows(sel: torch.Tensor, fn: Callable[[torch.Tensor | None], Sequence[torch.Tensor]], *,
            fills: Sequence[float], like: torch.Tensor, shape: tuple[int, ...] = ()
            ) -> tuple[torch.Tensor, ...]: ...


def on_rows(sel: torch.Tensor, fn: Callable[[torch.Tensor | None], Mapping[str, torch.Tensor]]
            | Callable[[torch.Tensor | None], Sequence[torch.Tensor]], *,
            fills: Mapping[str, float] | Sequence[float], like: torch.Tensor, shape: tuple[int, ...] = ()
            ) -> dict[str, torch.Tensor] | tuple[torch.Tensor, ...]:
    """``fn``'s outputs where ``sel`` (``(N,)`` bool) holds and their fill value elsewhere.

    ``fn(idx)`` computes its outputs on the images ``idx`` (``(K,)`` long, ``K ≥ 1``; None: all ``N``), each
    ``K×shape`` (``N×shape``): a mapping (``fills`` a mapping: the outputs kept, by key, with their fill
    values) or a sequence (``fills`` one value per output, in order). Returns ``N×shape`` tensors of
    ``like``'s dtype and device, a dict or a tuple as ``fills``. On the CPU only the selected images are
    computed (``fn`` is not called when none is); elsewhere all of them, then masked.
    """
    named = isinstance(fills, Mapping)
    keys: list[str] | list[int] = list(fills) if isinstance(fills, Mapping) else list(range(len(fills)))
    vals = [float(v) for v in (fills.values() if isinstance(fills, Mapping) else fills)]

    def pick(got: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [got[k] for k in keys]  # type: ignore[index]

    def pack(ts: list[torch.Tensor]) -> dict[str, torch.Tensor] | tuple[torch.Tensor, ...]:
        return dict(zip(keys, ts, strict=True)) if named else tuple(ts)  # type: ignore[arg-type]

    if sel.device.type != "cpu":  # no host read-back: all images, then masked
        got = pick(fn(None))
        return pack([torch.where(sel.reshape(-1, *([1] * (g.dim() - 1))), g, torch.full_like(g, v))
                     for g, v in zip(got, vals, strict=True)])
    idx = sel.nonzero()[:, 0]
    if idx.numel() == sel.shape[0]:
        return pack(pick(fn(None)))
    n = sel.shape[0]
    out = [torch.full((n, *shape), v, device=like.device, dtype=like.dtype) for v in vals]
    if idx.numel():
        for o, g in zip(out, pick(fn(idx)), strict=True):
            o[idx] = g
    return pack(out)
