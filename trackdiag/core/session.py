"""Run state: schedules, step checks, rank awareness, the one device→host transfer, dispatch to the worker."""

from __future__ import annotations

import logging
import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from .._version import __version__
from ..analyzers.base import Analyzer, StepInputs
from ..backends.base import Backend, RunInfo
from ..config import build_component, resolve
from ..errors import AnalyzerError, MaskError, ShapeError, StepOrderError, TrackdiagError
from ..plots.samples import SAMPLES
from .budget import PixelBudget
from .checks import (
    MIN_SIDE,
    as_float_tensor,
    check_image_batch,
    check_same_hw,
    check_sample_ids,
    check_scalar_key,
    check_timesteps,
    normalize_mask,
    normalize_ref,
)
from .flow import VerdictFlow
from .policy import ErrorPolicy
from .render import RenderJob
from .threads import intra_op_threads
from .transfer import exchange, merge_ranks, rank_and_world, strip_maps, to_host
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
    #: Of ``undelivered``: items that are not in the spool either (the disk refused them): lost for good.
    lost: int = 0
    #: Items a tracker refused for good (kept in the spool; ``trackdiag.sync`` retries them after a fix).
    refused: dict[str, int] = field(default_factory=dict)
    #: The status the run was finished with (``FINISHED`` / ``FAILED``).
    status: str = "FINISHED"
    #: Under torch.distributed: what happened to the other ranks (empty when every rank took part).
    ranks: str = ""
    #: Why the spool could not be written, when it could not.
    spool_error: str = ""
    #: Figures not drawn before finish()'s drawing budget ran out, kept in the spool for ``sync`` (in
    #: ``undelivered`` too).
    deferred: int = 0
    #: Figures drawn but not uploaded before finish()'s figure budget ran out (backend → count), kept in the
    #: spool as PNG files for ``sync`` (in ``undelivered`` too).
    held: dict[str, int] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        """Undelivered items that are safe in the spool (``python -m trackdiag.sync`` delivers them)."""
        return self.undelivered - self.lost
    #: The run's findings in words (cause, severity, since when, where to look); "" when none was judged.
    findings: str = ""
    #: The worst severity of the findings: ``none``, ``info``, ``warn`` or ``bad``.
    verdict: str = "none"

    @property
    def clean(self) -> bool:
        """Nothing skipped, dropped or left undelivered (failed calls that were replayed later are fine)."""
        return not (self.skipped or self.dropped_media or self.undelivered or self.ranks) and self.flushed

    def __str__(self) -> str:
        lines = [f"trackdiag: {self.steps_logged} steps logged"]
        if self.findings:
            lines.append(self.findings)
        lines += [f"  {name}: {where}" for name, where in self.locations.items()]
        if self.skipped:
            lines.append(f"  skipped: {dict(self.skipped)}")
        if self.dropped_media:
            lines.append(f"  figures/tables dropped (queue full, or not drawn before the flush timeout): "
                         f"{self.dropped_media}")
        if self.failed:
            lines.append(f"  failed deliveries: {dict(self.failed)} last errors: {self.errors}")
        if self.replayed:
            lines.append(f"  delivered later from the spool: {dict(self.replayed)}")
        if self.deferred:
            lines.append(f"  figures left to draw: {self.deferred} (their inputs are in the spool; "
                         "python -m trackdiag.sync draws and delivers them)")
        if self.held:
            lines.append(f"  figures drawn, not uploaded within finish()'s figure budget: {dict(self.held)} "
                         "(their PNG files are in the spool; python -m trackdiag.sync uploads them)")
        if self.refused:
            lines.append(f"  refused by the tracker (kept in the spool): {dict(self.refused)}")
        if self.kept:
            lines.append(f"  undelivered, kept in spool {self.spool}: {self.kept} items "
                         f"(replay: python -m trackdiag.sync {self.spool})")
        if self.lost:
            lines.append(f"  LOST: {self.lost} items were neither delivered nor written to the spool "
                         f"({self.spool_error or 'the spool could not be written'})")
        if self.ranks:
            lines.append(f"  ranks: {self.ranks}")
        if not self.flushed:
            lines.append("  the queue did not drain before the flush timeout")
        return "\n".join(lines)


class Session:
    """One diagnostics run. Use through ``trackdiag.init`` / ``log`` / ``finish`` or as a context manager.

    Args:
        config: a user's config node (DictConfig/mapping) following ``conf/config.yaml``; None for defaults.
        overrides: Hydra override strings, e.g. ``["backend=[mlflow,local]",
        "analyzer.tiling.schedule.every=10"]``.
        writer: a user's own ``torch.utils.tensorboard.SummaryWriter`` for the tensorboard backend.
        **options: shortcuts ``backend``, ``tracking_uri``, ``run_id``, ``experiment``, ``run_name``,
            ``out_dir``, ``on_error``, ``allow_external_targets``.
    """

    def __init__(self, config: Any = None, *, overrides: Sequence[str] = (), writer: Any = None,
                 **options: Any) -> None:
        self.cfg = resolve(config, overrides, options)
        self.policy = ErrorPolicy(self.cfg.on_error)
        self.rank, self.world = rank_and_world()
        self._t0 = time.monotonic()
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
                backends.append(build_component(node, allow_external=allow, what=f"backend.{name}",
                                                extra=extra))
        w = self.cfg.worker
        self.worker = Worker(backends, queue_size=w.queue_size, when_full=w.when_full,
                             block_timeout_s=w.block_timeout_s, spool=_make_spool(self, backends),
                             batch_records=w.spool_batch, batch_ms=w.spool_batch_ms,
                             on_resume=self.cfg.on_resume, renderer=_make_renderer(w.render),
                             figure_wait=self._figure_wait, upload_wait=self._upload_wait)
        self._budget = PixelBudget.from_config(self.cfg.get("budget"), report=lambda m, s: self.log_scalars(
            m, s, prefix="trackdiag/budget/"))
        self._last_step: Optional[int] = None
        self._steps_logged = 0
        self._finished: Optional[FinishSummary] = None
        self._ranks_lost: str = ""  # why the ranks stopped gathering (a rank left or died)
        self._rank_skips = 0  # rank-steps left out of a gather (refused inputs, another step)
        self.flow = VerdictFlow()  # verdicts, since-when, samples figure (trackdiag.core.flow)
        if self.rank == 0 and backends:
            self.worker.submit(Record(step=0, params=self._run_params(), artifacts=self._config_artifact()))
        _prewarm(self.analyzers)
        from . import exits

        exits.register(self)

    # -- public API ----------------------------------------------------------------------------------
    @property
    def backends(self) -> list[Backend]:
        return self.worker.backends

    def log(self, step: int, pred: Any = None, mask: Any = None, *, ref: Any = None, target: Any = None,
            latents: Any = None, loss: Any = None, timesteps: Any = None,
            sample_ids: Optional[Sequence[Any]] = None, value_range: Optional[str] = None) -> None:
        """Run the analyzers that are due at ``step`` and queue their results for the backends.

        Shapes: ``pred`` B×C×H×W in [0, 1]; ``mask`` B×1×H×W, 1×H×W or H×W (> 0.5 = wall); ``ref``
        C×h×w reference texture; ``target`` B×C×H×W image the prediction is compared with (pixel
        diagnostics); ``latents`` ``{"in": B×C×h×w, "out": B×C×h×w}`` (or one tensor); ``loss`` a scalar or
        ``(B,)`` per-sample losses; ``timesteps`` ``(B,)``; ``sample_ids`` B ids.

        With ``on_error="warn"`` nothing raises: a bad call is skipped, warned about once per kind and
        counted in ``finish()``. Only the tensor math that is due runs here, plus one device→host copy.
        ``value_range`` (``"0-1"``, ``"-1-1"``, ``"0-255"``; None guesses) says what
        ``pred``/``ref``/``target`` numbers mean (:mod:`trackdiag.core.value_range`).
        """
        self._check_open()
        try:
            self._log(step, pred, mask, ref, target, latents, loss, timesteps, sample_ids, value_range)
        except TrackdiagError:
            raise  # already judged by the policy ("raise")
        except Exception as exc:  # an unexpected failure: typed, and never raised under "warn"
            err = AnalyzerError(f"log(step={step!r}) failed unexpectedly: {type(exc).__name__}: {exc}")
            err.__cause__ = exc
            self.policy.handle(err, kind=f"unexpected:{type(exc).__name__}", what=f"log(step={step!r})")

    def _log(self, step: Any, pred: Any, mask: Any, ref: Any, target: Any, latents: Any, loss: Any,
             timesteps: Any, sample_ids: Any, value_range: Optional[str] = None) -> None:
        inputs: Optional[StepInputs] = None
        error: Optional[TrackdiagError] = None
        try:
            pred, ref, target = _unit_range(pred, ref, target, value_range)
            step = self._check_step(step)
            inputs = self._validate(step, pred, mask, ref, target, latents, loss, timesteps, sample_ids)
        except TrackdiagError as exc:
            error = exc
        distributed = self.world > 1 and not self._ranks_lost
        if error is not None and not distributed:
            self.policy.handle(error, what=f"log(step={step!r})")
            return
        due = [a for a in self.analyzers if a.due(inputs)] if inputs is not None else []
        if inputs is not None:
            self._last_step = inputs.step
            self._steps_logged += 1
        problems: list[tuple[TrackdiagError, str, str]] = []
        host = self._compute(inputs, due, problems) if due and inputs is not None else {}
        ids = list(inputs.sample_ids) if inputs is not None and inputs.sample_ids is not None else None
        if distributed:
            # Every rank takes part in exactly one exchange per log() call, whatever its inputs were.
            thumbs = {k: host.pop(k) for k in list(host) if k == SAMPLES}
            merged = self._gather(inputs.step if inputs is not None else None, host, ids)
            if error is not None:
                self.policy.handle(error, what=f"log(step={step!r}) on rank {self.rank}")
            self._report(problems)
            if merged is None or inputs is None:
                return
            host, ids = merged
            host.update(thumbs)
            due = [a for a in self.analyzers if a.name in host]
        else:
            self._report(problems)
        if inputs is None or self.rank != 0:
            return
        self._dispatch(inputs.step, [a for a in due if a.name in host], host, ids)

    def _compute(self, inputs: StepInputs, due: list[Analyzer],
                 problems: list[tuple[TrackdiagError, str, str]]
                 ) -> dict[str, dict[str, np.ndarray]]:
        """Run the due analyzers' tensor math and copy the results to the host (one transfer).

        Failures are typed and collected in ``problems`` (judged by the policy after the ranks' exchange)."""
        outputs: dict[str, dict[str, torch.Tensor]] = {}
        with torch.no_grad(), intra_op_threads(self.cfg.budget.intra_op_threads):
            for analyzer in due:
                what = f"analyzer {analyzer.name} at step {inputs.step}"
                try:
                    outputs[analyzer.name] = analyzer.compute(inputs)
                except TrackdiagError as exc:
                    problems.append((exc, exc.kind, what))
                except Exception as exc:  # a diagnostic never kills the run under "warn"
                    err = AnalyzerError(f"analyzer {analyzer.name} failed at step {inputs.step}: "
                                        f"{type(exc).__name__}: {exc}")
                    err.__cause__ = exc
                    problems.append((err, f"{analyzer.name}:{type(exc).__name__}", what))
        # the samples figure's thumbnails ride in the same single transfer (rank 0 only; never gathered)
        extra = self.flow.thumbnails(inputs, due) if self.rank == 0 else {}
        return to_host({**outputs, **extra})

    def _report(self, problems: list[tuple[TrackdiagError, str, str]]) -> None:
        for exc, kind, what in problems:
            self.policy.handle(exc, kind=kind, what=what)

    def _gather(self, step: Optional[int], host: dict[str, dict[str, np.ndarray]], ids: Optional[list[str]]
                ) -> Optional[tuple[dict[str, dict[str, np.ndarray]], Optional[list[str]]]]:
        """The exchange of one log() call across ranks; rank 0 gets the merge, others None.

        A rank that is leaving (its ``finish()``) or that is gone (the exchange fails) ends the gathering for
        the rest of the run on every rank; rank 0 then logs its own samples and the summary says so.
        """
        payload = {"step": step, "host": host if self.rank == 0 else strip_maps(host), "ids": ids,
                   "leaving": False}
        try:
            payloads = exchange(payload)
        except Exception as exc:  # a peer died: never hang or die with it
            self._ranks_lost = f"the exchange failed ({type(exc).__name__}: {str(exc)[:200]}); " \
                               "rank 0 logged its own samples from then on"
            log.warning("trackdiag: %s", self._ranks_lost)
            return (host, ids) if self.rank == 0 else None
        leaving = [r for r, p in enumerate(payloads) if p.get("leaving")]
        if leaving:
            self._ranks_lost = f"rank(s) {leaving} finished early; rank 0 logged its own samples from then on"
            log.warning("trackdiag: %s", self._ranks_lost)
        if self.rank != 0 or step is None:
            return None
        merged, merged_ids, left_out = merge_ranks(payloads, step=step)
        if left_out:
            self._rank_skips += len([r for r in left_out if r not in leaving])
        return merged, merged_ids

    def log_scalars(self, values: Mapping[str, Any], step: int, *, prefix: str = "") -> None:
        """Send plain scalars (e.g. the trainer's own loss) through the same worker and backends."""
        self._check_open()
        try:
            step = self._scalar_step(step)
        except TrackdiagError as exc:
            self.policy.handle(exc, what="log_scalars")
            return
        clean: dict[str, Any] = {}
        for key, value in values.items():  # one bad key is skipped (and counted), never the whole batch
            try:
                clean[check_scalar_key(f"{prefix}{check_scalar_key(key)}")] = value
            except TrackdiagError as exc:
                self.policy.handle(exc, what=f"log_scalars key {key!r}")
        metrics, texts = split_values(clean)
        tables = {check_scalar_key(f"{prefix}texts"): [{"step": step, **texts}]} if texts else {}
        if self.rank == 0 and (metrics or tables):
            self.worker.submit(Record(step=step, metrics=metrics, tables=table_rows_map(tables)))

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
        """Deliver what can be delivered within ``worker.flush_timeout_s``, close the backends and report
        exactly what was skipped, dropped, refused, left in the spool or lost. Never raises."""
        if self._finished is not None:
            return self._finished
        self._finished = FinishSummary(steps_logged=self._steps_logged, status=status)  # re-entry guard
        try:
            summary = self._finish(status)
        except Exception as exc:  # pragma: no cover - finish never raises into the training script
            log.exception("trackdiag: finish failed: %s", exc)
            summary = self._finished
            summary.flushed = False
        self._finished = summary
        from . import exits

        exits.unregister(self)
        if _current_session() is self:
            _set_current(None)
        if not summary.clean:
            log.warning("%s", summary)
        return summary

    def _finish(self, status: str) -> FinishSummary:
        self._leave_ranks()
        if self._ranks_lost and status == "FINISHED" and self.rank == 0:
            status = "FAILED"  # part of the job is missing from this run
        for record in self.flow.final_records() if self.rank == 0 and self.backends else []:
            self.worker.submit(record)  # the last step always gets its figures
        flushed = self.worker.close(status, timeout=self.cfg.worker.flush_timeout_s)
        stats = self.worker.stats
        skipped = dict(self.policy.skipped)
        skipped.update({k: v for k, v in stats.skipped.items()})
        if self._rank_skips:
            skipped["rank_left_out"] = self._rank_skips
        spool = self.worker.spool_path
        spool_obj = self.worker.spool
        summary = FinishSummary(
            steps_logged=self._steps_logged, skipped=skipped,
            dropped_media=stats.dropped_media + stats.unrendered,
            failed=dict(stats.failed), errors=dict(stats.errors),
            undelivered=self.worker.undelivered(), replayed=dict(stats.replayed),
            spool=str(spool) if spool else None,
            locations={b.name: _location(b) for b in self.backends}, flushed=flushed,
            lost=stats.lost, refused=dict(stats.refused), deferred=stats.deferred, held=dict(stats.held),
            status=status,
            ranks=self._ranks_lost,
            spool_error=spool_obj.last_error if spool_obj is not None else "")
        _add_findings(summary, self.flow.findings, rank=self.rank)
        return summary

    def _figure_wait(self) -> float:
        """How long finish() draws figures: ``worker.figure_wait_frac`` of the session's age, at least
        ``worker.figure_wait_min_s``; the inputs of figures still undrawn then go to the spool (sync
        draws)."""
        w = self.cfg.worker
        return max(float(w.figure_wait_min_s), float(w.figure_wait_frac) * (time.monotonic() - self._t0))

    def _upload_wait(self) -> float:
        """How long finish() goes on uploading figures once the scalars are delivered:
        ``worker.figure_wait_frac`` of the session's age, at least ``worker.upload_wait_min_s``; the PNG files
        of the rest stay in the spool (sync uploads them)."""
        w = self.cfg.worker
        return max(float(w.upload_wait_min_s), float(w.figure_wait_frac) * (time.monotonic() - self._t0))

    def _leave_ranks(self) -> None:
        """Tell the other ranks this one is done (one last exchange, bounded), so nobody waits for it."""
        if self.world == 1 or self._ranks_lost:
            return
        import threading

        done = threading.Event()

        def leave() -> None:
            try:
                payloads = exchange({"step": None, "host": {}, "ids": None, "leaving": True})
                if not all(p.get("leaving") for p in payloads):
                    self._ranks_lost = f"rank {self.rank} finished while other ranks were still logging"
            except Exception as exc:
                self._ranks_lost = f"the last exchange failed ({type(exc).__name__})"
            done.set()

        threading.Thread(target=leave, name="trackdiag-leave", daemon=True).start()
        if not done.wait(30.0):
            self._ranks_lost = "the other ranks did not answer within 30 s at finish()"

    def allow_earlier_step(self, step: int) -> None:
        """Let the next :meth:`log` take ``step`` although it is below the last step logged (a late validation
        image of an earlier training step: its own step is the right one). Steps otherwise never go down."""
        if self._last_step is not None and int(step) < self._last_step:
            self._last_step = None

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
        """The params that matter to compare runs (:func:`trackdiag.core.runconfig.key_params`)."""
        from .runconfig import key_params

        return key_params(self.cfg, self.analyzers)

    def _config_artifact(self) -> Optional[tuple[Path, str]]:
        """The whole resolved configuration as ``config/config.yaml`` (None when it cannot be written)."""
        from .runconfig import write_config

        try:
            return write_config(self.cfg, self.analyzers, self.out_dir,
                                run_name=self.cfg.run.run_name), "config"
        except OSError as exc:
            log.warning("trackdiag: the configuration could not be written under %s: %s", self.out_dir, exc)
            return None

    def _check_open(self) -> None:
        if self._finished is not None:
            from ..errors import NotInitializedError

            raise NotInitializedError("this trackdiag session has finished; call trackdiag.init() again.")

    def _scalar_step(self, step: Any) -> int:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or int(step) < 0:
            raise StepOrderError(f"step must be an int >= 0; got {type(step).__name__} {step!r}.")
        return int(step)

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
            inputs.pred = check_image_batch(pred, name="pred", min_side=MIN_SIDE).detach()
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
        n = inputs.loss.numel() if inputs.loss is not None and inputs.loss.ndim == 1 else batch
        if timesteps is not None:
            inputs.timesteps = check_timesteps(timesteps, n=n)
        if sample_ids is not None:
            inputs.sample_ids = check_sample_ids(sample_ids, n=n)
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
                texts = table_rows([{"step": step, **result.texts}])
                record.tables[metric_key(analyzer.name, "texts")] = texts
            for name, rows in result.tables.items():
                if rows:
                    record.tables[metric_key(analyzer.name, name)] = table_rows(rows)
            drawn = bool(result.maps) and analyzer.want_figures()
            if drawn:
                record.figures.append(RenderJob(analyzer, result))
            record.metrics.update(self.flow.observe(analyzer, step, result, drawn=drawn))
        self.flow.complete(record, host, ids)
        if record.metrics or record.tables or record.figures:
            self.worker.submit(record)


def _add_findings(summary: FinishSummary, findings: Any, *, rank: int) -> None:
    """Put the run's findings into ``finish()``'s summary and print them (rank 0, once)."""
    from .findings import console_text, print_findings

    if rank != 0 or not findings.judged:
        return
    summary.verdict = findings.worst()
    where = "; ".join(f"{name}: {loc}" for name, loc in summary.locations.items())
    summary.findings = console_text(findings, where=f"where to look: {where}" if where else "")
    print_findings(summary.findings)


def _make_spool(session: Session, backends: list[Backend]) -> Any:
    """The write-ahead spool (see :mod:`trackdiag.backends.spool`), or None without backends."""
    if not backends:
        return None
    from ..backends.spool import Spool

    return Spool.for_run(session.out_dir)


def _make_renderer(kind: str) -> Any:
    """Where figures are drawn (:mod:`trackdiag.core.render`): ``process`` (default) or ``thread``."""
    from . import render

    if kind == "thread":
        return render.thread_render
    render.prepare()
    return render.ProcessRenderer()


def _location(backend: Backend) -> str:
    try:
        return backend.location()
    except Exception as exc:
        return f"{backend.name} ({type(exc).__name__})"


def table_rows_map(tables: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {k: table_rows(v) for k, v in tables.items()}


def _prewarm(analyzers: Sequence[Analyzer]) -> None:
    """Import now, in init(), what the analyzers and the figures need later (a first log() must not stall
    for seconds on an import). Best effort: a missing optional package fails later, where it is used."""
    import importlib

    for module in ("scipy.special", "scipy.ndimage", "PIL.Image", "trackdiag.plots"):
        try:
            importlib.import_module(module)
        except Exception:
            pass


# -- the module-level "current session" -----------------------------------------------------------------
_CURRENT: Optional[Session] = None


def _current_session() -> Optional[Session]:
    return _CURRENT


def _set_current(session: Optional[Session]) -> None:
    global _CURRENT
    _CURRENT = session


def _unit_range(pred: Any, ref: Any, target: Any, value_range: Optional[str]) -> tuple[Any, Any, Any]:
    """``pred``, ``ref`` and ``target`` in [0, 1] per ``value_range`` (:mod:`trackdiag.core.value_range`)."""
    from .value_range import to_unit_range

    return (to_unit_range(pred, value_range, name="pred"), to_unit_range(ref, value_range, name="ref"),
            to_unit_range(target, value_range, name="target"))
