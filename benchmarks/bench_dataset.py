"""Dataset health scan: throughput against CleanVision on the same folder and cores, and what each one finds.

The folder holds generated wall scenes (``skimage.data.brick`` crops as the wall band between a ceiling and a
floor, a lighting gradient and tint, saved as JPEG) with PNG masks, and planted problems with known truth:
dark, over-exposed and low-contrast shots, exact and near duplicates (same scene re-encoded), and broken
masks (empty, inverted, shifted) that only a mask-aware scan can see.

Rows (all measured in this one run, on this machine's CPUs):

* ``images_per_second_workers<N>`` (every check) and ``images_per_second_cheap_tier_workers<N>`` for
  trackdiag's local pool and ``cleanvision_images_per_second`` for CleanVision's ``find_issues(n_jobs=N)``
  with its default issue types: the same folder (in the page cache for both: written just before, read by
  every run), each tool timed end to end in a fresh Python process (its pool start-up and lazy imports
  included, the package import not). 5 rounds (1 with ``--quick``); each round runs the full scan and
  CleanVision back to back, their order alternating round by round, then the cheap tier, so that a change in
  the machine's load hits both tools alike. The ratios ``speedup_vs_cleanvision`` / ``_cheap_tier`` are the
  medians of the per-round ratios, ``speedup_vs_cleanvision_worst_round`` / ``_best_round`` their range;
* ``cpu_seconds_all_processes_workers<N>``, ``cleanvision_cpu_seconds_all_processes`` and
  ``cpu_speedup_vs_cleanvision_all_processes``: in the same runs, the CPU time of every process each tool
  ran (trackdiag: caller, forkserver with its imports, workers; CleanVision: its process and its pool),
  the median of the per-round ratios. On a shared machine images/s follow the load; the CPU a tool needs
  on the same cores follows it much less;
* ``images_per_second_workers0``: trackdiag in-process;
* ``cpu_ms_per_image_coarse_period`` / ``_full_period`` / ``_cheap_tier``, ``cpu_full_over_coarse_period``,
  ``cleanvision_cpu_ms_per_image`` and ``cpu_speedup_vs_cleanvision``: CPU time per image (load-independent),
  in-process scans of the same 40 images with masks (trackdiag's batches as in a real scan; CleanVision
  ``n_jobs=1``), the variants alternated round by round, the best of three rounds each;
* ``images_per_second_full_res_period_workers<N>`` / ``speedup_vs_cleanvision_full_res_period``: every check
  with the period always estimated at full resolution (``coarse_period_min_px=0``, the scan before the
  coarse-first estimate), and ``coarse_period_flags_equal``: both flag the same (path, check) pairs;
* recall / false alarms of both tools on the problems they share (dark, light/bright, low contrast /
  low information, exact and near duplicates), and trackdiag's recall on the mask problems.

CleanVision comes with the ``bench`` extra (``pip install 'trackdiag[bench]'``); without it the CleanVision
rows are left out.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import row

SIDE = 512
#: planted problem → (trackdiag check, CleanVision issue column or None)
SHARED = {"dark": ("dark", "is_dark_issue"), "light": ("bright", "is_light_issue"),
          "low_contrast": ("low_contrast", "is_low_information_issue"),
          "duplicate": ("duplicate", "is_exact_duplicates_issue"),
          "near_duplicate": ("near_duplicate", "is_near_duplicates_issue")}
MASK_ONLY = {"mask_empty": "mask_empty", "mask_inverted": "mask_inverted", "mask_offset": "mask_offset"}


def _brick() -> np.ndarray:
    from skimage import data

    b = data.brick().astype(np.float32) / 255.0  # 512×512 grey photo of a brick wall
    return np.tile(b, (2, 2))


def _scene(rng: np.random.Generator, brick: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One wall scene (``SIDE×SIDE×3`` float in [0, 1]) and its wall mask (bool)."""
    top, bot = int(rng.integers(40, 150)), int(rng.integers(SIDE - 150, SIDE - 40))
    y0, x0 = rng.integers(0, brick.shape[0] - SIDE, 2)
    wall = brick[y0:y0 + SIDE, x0:x0 + SIDE]
    wall = (wall - wall.mean()) * rng.uniform(0.8, 1.3) + rng.uniform(0.4, 0.6)
    yy = np.linspace(0, 1, SIDE)[:, None]
    img = np.empty((SIDE, SIDE), np.float32)
    img[:top] = rng.uniform(0.6, 0.9) - 0.1 * yy[:top]
    img[bot:] = rng.uniform(0.2, 0.5) + 0.05 * yy[bot:]
    img[top:bot] = wall[top:bot]
    # Lighting: a soft gradient across the frame and a colour tint.
    ang = rng.uniform(0, 2 * np.pi)
    xx = np.linspace(-0.5, 0.5, SIDE)
    light = 1 + rng.uniform(0.05, 0.25) * (np.cos(ang) * xx[None, :] + np.sin(ang) * xx[:, None])
    rgb = np.clip((img * light)[..., None] * rng.uniform(0.9, 1.1, 3), 0, 1)
    mask = np.zeros((SIDE, SIDE), bool)
    mask[top:bot] = True
    return rgb, mask


def _u8(a: np.ndarray) -> np.ndarray:
    return (np.clip(a, 0, 1) * 255).round().astype(np.uint8)


def make_folder(root: Path, n: int, *, seed: int = 0) -> dict[str, str]:
    """``root/images/*.jpg`` and ``root/masks/*.png``; returns ``{stem: planted problem}`` ("" = clean)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    brick = _brick()
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    kinds = ["dark", "light", "low_contrast", "duplicate", "near_duplicate", *MASK_ONLY]
    per_kind = max(1, n // 50)
    plan = [k for k in kinds for _ in range(per_kind)]
    plan += [""] * (n - len(plan))
    truth: dict[str, str] = {}
    clean: list[str] = []
    sources: set[str] = set()
    order = rng.permutation(len(plan))
    for idx, j in enumerate(order):
        kind = plan[j]
        stem = f"{idx:05d}"
        rgb, mask = _scene(rng, brick)
        img_path, mask_path = root / "images" / f"{stem}.jpg", root / "masks" / f"{stem}.png"
        q = int(rng.integers(85, 96))
        if kind in ("duplicate", "near_duplicate") and clean:
            src = clean[int(rng.integers(len(clean)))]
            sources.add(src)
            if kind == "duplicate":
                shutil.copyfile(root / "images" / f"{src}.jpg", img_path)
            else:
                with Image.open(root / "images" / f"{src}.jpg") as im:
                    a = np.asarray(im.convert("RGB"), np.float32) / 255.0
                Image.fromarray(_u8(a * 1.03 + 0.01)).save(img_path, quality=q - 10)
            shutil.copyfile(root / "masks" / f"{src}.png", mask_path)
            truth[stem] = kind
            continue
        if kind == "dark":
            rgb = rgb * 0.12
        elif kind == "light":
            rgb = 1 - (1 - rgb) * 0.1
        elif kind == "low_contrast":
            rgb = rgb.mean() + (rgb - rgb.mean()) * 0.08
        m = mask
        if kind == "mask_empty":
            m = np.zeros_like(mask)
        elif kind == "mask_inverted":
            m = ~mask
        elif kind == "mask_offset":
            m = np.roll(mask, 5, axis=0)
        Image.fromarray(_u8(rgb)).save(img_path, quality=q)
        Image.fromarray(m.astype(np.uint8) * 255).save(mask_path)
        truth[stem] = kind if kind in SHARED or kind in MASK_ONLY else ""
        if not kind:
            clean.append(stem)
    for src in sources:  # the original of a duplicate is neither planted nor clean (tools differ on it)
        truth[src] = "source"
    return truth


#: Both children print ``wall_seconds cpu_seconds``: the CPU of the child and of every process it started
#: (pool workers; trackdiag's forkserver is stopped first so that its CPU, its imports included, and its
#: workers' are reaped into the child's own count).
_CPU = """
import resource
def _cpu():
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
"""

_TRACKDIAG_RUN = _CPU + """
import sys, time
from trackdiag.dataset import ScanParams, scan
if __name__ == "__main__":
    c, t = _cpu(), time.perf_counter()
    scan(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]), progress=False,
         params=ScanParams(spectral_tier=sys.argv[4] == "1"))
    wall = time.perf_counter() - t
    from multiprocessing import forkserver
    if getattr(forkserver._forkserver, "_forkserver_pid", None):
        forkserver._forkserver._stop()  # reaps the forkserver (and, through it, the workers' CPU)
    print(wall, _cpu() - c)
"""

_CLEANVISION_RUN = _CPU + """
import logging, sys, time
from cleanvision import Imagelab
logging.getLogger("cleanvision").setLevel(logging.ERROR)
if __name__ == "__main__":
    c, t = _cpu(), time.perf_counter()
    Imagelab(data_path=sys.argv[1], verbose=False).find_issues(n_jobs=int(sys.argv[2]), verbose=False)
    print(time.perf_counter() - t, _cpu() - c)
"""


def _fresh_run(code: str, *args: object) -> tuple[float, float]:
    """``(wall seconds, CPU seconds of all its processes)`` that ``code`` reports, run in a fresh Python
    process that imports the same trackdiag."""
    import subprocess
    import sys

    import trackdiag

    root = str(Path(trackdiag.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(x for x in (root, os.environ.get("PYTHONPATH")) if x)}
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=1800, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    wall, cpu = proc.stdout.split()[-2:]
    return float(wall), float(cpu)


def _rates(found: set[str], truth: dict[str, str], kind: str) -> tuple[float, int]:
    """(recall on images planted with ``kind``, flagged clean images)."""
    planted = {s for s, k in truth.items() if k == kind}
    clean = {s for s, k in truth.items() if not k}
    recall = len(found & planted) / len(planted) if planted else float("nan")
    return recall, len(found & clean)


def run(quick: bool) -> list[dict]:
    from trackdiag.dataset import scan

    n = 40 if quick else 500
    workers = 2 if (os.cpu_count() or 1) <= 2 else min(8, os.cpu_count() or 1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        truth = make_folder(root, n)
        images, masks = root / "images", root / "masks"
        try:
            import cleanvision  # noqa: F401
            have_cv = True
        except ImportError:
            have_cv = False
        # Throughput: each tool in a fresh process; every round runs the full scan and CleanVision back to
        # back (their order alternating round by round, so that a load that rises or falls during a round
        # favours neither), then the cheap tier (see the module docstring).
        rounds = 1 if quick else 5
        secs: dict[str, list[float]] = {"all": [], "cheap": [], "cv": []}
        cpus: dict[str, list[float]] = {"all": [], "cheap": [], "cv": []}
        runs = {"all": (_TRACKDIAG_RUN, images, masks, workers, 1),
                "cheap": (_TRACKDIAG_RUN, images, masks, workers, 0),
                "cv": (_CLEANVISION_RUN, images, workers)}
        for r in range(rounds):
            order = ["all", "cv"] if r % 2 == 0 else ["cv", "all"]
            for name in [k for k in order if have_cv or k != "cv"] + ["cheap"]:
                wall, cpu = _fresh_run(*runs[name])
                secs[name].append(wall)
                cpus[name].append(cpu)
        ips = n / float(np.median(secs["all"]))
        ips_cheap = n / float(np.median(secs["cheap"]))
        rows.append(row("dataset_scan", f"images_per_second_workers{workers}", ips, "img/s",
                        f"{n} JPEG wall scenes {SIDE}x{SIDE} with masks, every check, fresh process end to "
                        f"end (pool start included); median of {rounds}; {os.cpu_count()} CPUs"))
        rows.append(row("dataset_scan", f"images_per_second_cheap_tier_workers{workers}", ips_cheap, "img/s",
                        "spectral tier off: photometry, duplicates, masks (CleanVision's check families, "
                        f"plus masks); fresh process, median of {rounds}"))
        rows.append(row("dataset_scan", f"cpu_seconds_all_processes_workers{workers}",
                        float(np.median(cpus["all"])), "s",
                        "every check: CPU of the scan's every process (caller, forkserver and its "
                        f"imports, workers) over the {n} images; median of {rounds}"))
        from trackdiag.dataset import ScanParams

        par = scan(images, masks, workers=workers, progress=False)  # the flags (recall, equalities below)
        cheap = scan(images, masks, workers=workers, progress=False, params=ScanParams(spectral_tier=False))
        t0 = time.perf_counter()
        fine = scan(images, masks, workers=workers, progress=False, params=ScanParams(coarse_period_min_px=0))
        ips_fine = n / (time.perf_counter() - t0)
        rows.append(row("dataset_scan", f"images_per_second_full_res_period_workers{workers}", ips_fine,
                        "img/s", "every check, the period at full resolution (coarse_period_min_px=0); "
                                 "in-process scan, warm forkserver"))
        pairs_fine = {(f.path, f.check) for f in fine.flags}
        rows.append(row("dataset_scan", "coarse_period_flags_equal",
                        float(pairs_fine == {(f.path, f.check) for f in par.flags}),
                        "bool", "the coarse-first period estimate flags the same (path, check) pairs"))
        same = {(f.path, f.check) for f in cheap.flags}
        full_cheap = {(f.path, f.check) for f in par.flags if f.check not in
                      ("tiled_texture", "period_too_small", "period_too_large")}
        rows.append(row("dataset_scan", "cheap_tier_flags_equal", float(same == full_cheap), "bool",
                        "the cheap tier flags the same (path, check) pairs as the full scan, periods aside"))
        serial_n = min(n, 10 if quick else 40)
        sub = root / "serial"
        (sub / "images").mkdir(parents=True)
        for s in sorted(truth)[:serial_n]:
            shutil.copyfile(images / f"{s}.jpg", sub / "images" / f"{s}.jpg")
        t0 = time.perf_counter()
        scan(sub / "images", workers=0, progress=False)
        rows.append(row("dataset_scan", "images_per_second_workers0", serial_n / (time.perf_counter() - t0),
                        "img/s", f"{serial_n} images in-process, no masks"))
        # CPU time per image (independent of the machine's load): in-process scans of the same images with
        # masks, each variant once per round, rounds alternated; the least disturbed round of each counts.
        # CleanVision's default issue types in-process (n_jobs=1) on the same images, in the same rounds.
        from trackdiag.dataset.scan import scan as _scan

        (sub / "masks").mkdir()
        for s in sorted(truth)[:serial_n]:
            shutil.copyfile(masks / f"{s}.png", sub / "masks" / f"{s}.png")
        variants = {"coarse": ScanParams(), "full": ScanParams(coarse_period_min_px=0),
                    "cheap": ScanParams(spectral_tier=False)}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        try:
            from cleanvision import Imagelab as _Lab
        except ImportError:
            _Lab = None
        for _ in range(3):
            for name, params in variants.items():
                c0 = time.process_time()
                _scan(sub / "images", sub / "masks", workers=0, progress=False, params=params)
                cpu[name].append(time.process_time() - c0)
            if _Lab is not None:
                import logging

                logging.getLogger("cleanvision").setLevel(logging.ERROR)
                c0 = time.process_time()
                _Lab(data_path=str(sub / "images"), verbose=False).find_issues(n_jobs=1, verbose=False)
                cpu.setdefault("cleanvision", []).append(time.process_time() - c0)
        ms = {name: min(v) / serial_n * 1e3 for name, v in cpu.items()}
        what = f"{serial_n} images in-process with masks, CPU time (best of 3 alternated rounds)"
        for name, key, label in (("coarse", "cpu_ms_per_image_coarse_period", "every check"),
                                 ("full", "cpu_ms_per_image_full_period", "every check, period at full res"),
                                 ("cheap", "cpu_ms_per_image_cheap_tier", "cheap tier (no periods)")):
            rows.append(row("dataset_scan", key, ms[name], "ms", f"{what}; {label}"))
        rows.append(row("dataset_scan", "cpu_full_over_coarse_period", ms["full"] / max(ms["coarse"], 1e-9),
                        "x", "CPU per image, period at full resolution / coarse-first (the default)"))
        if "cleanvision" in ms:
            cv = ms["cleanvision"]
            rows.append(row("dataset_scan", "cleanvision_cpu_ms_per_image", cv, "ms",
                            f"CleanVision default issue types, n_jobs=1, same {serial_n} images and rounds"))
            rows.append(row("dataset_scan", "cpu_speedup_vs_cleanvision", cv / ms["coarse"], "x",
                            "CleanVision's CPU per image / trackdiag's, every check (load-independent)"))
            rows.append(row("dataset_scan", "cpu_speedup_vs_cleanvision_cheap_tier", cv / ms["cheap"], "x",
                            "the same, trackdiag's cheap tier"))
        flagged: dict[str, set[str]] = {}
        for f in par.flags:
            flagged.setdefault(f.check, set()).add(Path(f.path).stem)
        for kind, (check, _) in SHARED.items():
            recall, fa = _rates(flagged.get(check, set()), truth, kind)
            rows.append(row("dataset_scan", f"trackdiag_recall_{kind}", recall, "frac", f"check {check}"))
            rows.append(row("dataset_scan", f"trackdiag_false_alarms_{kind}", fa, "images",
                            "clean images flagged"))
        for kind, check in MASK_ONLY.items():
            recall, fa = _rates(flagged.get(check, set()), truth, kind)
            rows.append(row("dataset_scan", f"trackdiag_recall_{kind}", recall, "frac",
                            "masks: CleanVision does not read them"))
        try:
            from cleanvision import Imagelab
        except ImportError:
            return rows
        import logging

        logging.getLogger("cleanvision").setLevel(logging.ERROR)
        lab = Imagelab(data_path=str(images), verbose=False)  # its findings (recall below)
        lab.find_issues(n_jobs=workers, verbose=False)
        t_cv = float(np.median(secs["cv"]))
        per_round = [c / a for a, c in zip(secs["all"], secs["cv"], strict=True)]
        rows.append(row("dataset_scan", "cleanvision_images_per_second", n / t_cv, "img/s",
                        f"CleanVision find_issues default issue types, n_jobs={workers}, same folder; fresh "
                        f"process, median of {rounds}"))
        rows.append(row("dataset_scan", "speedup_vs_cleanvision", float(np.median(per_round)), "x",
                        f"trackdiag workers={workers} (all checks incl. masks and periods) / CleanVision: "
                        f"median of the {rounds} rounds' ratios"))
        rows.append(row("dataset_scan", "speedup_vs_cleanvision_worst_round", min(per_round), "x",
                        "the same, the smallest of the rounds' ratios"))
        rows.append(row("dataset_scan", "speedup_vs_cleanvision_best_round", max(per_round), "x",
                        "the same, the largest of the rounds' ratios"))
        rows.append(row("dataset_scan", "cleanvision_cpu_seconds_all_processes", float(np.median(cpus["cv"])),
                        "s", f"CleanVision n_jobs={workers}: CPU of its every process; median of {rounds}"))
        cpu_rounds = [c / a for a, c in zip(cpus["all"], cpus["cv"], strict=True)]
        rows.append(row("dataset_scan", "cpu_speedup_vs_cleanvision_all_processes",
                        float(np.median(cpu_rounds)), "x",
                        "CleanVision's CPU (all processes) / trackdiag's, every check, fresh processes: the "
                        "share of the same cores each needs (less load-dependent than images/s); median of "
                        "the rounds' ratios"))
        rows.append(row("dataset_scan", "speedup_vs_cleanvision_full_res_period", ips_fine / (n / t_cv), "x",
                        "in-process scan, the period always at full resolution (the scan before the coarse "
                        "tier; warm pool) / CleanVision's median"))
        cheap_rounds = [c / a for a, c in zip(secs["cheap"], secs["cv"], strict=True)]
        rows.append(row("dataset_scan", "speedup_vs_cleanvision_cheap_tier", float(np.median(cheap_rounds)),
                        "x",
                        "trackdiag cheap tier (photometry, duplicates, masks) / CleanVision default issues: "
                        "median of the rounds' ratios"))
        issues = lab.issues
        for kind, (_, col) in SHARED.items():
            found = {Path(p).stem for p in issues.index[issues[col].astype(bool)]} if col in issues else set()
            recall, fa = _rates(found, truth, kind)
            rows.append(row("dataset_scan", f"cleanvision_recall_{kind}", recall, "frac", col))
            rows.append(row("dataset_scan", f"cleanvision_false_alarms_{kind}", fa, "images",
                            "clean images flagged"))
    return rows


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    for r in run(quick="--quick" in sys.argv):
        print(r)
