"""The backend contract: a small abstract base that every tracker adapter implements in full.

All calls happen on the background worker thread, never on the training thread. Values arrive already
converted by the core (:mod:`trackdiag.values`): metric keys are final, values are floats (NaN allowed),
images are ``H×W×3`` uint8 arrays, table rows hold only str/float/int/None cells.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np

__all__ = ["Backend", "BackendParams", "RunInfo"]


@dataclass
class BackendParams:
    """Base of every backend's typed parameters."""


@dataclass
class RunInfo:
    """What every backend needs to know about the run it writes."""

    experiment: str = "trackdiag"
    run_name: Optional[str] = None
    tags: dict[str, str] = field(default_factory=dict)
    out_dir: Path = Path("trackdiag_runs")


class Backend(ABC):
    """One tracker. ``open`` is called once on the worker before anything else; ``close`` once at the end."""

    name: ClassVar[str]
    Params: ClassVar[type[BackendParams]] = BackendParams

    def __init__(self, params: Optional[BackendParams] = None, *, run: Optional[RunInfo] = None) -> None:
        self.params = params if params is not None else self.Params()
        self.run = run if run is not None else RunInfo()

    @abstractmethod
    def open(self) -> None:
        """Connect and create (or attach to) the run. May raise; the worker retries later."""

    @abstractmethod
    def log_metrics(self, metrics: Mapping[str, float], step: int, *, timestamp_ms: int) -> None:
        """Write a batch of scalar metrics at one step, in as few calls as the tracker allows."""

    @abstractmethod
    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        """Write one ``H×W×3`` uint8 figure under ``key`` at ``step``."""

    @abstractmethod
    def log_table(self, key: str, rows: Sequence[Mapping[str, Any]], step: int) -> None:
        """Write (append) table rows under ``key``; rows carry their own ``step`` column where relevant."""

    @abstractmethod
    def log_artifacts(self, local_dir: Path, name: str) -> None:
        """Upload a folder (a report) under the artifact path ``name``."""

    @abstractmethod
    def log_params(self, params: Mapping[str, str]) -> None:
        """Write the flattened configuration as run parameters."""

    @abstractmethod
    def close(self, status: str = "FINISHED") -> None:
        """Finish the run (``FINISHED`` or ``FAILED``) if this backend created it; release resources."""

    def location(self) -> str:
        """Where a person looks at the results (a URI, a folder, a command)."""
        return self.name
