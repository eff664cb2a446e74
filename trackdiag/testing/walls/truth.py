"""What a generated scene truly contains: causes (verdict codes), context, periods, perspective."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CAUSES", "REAL_DEV_NAMES", "TARGET_CAUSES", "Truth"]

#: every cause the generator can plant, by verdict code.
CAUSES = ("checkerboard", "grid_s8", "grid_s16", "doubled_zone", "period_doubled", "period_halved",
          "bands_rows", "bands_cols", "aliasing", "edge_artifact", "mask_seam")
#: the causes issue 11 sets F1 targets for (the default evaluation sample).
TARGET_CAUSES = ("checkerboard", "grid_s8", "doubled_zone", "period_doubled", "period_halved",
                 "bands_rows", "bands_cols", "aliasing")
#: real-dev truth names → verdict codes (``clean`` → no cause).
REAL_DEV_NAMES = {"checkerboard": "checkerboard", "vae_grid": "grid_s8", "doubling_zone": "doubled_zone",
                  "doubling": "period_doubled", "halving": "period_halved", "bands_rows": "bands_rows",
                  "bands_cols": "bands_cols", "aliasing": "aliasing", "edge_artifact": "edge_artifact",
                  "mask_seam": "mask_seam"}


@dataclass
class Truth:
    """Ground truth of one scene (JSON-friendly; field names follow real-dev's ``cases.json``).

    Attributes:
        id: scene id (unique in a sample; also its cache file stem).
        causes: verdict codes of the planted causes; ``[]`` for a clean scene.
        context: ``"perspective"`` (angled wall) and/or ``"aperiodic"`` (no period).
        texture: material name.
        size: ``[H, W]``.
        jpeg_q: JPEG quality of ``pred``.
        period_px: the wall's period at the frame centre (tile pitch, brick course height, hex/penny row
            spacing, plank width, wallpaper repeat), None for herringbone, aperiodic surfaces and aliasing.
        period_approx: True when ``period_px`` is measured (the brick photograph), not constructed.
        ref_period_px: the reference patch's period, None without a reference (or without a period).
        perspective_label: True when the local period changes by ≥ 20 % across the wall, False when < 10 %,
            None in between.
        period_change: ``(max - min) / median`` of the local period over the wall.
        true_trend_x, true_trend_y: slope of log local period against ``x / W`` and ``y / H``.
        band_axis: ``"rows"`` / ``"cols"`` for band scenes, else None.
        angled: the view is angled (else fronto-parallel with a small roll).
        twin_of: for a clean twin, the id of the scene it mirrors.
        params: the drawn artifact and material parameters.
    """

    id: str
    causes: list[str]
    context: list[str]
    texture: str
    size: list[int]
    jpeg_q: int
    period_px: float | None
    period_approx: bool
    ref_period_px: float | None
    perspective_label: bool | None
    period_change: float
    true_trend_x: float
    true_trend_y: float
    band_axis: str | None
    angled: bool
    twin_of: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Truth:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})
