"""Run state: schedules, step checks, rank awareness, the one device→host transfer, dispatch to the worker."""

from __future__ import annotations

import atexit
import dataclasses
import logging
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ._version import __version__
from .analyzers.base import Analyzer, Result, StepInputs
from .backends.base import Backend, RunInfo
from .budget import PixelBudget
from .checks import as_float_tensor, check_image_batch, check_same_hw, normalize_mask, normalize_ref
from .config import build_component, flatten, resolve
from .errors import MaskError, ShapeError, StepOrderError, TrackdiagError
from .policy import ErrorPolicy
from .threads import intra_op_threads
from .transfer import gather_ranks, rank_and_world, to_host
from .values import metric_key, split_values, table_rows
from .worker import Record, Worker

__all__ = ["Session", "FinishSummary"]

log = logging.getLogger("trackdiag")


@dataclass
class FinishSummary:
    """What ``finish()`` reports: everything that was skipped, dropped or not delivered, and where to look."""

    steps_logged: int
    skipped: dict[str, int] = field(default_factory=dict)
    dropped_media: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    undelivered: int = 0
    replayed: dict[str, int] = field(default_factory=dict)
    spool: Optional[str] = None
    locations: dict[str, str] = field(default_factory=dict)
    flushed: bool = True

    @property
    def clean(self) -> bool:
        """Nothing skipped, dropped or left undelivered (failed calls that were replayed later are fine)."""
        return not (self.skipped or self.dropped_media or self.undelivered) and self.flushed

    def __str__(self) -> str:
        lines = [f"trackdiag: {self.steps_logged} steps logged"]
        lines += [f"  {name}: {where}" for name, where in self.locations.items()]
        if self.skipped:
            lines.append(f"  skipped: {dict(self.skipped)}")
        if self.dropped_media:
            lines.append(f"  figures/tables dropped (queue full): {self.dropped_media}")
        if self.failed:
            lines.append(f"  failed deliveries: {dict(self.failed)} last errors: {self.errors}")
        if self.replayed:
            lines.append(f"  delivered later from the spool: {dict(self.replayed)}")
        if self.undelivered:
            lines.append(f"  undelivered, kept in spool {self.spool}: {self.undelivered} items "
                         f"(replay: python -m trackdiag.sync {self.spool})")
        if not self.flushed:
            lines.append("  the queue did not drain before the flush timeout")
        return "\n".join(lines)


class Session:
    """One diagnostics run. Use through ``trackdiag.init`` / ``log`` / ``finish`` or as a context manager.

    Args:
        config: a user's config node (DictConfig/mapping) following ``conf/config.yaml``; None for defaults.
        overrides: Hydra override strings, e.g. ``["backend=[mlflow,local]", "analyzer.tiling.schedule.every=10"]``.
        writer: a user's own ``torch.utils.tensorboard.SummaryWriter`` for the tensorboard backend.
        **options: shortcuts ``backend``, ``tracking_uri``, ``run_id``, ``experiment``, ``run_name``,
            ``out_dir``, ``on_error``, ``allow_external_targets``.
    """

    def __init__(self, config: Any = None, *, overrides: Sequence[str] = (), writer: Any = None,
                 **options: Any) -> None:
        self.cfg = resolve(config, overrides, options)
        self.policy = ErrorPolicy(self.cfg.on_error)
        self.rank, self.world = rank_and_world()
        self.out_dir = Path(self.cfg.out_dir)
        allow = bool(self.cfg.allow_external_targets)
        self.analyzers: list[Analyzer] = [
            build_component(node, allow_external=allow, what=f"analyzer.{name}")
            for name, node in self.cfg.analyzer.items()
        ]
        run = RunInfo(experiment=self.cfg.run.experiment, run_name=self.cfg.run.run_name,
                      tags={"trackdiag.version": __version__,
                            "trackdiag.analyzers": ",".join(a.name for a in self.analyzers),
                            **dict(self.cfg.run.tags)},
                      out_dir=self.out_dir)
        backends: list[Backend] = []
        if self.rank == 0:  # one run per job: only rank 0 writes
            for name, node in self.cfg.backend.items():
                extra: dict[str, Any] = {"run": run}
                if writer is not None and name == "tensorboard":
                    extra["writer"] = writer
                backends.append(build_component(node, allow_external=allow, what=f"backend.{name}", extra=extra))
        w = self.cfg.worker
        self.worker = Worker(backends, queue_size=w.queue_size, when_full=w.when_full,
                             block_timeout_s=w.block_timeout_s, spool=_make_spool(self, backends))
        self._budget = PixelBudget.from_config(self.cfg.get("budget"), report=lambda m, s: self.log_scalars(
            m, s, prefix="trackdiag/budget/"))
        self._last_step: Optional[int] = None
        self._steps_logged = 0
        self._finished: Optional[FinishSummary] = None
        if self.rank == 0 and backends:
            self.worker.submit(Record(step=0, params=self._run_params()))
        atexit.register(self._atexit)

    # -- public API ----------------------------------------------------------------------------------
    @property
    def backends(self) -> list[Backend]:
        return self.worker.backends

    def log(self, step: int, pred: Any = None, mask: Any = None, *, ref: Any = None, target: Any = None,
            latents: Any = None, loss: Any = None, timesteps: Any = None,
            sample_ids: Optional[Sequence[Any]] = None) -> None:
        """Run the analyzers that are due at ``step`` and queue their results for the backends.

        Shapes: ``pred`` B×C×H×W in [0, 1]; ``mask`` B×1×H×W, 1×H×W or H×W (> 0.5 = wall); ``ref``
        C×h×w reference texture; ``target`` B×C×H×W image the prediction is compared with (pixel
        diagnostics); ``latents`` ``{"in": B×C×h×w, "out": B×C×h×w}`` (or one tensor); ``loss`` a scalar or
        ``(B,)`` per-sample losses; ``timesteps`` ``(B,)``; ``sample_ids`` B ids.

        With ``on_error="warn"`` nothing raises: a bad call is skipped, warned about once per kind and
        counted in ``finish()``. Only the tensor math that is due runs here, plus one device→host copy.
        """
        self._check_open()
        inputs: Optional[StepInputs] = None
        try:
            step = self._check_step(step)
            inputs = self._validate(step, pred, mask, ref, target, latents, loss, timesteps, sample_ids)
        except TrackdiagError as exc:
            if self.world == 1 or not isinstance(step, int):
                self.policy.handle(exc, what=f"log(step={step!r})")
                return
            # Under torch.distributed every rank must join the gather at this step, even with bad inputs.
            self.policy.handle(exc, what=f"log(step={step!r}) on rank {self.rank}")
        due = [a for a in self.analyzers if a.due(inputs)] if inputs is not None else []
        if inputs is not None:
            self._last_step = step
            self._steps_logged += 1
        if self.world > 1 and not any(a.params.schedule.due(step) for a in self.analyzers):
            return
        if self.world == 1 and not due:
            return
        outputs: dict[str, dict[str, torch.Tensor]] = {}
        with torch.no_grad(), intra_op_threads(self.cfg.budget.intra_op_threads):
            for analyzer in due:
                try:
                    outputs[analyzer.name] = analyzer.compute(inputs)
                except Exception as exc:  # a diagnostic never kills the run under "warn"
                    self.policy.handle(exc, kind=f"{analyzer.name}:{type(exc).__name__}",
                                       what=f"analyzer {analyzer.name} at step {step}")
        host = to_host(outputs)
        ids = [str(s) for s in inputs.sample_ids] if inputs.sample_ids is not None else None
        if self.world > 1:
            host, ids = gather_ranks(host, ids)
            if self.rank != 0:
                return
        self._dispatch(step, [a for a in due if a.name in host], host, ids)

    def log_scalars(self, values: Mapping[str, Any], step: int, *, prefix: str = "") -> None:
        """Send plain scalars (e.g. the trainer's own loss) through the same worker and backends."""
        self._check_open()
        metrics, texts = split_values({f"{prefix}{k}": v for k, v in values.items()})
        tables = {f"{prefix}texts": [{"step": step, **texts}]} if texts else {}
        if self.rank == 0:
            self.worker.submit(Record(step=int(step), metrics=metrics, tables=tables))

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Send run parameters (e.g. the trainer's own hyper-parameters) to every backend."""
        self._check_open()
        if self.rank == 0:
            self.worker.submit(Record(step=int(self._last_step or 0), params={str(k): str(v)
                                                                            for k, v in params.items()}))

    def log_artifacts(self, local_dir: str | Path, name: str, *, step: Optional[int] = None) -> None:
        """Upload a folder (for example a report written by ``trackdiag.diagnose``) to every backend."""
        self._check_open()
        if self.rank == 0:
            self.worker.submit(Record(step=int(step or self._last_step or 0),
                                      artifacts=(Path(local_dir), name)))

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until the worker delivered everything queued so far."""
        return self.worker.flush(timeout)

    def finish(self, status: str = "FINISHED") -> FinishSummary:
        """Flush the queue, close the backends and report what was skipped, dropped or undelivered."""
        if self._finished is not None:
            return self._finished
        flushed = self.worker.close(status, timeout=self.cfg.worker.flush_timeout_s)
        stats = self.worker.stats
        skipped = dict(self.policy.skipped)
        skipped.update({k: v for k, v in stats.skipped.items()})
        spool = self.worker.spool_path
        summary = FinishSummary(
            steps_logged=self._steps_logged, skipped=skipped, dropped_media=stats.dropped_media,
            failed=dict(stats.failed), errors=dict(stats.errors),
            undelivered=self.worker.undelivered(), replayed=dict(stats.replayed),
            spool=str(spool) if spool else None,
            locations={b.name: b.location() for b in self.backends}, flushed=flushed)
        self._finished = summary
        atexit.unregister(self._atexit)
        if _current_session() is self:
            _set_current(None)
        if not summary.clean:
            log.warning("%s", summary)
        return summary

    def state_dict(self) -> dict[str, Any]:
        """Analyzer state and the last step, to store next to a training checkpoint."""
        return {"last_step": self._last_step, "analyzers": {a.name: a.state_dict() for a in self.analyzers}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._last_step = state.get("last_step")
        by_name = {a.name: a for a in self.analyzers}
        for name, sub in state.get("analyzers", {}).items():
            if name in by_name:
                by_name[name].load_state_dict(sub)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.finish("FAILED" if exc_type is not None else "FINISHED")

    # -- internals -------------------------------------------------------------------------------------
    def _run_params(self) -> dict[str, str]:
        """The flattened configuration, with every analyzer's *validated* parameters (defaults included)."""
        params = flatten({k: v for k, v in self.cfg.items() if k != "analyzer"})
        for analyzer, node in zip(self.analyzers, self.cfg.analyzer.values()):
            prefix = f"analyzer.{analyzer.name}."
            params[prefix + "_target_"] = str(node.get("_target_"))
            params.update(flatten(dataclasses.asdict(analyzer.params), prefix))
        return params

    def _check_open(self) -> None:
        if self._finished is not None:
            from .errors import NotInitializedError

            raise NotInitializedError("this trackdiag session has finished; call trackdiag.init() again.")

    def _atexit(self) -> None:
        try:
            self.finish("FINISHED")
        except Exception:  # pragma: no cover - never fail interpreter exit
            log.exception("trackdiag: finish at exit failed")

    def _check_step(self, step: Any) -> int:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise StepOrderError(f"step must be an int; got {type(step).__name__} {step!r}.")
        step = int(step)
        if step < 0:
            raise StepOrderError(f"step must be >= 0; got {step}.")
        if self._last_step is not None and step < self._last_step:
            raise StepOrderError(f"step went down: {step} after {self._last_step}. Steps never go down; "
                                 "pass the trainer's global step.")
        return step

    def _validate(self, step: int, pred: Any, mask: Any, ref: Any, target: Any, latents: Any, loss: Any,
                  timesteps: Any, sample_ids: Any) -> StepInputs:
        inputs = StepInputs(step=step)
        batch: Optional[int] = None
        if pred is not None:
            inputs.pred = check_image_batch(pred, name="pred").detach()
            b, c, h, w = inputs.pred.shape
            batch = b
            if mask is not None:
                m = normalize_mask(mask, batch=b, height=h, width=w).to(inputs.pred.device)
                empty = ~m.flatten(1).any(dim=1)
                if bool(empty.any()):
                    idx = [int(i) for i in torch.nonzero(empty).flatten().tolist()]
                    raise MaskError(f"mask is empty (no pixel > 0.5) for sample(s) {idx}; pass mask=None to "
                                    "analyse the whole image.")
                inputs.mask = m
            if ref is not None:
                inputs.ref = normalize_ref(ref, channels=c).detach().to(inputs.pred.device)
            if target is not None:
                t = check_image_batch(target, name="target").detach().to(inputs.pred.device)
                check_same_hw(inputs.pred, t, names=("pred", "target"))
                inputs.target = t
        elif any(v is not None for v in (mask, ref, target)):
            raise ShapeError("mask, ref and target need pred (B×C×H×W); pred is None.")
        if latents is not None:
            if isinstance(latents, torch.Tensor):
                latents = {"latent": latents}
            if not isinstance(latents, Mapping):
                raise ShapeError("latents must be a B×C×h×w tensor or a dict of them, e.g. "
                                 "{'in': z_t, 'out': unet_out}.")
            checked = {}
            for name, value in latents.items():
                checked[str(name)] = check_image_batch(value, name=f"latents[{name!r}]").detach()
            inputs.latents = checked
        if loss is not None:
            lt = as_float_tensor(torch.as_tensor(loss) if isinstance(loss, numbers.Real) else loss,
                                 name="loss").detach()
            if lt.ndim > 1:
                raise ShapeError(f"loss must be a scalar or per-sample (B,); got {tuple(lt.shape)}.")
            inputs.loss = lt
        if timesteps is not None:
            tt = torch.as_tensor(timesteps).detach()
            n = inputs.loss.numel() if inputs.loss is not None and inputs.loss.ndim == 1 else batch
            if tt.ndim != 1 or (n is not None and tt.numel() != n):
                raise ShapeError(f"timesteps must have shape ({n if n is not None else 'B'},); "
                                 f"got {tuple(tt.shape)}.")
            inputs.timesteps = tt
        if sample_ids is not None:
            ids = list(sample_ids)
            n = inputs.loss.numel() if inputs.loss is not None and inputs.loss.ndim == 1 else batch
            if n is not None and len(ids) != n:
                raise ShapeError(f"sample_ids must have {n} entries (one per sample); got {len(ids)}.")
            inputs.sample_ids = [str(s) for s in ids]
        return self._budget(inputs)

    def _dispatch(self, step: int, analyzers: list[Analyzer], host: Mapping[str, Mapping[str, np.ndarray]],
                  ids: Optional[list[str]]) -> None:
        record = Record(step=step)
        for analyzer in analyzers:
            try:
                result = analyzer.summarize(step, host[analyzer.name], sample_ids=ids)
            except Exception as exc:
                self.policy.handle(exc, kind=f"{analyzer.name}:{type(exc).__name__}",
                                   what=f"analyzer {analyzer.name} at step {step}")
                continue
            record.metrics.update({metric_key(analyzer.name, k): v for k, v in result.metrics.items()})
            if result.texts:
                record.tables[metric_key(analyzer.name, "texts")] = table_rows([{"step": step, **result.texts}])
            for name, rows in result.tables.items():
                if rows:
                    record.tables[metric_key(analyzer.name, name)] = table_rows(rows)
            if result.maps and analyzer.want_figures():
                record.figures.append(_renderer(analyzer, result))
        if record.metrics or record.tables or record.figures:
            self.worker.submit(record)


def _renderer(analyzer: Analyzer, result: Result) -> Any:
    def render() -> dict[str, np.ndarray]:
        return {metric_key(analyzer.name, k): v for k, v in analyzer.render(result).items()}

    return render


def _make_spool(session: Session, backends: list[Backend]) -> Any:
    """The spool for undelivered items (see :mod:`trackdiag.spool`), or None without backends."""
    if not backends:
        return None
    from .spool import Spool

    return Spool.for_run(session.out_dir)


# -- the module-level "current session" -----------------------------------------------------------------
_CURRENT: Optional[Session] = None


def _current_session() -> Optional[Session]:
    return _CURRENT


def _set_current(session: Optional[Session]) -> None:
    global _CURRENT
    _CURRENT = session
