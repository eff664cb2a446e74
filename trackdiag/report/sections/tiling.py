"""``--pred PATH [PATH|DIR ...] [--mask PATH] [--ref PATH]``: the tiling report (seed section 4.1), and the
Python API :func:`diagnose` (exported as ``trackdiag.diagnose``).

One prediction: the report goes straight into ``--out``: ``radial_profile.png``, ``fft_log_hann.png``,
``fft_log_nohann.png``, ``acf.png``, ``local_period_px.png``, ``local_period_bands.png``, ``summary.json``
(flat: the seed's keys, then ours), ``local_period_px.npy`` and ``index.html`` with the "likely causes".
Several predictions (files and/or folders): one sub-folder each with that same report, plus
``summary.csv`` (one row per prediction) in ``--out``. An unreadable prediction is reported on one line and
the others are still done; the run then exits non-zero.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputFileError, InputValueError, TrackdiagError
from ..folder import Figure, Section
from . import unique_name

__all__ = ["add_arguments", "analyze_one", "diagnose", "flat_summary", "run", "wanted", "with_verdicts",
           "write_tiling_report"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("tiling diagnostics (--pred)")
    g.add_argument("--pred", nargs="+", metavar="PATH", default=None,
                   help="predicted image(s) or folder(s) of images to diagnose for tiling artifacts")
    g.add_argument("--mask", default=None, metavar="PATH",
                   help="wall mask (white = wall), or a folder of masks matched to the images by file stem; "
                        "only masked pixels count")
    g.add_argument("--ref", default=None, metavar="PATH",
                   help="reference texture patch (e.g. a 256×256 tileable crop): f* becomes its fundamental")
    g.add_argument("--value-range", default=None, choices=("0-1", "-1-1", "0-255"),
                   help="what .npy/.pt inputs' numbers mean (image files are always 0-1); default: guess "
                        "(integer → 0-255, float below 0 → -1-1)")


def wanted(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "pred", None))


# ------------------------------------------------------------------------------------------------------
# One image
# ------------------------------------------------------------------------------------------------------
def _as_batch(pred: Any, name: str, value_range: str | None = None) -> Any:
    import torch

    from ...core.value_range import to_unit_range
    from ...io.images import load_image

    if isinstance(pred, (torch.Tensor, np.ndarray)) and pred.ndim == 4:
        t = to_unit_range(pred, value_range, name=name)
        return t.float() if isinstance(t, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(t)).float()
    return load_image(pred, name=name, value_range=value_range)[None]


def flat_summary(metrics: Mapping[str, float], texts: Mapping[str, str]) -> dict[str, Any]:
    """The flat summary: the seed's keys first (in the seed's order), then every other metric and text."""
    from ...analyzers.tiling import SEED_KEYS

    merged: dict[str, Any] = {**{k: float(v) for k, v in metrics.items()}, **dict(texts)}
    out = {k: merged[k] for k in SEED_KEYS if k in merged}
    out.update({k: v for k, v in merged.items() if k not in out})
    return out


def analyze_one(pred: Any, *, mask: Any = None, ref: Any = None, name: str = "pred",
                value_range: str | None = None) -> tuple[dict[str, Any], Any]:
    """Run the tiling analyzer on one image (or a ``B×C×H×W`` batch). Returns ``(summary, result)``.

    Raises :class:`~trackdiag.errors.InputFileError` (unreadable file) or a shape/value error.
    """
    import torch

    from ...analyzers.base import StepInputs
    from ...analyzers.tiling import TilingAnalyzer
    from ...core.checks import normalize_mask
    from ...core.transfer import to_host
    from ...io.images import load_image, load_mask

    batch = _as_batch(pred, name, value_range)
    m = None
    if mask is not None:
        mt = load_mask(mask, name="mask") if not isinstance(mask, torch.Tensor) or mask.ndim < 3 else mask
        m = normalize_mask(mt, batch=batch.shape[0], height=batch.shape[-2], width=batch.shape[-1])
        if not bool(m.any()):
            from ...errors import MaskError

            raise MaskError("mask: no wall pixel (nothing > 0.5); check the mask file or invert it.")
    r = load_image(ref, name="ref", value_range=value_range) if ref is not None else None
    analyzer = TilingAnalyzer()
    with torch.no_grad():
        out = analyzer.compute(StepInputs(step=0, pred=batch, mask=m, ref=r))
    host = to_host({"tiling": out})["tiling"]
    result = analyzer.summarize(0, host)
    _attach_image(result, batch, m)
    return flat_summary(result.metrics, result.texts), result


#: Result.maps keys of the diagnosed image (for the report's key figure); no figure of the analyzer uses them.
_IMAGE_MAPS = ("diagnosed_images", "diagnosed_masks", "diagnosed_size")


def _attach_image(result: Any, batch: Any, mask: Any) -> None:
    from ...core.transfer import to_host
    from ...plots.samples import thumbnails

    thumbs = to_host({"t": thumbnails(batch, mask, max_n=4, max_side=768)})["t"]
    for key, name in zip(("map/images", "map/masks", "map/size"), _IMAGE_MAPS, strict=True):
        if key in thumbs:
            result.maps[name] = thumbs[key]


def diagnosed_figure(result: Any, verdicts: Any, *, title: str = "") -> Any:
    """The diagnosed image(s) with the zones, the mask outline and the grids marked, or None."""
    from ...plots.samples import samples_figure

    if _IMAGE_MAPS[0] not in result.maps:
        return None
    size = [int(v) for v in np.asarray(result.maps.get(_IMAGE_MAPS[2], [])).reshape(-1)]
    return samples_figure(result.maps[_IMAGE_MAPS[0]], masks=result.maps.get(_IMAGE_MAPS[1]), size=size,
                          tiling_maps=result.maps, verdicts=verdicts, sample_ids=[title] if title else None,
                          panel_in=7.0 if len(result.maps[_IMAGE_MAPS[0]]) == 1 else 3.6)


def write_tiling_report(out_dir: Path, summary: Mapping[str, Any], result: Any, *,
                        title: str = "Tiling diagnosis", index: bool = True) -> Section:
    """Write the six figures, ``summary.json``, ``local_period_px.npy`` (and ``index.html``) into ``out_dir``.

    Returns the report :class:`~trackdiag.report.folder.Section` (figures relative to ``out_dir``).
    """
    from ...analyzers.tiling import TilingAnalyzer, likely_causes
    from ...plots import save_rgb_png
    from ...plots.tiling import FIGURES, HOW_TO_READ
    from ..folder import write_json, write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    images = TilingAnalyzer().render(result)
    verdicts = likely_causes(summary)
    figures = []
    diagnosed = diagnosed_figure(result, verdicts, title=title.split(": ", 1)[-1])
    if diagnosed is not None:
        save_rgb_png(diagnosed, out_dir / "diagnosed.png")
        figures.append(Figure("diagnosed.png", "The diagnosed image",
                              "Red: zones where the local period is about twice the image's period; cyan: "
                              "the mask outline; yellow lines: a stride grid found in the output. The title "
                              "names the findings.", key=True))
    from ...plots.limits import HOW_TO_READ as LIMITS_HOW
    from ...plots.limits import limits_figure

    limits = limits_figure("tiling", summary)
    if limits is not None:
        save_rgb_png(limits, out_dir / "limits.png")
        figures.append(Figure("limits.png", "Key values against their limits", LIMITS_HOW))
    for name in FIGURES:
        if name in images:
            save_rgb_png(images[name], out_dir / f"{name}.png")
            figures.append(Figure(f"{name}.png", name, HOW_TO_READ[name]))
    if "local_period_px" in result.maps:
        np.save(out_dir / "local_period_px.npy", np.asarray(result.maps["local_period_px"], dtype=np.float32))
    write_json(with_verdicts(summary), out_dir / "summary.json")
    notes = [(f"f* source: {summary.get('fstar_source', 'pred')} (with --ref, f* is the reference's "
             "fundamental in this image's FFT bins; E2f_over_Ef and Ehalf_over_Ef are measured there). Radii "
             "are in bins of the "
             f"{int(summary.get('fft_side_px', 0) or 0)}-point FFT: period_px = fft_side_px / radius_bin. "
             "Definitions: docs/tiling.md.")]
    section = Section(title=title, summary=dict(summary), figures=figures, verdicts=verdicts, notes=notes,
                      analyzer="tiling")
    if index:
        write_report(out_dir, [section], title=title)
    return section


def diagnose(pred: Any, *, mask: Any = None, ref: Any = None, out_dir: Any = None,
             value_range: str | None = None) -> dict[str, Any]:
    """Tiling diagnosis of one image: ``trackdiag.diagnose(pred, mask=..., ref=..., out_dir=...) -> dict``.

    Args:
        pred: a path, PIL image, numpy array (``H×W``, ``H×W×C``) or tensor (``C×H×W``; a ``B×C×H×W`` batch
            gives the batch means) in [0, 1] (uint8 is scaled).
        mask: optional wall mask (same kinds; > 0.5 = wall). Only wall pixels count.
        ref: optional reference texture (any size): f* becomes its fundamental in ``pred``'s FFT bins.
        out_dir: when given, the report folder is written there (six PNGs, ``summary.json``,
            ``local_period_px.npy``, ``index.html``).
        value_range: ``"0-1"``, ``"-1-1"`` or ``"0-255"`` for arrays and tensors (``pred`` and ``ref``);
            None guesses (:mod:`trackdiag.core.value_range`: integer → 0..255, float below 0 → [-1, 1]).

    Returns:
        The flat summary: the seed's keys (``fundamental_radius_bin`` … ``band_max_run``) and ours
        (``fundamental_period_px``, ``periodicity_score``, ``checkerboard_score``, ``border_cross_index``, …);
        NaN where something could not be measured; and ``"verdicts"``, a list of
        ``{"code", "severity", "title", "evidence", "fix"}`` (:func:`with_verdicts`).
    """
    summary, result = analyze_one(pred, mask=mask, ref=ref, value_range=value_range)
    if out_dir is not None:
        write_tiling_report(Path(out_dir), summary, result)
    return with_verdicts(summary)


def with_verdicts(summary: Mapping[str, Any]) -> dict[str, Any]:
    """``summary`` plus ``"verdicts"``: the tiling rules' verdicts as a list of ``Verdict.to_dict()``."""
    from ...analyzers.tiling import likely_causes

    return {**summary, "verdicts": [v.to_dict() for v in likely_causes(summary)]}


# ------------------------------------------------------------------------------------------------------
# CLI section
# ------------------------------------------------------------------------------------------------------
def _expand(preds: list[str]) -> list[Path]:
    from ...io.images import list_images

    out: list[Path] = []
    for p in preds:
        path = Path(p)
        out.extend(list_images(path) if path.is_dir() else [path])
    return out


def _mask_for(mask: str | None, pred: Path) -> Path | None:
    if mask is None:
        return None
    mp = Path(mask)
    if not mp.is_dir():
        return mp
    from ...io.images import list_images

    for cand in list_images(mp):
        if cand.stem == pred.stem:
            return cand
    raise InputFileError(f"{pred}: no mask with stem {pred.stem!r} in {mp}.")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def run(args: argparse.Namespace, out_dir: Path, progress: bool) -> list[Section]:
    mask = getattr(args, "mask", None)
    if isinstance(mask, (list, tuple)):
        mask = mask[0] if mask else None
    ref = getattr(args, "ref", None)
    preds = _expand(list(args.pred))
    if not preds:
        raise InputValueError(f"--pred: no image found in {' '.join(map(str, args.pred))}.")
    if len(preds) == 1 and not Path(args.pred[0]).is_dir():
        p = preds[0]
        summary, result = analyze_one(p, mask=_mask_for(mask, p), ref=ref, name=str(p),
                                      value_range=getattr(args, "value_range", None))
        return [write_tiling_report(out_dir, summary, result, title=f"Tiling: {p.name}", index=False)]

    rows: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    used: set[str] = set()
    iterator: Any = preds
    if progress:
        from tqdm import tqdm

        iterator = tqdm(preds, desc="tiling", unit="image")
    for p in iterator:
        sub = unique_name(p.stem, used, default="pred")
        try:
            summary, result = analyze_one(p, mask=_mask_for(mask, p), ref=ref, name=str(p),
                                          value_range=getattr(args, "value_range", None))
        except TrackdiagError as exc:
            problems.append({"pred": str(p), "status": "error", "error": _one_line(exc)})
            continue
        write_tiling_report(out_dir / sub, summary, result, title=f"Tiling: {p.name}")
        rows.append({"pred": str(p), "folder": sub, "status": "ok", **summary})
    _write_csv(out_dir / "summary.csv", rows + problems)
    table_keys = ("fundamental_period_px", "periodicity_score", "E2f_over_Ef", "Ehalf_over_Ef", "band_score",
                  "checkerboard_score", "border_cross_index")
    table = [{"pred": r["pred"], "report": f"{r['folder']}/index.html", **{k: r.get(k) for k in table_keys}}
             for r in rows]
    agg = _aggregate(rows)
    agg.update({"images": len(preds), "images_failed": len(problems)})
    section = Section(title="Tiling diagnosis", summary=agg,
                      tables={"images": table, **({"problems": problems} if problems else {})},
                      notes=[(f"{len(rows)} of {len(preds)} images analysed; each has its report in its own "
                             "sub-folder, and summary.csv has one row per image.")])
    if problems:
        err = InputFileError("; ".join(f"{q['pred']}: {q['error']}" for q in problems)[:2000])
        err.sections = [section]  # type: ignore[attr-defined]
        raise err
    return [section]


def _aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of every numeric key over the images (NaN-aware)."""
    out: dict[str, Any] = {}
    if not rows:
        return out
    for key, value in rows[0].items():
        if not isinstance(value, float):
            continue
        vals = np.asarray([r.get(key, math.nan) for r in rows], dtype=np.float64)
        finite = vals[np.isfinite(vals)]
        out[key] = float(finite.mean()) if finite.size else float("nan")
    return out


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v)
                        for k, v in r.items()})
