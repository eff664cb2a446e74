"""Write the dataset health report: ``flagged.csv``, ``summary.json`` and ``index.html`` with figures."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..report.folder import Figure, Section, write_report
from ..verdicts import Verdict
from .records import CHECKS, DATASET_LEVEL
from .scan import ScanResult

__all__ = ["write_flagged_csv", "summary_dict", "write_dataset_report", "EXAMPLES_PER_CHECK"]

#: Thumbnails per check in the report's contact sheets.
EXAMPLES_PER_CHECK = 12
_THUMB_SIDE = 128


def write_flagged_csv(res: ScanResult, path: Path) -> Path:
    """``path,check,reason``, one row per finding, sorted by path then check name."""
    from ..io.tables import write_csv

    rows = [{"path": fl.path, "check": fl.check, "reason": fl.reason}
            for fl in sorted(res.flags, key=lambda x: (x.path, x.check))]
    write_csv(path, rows, columns=["path", "check", "reason"])
    return path


def _finite(values: list[float]) -> np.ndarray:
    a = np.asarray(values, np.float64)
    return a[np.isfinite(a)]


def summary_dict(res: ScanResult) -> dict[str, Any]:
    """The machine-readable summary (strict JSON once written: NaN becomes null)."""
    recs = res.records
    counts = Counter(f.check for f in res.flags)
    flagged_paths = {f.path for f in res.flags if f.check not in DATASET_LEVEL}
    periods = _finite([r.period_px for r in recs])
    out: dict[str, Any] = {
        "images": len(recs),
        "images_readable": sum(r.error is None for r in recs),
        "masks_paired": sum(r.mask_path is not None for r in recs),
        "images_flagged": len(flagged_paths),
        "flags_total": len(res.flags),
        "checks": {name: int(counts.get(name, 0)) for name in CHECKS},
        "brightness_median": res.photometry["brightness"].median if res.photometry else float("nan"),
        "brightness_robust_sigma": res.photometry["brightness"].scale if res.photometry else float("nan"),
        "contrast_median": res.photometry["contrast"].median if res.photometry else float("nan"),
        "contrast_robust_sigma": res.photometry["contrast"].scale if res.photometry else float("nan"),
        "period_px_median": float(np.median(periods)) if periods.size else float("nan"),
        "period_measured": int(periods.size),
        "duplicate_groups": len(res.duplicate_groups),
        "near_duplicate_groups": len(res.near_duplicate_groups),
        "elapsed_s": res.elapsed_s,
        "images_per_second": res.images_per_second,
        "workers": res.workers,
        "images_root": res.root,
        "masks_root": res.masks_root,
    }
    if res.crop is not None:
        c = res.crop
        out.update({"crop_bias": c.biased, "crop_centroid_x": c.mean_x, "crop_centroid_y": c.mean_y,
                    "crop_centroid_offset": c.offset, "crop_masks_used": c.n})
    cov = _finite([r.mask.coverage for r in recs if r.mask is not None])
    if cov.size:
        out["mask_coverage_median"] = float(np.median(cov))
    out["params"] = dict(vars(res.params))
    return out


def _thumb(path: str, mask_path: str | None = None) -> np.ndarray | None:
    """A small RGB thumbnail; the wall of a readable, same-size mask is tinted red."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            size = opened.size
            opened.draft("RGB", (_THUMB_SIDE, _THUMB_SIDE))
            im = opened.convert("RGB")
            im.thumbnail((_THUMB_SIDE, _THUMB_SIDE))
            rgb = np.asarray(im, dtype=np.float32)
    except Exception:  # a thumbnail is best effort; the file is already reported
        return None
    if mask_path is not None:
        try:
            with Image.open(mask_path) as m:
                if m.size == size:
                    wall = np.asarray(m.convert("L").resize(im.size, Image.Resampling.NEAREST)) > 127
                    rgb[wall] = 0.6 * rgb[wall] + 0.4 * np.asarray([255, 0, 0], np.float32)
        except Exception:
            pass
    return rgb.round().astype(np.uint8)


def _save(rgb: np.ndarray, out_dir: Path, rel: str) -> str:
    from ..plots import save_rgb_png

    save_rgb_png(rgb, out_dir / rel)
    return rel


def dataset_verdicts(res: Any) -> list[Verdict]:
    """One verdict per check that flagged files (most files first); ``dataset_ok`` (info) when none did."""
    by_check: dict[str, list[str]] = {}
    for f in res.flags:
        by_check.setdefault(f.check, []).append(f.path)
    verdicts = []
    for check, paths in sorted(by_check.items(), key=lambda kv: -len(kv[1])):
        verdicts.append(Verdict(code=f"dataset_{check}", title=f"{check}: {CHECKS[check]}",
                                evidence={"files": len(paths), "e.g.": paths[0]},
                                fix=_FIXES.get(check, "see docs/dataset.md"),
                                severity="bad" if check in _BAD else "warn"))
    if not by_check:
        verdicts.append(Verdict(code="dataset_ok", title="no problem found",
                                evidence={"images": len(res.records)}, fix="", severity="info"))
    return verdicts


def write_dataset_report(res: ScanResult, out_dir: str | Path) -> Path:
    """Write the report folder; returns the path of ``index.html``."""
    from ..plots import heatmap
    from ..plots.dataset import centroid_map, contact_sheet, pixel_histogram, value_histogram

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_flagged_csv(res, out / "flagged.csv")
    summary = summary_dict(res)
    recs = res.records
    by_check: dict[str, list[str]] = {}
    for f in res.flags:
        by_check.setdefault(f.check, []).append(f.path)
    p = res.params
    sections: list[Section] = []

    # Overview
    verdicts = dataset_verdicts(res)
    overview = {k: v for k, v in summary.items() if not isinstance(v, dict)}
    overview.update({f"checks.{k}": v for k, v in summary["checks"].items() if v})
    sections.append(Section(title="Dataset health", summary=overview, verdicts=verdicts, notes=[
        "Every finding is a row of flagged.csv (path, check, reason). Check names are stable; "
        "see docs/dataset.md."]))
    rows = [{"path": f.path, "check": f.check, "reason": f.reason}
            for f in sorted(res.flags, key=lambda x: (x.check, x.path))]
    sections.append(Section(title="Flagged files", tables={"findings (first 500; all in flagged.csv)": rows}))

    # Photometry
    ok = [r for r in recs if r.error is None]
    figs = []
    if ok and res.photometry:
        sb, sc = res.photometry["brightness"], res.photometry["contrast"]
        dark = set(by_check.get("dark", [])) | set(by_check.get("bright", []))
        low = set(by_check.get("low_contrast", []))
        figs.append(Figure(_save(value_histogram(
            [r.brightness for r in ok], title="mean brightness per image", xlabel="mean luma",
            lines={"median": sb.median, f"-{p.z_threshold:g} robust σ": sb.median - p.z_threshold * sb.scale,
                   f"+{p.z_threshold:g} robust σ": sb.median + p.z_threshold * sb.scale},
            flagged=[r.brightness for r in ok if r.path in dark]), out, "dataset/brightness.png"),
            "Brightness", "Red: images flagged dark or bright (outside the dashed robust-z limits or the "
                          "absolute limits)."))
        figs.append(Figure(_save(value_histogram(
            [r.contrast for r in ok], title="RMS contrast per image", xlabel="std of luma",
            lines={"median": sc.median, f"-{p.z_threshold:g} robust σ": sc.median - p.z_threshold * sc.scale},
            flagged=[r.contrast for r in ok if r.path in low]), out, "dataset/contrast.png"),
            "Contrast", "Red: images flagged low_contrast."))
        figs.append(Figure(_save(pixel_histogram(res.luma_hist), out, "dataset/pixel_histogram.png"),
                           "Pixel brightness", "All pixels of all readable images: a skew here is a skew "
                                               "of the whole dataset, not of single files."))
    sections.append(Section(title="Brightness and contrast", figures=figs))

    # Periodicity
    periods = [r.period_px for r in ok if np.isfinite(r.period_px)]
    figs = []
    if periods:
        figs.append(Figure(_save(value_histogram(
            periods, title="texture period per image (dominant_period)", xlabel="period (px)",
            flagged=[r.period_px for r in ok if r.path in set(by_check.get("tiled_texture", []))]),
            out, "dataset/periods.png"), "Texture periods",
            "Red: textures that repeat exactly (already tiled). Compare with your crop size."))
    notes = [] if periods else ["Periodicity was not measured (trackdiag.functional.spectral unavailable)."]
    sections.append(Section(title="Tiled source textures", figures=figs, notes=notes))

    # Masks and crop bias
    with_mask = [r.mask for r in ok if r.mask is not None]
    figs = []
    if with_mask:
        figs.append(Figure(_save(value_histogram([m.coverage for m in with_mask], title="mask coverage",
                                                 xlabel="share of wall pixels"), out, "dataset/coverage.png"),
                           "Mask coverage", "Spikes at 0 or 1 are empty or full masks."))
        if res.mask_prior is not None:
            figs.append(Figure(_save(heatmap(res.mask_prior, title="typical mask (median)", cmap="gray",
                                             vmin=0, vmax=1), out, "dataset/mask_prior.png"),
                               "Typical mask", "Masks anti-correlated with this are flagged mask_inverted."))
        c = res.crop
        figs.append(Figure(_save(centroid_map(
            [m.centroid_x for m in with_mask], [m.centroid_y for m in with_mask],
            mean=(c.mean_x, c.mean_y) if c else (float("nan"), float("nan")), prior=res.mask_prior),
            out, "dataset/centroids.png"), "Crop bias",
            "Each dot is the centre of a wall mask in its crop. A mean far from the centre is crop bias."))
    notes = [res.crop.reason] if res.crop is not None else (
        [] if with_mask else ["No masks (give --mask MASKS to check them)."])
    sections.append(Section(title="Masks and crop bias", figures=figs, notes=notes))

    # Duplicates
    dup_rows = [{"kind": kind, "kept": g[0], "copies": len(g) - 1, "others": "; ".join(g[1:4])
                 + (" …" if len(g) > 4 else "")}
                for kind, groups in (("duplicate", res.duplicate_groups),
                                     ("near_duplicate", res.near_duplicate_groups)) for g in groups]
    sections.append(Section(title="Duplicates", tables={"groups": dup_rows} if dup_rows else {},
                            notes=[] if dup_rows else ["No duplicates."]))

    # Examples per check (the wall of the mask tinted red)
    mask_of = {r.path: r.mask_path for r in recs if r.mask_path is not None}
    figs = []
    for check, paths in sorted(by_check.items()):
        if check in DATASET_LEVEL or check == "corrupt":
            continue
        thumbs, caps = [], []
        for path in paths[:EXAMPLES_PER_CHECK]:
            t = _thumb(path, mask_of.get(path))
            if t is not None:
                thumbs.append(t)
                caps.append(Path(path).name)
        if thumbs:
            figs.append(Figure(_save(contact_sheet(thumbs, caps, title=check), out,
                                     f"dataset/examples_{check}.png"), check,
                               CHECKS[check] + " (wall tinted red where the mask could be overlaid)"))
    sections.append(Section(title="Examples", figures=figs))

    from ..report.folder import write_json

    write_json(summary, out / "summary.json")
    return write_report(out, sections, title="trackdiag dataset health", kind="dataset")


_BAD = frozenset({"corrupt", "mask_unreadable", "mask_size_mismatch", "mask_empty", "mask_full",
                  "mask_inverted", "mask_missing", "tiled_texture", "mask_offset"})

_FIXES = {
    "corrupt": "re-export or drop the files; a training loader would crash or skip them",
    "mask_missing": "masks pair with images by relative path and stem (images/a/b.jpg ↔ masks/a/b.png)",
    "mask_unreadable": "re-export the masks as 8-bit PNG",
    "mask_size_mismatch": "resize masks with nearest-neighbour to the image size, or fix the pairing",
    "mask_empty": "drop the sample or redo the mask; check that masks use 0/255 and wall = white",
    "mask_full": "check the mask; an all-wall mask gives the model no boundary to learn",
    "mask_not_binary": "threshold at 127 and save as PNG (JPEG and bilinear resizing make grey edges)",
    "mask_inverted": "invert these masks (wall must be white, > 0.5)",
    "mask_fragmented": "clean the masks with a morphological opening, or drop speckled ones",
    "mask_holes": "fill pinholes with a morphological closing",
    "mask_offset": "re-align masks and images (a crop or resize applied to one and not the other)",
    "dark": "check exposure; drop or re-balance outliers",
    "bright": "check exposure; drop or re-balance outliers",
    "low_contrast": "check for washed-out or blank images",
    "duplicate": "drop the copies, or the model over-weights those samples",
    "near_duplicate": "drop or down-weight near copies",
    "tiled_texture": "use untiled sources, or crop to one tile; tiled sources teach the model period "
                     "doubling",
    "period_too_small": "use larger crops at the same scale, or downscale less",
    "period_too_large": "use larger crops, or downscale the source so that the crop holds several periods",
    "crop_bias": "sample crop positions uniformly around the wall, or augment with flips and shifts",
}
