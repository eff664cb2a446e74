"""The drift reference of one latent name, :class:`DriftState`: the per-image statistics of the last
batches, which :func:`~trackdiag.functional.latent_drift.drift_scan` tests each new batch against."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from ..functional.latent_drift import DriftScan, channel_drift, drift_scan
from .latent_params import LatentParams

__all__ = ["DriftState"]


class DriftState:
    """The per-image statistics of the last batches of one latent name (the drift scan's reference)."""

    def __init__(self, p: LatentParams) -> None:
        self.p = p
        self.history: list[np.ndarray] = []
        self.prev_mean: Optional[np.ndarray] = None
        self.prev_std: Optional[np.ndarray] = None

    def update(self, per_image: np.ndarray, mean: np.ndarray, std: np.ndarray) -> tuple[float, DriftScan]:
        """(distance from the previous batches' moments, :class:`DriftScan`) after adding this batch."""
        self.history.append(per_image)
        self.history = self.history[-self.p.drift_history:]
        scan = drift_scan(self.history, max_lag=self.p.drift_max_lag, min_reference=self.p.drift_min_history,
                          false_alarm=self.p.drift_false_alarm)
        dist = math.nan
        if self.prev_mean is not None and self.prev_mean.shape == mean.shape:
            dist = channel_drift(mean, std, self.prev_mean, self.prev_std)  # type: ignore[arg-type]
        self._reference()
        return dist, scan

    def _reference(self) -> None:
        """Mean moments of the last 16 batches (what :func:`channel_drift` compares the next batch with)."""
        ref = [r for r in self.history[-16:] if r.shape[-1] == self.history[-1].shape[-1]]
        if not ref:
            self.prev_mean, self.prev_std = None, None
            return
        with np.errstate(invalid="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                stack = np.concatenate(ref)
                self.prev_mean = np.nanmean(stack[:, 0], axis=0)
                self.prev_std = np.exp(np.nanmean(stack[:, 1], axis=0))

    def state_dict(self) -> dict[str, Any]:
        return {"history": [h.tolist() for h in self.history]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.history = [np.asarray(h, dtype=np.float64) for h in state.get("history", [])]
        if self.history:
            self._reference()
