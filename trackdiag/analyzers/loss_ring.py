"""A fixed-capacity window of ``(position, value)`` points, with a plain-data state (the loss detectors'
rolling windows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["PointRing"]


class PointRing:
    """Fixed-capacity ring of ``(pos, x)`` pairs in numpy arrays (content order is not chronological)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.pos = np.zeros(self.capacity)
        self.x = np.zeros(self.capacity)
        self.head = 0
        self.count = 0

    def append(self, pos: float, x: float) -> None:
        self.pos[self.head] = pos
        self.x[self.head] = x
        self.head = (self.head + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)

    def clear(self) -> None:
        self.head = self.count = 0

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.pos[:self.count], self.x[:self.count]

    def oldest(self) -> tuple[float, float]:
        i = self.head if self.count == self.capacity else 0
        return float(self.pos[i]), float(self.x[i])

    def state_dict(self) -> dict[str, Any]:
        return {"pos": self.pos[:self.count].tolist(), "x": self.x[:self.count].tolist(), "head": self.head}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pos, x = list(state.get("pos", [])), list(state.get("x", []))
        if len(pos) != len(x) or len(pos) > self.capacity:
            raise ConfigError(f"rolling window state holds {len(pos)} points but the window is "
                              f"{self.capacity}; resume with the same parameters.")
        self.clear()
        self.count = len(pos)
        self.pos[:self.count] = pos
        self.x[:self.count] = x
        self.head = int(state.get("head", self.count % self.capacity)) % self.capacity
