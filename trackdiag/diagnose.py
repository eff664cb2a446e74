"""``python -m trackdiag.diagnose``: one offline report from images, training logs and latents.

Examples::

    python -m trackdiag.diagnose --pred replaced_wall.jpg --mask wall_mask.png --out diag_report/
    python -m trackdiag.diagnose --pred samples/ --ref tile_256.png --out reports/ckpt_1200
    python -m trackdiag.diagnose --images in.png out.png --mask m.png --report out_report
    python -m trackdiag.diagnose --logdir runs/exp1 --latents saved_latents/ --report out_report

Any mix of ``--pred``, ``--images``, ``--logdir`` and ``--latents`` in one call gives one report folder
with ``index.html`` and ``summary.json``, and a section for each. Exit status: 0 on success, 1 when a
requested section failed (the reason is printed on one line), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

from .errors import TrackdiagError
from .report.folder import Section, write_report
from .report.sections import SECTION_MODULES

__all__ = ["main", "build_parser"]


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f"trackdiag.report.sections.{name}") for name in SECTION_MODULES]


def build_parser(modules: Optional[Sequence[ModuleType]] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trackdiag.diagnose",
        description="Diagnose tiling artifacts, pixel defects, loss curves and latents offline.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples::", 1)[1] if __doc__ else None,
    )
    parser.add_argument("--out", "--report", dest="out", required=True, type=Path,
                        help="report folder (created); --report and --out mean the same")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    for module in modules if modules is not None else _modules():
        module.add_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    modules = _modules()
    parser = build_parser(modules)
    args = parser.parse_args(argv)
    chosen = [m for m in modules if m.wanted(args)]
    if not chosen:
        parser.error("nothing to diagnose: give --pred, --images, --logdir and/or --latents")
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    sections: list[Section] = []
    summary: dict[str, Any] = {}
    failures: list[str] = []
    for module in chosen:
        name = module.__name__.rsplit(".", 1)[1]
        try:
            produced = module.run(args, out_dir, progress=not args.no_progress)
        except TrackdiagError as exc:
            failures.append(f"{name}: {exc}")
            # A batch that failed part-way still reports what it finished (attached by the section).
            sections.extend(getattr(exc, "sections", []))
            sections.append(Section(title=f"{name}: failed", notes=[str(exc)]))
            continue
        sections.extend(produced)
        for sec in produced:
            if sec.summary:
                summary[sec.title] = dict(sec.summary)
    if len(chosen) > 1 or not (out_dir / "summary.json").exists():
        # A single-section run may have written the seed-compatible flat summary.json itself.
        from .report.folder import write_json

        write_json(summary, out_dir / "summary.json")
    index = write_report(out_dir, sections, title="trackdiag diagnosis")
    from .core.findings import add_verdict, console_text

    verdicts = [v for sec in sections for v in sec.verdicts]
    add_verdict(out_dir / "summary.json", verdicts)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    print(console_text(verdicts, title="diagnosis",
                       where=f"where to look: {index.resolve()} (the marked image first)"))
    print(f"report: {index}")
    return 1 if failures else 0



def diagnose(pred: Any, *, mask: Any = None, ref: Any = None, out_dir: Any = None,
             value_range: Optional[str] = None) -> dict[str, Any]:
    """Tiling diagnosis of one image: ``trackdiag.diagnose(pred, mask=..., ref=..., out_dir=...) -> dict``.

    ``pred``, ``mask`` and ``ref`` are paths, PIL images, numpy arrays or tensors. Returns the flat
    summary (the seed's keys) with ``"verdicts"``; writes the report folder when ``out_dir`` is given.
    ``value_range``: ``"0-1"``, ``"-1-1"``, ``"0-255"`` or None (guess; :mod:`trackdiag.core.value_range`).
    """
    from .report.sections.tiling import diagnose as _diagnose

    return _diagnose(pred, mask=mask, ref=ref, out_dir=out_dir, value_range=value_range)


class _CallableModule(type(sys)):  # type: ignore[misc]
    """Lets ``trackdiag.diagnose`` be both this module (for ``-m``) and the ``diagnose()`` function."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return diagnose(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
