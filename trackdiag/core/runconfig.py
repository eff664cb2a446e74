"""What a run's configuration looks like in a tracker: one ``config.yaml`` artifact and a few params.

The whole resolved configuration (every analyzer's validated parameters, defaults included) goes in as one
file, ``config/config.yaml``; only the params that matter to compare runs become tracker params, so that
MLflow's image cards (which list a run's params above the image) stay readable:

* ``run.run_name`` and ``run.tags.<tag>``;
* ``analyzer.<name>.schedule`` for each analyzer (one string: ``"every 10 steps"``): which analyzers ran, and
  when (``compare_ckpts`` reads them);
* ``analyzer.<name>._target_`` only for an analyzer class that is not trackdiag's own;
* every other analyzer parameter whose value differs from its default (``figures_every`` included): what a
  user changed.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import flatten

__all__ = ["key_params", "full_config", "write_config"]

def full_config(cfg: Any, analyzers: Sequence[Any]) -> dict[str, Any]:
    """The resolved configuration as plain data, analyzers with their validated parameters."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    plain: dict[str, Any] = {str(k): v for k, v in raw.items()} if isinstance(raw, dict) else {}
    out: dict[str, Any] = {k: v for k, v in plain.items() if k != "analyzer"}
    nodes = list((plain.get("analyzer") or {}).values())
    out["analyzer"] = {}
    for analyzer, node in zip(analyzers, nodes, strict=True):
        params = dataclasses.asdict(analyzer.params)
        out["analyzer"][analyzer.name] = {"_target_": str((node or {}).get("_target_")), **params}
    return out


def key_params(cfg: Any, analyzers: Sequence[Any]) -> dict[str, str]:
    """The few params that matter to compare runs (see the module docstring)."""
    full = full_config(cfg, analyzers)
    run = dict(full.get("run") or {})
    tags = dict(run.pop("tags", None) or {})
    params = {"run.run_name": str(run.get("run_name"))}
    params.update(flatten(tags, "run.tags."))
    for analyzer in analyzers:
        prefix = f"analyzer.{analyzer.name}."
        node = dict(full["analyzer"][analyzer.name])
        target = str(node.pop("_target_"))
        if not target.startswith(f"trackdiag.analyzers.{analyzer.name}."):  # a user's own analyzer class
            params[prefix + "_target_"] = target
        params[prefix + "schedule"] = schedule_text(node.pop("schedule", {}) or {})
        defaults = dataclasses.asdict(type(analyzer.params)())
        changed = {k: v for k, v in node.items() if defaults.get(k) != v}
        params.update(flatten(changed, prefix))
    return params


def schedule_text(schedule: dict[str, Any]) -> str:
    """A schedule in one short string: ``"every=10"``, ``"log per_decade=10 start=100"``…"""
    from .schedule import Schedule

    default = dataclasses.asdict(Schedule())
    kind = str(schedule.get("kind", default.get("kind", "")))
    every = schedule.get("every")
    parts = [kind if kind != "every" else "every step" if every == 1 else f"every {every} steps"]
    for key, value in schedule.items():
        if key in ("kind", "every") and kind == "every" or key == "kind":
            continue
        if value != default.get(key):
            parts.append(f"{key}={value}")
    return " ".join(parts)


def write_config(cfg: Any, analyzers: Sequence[Any], out_dir: Path, *, run_name: str | None = None) -> Path:
    """Write ``config.yaml`` into a new folder under ``out_dir/configs/``; returns that folder."""
    import yaml  # type: ignore[import-untyped]

    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(out_dir) / "configs" / f"{run_name or 'run'}-{stamp}-{os.getpid()}".replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(full_config(cfg, analyzers), sort_keys=False, allow_unicode=True)
    (folder / "config.yaml").write_text(text, encoding="utf-8")
    return folder
