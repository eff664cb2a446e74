"""The tiling analyzer's full summary (no figures) on a 4×3×512×512 batch, against two yardsticks measured in
the same run on the same batch:

* one ``torch.fft.rfft2`` pass over the batch (goal: the full summary costs at most 20× that);
* the plain per-image numpy reference of the same metrics (``numpy_reference.py``, float64 as numpy does by
  default; goal: ≥ 10× faster). In the one-thread rows numpy is held to one thread as well
  (``threadpoolctl``: its least-squares detrend calls a multi-threaded BLAS); the last rows let both use
  their default thread counts.

The torch timings of the one-thread rows run with ``torch.set_num_threads(1)`` (restored afterwards):
numpy's FFT is single-threaded, and on a machine whose cores are shared, intra-op threads spin-wait on each
other. The machine's speed drifts (a shared VM: ±20 % within minutes), so the measurements are taken in
interleaved **rounds** (3; 1 with ``--quick``): each round times the summary (median of 5 calls; 2 with
``--quick``), the FFT (median of 15) and one pass of the reference, and yields its own ratios. Reported: the
median over rounds of each time and of each ratio, plus the lowest ratio of any round (``_worst``). ``_cpu``
rows use process CPU time instead of wall time (with one thread, the work done). The ``agreement_*`` rows are
the largest relative difference between the torch and numpy values of a key over the batch
(``AGREEMENT_KEYS``: the period metrics and the newer estimators' keys).

The two bench batches have no mask and no non-finite pixel: the summary takes its all-valid shortcuts there
(the plain Hann window for the frame and the vote windows, unit pair weights in the grid estimator; twelfth
sitting), which a masked wall never takes, so the ``tiling_4x3x512_walls`` row is the one for masked inputs.

Two more batches, timed once against their own rfft2 (not in rounds): a 4×3×256² batch (the fixed per-call
costs weigh more on small images; ``torch_calls`` counts the torch calls of one of its summaries) and four
generated 512² walls (``trackdiag.testing.walls``) with their
masks and a reference (``tiling_4x3x512_walls``: the mask seam, the tapered windows and the reference's own
lattice run as well, as in ``trackdiag.diagnose``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

import numpy as np
from common import row
from threadpoolctl import threadpool_limits


def _timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall time and mean process CPU time of ``fn()`` over ``repeat`` calls (after one warm-up)."""
    fn()
    walls = []
    c0 = time.process_time()
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), (time.process_time() - c0) / repeat


def _torch_calls(fn: Callable[[], object]) -> int:
    """How many torch functions and tensor methods ``fn()`` calls (a ``TorchFunctionMode`` count, nested
    calls included): on small images the summary's cost is mostly the dispatch of many small ops, and this
    count does not depend on the machine's load."""
    from torch.overrides import TorchFunctionMode

    count = 0

    class _Count(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            nonlocal count
            count += 1
            return func(*args, **(kwargs or {}))

    with _Count():
        fn()
    return count


def _walls(size: int):
    """Four generated walls (``B×3×size²`` in [0, 1]), their masks (``B×1×size²`` bool) and the first one's
    reference patch (``3×256×256``)."""
    import torch

    from trackdiag.testing.walls import make_scene

    draws = [("brick", None, False), ("tiles", "checkerboard", True), ("brick", "period_doubled", False),
             ("hex", "bands_rows", True)]
    scenes = [make_scene(kind=k, cause=c, seed=i, size=(size, size), with_ref=True, angled=a)
              for i, (k, c, a) in enumerate(draws)]
    pred = torch.stack([torch.from_numpy(s.pred_float()).permute(2, 0, 1) for s in scenes])
    mask = torch.stack([torch.from_numpy(s.mask)[None] for s in scenes])
    ref = torch.from_numpy(scenes[0].ref.astype(np.float32) / 255.0).permute(2, 0, 1)
    return pred, mask, ref


def _one_thread_vs_fft(fn: Callable[[], object], batch: object, repeat: int
                       ) -> tuple[tuple[float, float], tuple[float, float]]:
    """``_timed(fn, repeat)`` and ``_timed(rfft2(batch), 15)``, both with torch on one thread (restored) and
    without autograd."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            return _timed(fn, repeat), _timed(lambda: torch.fft.rfft2(batch), 15)
    finally:
        torch.set_num_threads(threads)


def run(quick: bool) -> list[dict]:
    reps = 2 if quick else 5
    import torch

    from trackdiag.analyzers.tiling import tiling_metrics
    from trackdiag.testing.numpy_reference import reference_metrics
    from trackdiag.testing.synth import wall_batch

    batch = wall_batch(4, 512, generator=torch.Generator().manual_seed(0))
    images = [b.permute(1, 2, 0).numpy().astype(np.float64) for b in batch]
    full = lambda: tiling_metrics(batch, maps=False)
    fft = lambda: torch.fft.rfft2(batch)

    def reference() -> tuple[list[dict], float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        out = [reference_metrics(img) for img in images]
        return out, time.perf_counter() - t0, time.process_time() - c0

    rounds: list[dict[str, float]] = []
    refs: list[dict] = []
    threads = torch.get_num_threads()
    with torch.no_grad():
        for _ in range(1 if quick else 3):  # the smoke form (--quick): one round, 2 calls per median
            r: dict[str, float] = {}
            torch.set_num_threads(1)
            try:
                r["full"], r["full_cpu"] = _timed(full, reps)
                r["maps"], _ = _timed(lambda: tiling_metrics(batch, maps=True), 1 if quick else 3)
                r["fft"], r["fft_cpu"] = _timed(fft, 15)
            finally:
                torch.set_num_threads(threads)
            with threadpool_limits(limits=1):  # numpy on one thread too (its BLAS is multi-threaded)
                refs, r["np"], r["np_cpu"] = reference()
            r["full_mt"], _ = _timed(full, reps)
            r["fft_mt"], _ = _timed(fft, 15)
            _, r["np_mt"], _ = reference()
            rounds.append(r)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    def ratio(num: str, den: str) -> tuple[float, list[float]]:
        values = [r[num] / r[den] for r in rounds]
        return statistics.median(values), values

    name = "tiling_4x3x512"
    rows = [
        row(name, "full_summary_1thread", med("full") * 1e3, "ms",
            "tiling_metrics(maps=False), torch 1 thread"),
        row(name, "full_summary_with_maps_1thread", med("maps") * 1e3, "ms",
            "plus the figure maps of sample 0"),
        row(name, "rfft2_1thread", med("fft") * 1e3, "ms", "one torch.fft.rfft2 over the 4×3×512×512 batch"),
        row(name, "numpy_reference_1thread", med("np") * 1e3, "ms", "numpy_reference.py, BLAS on 1 thread"),
    ]
    for label, num, den, goal, worst_is_max in (
            ("ratio_vs_rfft2_1thread", "full", "fft", "goal <= 20", True),
            ("speedup_vs_numpy_1thread", "np", "full", "goal >= 10", False),
            ("ratio_vs_rfft2_1thread_cpu", "full_cpu", "fft_cpu", "goal <= 20 (CPU time)", True),
            ("speedup_vs_numpy_1thread_cpu", "np_cpu", "full_cpu", "goal >= 10 (CPU time)", False),
            (f"ratio_vs_rfft2_{threads}threads", "full_mt", "fft_mt", "default threads", True),
            (f"speedup_vs_numpy_{threads}threads", "np_mt", "full_mt", "default threads, both", False)):
        mid, values = ratio(num, den)
        rows.append(row(name, label, mid, "x", f"{goal}; median of {len(values)} rounds"))
        rows.append(row(name, f"{label}_worst", max(values) if worst_is_max else min(values), "x",
                        "the least favourable round"))
    rows.append(row(name, f"full_summary_{threads}threads", med("full_mt") * 1e3, "ms",
                    "default torch threads"))
    # The same ratio on a 4×3×256² batch (the fixed costs weigh more on small images).
    small = wall_batch(4, 256, generator=torch.Generator().manual_seed(1))
    (t_small, c_small), (f_small, fc_small) = _one_thread_vs_fft(lambda: tiling_metrics(small, maps=False),
                                                                 small, reps)
    rows.append(row("tiling_4x3x256", "full_summary_1thread", t_small * 1e3, "ms",
                    "tiling_metrics(maps=False)"))
    rows.append(row("tiling_4x3x256", "ratio_vs_rfft2_1thread", t_small / f_small, "x",
                    "one rfft2 over the batch"))
    rows.append(row("tiling_4x3x256", "ratio_vs_rfft2_1thread_cpu", c_small / fc_small, "x", "CPU time"))
    with torch.no_grad():
        calls = _torch_calls(lambda: tiling_metrics(small, maps=False))
    rows.append(row("tiling_4x3x256", "torch_calls", float(calls), "calls",
                    "torch functions and tensor methods one summary calls (independent of the load)"))
    # Realistic walls (trackdiag.testing.walls, 512², two angled) with their masks and a reference: the
    # mask seam, the tapered windows and the reference's own lattice run as well.
    walls, mask, ref = _walls(512)
    (t_w, c_w), (f_w, fc_w) = _one_thread_vs_fft(
        lambda: tiling_metrics(walls, mask=mask, ref=ref, maps=False), walls, 1 if quick else 3)
    rows.append(row("tiling_4x3x512_walls", "full_summary_1thread", t_w * 1e3, "ms",
                    "tiling_metrics(mask=, ref=, maps=False) on generated walls"))
    rows.append(row("tiling_4x3x512_walls", "ratio_vs_rfft2_1thread", t_w / f_w, "x",
                    "one rfft2 over the batch"))
    rows.append(row("tiling_4x3x512_walls", "ratio_vs_rfft2_1thread_cpu", c_w / fc_w, "x", "CPU time"))
    with torch.no_grad():
        out = tiling_metrics(batch, maps=False)
    # Agreement: the largest |torch/numpy − 1| over the batch (values within 1e-3 of 0 on both sides count as
    # equal; a key NaN on one side only counts as a disagreement of 1). The newer estimators' keys: the
    # per-axis band keys, the doubled-zone map, the pair test, the fold fracs, the edge strips and the
    # scale trends (tests/tiling/test_tiling_reference.py holds them to their tolerances).
    for key in AGREEMENT_KEYS:
        diffs = []
        for i, r in enumerate(refs):
            a, b = float(out[key][i]), r[key]
            if math.isnan(a) or math.isnan(b):
                diffs.append(0.0 if math.isnan(a) and math.isnan(b) else 1.0)
            elif max(abs(a), abs(b)) < 1e-3:
                diffs.append(0.0)
            else:
                diffs.append(abs(a / b - 1) if b != 0 else 1.0)
        rows.append(row(name, f"agreement_{key}", max(diffs) if diffs else float("nan"), "rel",
                        "max |torch/numpy - 1| over the batch"))
    return rows


#: The keys whose torch/numpy agreement the benchmark reports.
AGREEMENT_KEYS = (
    "fundamental_period_px", "acf_first_peak_period_px", "band_base_period_px", "lattice_t1_px",
    "band_base_period_x_px", "band_base_period_y_px", "doubled_area_frac", "local_period_trend_x",
    "doubling_excess_max", "doubling_plain_corr", "pair_excess_max", "pair_plain_corr",
    "alias_fine_peak_frac", "alias_fold_peak_frac", "alias_win_fine_frac", "edge_score",
    "persp_trend_x", "centroid_trend_x", "scale_trend_x", "scale_corr_x", "strip_novelty_x",
    "centre_crop_period_px",
)
