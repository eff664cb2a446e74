"""Offline loss detection: a whole series through the in-loop :class:`LossDetector` (:func:`detect_series`),
for logs (``python -m trackdiag.diagnose --logdir``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..errors import ShapeError
from .loss_detector import LossDetector
from .loss_events import LossEvent
from .loss_params import LossParams

__all__ = ["SeriesDetection", "detect_series"]


@dataclass
class SeriesDetection:
    """Per-step arrays ``(N,)`` and the events of :func:`detect_series`."""

    steps: np.ndarray
    loss: np.ndarray
    ema: np.ndarray
    smoothed: np.ndarray
    expected: np.ndarray
    z: np.ndarray
    normalized: np.ndarray
    events: list[LossEvent]
    metrics: dict[str, float]
    bucket_profile: np.ndarray
    sample_rows: list[dict[str, Any]] = field(default_factory=list)

    def event_rows(self) -> list[dict[str, Any]]:
        return [e.row() for e in self.events]


def detect_series(steps: Any, loss: Any, *, timesteps: Any = None, params: Optional[LossParams] = None,
                  sample_ids: Optional[Sequence[Optional[Sequence[str]]]] = None,
                  detector: Optional[LossDetector] = None, progress: bool = False) -> SeriesDetection:
    """Feed a whole loss series through :class:`LossDetector` (the in-loop detector), step by step.

    ``steps``/``loss``: ``(N,)``; ``loss`` may also be ``N×B`` per-sample; ``timesteps``: ``(N,)`` (one per
    step, NaN = unknown) or ``N×B``; ``sample_ids``: N sequences of ids (or None). Steps are processed in
    the given order (sort them first). ``progress``: a tqdm bar.
    """
    det = detector if detector is not None else LossDetector(params)
    steps_arr = np.asarray(steps).reshape(-1)
    loss_arr = np.asarray(loss, dtype=np.float64)
    n = steps_arr.size
    if loss_arr.shape[0] != n:
        raise ShapeError(f"loss must have one entry per step: expected ({n}, ...); got {loss_arr.shape}.")
    t_arr = None if timesteps is None else np.asarray(timesteps, dtype=np.float64)
    if t_arr is not None and t_arr.shape[0] != n:
        raise ShapeError(f"timesteps must have one entry per step: expected ({n}, ...); got {t_arr.shape}.")
    cols = {k: np.full(n, np.nan) for k in ("loss", "ema", "smoothed", "expected", "z", "normalized")}
    events: list[LossEvent] = []
    indices: Any = range(n)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, total=n, desc="loss steps", unit="step", leave=False)
    for i in indices:
        t_i = None
        if t_arr is not None:
            t_i = t_arr[i]
            if np.ndim(t_i) == 0 and not math.isfinite(float(t_i)):
                t_i = None
        ids = sample_ids[i] if sample_ids is not None else None
        rep = det.update(int(steps_arr[i]), loss_arr[i], t_i, ids)
        cols["loss"][i], cols["ema"][i], cols["smoothed"][i] = rep.value, rep.ema, rep.smoothed
        cols["expected"][i], cols["z"][i], cols["normalized"][i] = rep.expected, rep.z, rep.normalized
        events.extend(rep.events)
    return SeriesDetection(steps=steps_arr.astype(np.int64), events=events, metrics=det.metrics(),
                           bucket_profile=det.bucket_profile(),
                           sample_rows=det.samples.rows(det.p.max_sample_rows), **cols)

