"""Weights & Biases backend: a run of its own, or the user's ``wandb.run``; one shared step axis.

* The run: ``run_id`` (resumed), else ``wandb.run`` when the user's code already called ``wandb.init()``
  (``attach``), else a new run (``project`` defaults to the experiment name, ``name`` to the run name).
  Only a run this backend started is finished at ``close``.
* The step: every row carries ``step_metric`` (default ``trackdiag/step``) = the trainer's step given to
  ``trackdiag.log``, and ``define_metric`` makes it the x-axis of every ``trackdiag/*`` key (and of any other
  key this backend writes). Rows never pass ``step=`` to ``run.log``: W&B drops a row whose ``step=`` is lower
  than the run's current step, and our rows are written asynchronously, after the trainer has moved on.
  The trackdiag step itself never goes down (the session refuses that).
* Figures are ``wandb.Image``; tables are ``wandb.Table`` (``INCREMENTAL``: each call appends its rows);
  report folders are ``wandb.Artifact`` (type ``trackdiag-report``); the configuration is ``run.config``.
* ``mode="offline"`` (or ``WANDB_MODE=offline``) writes everything to the run folder; ``wandb sync`` uploads
  it later. :func:`trackdiag.io.logreaders.read_wandb_offline` reads such a folder back.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import BackendError, InputFileError, MissingDependencyError
from .base import Backend, BackendParams

__all__ = ["WandbBackend", "WandbParams"]

log = logging.getLogger("trackdiag")
_ARTIFACT_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")


@dataclass
class WandbParams(BackendParams):
    #: W&B project; empty = the run's experiment name.
    project: str = ""
    entity: Optional[str] = None
    #: "online" | "offline" | "disabled"; None = W&B's own default (``WANDB_MODE``, then online).
    mode: Optional[str] = None
    #: Parent folder of W&B's ``wandb/`` run folders; empty = W&B's default (``WANDB_DIR`` or the cwd).
    dir: str = ""
    group: Optional[str] = None
    job_type: Optional[str] = None
    #: Resume this run id instead of starting a run.
    run_id: Optional[str] = None
    #: Write into ``wandb.run`` when the user's code already started one.
    attach: bool = True
    #: The x-axis of every key this backend writes: the trainer's step given to ``trackdiag.log``.
    step_metric: str = "trackdiag/step"
    #: Seconds between attempts to reach W&B again after a failure (the spool keeps everything).
    retry_s: float = 5.0
    #: Offline runs: how long ``close`` waits for wandb-core to finish writing the run folder.
    finish_wait_s: float = 30.0


class WandbBackend(Backend):
    name = "wandb"
    Params = WandbParams
    params: WandbParams

    def __init__(self, params: Optional[WandbParams] = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        try:
            import wandb
        except ImportError:
            raise MissingDependencyError("wandb", extra="wandb", purpose="the wandb backend") from None
        self.wb: Any = None
        self._owns_run = False
        self._defined: set[str] = set()
        self._tables: dict[str, Any] = {}
        self._closed = False
        # wandb.run belongs to the thread-independent global state, but look now (init time) like MLflow does.
        self._user_run = wandb.run if self.params.attach and self.params.run_id is None else None
        # The id of the run this backend creates is chosen now, so the spool names it before it exists
        # (``trackdiag.sync`` then resumes that run even when the process died right after creating it).
        self._new_id: str = self.params.run_id or (self._user_run.id if self._user_run is not None
                                                   else uuid.uuid4().hex[:12])

    # -- lifecycle ------------------------------------------------------------------------------------
    def open(self) -> None:
        import wandb

        run = self._user_run if self._user_run is not None else (
            wandb.run if self.params.attach and self.params.run_id is None else None)
        if run is not None:
            self.wb = run
        else:
            self._closed = False
            kwargs: dict[str, Any] = dict(
                project=self.params.project or self.run.experiment, entity=self.params.entity,
                name=self.run.run_name, group=self.params.group, job_type=self.params.job_type,
                mode=self.params.mode,
                tags=[t for t in self.run.tags.get("trackdiag.analyzers", "").split(",") if t],
                reinit="create_new")
            if self.params.dir:
                Path(self.params.dir).mkdir(parents=True, exist_ok=True)
                kwargs["dir"] = self.params.dir
            kwargs.update(id=self._new_id, resume="allow")
            self.wb = wandb.init(**kwargs)
            self._owns_run = True
        self._define(self.params.step_metric, axis=True)
        self.wb.define_metric("trackdiag/*", step_metric=self.params.step_metric)
        self._defined.add("trackdiag/*")
        if self.run.tags:
            self.wb.config.update({f"tags.{k}": v for k, v in self.run.tags.items()}, allow_val_change=True)

    def close(self, status: str = "FINISHED") -> None:
        if self.wb is not None and self._owns_run:
            self.wb.finish(exit_code=0 if status == "FINISHED" else 1)
            self._owns_run = False
            self._wait_for_run_file()
        self._closed = True  # the run object stays: location() still tells where it is

    def _wait_for_run_file(self) -> None:
        """Offline: return only once the run folder is complete, so it can be read or synced right away.

        ``finish()`` returns before wandb-core has flushed the record log (seen under load in CI).
        """
        settings = getattr(self.wb, "settings", None)
        offline = getattr(self.wb, "offline", None)
        if offline is None:
            offline = bool(getattr(settings, "_offline", False))
        sync_file = getattr(settings, "sync_file", None)
        if not offline or not sync_file:
            return
        from ..io.logreaders import wait_for_wandb_run

        try:
            run = wait_for_wandb_run(sync_file, timeout_s=self.params.finish_wait_s)
        except InputFileError as exc:
            log.warning("W&B run file %s is not readable after finish: %s", sync_file, exc)
            return
        if run.exit_code is None:
            log.warning("W&B had not finished writing %s after %.0f s; it may still be flushing.",
                        sync_file, self.params.finish_wait_s)

    def release(self) -> None:
        """Finish a run this backend resumed, without marking it failed (used by ``trackdiag.sync``)."""
        self.close("FINISHED")

    def resume_params(self) -> dict[str, Any]:
        settings = getattr(self.wb, "settings", None) if self.wb is not None else None
        run_dir = getattr(settings, "root_dir", None)
        return {**asdict(self.params), "run_id": getattr(self.wb, "id", None) or self._new_id,
                "attach": False, "dir": self.params.dir or (str(run_dir) if run_dir else "")}

    def is_transient(self, exc: BaseException) -> bool:
        return super().is_transient(exc) or type(exc).__name__ in ("CommError", "ServiceStartTimeoutError")

    # -- data -----------------------------------------------------------------------------------------
    def _require(self) -> Any:
        if self.wb is None or self._closed:
            raise BackendError("wandb backend is not open")
        return self.wb

    def _define(self, key: str, *, axis: bool = False) -> None:
        """Plot ``key`` against the step metric (keys under ``trackdiag/`` are covered by one glob)."""
        if key in self._defined or (not axis and key.startswith("trackdiag/")):
            return
        if axis:
            self.wb.define_metric(key)
        else:
            self.wb.define_metric(key, step_metric=self.params.step_metric)
        self._defined.add(key)

    def _log(self, step: int, data: Mapping[str, Any]) -> None:
        run = self._require()
        for key in data:
            self._define(key)
        run.log({self.params.step_metric: int(step), **data})

    def log_metrics(self, metrics: Mapping[str, float], step: int, *, timestamp_ms: int) -> None:
        self._log(step, {k: float(v) for k, v in metrics.items()})

    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        import wandb

        self._log(step, {key: wandb.Image(np.ascontiguousarray(image), caption=f"{key} @ step {int(step)}")})

    def log_table(self, key: str, rows: Sequence[Mapping[str, Any]], step: int) -> None:
        import wandb

        if not rows:
            return
        columns = list(dict.fromkeys(col for row in rows for col in row))
        table = self._tables.get(key)
        if table is None or any(c not in table.columns for c in columns):
            if table is not None:
                columns = list(dict.fromkeys([*table.columns, *columns]))
            table = _new_table(wandb, columns)
            self._tables[key] = table
        for row in rows:
            table.add_data(*[row.get(c) for c in table.columns])
        if getattr(table, "log_mode", None) != "INCREMENTAL":  # wandb < 0.19: log a fresh copy every time
            logged = _new_table(wandb, list(table.columns))
            for data in table.data:
                logged.add_data(*data)
            self._log(step, {key: logged})
            return
        self._log(step, {key: table})

    def log_artifacts(self, local_dir: Path, name: str) -> None:
        import wandb

        run = self._require()
        safe = _ARTIFACT_NAME.sub("-", name).strip("-") or "report"
        artifact = wandb.Artifact(safe, type="trackdiag-report")
        artifact.add_dir(str(local_dir))
        run.log_artifact(artifact)

    def log_params(self, params: Mapping[str, str]) -> None:
        self._require().config.update(dict(params), allow_val_change=True)

    def publish_findings(self, findings: Mapping[str, Any], step: int) -> None:
        """The verdict in the run summary (``trackdiag/verdict``, ``trackdiag/causes``,
        ``trackdiag/findings``) and the findings' Markdown as the run's notes."""
        run = self._require()
        run.summary["trackdiag/verdict"] = str(findings.get("verdict", "none"))
        run.summary["trackdiag/causes"] = ",".join(findings.get("causes", [])) or "-"
        run.summary["trackdiag/findings"] = str(findings.get("text", ""))
        run.summary["trackdiag/verdict_step"] = int(step)
        try:
            run.notes = str(findings.get("markdown", ""))
        except Exception:
            pass

    def location(self) -> str:
        if self.wb is None:
            return "wandb (not started)"
        url = getattr(self.wb, "url", None)
        if url:
            return str(url)
        run_dir = Path(self.wb.dir).parent if getattr(self.wb, "dir", None) else None
        if run_dir is None:
            return "wandb (offline)"
        from ..core.findings import shell_command

        upload = shell_command('wandb', 'sync', str(run_dir), module='wandb')
        return f"{run_dir} (offline; upload with: {upload})"


def _new_table(wandb: Any, columns: list[str]) -> Any:
    """An appendable table (``INCREMENTAL``) where this wandb supports it, else a plain one."""
    try:
        return wandb.Table(columns=columns, allow_mixed_types=True, log_mode="INCREMENTAL")
    except TypeError:  # pragma: no cover - wandb < 0.19
        return wandb.Table(columns=columns, allow_mixed_types=True)
