"""The tiling analyzer's full summary (no figures) on a 4×3×512×512 batch, against two yardsticks measured in
the same run on the same batch:

* one ``torch.fft.rfft2`` pass over the batch (goal: the full summary costs at most 20× that);
* the plain per-image numpy reference of the same metrics (``numpy_reference.py``; goal: ≥ 10× faster).
  In the one-thread rows numpy is held to one thread as well (``threadpoolctl``: its least-squares detrend
  calls a multi-threaded BLAS); the last rows let both use their default thread counts.

Both torch timings run with ``torch.set_num_threads(1)`` (restored afterwards): numpy's FFT is single-threaded,
and on a machine whose cores are shared, intra-op threads spin-wait on each other and make elementwise ops
many times slower than the FFT, which would distort the ratio. Every timing is reported twice: wall time
(median) and process CPU time (``_cpu``, mean): on a shared, loaded machine the CPU time is the steadier
figure, and with one thread it is the work done. A last pair of rows uses the default thread count (wall
time). The ``agreement_*`` rows are the largest relative difference between the torch and numpy values of
the period metrics over the batch.
"""

from __future__ import annotations

import math
import time

import numpy as np
from common import row, time_call
from threadpoolctl import threadpool_limits


def cpu_call(fn, *, repeat: int = 5) -> float:
    """Mean process CPU time of ``fn()`` over ``repeat`` runs after one warm-up run."""
    fn()
    t0 = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - t0) / repeat


def run(quick: bool) -> list[dict]:
    import torch
    from numpy_reference import reference_metrics

    from trackdiag.analyzers.tiling import tiling_metrics
    from trackdiag.synth import wall_batch

    rows: list[dict] = []
    batch = wall_batch(4, 512, generator=torch.Generator().manual_seed(0))
    images = [b.permute(1, 2, 0).numpy().astype(np.float64) for b in batch]
    repeat = 2 if quick else 5
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.no_grad():
            t_full = time_call(lambda: tiling_metrics(batch, maps=False), repeat=repeat)
            t_maps = time_call(lambda: tiling_metrics(batch, maps=True), repeat=repeat)
            t_fft = time_call(lambda: torch.fft.rfft2(batch), repeat=max(5, repeat * 3))
            c_full = cpu_call(lambda: tiling_metrics(batch, maps=False), repeat=repeat)
            c_fft = cpu_call(lambda: torch.fft.rfft2(batch), repeat=max(10, repeat * 4))
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        t_full_mt = time_call(lambda: tiling_metrics(batch, maps=False), repeat=repeat)
        t_fft_mt = time_call(lambda: torch.fft.rfft2(batch), repeat=max(5, repeat * 3))
    def reference() -> tuple[list[dict], float, float]:
        """The numpy reference over the batch, best of one or two runs: (results, wall s, CPU s)."""
        best_t = best_c = math.inf
        for _ in range(1 if quick else 2):
            t0, c0 = time.perf_counter(), time.process_time()
            out = [reference_metrics(img) for img in images]
            best_t, best_c = min(best_t, time.perf_counter() - t0), min(best_c, time.process_time() - c0)
        return out, best_t, best_c

    # The one-thread rows hold numpy to one thread too: its least-squares detrend calls BLAS, which is
    # multi-threaded by default (numpy's own FFT is single-threaded).
    with threadpool_limits(limits=1):
        refs, t_np, c_np = reference()
    _, t_np_mt, _ = reference()

    name = "tiling_4x3x512"
    rows += [
        row(name, "full_summary_1thread", t_full * 1e3, "ms", "tiling_metrics(maps=False), torch 1 thread"),
        row(name, "full_summary_with_maps_1thread", t_maps * 1e3, "ms", "plus the figure maps of sample 0"),
        row(name, "rfft2_1thread", t_fft * 1e3, "ms", "one torch.fft.rfft2 over the 4×3×512×512 batch"),
        row(name, "ratio_vs_rfft2_1thread", t_full / t_fft, "x", "goal <= 20"),
        row(name, "numpy_reference_1thread", t_np * 1e3, "ms", "plain per-image numpy (numpy_reference.py), BLAS 1 thread"),
        row(name, "speedup_vs_numpy_1thread", t_np / t_full, "x", "goal >= 10"),
        row(name, "full_summary_1thread_cpu", c_full * 1e3, "ms", "process CPU time"),
        row(name, "rfft2_1thread_cpu", c_fft * 1e3, "ms", "process CPU time"),
        row(name, "ratio_vs_rfft2_1thread_cpu", c_full / c_fft, "x", "goal <= 20 (CPU time)"),
        row(name, "numpy_reference_cpu", c_np * 1e3, "ms", "process CPU time"),
        row(name, "speedup_vs_numpy_1thread_cpu", c_np / c_full, "x", "goal >= 10 (CPU time)"),
        row(name, f"full_summary_{threads}threads", t_full_mt * 1e3, "ms", "default torch threads"),
        row(name, f"ratio_vs_rfft2_{threads}threads", t_full_mt / t_fft_mt, "x", "same ratio, default threads"),
        row(name, f"numpy_reference_{threads}threads", t_np_mt * 1e3, "ms", "default BLAS threads"),
        row(name, f"speedup_vs_numpy_{threads}threads", t_np_mt / t_full_mt, "x", "default threads, both"),
    ]
    with torch.no_grad():
        out = tiling_metrics(batch, maps=False)
    for key in ("fundamental_period_px", "acf_first_peak_period_px", "band_base_period_px"):
        diffs = [abs(float(out[key][i]) / r[key] - 1) for i, r in enumerate(refs)
                 if math.isfinite(r[key]) and math.isfinite(float(out[key][i]))]
        rows.append(row(name, f"agreement_{key}", max(diffs) if diffs else float("nan"), "rel",
                        "max |torch/numpy - 1| over the batch"))
    return rows
