"""Score the tiling diagnosis against ground truth: per-cause precision/recall/F1, clean false alarms,
exact-verdict-set rate, base-period accuracy, perspective firing rates, and the misses.

    PYTHONPATH=. python benchmarks/eval_tiling.py --n-per-cause 20 --cache /tmp/walls_cache --workers 2 \
        --out /tmp/eval_tiling.json
    PYTHONPATH=. python benchmarks/eval_tiling.py --real-dev ../shared/bench/real-dev --out /tmp/real_dev.json
    PYTHONPATH=. python benchmarks/eval_tiling.py --n-per-cause 20 --cache /tmp/walls_cache --generate-only

Generated scenes (``trackdiag.testing.walls``) are deterministic by ``--seed``; with ``--cache`` they are
stored there on the first run and read back afterwards, so that calibration runs only pay for the diagnosis.
Writes nothing outside ``--cache`` and ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trackdiag.testing.walls.evaluate import format_table, metrics, run, run_real_dev, sample_specs
from trackdiag.testing.walls.truth import CAUSES, TARGET_CAUSES


def _size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w or h)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real-dev", metavar="DIR",
                    help="score real-dev's cases.json in DIR instead of generated scenes")
    ap.add_argument("--n-per-cause", type=int, default=20,
                    help="generated scenes per cause and clean (default 20)")
    ap.add_argument("--causes", default=",".join(TARGET_CAUSES),
                    help=f"comma-separated causes (default: the targets); known: {','.join(CAUSES)}")
    ap.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    ap.add_argument("--size", type=_size, default=None,
                    help="fixed frame size HxW (default: drawn, 512–1024)")
    ap.add_argument("--combos", type=int, default=0,
                    help="also this many scenes of each two-cause combination (evaluate.COMBOS; default 0)")
    ap.add_argument("--no-twins", action="store_true",
                    help="no clean twins of checkerboard/aliasing/period scenes")
    ap.add_argument("--cache", metavar="DIR", help="folder for generated scenes (read back when present)")
    ap.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    ap.add_argument("--generate-only", action="store_true", help="only generate the scenes into --cache")
    ap.add_argument("--limit", type=int, default=None, help="at most this many scenes (quick checks)")
    ap.add_argument("--out", metavar="JSON", help="write the metrics and the per-scene records here")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    if args.real_dev:
        records = run_real_dev(args.real_dev, workers=args.workers, limit=args.limit)
    else:
        causes = [c.strip() for c in args.causes.split(",") if c.strip()]
        unknown = [c for c in causes if c not in CAUSES]
        if unknown:
            ap.error(f"unknown causes {unknown}; known: {', '.join(CAUSES)}")
        specs = sample_specs(causes=causes, n_per_cause=args.n_per_cause, seed=args.seed,
                             twins=not args.no_twins, size=args.size, combos=args.combos)
        if args.limit is not None:
            specs = specs[:args.limit]
        if args.generate_only and not args.cache:
            ap.error("--generate-only needs --cache")
        records = run(specs, cache=args.cache, workers=args.workers, diagnose=not args.generate_only,
                      progress=not args.quiet)
        if args.generate_only:
            print(f"{len(records)} scenes in {args.cache}")
            return 0
    m = metrics(records)
    print(format_table(m))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"metrics": m, "records": records}, indent=1, default=str))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
