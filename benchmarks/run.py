"""Run every benchmark in this folder: ``python benchmarks/run.py [--quick] [--only NAME]`` (or ``make
bench``).

Each ``bench_*.py`` module exposes ``run(quick: bool) -> list[dict]``; a row is
``{"benchmark": str, "metric": str, "value": float, "unit": str, "note": str}``. Ratios are always measured
inside one run of one module, on the same data, so they are comparable on any machine.
Prints a table and writes ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (for CI smoke runs)")
    parser.add_argument("--only", action="append", default=[], help="run only bench_<NAME>.py (repeatable)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    rows: list[dict] = []
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        print(f"running {path.name} ...", flush=True)
        rows.extend(_load(path).run(quick=args.quick))
        print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    width = max((len(r["benchmark"]) + len(r["metric"]) for r in rows), default=20) + 3
    print(f"\n{'benchmark / metric':<{width}} {'value':>12}  unit      note")
    for r in rows:
        label = f"{r['benchmark']} / {r['metric']}"
        print(f"{label:<{width}} {r['value']:>12.4g}  {r['unit']:<8}  {r.get('note', '')}")
    import torch

    meta = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "threads": torch.get_num_threads(), "quick": args.quick}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
