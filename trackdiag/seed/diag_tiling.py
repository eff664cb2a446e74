"""``diag_tiling`` as the design note writes it: ``run_diagnostics_from_tensors`` and the script's flags.

In a training loop (the note's §3.2, only the import changed)::

    import trackdiag.seed.diag_tiling as dt

    stats = dt.run_diagnostics_from_tensors(pred_bchw=pred.detach(), mask_bchw=mask.detach(),
                                            out_dir=f"diag_reports/s{global_step:07d}", ref_chw=None,
                                            global_step=global_step, writer=writer, tag_prefix="train")
    print("[diag]", stats)

From a shell (§3.1)::

    python -m trackdiag.seed.diag_tiling --pred wall.jpg [--mask mask.png] [--ref tile.png] --out report/
    diag-tiling --pred wall.jpg --out report/
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

__all__ = ["run_diagnostics_from_tensors", "main", "reset"]

_SESSIONS: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}


def run_diagnostics_from_tensors(pred_bchw: Any, mask_bchw: Any = None, out_dir: Any = None,
                                 ref_chw: Any = None,
                                 global_step: int = 0, writer: Any = None, tag_prefix: str = "train",
                                 **options: Any) -> dict[str, Any]:
    """Tiling diagnosis of a batch, logged and returned as the note's flat dict.

    Args:
        pred_bchw: predictions ``B×C×H×W`` in [0, 1].
        mask_bchw: wall masks ``B×1×H×W`` (> 0.5 = wall), or ``None`` for the whole frame.
        out_dir: when given, the report folder (figures, ``summary.json``, ``index.html``) is written there.
        ref_chw: reference texture ``C×h×w`` (any size), or ``None``.
        global_step: the training step the values belong to.
        writer: your ``torch.utils.tensorboard.SummaryWriter``: it receives the scalars as
            ``<tag_prefix>/tiling/<key>``, the figures as images and the verdicts as text, before this
            function returns (so ``writer.close()`` right after the loop loses nothing). Without a writer the
            results go to trackdiag's backends (the embedded MLflow store by default), into one run per
            ``tag_prefix``.
        tag_prefix: the prefix of the writer's tags (``"train"``), or the run name without a writer.
        **options: ``init()`` options for the run used without a writer (``backend``, ``tracking_uri``,
            ``experiment``, ``out_dir`` …).

    Returns:
        The flat dict of the note's §4: the seed's keys (``fundamental_radius_bin`` … ``band_max_run``) as
        batch means, the same aggregation as ``trackdiag.log()``, then trackdiag's other keys, and
        ``verdicts``: a list of ``{"code", "severity", "title", "evidence", "fix"}``.
    """
    import torch

    from ..analyzers.tiling import TilingAnalyzer
    from ..core.transfer import to_host
    from ..report.sections.tiling import flat_summary
    from ..verdicts import evaluate

    inputs = _inputs(pred_bchw, mask_bchw, ref_chw, int(global_step))
    analyzer = TilingAnalyzer()
    with torch.no_grad():
        host = to_host({"tiling": analyzer.compute(inputs)})["tiling"]
    result = analyzer.summarize(inputs.step, host)
    summary = flat_summary(result.metrics, result.texts)
    verdicts = evaluate("tiling", summary)
    summary["verdicts"] = [v.to_dict() for v in verdicts]
    if out_dir is not None:
        from ..report.sections.tiling import write_tiling_report

        write_tiling_report(Path(out_dir), summary, result, title=f"Tiling diagnosis, step {inputs.step}")
    if writer is not None:
        _to_writer(writer, tag_prefix, inputs.step, analyzer, result, verdicts)
    else:
        session = _session(tag_prefix, options)
        session._dispatch(inputs.step, [_session_tiling(session)], {"tiling": host}, None)
        if out_dir is not None:
            session.log_artifacts(Path(out_dir), f"diag_reports/{Path(out_dir).name}", step=inputs.step)
    return summary


def _inputs(pred: Any, mask: Any, ref: Any, step: int) -> Any:
    """The same checks as ``trackdiag.log()``: typed errors with the expected and actual shapes."""
    from ..analyzers.base import StepInputs
    from ..core.checks import check_image_batch, normalize_mask, normalize_ref
    from ..errors import MaskError

    p = check_image_batch(pred, name="pred_bchw").detach()
    b, c, h, w = p.shape
    m = None
    if mask is not None:
        m = normalize_mask(mask, batch=b, height=h, width=w, name="mask_bchw").to(p.device)
        if not bool(m.flatten(1).any(dim=1).all()):
            raise MaskError("mask_bchw is empty (no pixel > 0.5) for some sample; pass mask_bchw=None to "
                            "analyse the whole frame.")
    r = normalize_ref(ref, channels=c, name="ref_chw").detach().to(p.device) if ref is not None else None
    return StepInputs(step=step, pred=p, mask=m, ref=r)


def _to_writer(writer: Any, prefix: str, step: int, analyzer: Any, result: Any,
               verdicts: Sequence[Any]) -> None:
    from ..backends.tensorboard import TensorboardBackend, TensorboardParams

    tb = TensorboardBackend(TensorboardParams(custom_scalars=False), writer=writer)
    base = f"{prefix.rstrip('/')}/tiling" if prefix else "tiling"
    tb.log_metrics({f"{base}/{k}": v for k, v in result.metrics.items()}, step,
                   timestamp_ms=int(time.time() * 1000))
    for name, image in analyzer.render(result).items():
        tb.log_image(f"{base}/{name}", image, step)
    rows = [{"severity": v.severity, "code": v.code, "finding": v.title, "fix": v.fix} for v in verdicts]
    tb.log_table(f"{base}/verdicts", rows or [{"severity": "none", "code": "-", "finding":
                                               "no tiling artifact stood out", "fix": "-"}], step)
    if result.texts:
        tb.log_table(f"{base}/texts", [dict(result.texts)], step)
    writer.flush()


def _session(tag_prefix: str, options: dict[str, Any]) -> Any:
    """One trackdiag session per ``tag_prefix`` and options, finished at exit like any session."""
    from ..core.session import Session

    key = (tag_prefix, tuple(sorted((str(k), repr(v)) for k, v in options.items())))
    session = _SESSIONS.get(key)
    if session is None or session._finished is not None:
        opts = {"run_name": tag_prefix or "diag_tiling", **options}
        session = Session(None, overrides=["analyzer=[tiling]"], **opts)
        _SESSIONS[key] = session
    return session


def _session_tiling(session: Any) -> Any:
    return next(a for a in session.analyzers if a.name == "tiling")


def reset() -> None:
    """Finish the runs opened for calls without a writer (also done at interpreter exit)."""
    for session in list(_SESSIONS.values()):
        session.finish()
    _SESSIONS.clear()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diag_tiling.py", description=(
        "Tiling diagnosis of one image (or a folder of images): period, harmonics, bands, checkerboards, "
        "aliasing, border cross. The same as 'trackdiag diagnose --pred'."))
    parser.add_argument("--pred", required=True, nargs="+", help="the image (or folder) to diagnose")
    parser.add_argument("--mask", "--masks", dest="mask", default=None,
                        help="wall mask (> 0.5 = wall), or a folder of masks paired by file stem")
    parser.add_argument("--ref", default=None, help="reference texture patch (best a 256×256 tile)")
    parser.add_argument("--out", required=True, help="report folder (created)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m trackdiag.seed.diag_tiling --pred P [--mask M] [--ref R] --out DIR``."""
    args = build_parser().parse_args(argv)
    from .. import diagnose

    forwarded = ["--pred", *args.pred, "--out", args.out]
    if args.mask is not None:
        forwarded += ["--mask", args.mask]
    if args.ref is not None:
        forwarded += ["--ref", args.ref]
    return int(diagnose.main(forwarded))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
