"""Per-sample loss statistics: which samples recur in spikes (:class:`SampleStats`) and which ids an event
names (:func:`ids_by_excess`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

__all__ = ["SampleStats", "ids_by_excess"]


def ids_by_excess(ids: Optional[Sequence[str]], excess: np.ndarray, limit: int, threshold: float) -> str:
    """At most ``limit`` of the batch's ``ids`` (``;``-joined), largest ``excess`` (``(B,)``) first: those
    above ``threshold``, or all when none is; the first ids when ``excess`` is not one per id."""
    if not ids:
        return ""
    if excess.size != len(ids):
        return ";".join(ids[:limit])
    order = np.argsort(-excess, kind="stable")
    picked = [ids[i] for i in order if excess[i] > threshold] or [ids[i] for i in order]
    return ";".join(picked[:limit])


class SampleStats:
    """Per-sample counters: seen, in spikes, loss sum, excess (log loss / expected) sum and square sum."""

    def __init__(self, max_tracked: int, min_spikes: int, min_share: float) -> None:
        self.max_tracked, self.min_spikes, self.min_share = max_tracked, min_spikes, min_share
        self.stats: dict[str, list[float]] = {}
        self.untracked = 0
        self.suspects: set[str] = set()

    def update(self, ids: Sequence[str], losses: np.ndarray, excess: np.ndarray, spike: bool) -> None:
        for sid, loss, exc in zip(ids, losses, excess, strict=True):
            rec = self.stats.get(sid)
            if rec is None:
                if len(self.stats) >= self.max_tracked:
                    self.untracked += 1
                    continue
                rec = self.stats[sid] = [0.0, 0.0, 0.0, 0.0, 0.0]
            rec[0] += 1
            rec[1] += 1.0 if spike else 0.0
            rec[2] += float(loss)
            if math.isfinite(float(exc)):
                rec[3] += float(exc)
                rec[4] += float(exc) ** 2
            if spike and rec[1] >= self.min_spikes and rec[1] / rec[0] >= self.min_share:
                self.suspects.add(sid)
            elif sid in self.suspects and rec[1] / rec[0] < self.min_share:
                self.suspects.discard(sid)

    def rows(self, limit: int) -> list[dict[str, Any]]:
        """Suspects first (most spikes), then the samples with the largest mean excess."""
        def row(sid: str, r: list[float]) -> dict[str, Any]:
            n = max(r[0], 1.0)
            mean_exc = r[3] / n
            return {"sample_id": sid, "seen": int(r[0]), "in_spikes": int(r[1]), "spike_share": r[1] / n,
                    "mean_loss": r[2] / n, "mean_excess": mean_exc,
                    "std_excess": math.sqrt(max(0.0, r[4] / n - mean_exc ** 2)),
                    "suspect": sid in self.suspects}

        sus = sorted(self.suspects, key=lambda s: (-self.stats[s][1], s))
        rows = [row(s, self.stats[s]) for s in sus[:limit]]
        if len(rows) < limit:
            rest = [s for s in self.stats if s not in self.suspects]
            rest.sort(key=lambda s: -(self.stats[s][3] / max(self.stats[s][0], 1.0)))
            rows += [row(s, self.stats[s]) for s in rest[:limit - len(rows)]]
        return rows

    def state_dict(self) -> dict[str, Any]:
        return {"stats": {k: list(v) for k, v in self.stats.items()}, "untracked": self.untracked,
                "suspects": sorted(self.suspects)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.stats = {str(k): [float(x) for x in v] for k, v in state.get("stats", {}).items()}
        self.untracked = int(state.get("untracked", 0))
        self.suspects = {str(s) for s in state.get("suspects", [])}
