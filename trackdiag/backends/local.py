"""Local backend: a run folder for users with no tracker.

Layout::

    <out_dir>/<run_name>/
      metrics.jsonl             one line per step: {"step": s, "timestamp_ms": t, "metrics": {key: value}}
      params.json               the flattened configuration
      images/<key>/step_0000123.png
      tables/<key>.jsonl        one row per line
      artifacts/<name>/...      report folders
      status.json               {"status": "FINISHED" | "FAILED"}
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..plots import save_rgb_png
from .base import Backend, BackendParams

__all__ = ["LocalBackend", "LocalParams", "safe_relpath"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def safe_relpath(key: str) -> Path:
    """A relative path from a tracker key: ``/`` keeps its meaning, other odd characters and ``..`` go."""
    parts = [_UNSAFE.sub("_", p) for p in key.split("/") if p not in ("", ".", "..")]
    return Path(*parts) if parts else Path("_")


@dataclass
class LocalParams(BackendParams):
    #: Parent folder of run folders; empty means the session's ``out_dir``.
    root: str = ""
    #: Write into exactly this run folder (set by ``trackdiag.sync`` to resume a run); empty = derive it.
    run_dir: str = ""


class LocalBackend(Backend):
    name = "local"
    Params = LocalParams
    params: LocalParams

    def __init__(self, params: Optional[LocalParams] = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        root = Path(self.params.root) if self.params.root else Path(self.run.out_dir)
        name = self.run.run_name or time.strftime("run-%Y%m%d-%H%M%S")
        self.dir = Path(self.params.run_dir) if self.params.run_dir else root / safe_relpath(name)

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int, *, timestamp_ms: int) -> None:
        line = {"step": int(step), "timestamp_ms": int(timestamp_ms),
                "metrics": {k: (v if math.isfinite(v) else str(v)) for k, v in metrics.items()}}
        with open(self.dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        save_rgb_png(image, self.dir / "images" / safe_relpath(key) / f"step_{int(step):07d}.png")

    def log_table(self, key: str, rows: Sequence[Mapping[str, Any]], step: int) -> None:
        path = self.dir / "tables" / safe_relpath(key).with_suffix(".jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(dict(row)) + "\n")

    def log_artifacts(self, local_dir: Path, name: str) -> None:
        shutil.copytree(local_dir, self.dir / "artifacts" / safe_relpath(name), dirs_exist_ok=True)

    def log_params(self, params: Mapping[str, str]) -> None:
        path = self.dir / "params.json"
        existing = json.loads(path.read_text()) if path.exists() else {}
        existing.update({k: str(v) for k, v in params.items()})
        path.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")

    def publish_findings(self, findings: Mapping[str, Any], step: int) -> None:
        """``findings.json`` (verdict, causes, findings with since-when) and ``findings.md``, replaced."""
        data = {k: v for k, v in findings.items() if k not in ("markdown", "text")}
        (self.dir / "findings.json").write_text(json.dumps(data, indent=2, default=str) + "\n",
                                                encoding="utf-8")
        (self.dir / "findings.md").write_text(str(findings.get("markdown", "")), encoding="utf-8")

    def close(self, status: str = "FINISHED") -> None:
        (self.dir / "status.json").write_text(json.dumps({"status": status}) + "\n")

    def location(self) -> str:
        return str(self.dir.resolve())

    def resume_params(self) -> dict[str, Any]:
        return {**super().resume_params(), "run_dir": str(self.dir)}


def read_metrics(run_dir: str | Path) -> dict[str, dict[int, float]]:
    """Read a local run's ``metrics.jsonl`` back as ``{key: {step: value}}`` (later lines win)."""
    out: dict[str, dict[int, float]] = {}
    with open(Path(run_dir) / "metrics.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            for key, value in rec["metrics"].items():
                out.setdefault(key, {})[int(rec["step"])] = float(value)
    return out
