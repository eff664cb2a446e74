"""A throw-away PostgreSQL server and an ``mlflow server`` on it, for tests and benchmarks of team stores.

:class:`Postgres` runs Debian's ``initdb`` / ``pg_ctl`` in a temporary folder, listening on 127.0.0.1 on a
free port only (its socket stays in that folder), and removes everything on :meth:`Postgres.stop`. As
root it runs the server as the ``postgres`` system user (PostgreSQL refuses to run as root).
:class:`MlflowOnPostgres` starts ``mlflow server --backend-store-uri postgresql://…`` on it.

Nothing here downloads anything; without PostgreSQL or ``psycopg2`` :func:`available` says why.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Optional

__all__ = ["Postgres", "MlflowOnPostgres", "available", "pg_bin"]


def pg_bin() -> Optional[Path]:
    """The folder of ``initdb`` / ``pg_ctl`` (Debian puts them in /usr/lib/postgresql/<v>/bin)."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _runuser() -> str:
    """``runuser`` (util-linux; in /usr/sbin, which a minimal PATH such as ``env -i``'s may lack)."""
    found = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(p, os.X_OK)), None)
    return found or "runuser"


def available() -> Optional[str]:
    """None when a PostgreSQL server and ``psycopg2`` are installed; else the reason in words."""
    if pg_bin() is None:
        return "PostgreSQL is not installed (apt-get install postgresql)"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install 'trackdiag[postgres]')"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Postgres:
    """One PostgreSQL cluster in a temporary folder; ``uri(db)`` is its SQLAlchemy URI."""

    def __init__(self) -> None:
        found = pg_bin()
        if found is None:
            raise RuntimeError(available() or "no PostgreSQL")
        self.bin: Path = found
        self.root = Path(tempfile.mkdtemp(prefix="trackdiag_pg_"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self.started = False

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = [_runuser(), "-u", "postgres", "--", *cmd]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root)
        if res.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({res.returncode}): {res.stderr[-2000:]}")

    def start(self) -> Postgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "pg.log"), "-w",
                  "-t", "60", "start")
        self.started = True
        return self

    def create_db(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.uri(name)

    def uri(self, name: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.started:
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except RuntimeError:
                pass
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MlflowOnPostgres:
    """``mlflow server`` on 127.0.0.1 with a PostgreSQL backend store and served artifacts in a temp
    folder; ``pid`` (its process group) after :meth:`start`."""

    def __init__(self, db_uri: str, *, workers: int = 1) -> None:
        self.db_uri = db_uri
        self.workers = workers  # 1 spares the CPU in tests; MLflow's own default (a team server) is 4
        self.root = Path(tempfile.mkdtemp(prefix="trackdiag_mlflow_pg_"))
        self.port = _free_port()
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> MlflowOnPostgres:
        mlflow = Path(sys.executable).parent / "mlflow"
        cmd = [str(mlflow), "server", "--backend-store-uri", self.db_uri, "--artifacts-destination",
               str(self.root / "artifacts"), "--host", "127.0.0.1", "--port", str(self.port), "--workers",
               str(self.workers)]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(self.root / "server.log", "ab") as fh:
            self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=self.root,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mlflow server exited:\n" + (self.root / "server.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> MlflowOnPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
