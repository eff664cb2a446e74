"""``diagnose_loss`` as the design note writes it: ``LossDiagnostics(config).log_step(...)`` and the script.

In a training loop (the note's §5.2, only the import changed)::

    from trackdiag.seed.diagnose_loss import LossDiagnostics

    diag = LossDiagnostics(config)
    if step % config.diag_interval == 0:
        diag.log_step(step, loss, ema_loss, model, batch)

From a shell (§5.1, with the §6 flags)::

    python -m trackdiag.seed.diagnose_loss --logdir logs/ --images in.png out.png --latents latents/ \\
        --report out_report [--fft-threshold T] [--spike-sigma S] [--heatmap-scale K] [--max-images N]
    diagnose-loss --logdir logs/ --report out_report

What ``log_step`` reads (nothing beyond ``step`` and ``loss`` is required):

* ``loss``: the batch loss (a scalar), or per-sample losses ``(B,)``;
* ``ema_loss``: your own EMA of the loss; logged beside trackdiag's as ``trackdiag/loss/user_ema_loss``;
* ``model``: when its parameters hold gradients, their global L2 norm is logged as
  ``trackdiag/loss/grad_norm`` (a spike in the loss with a spike in the gradient norm points at the batch,
  a spike without one at the data or the learning rate); nothing else of the model is touched;
* ``batch``: a mapping; these keys are used when present: ``per_sample_loss`` (or ``losses``) ``(B,)``,
  ``timesteps`` ``(B,)`` (the loss is normalised per timestep bucket), ``sample_ids`` (or ``ids``), and
  ``latents`` (a ``B×C×h×w`` tensor or ``{"in": ..., "out": ...}``: the latent analyzer runs on them).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, Optional

from ._config import as_options

__all__ = ["LossDiagnostics", "main", "build_parser"]

#: Options that configure the run (forwarded to :class:`trackdiag.Session`), not the detectors.
_SESSION_OPTIONS = ("backend", "tracking_uri", "run_id", "experiment", "run_name", "out_dir", "on_error")


class LossDiagnostics:
    """Loss (and latent) diagnostics fed step by step, as the note's ``LossDiagnostics``.

    Args:
        config: a dict, an OmegaConf ``DictConfig`` or any object with attributes. Read from it:
            ``diag_interval`` (the note's; kept as :attr:`diag_interval`), any field of
            :class:`trackdiag.analyzers.loss.LossParams` (``spike_sigma``, ``window``, ``robust`` …), the run
            options ``backend``, ``tracking_uri``, ``experiment``, ``run_name``, ``out_dir``, ``on_error``,
            and
            ``overrides`` (a list of trackdiag Hydra overrides). Without a backend option the results go to
            the embedded MLflow store, as everywhere else in trackdiag.
        writer: your ``SummaryWriter``: the results go to it (the tensorboard backend) instead.
    """

    def __init__(self, config: Any = None, *, writer: Any = None) -> None:
        from ..analyzers.loss import LossAnalyzer, LossParams
        from ..core.session import Session

        opts = as_options(config)
        self.diag_interval = int(opts.get("diag_interval", 1) or 1)
        loss_fields = {f.name for f in fields(LossParams)} - {"schedule", "figures_every"}
        overrides = ["analyzer=[loss,latent]", "analyzer.loss.schedule.every=1",
                     "analyzer.latent.schedule.every=1"]
        overrides += [f"analyzer.loss.{k}={_hydra_value(v)}" for k, v in opts.items() if k in loss_fields]
        overrides += [str(o) for o in opts.get("overrides", ()) or ()]
        session_opts = {k: opts[k] for k in _SESSION_OPTIONS if k in opts}
        if writer is not None:
            session_opts.setdefault("backend", "tensorboard")
        self.session = Session(None, overrides=overrides, writer=writer, **session_opts)
        self._loss = next(a for a in self.session.analyzers if isinstance(a, LossAnalyzer))

    def log_step(self, step: int, loss: Any, ema_loss: Any = None, model: Any = None,
                 batch: Optional[Mapping[str, Any]] = None) -> list[Any]:
        """Feed one step; returns the loss events found at it (:class:`~trackdiag.analyzers.loss.LossEvent`:
        ``step``, ``kind`` ∈ spike | plateau | ema_divergence | nonfinite, ``value``, ``expected``, ``z``,
        ``samples``, ``detail``); an empty list when the step is normal."""
        batch = batch if isinstance(batch, Mapping) else {}
        per_sample = _first(batch, "per_sample_loss", "losses")
        self._loss.last_report = None
        self.session.log(int(step), loss=per_sample if per_sample is not None else _detach(loss),
                         timesteps=batch.get("timesteps"), latents=batch.get("latents"),
                         sample_ids=_first(batch, "sample_ids", "ids"))
        extra: dict[str, float] = {}
        if ema_loss is not None:
            extra["user_ema_loss"] = float(_detach(ema_loss))
        gn = _grad_norm(model)
        if gn is not None:
            extra["grad_norm"] = gn
        if extra:
            self.session.log_scalars(extra, int(step), prefix="trackdiag/loss/")
        report = getattr(self._loss, "last_report", None)
        return list(report.events) if report is not None else []

    def finish(self) -> Any:
        """Finish the run (also done at interpreter exit); returns trackdiag's finish summary."""
        return self.session.finish()

    def __enter__(self) -> LossDiagnostics:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.session.__exit__(*exc)


def _first(batch: Mapping[str, Any], *keys: str) -> Any:
    for k in keys:
        if batch.get(k) is not None:
            return batch[k]
    return None


def _detach(x: Any) -> Any:
    return x.detach() if hasattr(x, "detach") else x


def _hydra_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _grad_norm(model: Any) -> Optional[float]:
    params = getattr(model, "parameters", None)
    if not callable(params):
        return None
    import torch

    grads = [p.grad.detach() for p in params() if getattr(p, "grad", None) is not None]
    if not grads:
        return None
    with torch.no_grad():
        total = torch.stack([g.float().pow(2).sum() for g in grads]).sum().sqrt().item()
    return float(total) if math.isfinite(total) else float("nan")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diagnose_loss.py", description=(
        "Loss, latent and pixel diagnostics of a training run: spikes, plateaus and EMA divergence of the "
        "loss, stripes/periodicity/drift in saved latents, error maps of image pairs. The same as "
        "'trackdiag diagnose' with these flags."))
    parser.add_argument("--logdir", default=None, help="training logs (TensorBoard events, CSV or JSONL)")
    parser.add_argument("--images", nargs="+", metavar="IN OUT", default=None,
                        help="input/output image pairs to compare")
    parser.add_argument("--latents", default=None, help="folder of saved latents (.pt / .safetensors / .npy)")
    parser.add_argument("--report", required=True, help="report folder (created)")
    parser.add_argument("--fft-threshold", type=float, default=None,
                        help="sensitivity to periodic peaks in the latents (period score, 0..1)")
    parser.add_argument("--spike-sigma", type=float, default=None, help="loss spike threshold in sigma")
    parser.add_argument("--heatmap-scale", type=float, default=None, help="gain of the error heat maps")
    parser.add_argument("--max-images", type=int, default=None, help="images shown in the report")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m trackdiag.seed.diagnose_loss --logdir ... --images in.png out.png --latents ... --report
    ...``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.logdir or args.images or args.latents):
        parser.error("nothing to diagnose: give --logdir, --images and/or --latents")
    from .. import diagnose

    forwarded = ["--report", args.report]
    for flag, value in (("--logdir", args.logdir), ("--latents", args.latents),
                        ("--fft-threshold", args.fft_threshold), ("--spike-sigma", args.spike_sigma),
                        ("--heatmap-scale", args.heatmap_scale), ("--max-images", args.max_images)):
        if value is not None:
            forwarded += [flag, str(value)]
    if args.images:
        forwarded += ["--images", *args.images]
    return int(diagnose.main(forwarded))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
