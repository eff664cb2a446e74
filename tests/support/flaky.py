"""A backend whose health is switched from outside, also from another process (through a file).

Kept in its own light module (no torch) so that ``python -m trackdiag.sync`` in a subprocess rebuilds it fast.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from trackdiag.backends.local import LocalBackend, LocalParams


@dataclass
class FlakyParams(LocalParams):
    #: While this file exists the backend fails.
    switch: str = ""
    #: "transient" (ConnectionError) or "permanent" (ValueError).
    failure: str = "transient"
    #: Which calls fail: any of open, params, metrics, image, table, artifacts, close.
    kinds: list[str] = field(default_factory=lambda: ["open", "params", "metrics", "image", "table", "close"])
    retry_s: float = 0.2
    sleep_s: float = 0.0
    #: Seconds each figure upload takes (a slow artifact store).
    image_sleep_s: float = 0.0


class FlakyBackend(LocalBackend):
    name = "flaky"
    Params = FlakyParams

    def _gate(self, kind: str) -> None:
        if self.params.sleep_s:
            time.sleep(self.params.sleep_s)
        if kind in self.params.kinds and self.params.switch and os.path.exists(self.params.switch):
            if self.params.failure == "transient":
                raise ConnectionRefusedError(111, f"planted outage ({kind})")
            raise ValueError(f"planted refusal ({kind})")

    def open(self):
        self._gate("open")
        super().open()

    def log_params(self, params):
        self._gate("params")
        super().log_params(params)

    def log_metrics(self, metrics, step, *, timestamp_ms):
        self._gate("metrics")
        super().log_metrics(metrics, step, timestamp_ms=timestamp_ms)

    def log_image(self, key, image, step):
        self._gate("image")
        time.sleep(self.params.image_sleep_s)
        super().log_image(key, image, step)

    def log_table(self, key, rows, step):
        self._gate("table")
        super().log_table(key, rows, step)

    def close(self, status="FINISHED"):
        self._gate("close")
        super().close(status)
