"""Publishing a comparison to the trackers, through the same backends a training session uses.

Each target backend opens a new run named ``publish.run_name`` (default ``comparison``), tagged
``trackdiag.kind=comparison`` so that later comparisons skip it, and receives: the flattened comparison
config as params; the best row's values as metrics (``trackdiag/compare/best/<metric>``); the table
through ``log_table`` (an MLflow table artifact ``tables/trackdiag/compare/comparison.json``, a
``wandb.Table`` on W&B); the trend plots through ``log_image``; and the report folder as the artifact
``comparison``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..backends.base import RunInfo
from ..config import build_component, config_dir, resolve
from ..errors import BackendError, ConfigError
from .outputs import flat_rows
from .sources import COMPARISON_TAG
from .table import Comparison

__all__ = ["publish", "targets"]

TABLE_KEY = "trackdiag/compare/comparison"
ARTIFACT = "comparison"


def _available() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "backend").glob("*.yaml"))


def targets(publish: Any, *, source: str) -> tuple[list[str], list[str]]:
    """The backends to publish to, and notes. ``publish``: ``auto`` (the tracker the runs came from;
    MLflow in samples mode), ``none``, a name or a list of names."""
    if publish is None:
        return [], []
    names = [publish] if isinstance(publish, str) else [str(p) for p in publish]
    if names in (["none"], [""], []):
        return [], []
    available = _available()
    out, notes = [], []
    for name in names:
        if name == "auto":
            pick = "mlflow" if source == "samples" else source
            if pick in available:
                out.append(pick)
            else:
                notes.append(f"publish=auto: trackdiag has no {pick} backend here; the comparison went only "
                             "to the report folder.")
        elif name in available:
            out.append(name)
        else:
            raise ConfigError(f"publish: unknown tracker {name!r}; available: {available} (or auto / none).")
    return list(dict.fromkeys(out)), notes


def publish(c: Comparison, names: Sequence[str], *, out_dir: Path, images: Mapping[str, np.ndarray],
            params: Mapping[str, str], experiment: str, run_name: str, tracking_uri: Optional[str] = None,
            local_root: Optional[Path] = None, log_images: bool = True,
            backend_overrides: Sequence[str] = ()) -> dict[str, str]:
    """Write ``c`` to each backend in ``names``. Returns backend name → where to look.

    ``backend_overrides`` are trackdiag config overrides for the backends (``backend.wandb.entity=me``).

    Raises :class:`BackendError` naming the tracker that failed (the report folder is already written).
    """
    if not names:
        return {}
    overrides = ["analyzer=[]", f"backend=[{','.join(names)}]", *backend_overrides]
    shortcuts = {"tracking_uri": tracking_uri} if tracking_uri and "mlflow" in names else {}
    cfg = resolve(overrides=overrides, shortcuts=shortcuts)
    order = np.argsort(c.rank, kind="stable")
    top = int(order[0])
    ids = ",".join(dict.fromkeys(c.run_id))
    tags = {COMPARISON_TAG[0]: COMPARISON_TAG[1], "trackdiag.compare.best": c.row_label(top),
            "trackdiag.compare.runs": ids if len(ids) <= 4000 else ids[:3990] + " …"}
    run = RunInfo(experiment=experiment, run_name=run_name, tags=tags,
                  out_dir=local_root if local_root is not None else Path(cfg.out_dir))
    best = {f"trackdiag/compare/best/{s.label}": float(c.values[top, j]) for j, s in enumerate(c.specs)
            if np.isfinite(c.values[top, j])}
    rows = flat_rows(c)
    where = {}
    for name in names:
        if name == "mlflow":
            _retire_previous(tracking_uri or str(cfg.backend.mlflow.get("tracking_uri") or ""), experiment,
                             run_name)
        backend = build_component(cfg.backend[name], allow_external=False, what=f"publish {name}",
                                  extra={"run": run})
        try:
            backend.open()
        except Exception as exc:
            raise BackendError(f"publishing to {name} failed while opening the run ({type(exc).__name__}: "
                               f"{exc}). The report folder {out_dir} is complete.") from exc
        status = "FAILED"
        try:
            backend.log_params(dict(params))
            if best:
                backend.log_metrics(best, 0, timestamp_ms=int(time.time() * 1000))
            backend.log_table(TABLE_KEY, rows, 0)
            if log_images:
                for label, rgb in images.items():
                    backend.log_image(f"trackdiag/compare/trend/{label}", rgb, 0)
            backend.log_artifacts(Path(out_dir), ARTIFACT)
            status = "FINISHED"
        except Exception as exc:
            raise BackendError(f"publishing to {name} failed ({type(exc).__name__}: {exc}). The report "
                               f"folder {out_dir} is complete.") from exc
        finally:
            backend.close(status)
        where[name] = backend.location()
    return where


def _retire_previous(tracking_uri: str, experiment: str, run_name: str) -> int:
    """A rerun replaces the comparison: earlier comparison runs of the same name in ``experiment`` are
    deleted (MLflow's soft delete: gone from the UI and from searches). Returns how many."""
    if not tracking_uri:
        return 0
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return 0
    old = client.search_runs([exp.experiment_id],
                             f"tags.`{COMPARISON_TAG[0]}` = '{COMPARISON_TAG[1]}'", max_results=1000)
    gone = 0
    for run in old:
        if run.info.run_name == run_name:
            client.delete_run(run.info.run_id)
            gone += 1
    return gone
