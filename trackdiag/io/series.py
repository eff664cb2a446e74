"""The one series type: a numeric metric of one run over training steps.

Both the log readers (:mod:`trackdiag.io.logreaders`, where it is also named ``ScalarSeries``) and the
checkpoint
comparison (:mod:`trackdiag.compare.data`) hold metrics as :class:`Series`.

>>> s = Series([0, 10, 20], [1.0, 0.5, float("nan")])
>>> s.steps.dtype.name, s.values.dtype.name, len(s)
('int64', 'float64', 3)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Series"]


@dataclass
class Series:
    """``steps``: ``(N,)`` int64, ascending and unique; ``values``: ``(N,)`` float64 (NaN kept).

    ``duplicates``: how many points were logged again at an existing step (the readers keep the last value).
    """

    steps: np.ndarray
    values: np.ndarray
    duplicates: int = 0

    def __post_init__(self) -> None:
        self.steps = np.asarray(self.steps, dtype=np.int64)
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.steps.shape != self.values.shape or self.steps.ndim != 1:
            raise ValueError(f"Series: steps and values must be 1-D of one length; got {self.steps.shape} "
                             f"and {self.values.shape}.")

    def __len__(self) -> int:
        return int(self.steps.shape[0])
