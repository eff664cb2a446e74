"""The one device→host transfer of small analyzer results, and the gather across ranks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np
import torch

from ..analyzers.base import is_map_key

__all__ = ["to_host", "rank_and_world", "gather_ranks", "exchange", "merge_ranks", "RankPayload"]

#: What every rank sends at every ``log()`` call under torch.distributed, whatever its inputs were:
#: ``{"step": int | None, "host": {analyzer: {key: array}}, "ids": list[str] | None, "leaving": bool}``.
#: ``step`` is None when the rank's call was refused (bad inputs); ``leaving`` is True from ``finish()``.
RankPayload = dict

Nested = Mapping[str, Mapping[str, torch.Tensor]]


def to_host(outputs: Nested) -> dict[str, dict[str, np.ndarray]]:
    """Move every tensor in ``outputs`` (analyzer → key → tensor) to the CPU as numpy arrays.

    The tensors on one device are flattened into one buffer per kind and copied with one transfer each:
    ``uint8`` tensors (images for the figures) stay ``uint8``, everything else becomes ``float32``. That is
    one or two transfers per device, then the buffers are split back into their shapes. Tensors already on the
    CPU are copied one by one (no concatenation).
    """
    groups: dict[tuple[torch.device, torch.dtype], list[tuple[str, str, torch.Tensor]]] = {}
    for analyzer, tensors in outputs.items():
        for key, t in tensors.items():
            t = torch.as_tensor(t)
            kind = torch.uint8 if t.dtype == torch.uint8 else torch.float32
            groups.setdefault((t.device, kind), []).append((analyzer, key, t))
    host: dict[str, dict[str, np.ndarray]] = {name: {} for name in outputs}
    for (device, kind), items in groups.items():
        if device.type == "cpu":
            # Already on the host: one copy per tensor (a view of user data must not be shared with the
            # worker), no concatenation and splitting of many small tensors.
            for analyzer, key, t in items:
                arr = t.detach() if t.dtype == kind else t.detach().to(kind)
                host[analyzer][key] = np.array(arr.numpy(), copy=True)
            continue
        buf = torch.cat([t.detach().reshape(-1).to(kind) for _, _, t in items]).cpu().numpy()
        offset = 0
        for analyzer, key, t in items:
            n = t.numel()
            host[analyzer][key] = buf[offset:offset + n].reshape(tuple(t.shape))
            offset += n
    return host


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the world size (torch.distributed when initialised, else RANK/WORLD_SIZE)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _rank_weight(host: Mapping[str, Mapping[str, np.ndarray]], analyzer: str, ids: Optional[list[str]]
                 ) -> int:
    """How many samples a rank's scalars stand for: its sample ids, else its per-sample arrays' length."""
    if ids is not None:
        return len(ids)
    for name in (analyzer, *host):
        for key, value in host.get(name, {}).items():
            if not is_map_key(key) and np.ndim(value) >= 1:
                return int(np.shape(value)[0])
    return 1


def gather_ranks(host: dict[str, dict[str, np.ndarray]], ids: Optional[list[str]]
                 ) -> tuple[dict[str, dict[str, np.ndarray]], Optional[list[str]]]:
    """Gather the host results of every rank on rank 0 (collective: every rank must call it).

    On rank 0: per-sample ``(B_r,)`` arrays are concatenated in rank order, so a batch mean over them is
    the mean over the union of the samples; ``()`` scalars (batch means) are averaged with each rank's number
    of samples as weight (NaN, "not measured", leaves that rank out); ``"map/"`` arrays are rank 0's; sample
    ids are concatenated like the arrays.
    Analyzers that did not run on every rank are dropped for this step. Other ranks get ``({}, None)``.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return host, ids
    rank, world = dist.get_rank(), dist.get_world_size()
    gathered: Optional[list[Any]] = [None] * world if rank == 0 else None
    dist.gather_object((host, ids), gathered, dst=0)
    if rank != 0 or gathered is None:
        return {}, None
    hosts = [g[0] for g in gathered]
    common = set(hosts[0])
    for h in hosts[1:]:
        common &= set(h)
    merged: dict[str, dict[str, np.ndarray]] = {}
    for analyzer in hosts[0]:
        if analyzer not in common:
            continue
        weights = np.asarray([_rank_weight(h, analyzer, g[1]) for h, g in zip(hosts, gathered, strict=True)],
                             np.float64)
        out: dict[str, np.ndarray] = {}
        for key, value in hosts[0][analyzer].items():
            parts = [h[analyzer].get(key) for h in hosts]
            if is_map_key(key) or any(p is None for p in parts):
                out[key] = value
            elif np.ndim(value) == 0:
                vals = np.asarray([np.asarray(p, np.float64) for p in parts])
                ok = np.isfinite(vals)  # a rank that could not measure it (NaN) does not count
                w = np.where(ok, np.maximum(weights, 1e-12), 0.0)
                mean = float(np.sum(np.where(ok, vals, 0.0) * w) / np.sum(w)) if ok.any() else float("nan")
                out[key] = np.asarray(mean, np.float32)
            else:
                out[key] = np.concatenate([np.asarray(p) for p in parts], axis=0)
        merged[analyzer] = out
    all_ids = None
    if all(g[1] is not None for g in gathered):
        all_ids = [i for g in gathered for i in g[1]]
    return merged, all_ids


def exchange(payload: RankPayload) -> list[RankPayload]:
    """Every rank's payload, on every rank (one ``all_gather_object``: a collective, every rank calls it).

    Raises whatever torch.distributed raises when a peer is gone (the caller decides what that means).
    """
    import torch.distributed as dist

    world = dist.get_world_size()
    out: list[Any] = [None] * world
    dist.all_gather_object(out, payload)
    return out


def merge_ranks(payloads: list[RankPayload], *, step: int) -> tuple[dict[str, dict[str, np.ndarray]],
                                                                    Optional[list[str]], list[int]]:
    """Rank 0's view of one step: the ranks that logged ``step`` merged as :func:`gather_ranks` does.

    A rank whose call was refused, that logged another step or that is leaving is left out; so is an
    analyzer on a rank that did not run it. Returns ``(host, ids, left_out_ranks)``. ``payloads[0]`` is
    rank 0's own (its maps are the ones kept).
    """
    ok = [r for r, p in enumerate(payloads) if p.get("step") == step and not p.get("leaving")]
    left_out = [r for r in range(len(payloads)) if r not in ok]
    if 0 not in ok:
        return {}, None, left_out
    hosts = {r: payloads[r]["host"] for r in ok}
    merged: dict[str, dict[str, np.ndarray]] = {}
    for analyzer, own in hosts[0].items():
        ranks = [r for r in ok if analyzer in hosts[r]]
        weights = np.asarray([_rank_weight(hosts[r], analyzer, payloads[r].get("ids")) for r in ranks],
                             np.float64)
        out: dict[str, np.ndarray] = {}
        for key, value in own.items():
            parts = [hosts[r][analyzer].get(key) for r in ranks]
            if is_map_key(key) or any(p is None for p in parts):
                out[key] = value
            elif np.ndim(value) == 0:
                vals = np.asarray([np.asarray(p, np.float64) for p in parts])
                finite = np.isfinite(vals)  # a rank that could not measure it (NaN) does not count
                w = np.where(finite, np.maximum(weights, 1e-12), 0.0)
                mean = float(np.sum(np.where(finite, vals,
                                             0.0) * w) / np.sum(w)) if finite.any() else float("nan")
                out[key] = np.asarray(mean, np.float32)
            else:
                try:
                    out[key] = np.concatenate([np.asarray(p) for p in parts], axis=0)
                except ValueError:  # ranks disagree on the trailing shape: keep rank 0's
                    out[key] = value
        merged[analyzer] = out
    ids: Optional[list[str]] = None
    if all(payloads[r].get("ids") is not None for r in ok):
        ids = [i for r in ok for i in payloads[r]["ids"]]
        n = {len(np.atleast_1d(v)) for h in merged.values() for k, v in h.items()
             if not is_map_key(k) and np.ndim(v) >= 1}
        if n and len(ids) not in n:
            ids = None  # an analyzer missing on some rank: ids would not line up with the arrays
    return merged, ids, left_out


def strip_maps(host: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """``host`` without its ``"map/"`` arrays (only rank 0's figures are drawn: others need not send them)."""
    return {a: {k: v for k, v in h.items() if not is_map_key(k)} for a, h in host.items()}
