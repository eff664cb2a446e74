"""TensorBoard backend: a new ``SummaryWriter`` or the user's own, plus a ready ``custom_scalars`` dashboard.

* Scalars: ``add_scalar`` per key at the record's step and wall time.
* Figures: ``add_image`` (HWC uint8) with their step. TensorBoard *shows* only 10 images per tag by default
  (it keeps everything on disk); start it with ``--samples_per_plugin images=1000`` to see every step.
* Tables and texts: ``add_text`` as a Markdown table per call (TensorBoard's text tab renders it).
* Config: one Markdown table under ``trackdiag/config`` (text, step 0).
* Report folders: copied to ``<log_dir>/artifacts/<name>/`` (TensorBoard has no artifact store), with a text
  entry pointing at them.
* Dashboard: a ``custom_scalars`` layout with one category per analyzer (``trackdiag/<analyzer>``) and one
  chart per metric, rewritten when new metrics appear (TensorBoard shows the latest layout). With the user's
  own writer, ``custom_scalars: false`` leaves the user's own layout alone.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import BackendError, MissingDependencyError
from .base import Backend, BackendParams
from .local import safe_relpath

__all__ = ["TensorboardBackend", "TensorboardParams", "markdown_table", "custom_scalars_layout"]


@dataclass
class TensorboardParams(BackendParams):
    #: The run folder; empty = ``<out_dir>/tensorboard/<run_name or time stamp>``. Unused with your writer.
    log_dir: str = ""
    flush_secs: int = 10
    max_queue: int = 10
    #: Write the custom_scalars layout (a dashboard grouping the diagnostics).
    custom_scalars: bool = True
    #: Seconds between attempts after a failure (the spool keeps everything).
    retry_s: float = 5.0


class TensorboardBackend(Backend):
    name = "tensorboard"
    Params = TensorboardParams
    params: TensorboardParams

    def __init__(self, params: Optional[TensorboardParams] = None, *, writer: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (needs the tensorboard package)
        except ImportError:
            raise MissingDependencyError("tensorboard", extra="tensorboard",
                                         purpose="the tensorboard backend") from None
        self.writer: Any = writer
        self._owns_writer = writer is None
        if writer is not None:
            self.log_dir = Path(writer.log_dir)
        elif self.params.log_dir:
            self.log_dir = Path(self.params.log_dir)
        else:
            name = self.run.run_name or time.strftime("run-%Y%m%d-%H%M%S")
            self.log_dir = Path(self.run.out_dir) / "tensorboard" / safe_relpath(name)
        self._keys: set[str] = set()
        self._params: dict[str, str] = {}
        self._findings: Optional[Mapping[str, Any]] = None

    # -- lifecycle ------------------------------------------------------------------------------------
    def open(self) -> None:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=self.params.flush_secs,
                                        max_queue=self.params.max_queue)
            self._owns_writer = True
        if self.run.tags:
            self.writer.add_text("trackdiag/tags", markdown_table(
                [{"tag": k, "value": v} for k, v in sorted(self.run.tags.items())]), 0)

    def close(self, status: str = "FINISHED") -> None:
        if self.writer is None:
            return
        self.writer.add_text("trackdiag/status", status, 0)
        if self._findings is not None:
            self._write_hparams(self._findings)
        if self._owns_writer:
            self.writer.close()
            self.writer = None
        else:
            self.writer.flush()

    def release(self) -> None:
        if self.writer is not None and self._owns_writer:
            self.writer.close()
            self.writer = None

    def resume_params(self) -> dict[str, Any]:
        return {**asdict(self.params), "log_dir": str(self.log_dir)}

    # -- data -----------------------------------------------------------------------------------------
    def _require(self) -> Any:
        if self.writer is None:
            raise BackendError("tensorboard backend is not open")
        return self.writer

    def log_metrics(self, metrics: Mapping[str, float], step: int, *, timestamp_ms: int) -> None:
        writer = self._require()
        walltime = timestamp_ms / 1000.0
        for key, value in metrics.items():
            writer.add_scalar(key, float(value), int(step), walltime=walltime)
        new = set(metrics) - self._keys
        if new:
            self._keys |= new
            if self.params.custom_scalars:
                writer.add_custom_scalars(custom_scalars_layout(sorted(self._keys)))
        writer.flush()

    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        self._require().add_image(key, np.ascontiguousarray(image), int(step), dataformats="HWC")

    def log_table(self, key: str, rows: Sequence[Mapping[str, Any]], step: int) -> None:
        if rows:
            self._require().add_text(key, markdown_table(rows), int(step))

    def log_artifacts(self, local_dir: Path, name: str) -> None:
        writer = self._require()
        dest = self.log_dir / "artifacts" / safe_relpath(name)
        shutil.copytree(local_dir, dest, dirs_exist_ok=True)
        files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
        writer.add_text(f"trackdiag/artifacts/{safe_relpath(name).as_posix()}",
                        f"Copied to `{dest}`:\n\n" + "\n".join(f"* `{f}`" for f in files), 0)

    def publish_findings(self, findings: Mapping[str, Any], step: int) -> None:
        """The findings as Markdown text (tag ``findings``, listed first) at each analysis step; at close, an
        HParams
        entry (the run's key params, verdict and causes against its key metrics) to compare runs."""
        self._require().add_text("findings", str(findings.get("markdown", "")), int(step))
        self._findings = dict(findings)

    def _write_hparams(self, findings: Mapping[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams

        writer = self._require()
        level = {"none": 0.0, "info": 0.0, "warn": 1.0, "bad": 2.0}.get(str(findings.get("verdict")), 0.0)
        writer.add_scalar("trackdiag/verdict_level", level, int(findings.get("step") or 0))
        hp: dict[str, Any] = {k: v for k, v in self._params.items()
                              if k.startswith(("run.run_name", "run.tags.")) or k.endswith(".schedule")}
        hp["trackdiag.verdict"] = str(findings.get("verdict", "none"))
        hp["trackdiag.causes"] = ",".join(findings.get("causes", [])) or "-"
        metrics = {"trackdiag/verdict_level": level}
        metrics.update({k: 0.0 for k in sorted(key_metric_tags(self._keys))})
        for f in findings.get("findings", []):  # and the numbers behind each finding
            for key in f.get("evidence", {}):
                tag = f"trackdiag/{f.get('analyzer')}/{key}"
                if tag in self._keys:
                    metrics.setdefault(tag, 0.0)
        exp, ssi, sei = hparams({k: str(v) for k, v in hp.items()}, metrics)
        file_writer = writer._get_file_writer()
        for summary in (exp, ssi, sei):
            file_writer.add_summary(summary)
        writer.flush()

    def log_params(self, params: Mapping[str, str]) -> None:
        self._params.update({k: str(v) for k, v in params.items()})
        self._require().add_text("trackdiag/config", markdown_table(
            [{"param": k, "value": v} for k, v in sorted(params.items())]), 0)

    def location(self) -> str:
        from ..core.findings import shell_command

        here = self.log_dir.resolve()
        command = shell_command("tensorboard", "--logdir", str(here.parent), "--samples_per_plugin",
                                "images=1000",
                                module="tensorboard.main")
        return f"{here} (open it: {command})"


def key_metric_tags(keys: Iterable[str]) -> list[str]:
    """The logged ``trackdiag/<analyzer>/<key>`` tags whose metric has verdict limits (metricspec)."""
    from ..metricspec import spec

    out = []
    for tag in keys:
        parts = tag.split("/")
        if len(parts) == 3 and parts[0] == "trackdiag" and parts[2] != "verdict":
            s = spec(parts[1], parts[2])
            if s is not None and (s.warn is not None or s.bad is not None):
                out.append(tag)
    return out


def _md_cell(value: Any) -> str:
    text = "" if value is None else (f"{value:.6g}" if isinstance(value, float) else str(value))
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as a Markdown table (columns in order of first appearance; missing cells empty)."""
    columns = list(dict.fromkeys(col for row in rows for col in row))
    lines = ["| " + " | ".join(_md_cell(c) for c in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_md_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def custom_scalars_layout(keys: Sequence[str]) -> dict[str, dict[str, list[Any]]]:
    """``add_custom_scalars`` layout: one category per key prefix (``trackdiag/<analyzer>``), a chart per key.

    >>> layout = custom_scalars_layout(["trackdiag/tiling/E2f_over_Ef", "loss"])
    >>> layout["trackdiag/tiling"]
    {'E2f_over_Ef': ['Multiline', ['^trackdiag/tiling/E2f_over_Ef$']]}
    >>> layout["scalars"]
    {'loss': ['Multiline', ['^loss$']]}
    """
    layout: dict[str, dict[str, list[Any]]] = {}
    for key in sorted(keys):
        category, _, title = key.rpartition("/")
        layout.setdefault(category or "scalars", {})[title] = ["Multiline", [f"^{re.escape(key)}$"]]
    return dict(sorted(layout.items()))
