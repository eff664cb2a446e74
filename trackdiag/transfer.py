"""The one device→host transfer of small analyzer results, and the gather across ranks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np
import torch

from .analyzers.base import is_map_key

__all__ = ["to_host", "rank_and_world", "gather_ranks"]

Nested = Mapping[str, Mapping[str, torch.Tensor]]


def to_host(outputs: Nested) -> dict[str, dict[str, np.ndarray]]:
    """Move every tensor in ``outputs`` (analyzer → key → tensor) to the CPU as numpy arrays.

    All tensors on one device are flattened into a single float32 buffer and copied with **one**
    transfer per device (normally exactly one), then split back into their shapes.
    """
    by_device: dict[torch.device, list[tuple[str, str, torch.Tensor]]] = {}
    for analyzer, tensors in outputs.items():
        for key, t in tensors.items():
            t = torch.as_tensor(t)
            by_device.setdefault(t.device, []).append((analyzer, key, t))
    host: dict[str, dict[str, np.ndarray]] = {name: {} for name in outputs}
    for items in by_device.values():
        flat = torch.cat([t.detach().reshape(-1).to(torch.float32) for _, _, t in items]) if items else None
        buf = flat.cpu().numpy() if flat is not None else np.empty(0, np.float32)
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


def gather_ranks(host: dict[str, dict[str, np.ndarray]], ids: Optional[list[str]]
                 ) -> tuple[dict[str, dict[str, np.ndarray]], Optional[list[str]]]:
    """Gather host results of every rank on every rank (collective: all ranks must call it).

    Per-sample ``(B_r,)`` arrays are concatenated in rank order, so batch means are weighted by each
    rank's batch size; ``()`` scalars are averaged; ``"map/"`` arrays are rank 0's. Analyzers that did not
    run on every rank are dropped for this step.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return host, ids
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, (host, ids))
    hosts = [g[0] for g in gathered]
    common = set(hosts[0])
    for h in hosts[1:]:
        common &= set(h)
    merged: dict[str, dict[str, np.ndarray]] = {}
    for analyzer in hosts[0]:
        if analyzer not in common:
            continue
        out: dict[str, np.ndarray] = {}
        for key, value in hosts[0][analyzer].items():
            parts = [h[analyzer].get(key) for h in hosts]
            if is_map_key(key) or any(p is None for p in parts):
                out[key] = value
            elif np.ndim(value) == 0:
                out[key] = np.asarray(np.mean([np.asarray(p, np.float64) for p in parts]), np.float32)
            else:
                out[key] = np.concatenate([np.asarray(p) for p in parts], axis=0)
        merged[analyzer] = out
    all_ids = None
    if all(g[1] is not None for g in gathered):
        all_ids = [i for g in gathered for i in g[1]]
    return merged, all_ids
