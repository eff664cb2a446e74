"""``--logdir PATH`` / ``--run-id ID``: loss-curve diagnostics from training logs (seed sections 3.1, 7.3).

Reads the loss (and a timestep series when logged) with :mod:`trackdiag.io.logreaders`, feeds it through the
same streaming detector as the training loop (:func:`trackdiag.analyzers.loss.detect_series`) and writes,
into the report folder:

* ``train_loss.png``, ``ema_loss.png``, ``smoothed_loss.png``, ``loss_ratio.png`` with the events marked,
  and ``timestep_profile.png`` when timesteps were logged;
* ``events.csv`` with the columns step, kind, value, expected, z, samples, detail.

No loss series → :class:`~trackdiag.errors.InputFileError` (the CLI exits non-zero and names what it found).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ...analyzers.loss import EVENT_COLUMNS, LossParams, SeriesDetection, detect_series, event_evidence
from ...io.logreaders import LossLog, read_loss_log
from ...io.tables import write_csv
from ...verdicts import Verdict, evaluate
from ..folder import Figure, Section

__all__ = ["add_arguments", "wanted", "run", "write_events_csv", "loss_verdicts", "loss_summary"]

#: Most points drawn per curve (longer series are decimated for the figure only).
_MAX_PLOT_POINTS = 50_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("loss diagnostics (--logdir / --run-id)")
    g.add_argument("--logdir", type=Path, default=None,
                   help="training log: TensorBoard folder or event file, .csv, .jsonl, or a W&B offline run "
                        "folder (with --run-id: an MLflow tracking URI or .db file)")
    g.add_argument("--loss-tag", default=None,
                   help="name of the loss series (default: guessed, e.g. train_loss, train/loss, loss)")
    g.add_argument("--timestep-tag", default=None,
                   help="name of the timestep series (default: timestep, timesteps or t when logged)")
    g.add_argument("--run-id", default=None, help="read the loss from this MLflow run")
    g.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI for --run-id (default: --logdir, else MLFLOW_TRACKING_URI)")
    g.add_argument("--spike-sigma", type=float, default=None,
                   help="a spike is more than this many sigma above the local level (default 3)")
    g.add_argument("--robust-spikes", action="store_true",
                   help="median/MAD instead of mean/std for the local level (heavy-tailed losses)")
    g.add_argument("--allow-truncated-logs", action="store_true",
                   help="read the complete records of a log whose last record is cut off")


def wanted(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "logdir", None) or getattr(args, "run_id", None))


def _params(args: argparse.Namespace) -> LossParams:
    kwargs: dict[str, Any] = {}
    if getattr(args, "spike_sigma", None) is not None:
        kwargs["spike_sigma"] = float(args.spike_sigma)
    if getattr(args, "robust_spikes", False):
        kwargs["robust"] = True
    return LossParams(**kwargs)


def write_events_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """Write the events table (columns :data:`EVENT_COLUMNS`; NaN as an empty cell)."""
    return write_csv(path, rows, columns=EVENT_COLUMNS, float_format=".6g", extra="ignore")


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v[np.isfinite(v)]


def loss_summary(log: LossLog, det: SeriesDetection, params: LossParams) -> dict[str, Any]:
    """Flat summary of one loss log (the ``loss`` entry of ``summary.json``)."""
    vals = _finite(det.loss)
    counts = {kind: sum(1 for e in det.events if e.kind == kind) for kind in
              ("spike", "plateau", "ema_divergence", "nonfinite")}
    spikes = [e for e in det.events if e.kind == "spike"]
    return {
        "loss_source": log.source, "loss_format": log.format, "loss_tag": log.tag,
        "timestep_tag": log.timestep_tag or "", "timesteps_used": log.timesteps is not None,
        "n_steps": int(det.steps.size), "first_step": int(det.steps[0]), "last_step": int(det.steps[-1]),
        "first_loss": float(vals[0]) if vals.size else math.nan,
        "last_loss": float(vals[-1]) if vals.size else math.nan,
        "min_loss": float(vals.min()) if vals.size else math.nan,
        "final_ema_loss": float(_finite(det.ema)[-1]) if _finite(det.ema).size else math.nan,
        "final_smoothed_loss": float(_finite(det.smoothed)[-1]) if _finite(det.smoothed).size else math.nan,
        "spike_sigma": params.spike_sigma, "robust": params.robust,
        "n_spikes": counts["spike"], "spike_rate": float(det.metrics.get("spike_rate", math.nan)),
        "max_spike_z": max((e.z for e in spikes), default=math.nan),
        "plateau_count": counts["plateau"], "ema_divergence_count": counts["ema_divergence"],
        "nonfinite_count": counts["nonfinite"], "events_csv": "events.csv",
    }


def loss_verdicts(det: SeriesDetection, params: LossParams) -> list[Verdict]:
    """Likely causes from the events, most severe first: the loss analyzer's registered rules
    (:func:`trackdiag.analyzers.loss.loss_rules`) on the series' summary, or ``loss_ok`` when none fires."""
    summary = {**det.metrics, **event_evidence(det.events), "spike_sigma": params.spike_sigma}
    out = evaluate("loss", summary)
    if not out:
        out.append(Verdict(code="loss_ok", severity="info", title="No anomaly in the loss curve",
                           evidence={"events": 0},
                           fix="Nothing to do on the loss side; look at the tiling and latent sections."))
    return out


def _decimate(n: int) -> np.ndarray:
    stride = max(1, int(math.ceil(n / _MAX_PLOT_POINTS)))
    return np.arange(0, n, stride)


def _figures(log: LossLog, det: SeriesDetection, params: LossParams, out_dir: Path,
             t_max: Optional[float]) -> list[Figure]:
    from ...plots import save_rgb_png
    from ...plots.loss import bucket_profile_figure, loss_curve_figure

    rows = det.event_rows()
    idx = _decimate(det.steps.size)
    steps = det.steps[idx]
    figs: list[Figure] = []
    specs = [
        ("train_loss.png", "train_loss", {"train_loss": det.loss[idx]}, "train_loss",
         "The raw loss per step. Markers: spikes (red), plateaus (purple), EMA divergence (orange), NaN/Inf "
         "(black, drawn at the bottom)."),
        ("ema_loss.png", "ema_loss", {"train_loss": det.loss[idx], "ema_loss": det.ema[idx]}, "ema_loss",
         f"EMA of the loss (decay {params.ema_decay:g}). A loss that stays above its EMA for long is "
         "diverging."),
        ("smoothed_loss.png", "per-step loss smoothing",
         {"train_loss": det.loss[idx], f"rolling median ({params.smooth_window})": det.smoothed[idx]},
         f"rolling median ({params.smooth_window})",
         "Rolling median of the loss: the trend without the spikes; a flat stretch is a plateau."),
    ]
    ratio = det.loss / det.expected
    if np.isfinite(ratio).any():
        specs.append(("loss_ratio.png", "loss / expected (timestep-normalised)",
                      {"loss / expected": ratio[idx]}, "loss / expected",
                      "The loss divided by what the detector expected for that step (1 = normal). Timestep "
                      "effects are removed, so what stands out here is a real spike."))
    for name, title, curves, mark_on, how in specs:
        img = loss_curve_figure(steps, curves, title=title, events=rows, mark_on=mark_on)
        save_rgb_png(img, out_dir / name)
        figs.append(Figure(name, title, how))
    if log.timesteps is not None and np.isfinite(det.bucket_profile).any() and t_max:
        img = bucket_profile_figure(det.bucket_profile, t_max=t_max, transform=params.transform)
        save_rgb_png(img, out_dir / "timestep_profile.png")
        figs.append(Figure("timestep_profile.png", "loss level per timestep bucket",
                           "How much higher or lower the loss is in each timestep bucket than on average; "
                           "the detector divides this out, so high-timestep batches alone raise no spike."))
    return figs


def run(args: argparse.Namespace, out_dir: Path, progress: bool = True) -> list[Section]:
    log = read_loss_log(getattr(args, "logdir", None), tag=getattr(args, "loss_tag", None),
                        timestep_tag=getattr(args, "timestep_tag", None),
                        run_id=getattr(args, "run_id", None),
                        tracking_uri=getattr(args, "tracking_uri", None),
                        allow_truncated=bool(getattr(args, "allow_truncated_logs", False)))
    params = _params(args)
    from ...analyzers.loss import LossDetector

    detector = LossDetector(params)
    det = detect_series(log.steps, log.values, timesteps=log.timesteps, params=params, detector=detector,
                        progress=progress and log.steps.size > 20_000)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_events_csv(det.event_rows(), out_dir / "events.csv")
    figures = _figures(log, det, params, out_dir, detector.t_max or None)
    summary = loss_summary(log, det, params)
    notes = [f"Loss series {log.tag!r} from {log.source} ({log.format}, {det.steps.size} steps)" +
             (f", normalised per timestep bucket with {log.timestep_tag!r}." if log.timestep_tag else
              "; no timestep series was logged, so high-timestep batches cannot be told from spikes.")]
    notes += log.warnings
    tables = {"events": det.event_rows()[:500]}
    return [Section(title="loss", summary=summary, figures=figures, verdicts=loss_verdicts(det, params),
                    tables=tables, notes=notes)]
