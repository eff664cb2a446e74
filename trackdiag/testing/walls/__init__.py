"""Realistic wall scenes with known causes, and the harness that scores the tiling diagnosis on them.

Quick use::

    from trackdiag.testing.walls import make_scene
    s = make_scene(kind="brick", cause="checkerboard", seed=3, angled=True)   # or cause=None / [...]
    s.pred      # H×W×3 uint8 (the decoded JPEG; s.pred_float() for float32 in [0, 1])
    s.mask      # H×W bool, True on the visible wall
    s.ref       # 256×256×3 uint8 reference patch, or None
    s.truth     # Truth: causes (verdict codes), context, period_px, ref_period_px, perspective_label, ...
    make_scene(kind="brick", cause="checkerboard", seed=3, angled=True, twin=True)  # its clean twin

    # score the diagnosis (N per cause + clean walls and clean twins; scenes cached on disk):
    #   PYTHONPATH=. python benchmarks/eval_tiling.py --n-per-cause 20 --cache /tmp/walls_cache --workers 2
    #   PYTHONPATH=. python benchmarks/eval_tiling.py --real-dev ../shared/bench/real-dev
    from trackdiag.testing.walls.evaluate import sample_specs, run, metrics, format_table
    print(format_table(metrics(run(sample_specs(n_per_cause=5), cache="/tmp/walls_cache"))))

Causes (verdict codes): checkerboard, grid_s8 (grid_s16), doubled_zone, period_doubled, period_halved,
bands_rows, bands_cols, aliasing, edge_artifact, mask_seam. Materials: tiles, brick, herringbone, hex, penny,
planks, wallpaper, photo_brick, stucco, gravel, photo_gravel, photo_grass. See docs/scenes.md.

Modules: :mod:`.materials` (textures in texture coordinates), :mod:`.camera` (homography), :mod:`.lighting`,
:mod:`.artifacts` (each cause by its mechanism), :mod:`.scene` (:func:`make_scene`), :mod:`.truth`,
:mod:`.evaluate` (the harness).
"""

from .materials import APERIODIC, MATERIALS, PERIODIC
from .scene import CAUSE_MATERIALS, SIZES, Scene, make_scene, scene_id
from .truth import CAUSES, REAL_DEV_NAMES, TARGET_CAUSES, Truth

__all__ = [
           "APERIODIC",
           "CAUSES",
           "CAUSE_MATERIALS",
           "MATERIALS",
           "PERIODIC",
           "REAL_DEV_NAMES",
           "SIZES",
           "TARGET_CAUSES",
           "Scene",
           "Truth",
           "make_scene",
           "scene_id",
]
