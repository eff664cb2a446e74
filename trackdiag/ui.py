"""``trackdiag ui``: start ``mlflow ui`` on the store a run used, bound to 127.0.0.1.

Examples::

    trackdiag ui                                   # ./mlruns.db, the default embedded store
    trackdiag ui --store sqlite:////home/me/exp/mlruns.db --port 5001
    trackdiag ui --store /home/me/exp/mlruns.db    # a path to the database works too

It runs ``<this python> -m mlflow ui --backend-store-uri <store> --host 127.0.0.1 --port <port>``, so it
works where ``mlflow`` is not on the PATH (a venv that is not active). Only this machine can reach it; over
SSH forward the port (``ssh -L 5000:127.0.0.1:5000 host``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

__all__ = ["main", "store_uri", "ui_command"]

HOST = "127.0.0.1"


def store_uri(store: Optional[str] = None) -> str:
    """An absolute MLflow store URI for ``store`` (a URI, a ``.db`` path, or None for ``./mlruns.db``)."""
    if store is None:
        store = "mlruns.db"
    if "://" not in store and not store.startswith("sqlite:"):
        return "sqlite:///" + str(Path(store).expanduser().resolve())
    prefix = "sqlite:///"
    rest = store[len(prefix):]
    if store.startswith(prefix) and not rest.startswith("/") and rest != ":memory:":
        return prefix + str(Path(rest).resolve())
    return store


def ui_command(store: Optional[str] = None, *, port: int = 5000) -> list[str]:
    """The command that starts the MLflow UI on ``store``."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store_uri(store),
            "--host", HOST, "--port", str(int(port))]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="trackdiag ui", description=__doc__.split("Examples::")[0].strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store",
                        help="MLflow store: a URI or a path to an sqlite .db (default ./mlruns.db)")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--print", dest="dry", action="store_true", help="print the command, do not run it")
    args = parser.parse_args(argv)
    uri = store_uri(args.store)
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        print(f"trackdiag ui: no MLflow database at {uri[len('sqlite:///'):]}; pass --store with the store "
              "your run used (finish() prints it)", file=sys.stderr)
        return 2
    cmd = ui_command(uri, port=args.port)
    if args.dry:
        import shlex

        print(shlex.join(cmd))
        return 0
    print(f"MLflow UI on http://{HOST}:{args.port} (store {uri}); Ctrl-C stops it", flush=True)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
