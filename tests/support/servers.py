"""Real tracker servers for tests: ``mlflow server`` and ``tensorboard`` as subprocesses on 127.0.0.1.

Start-ups dominate the cost (an ``mlflow server`` needs ~10 s of CPU), so one MLflow server is shared by
every test module that asks for it (:func:`shared_mlflow`); it is stopped when pytest ends. Test modules that
need it call :func:`prestart` at import, so the server boots while pytest collects and runs the other tests
(set ``TRACKDIAG_TEST_PRESTART=0`` to turn that off; under pytest-xdist every worker imports every module, so
there the servers boot on first use instead, on the one worker that runs their users: tests/conftest.py).
"""

from __future__ import annotations

import atexit
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

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


_TEMPLATE: list[Path] = []


def sqlite_store(path: Path) -> str:
    """A ready MLflow sqlite store at ``path``; returns its URI.

    Creating a store runs MLflow's ~50 schema migrations (seconds of CPU), so this copies one template store
    made once per process. Use named experiments: the template's Default experiment keeps the template's
    artifact folder.
    """
    if not _TEMPLATE:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        folder = Path(tempfile.mkdtemp(prefix="trackdiag_mlflow_template_"))
        atexit.register(shutil.rmtree, folder, True)
        store = SqlAlchemyStore(f"sqlite:///{folder / 'mlflow.db'}", str(folder / "artifacts"))
        store.engine.dispose()
        _TEMPLATE.append(folder / "mlflow.db")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATE[0], path)
    return f"sqlite:///{path}"


class _Server:
    """A subprocess in its own process group, with its output in ``log``."""

    health_path = "/"

    def __init__(self, root: Path, port: Optional[int] = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.log = self.root / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self, timeout: float = 240.0) -> _Server:
        _launch(self)
        return self.wait(timeout)

    def wait(self, timeout: float = 240.0) -> _Server:
        """Wait until the server answers its health check."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command()[:3]} exited with {self.proc.returncode}:\n"
                                   f"{self.log.read_text()[-3000:]}")
            if http_ok(self.url + self.health_path):
                return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"server did not answer on {self.url} within {timeout} s:\n"
                           f"{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Kill the server's process group (SIGKILL: an abrupt outage, as a crash or a lost host would be)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.proc = None
        deadline = time.monotonic() + 10
        while http_ok(self.url + self.health_path, timeout=0.5) and time.monotonic() < deadline:
            time.sleep(0.1)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class MlflowServer(_Server):
    """``mlflow server`` with a sqlite store and served artifacts in ``root``."""

    health_path = "/health"

    @property
    def store_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    def command(self) -> list[str]:
        if not (self.root / "mlflow.db").exists():
            sqlite_store(self.root / "mlflow.db")  # skip the migrations in the server
        return [str(BIN / "mlflow"), "server", "--backend-store-uri", self.store_uri,
                "--artifacts-destination", str(self.root / "artifacts"), "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", "1"]

    def env(self) -> dict[str, str]:
        # No background job runner: it is not needed here and costs a second Python process.
        return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


class TensorboardServer(_Server):
    def __init__(self, root: Path, logdir: Path, port: Optional[int] = None) -> None:
        super().__init__(root, port)
        self.logdir = logdir

    def command(self) -> list[str]:
        return [str(BIN / "tensorboard"), "--logdir", str(self.logdir), "--host", "127.0.0.1",
                "--port", str(self.port), "--samples_per_plugin", "images=100", "--load_fast", "false",
                "--reload_interval", "1"]


_SHARED: dict[str, _Server] = {}


def _launch(server: _Server) -> None:
    """Start the process without waiting for it to answer."""
    with open(server.log, "ab") as fh:
        server.proc = subprocess.Popen(server.command(), stdout=fh, stderr=subprocess.STDOUT,
                                       env=server.env(), cwd=server.root, start_new_session=True)
    if not getattr(server, "_atexit", False):
        atexit.register(server.stop)
        server._atexit = True


def _prestart_off() -> bool:
    return os.environ.get("TRACKDIAG_TEST_PRESTART", "1") == "0" or "PYTEST_XDIST_WORKER" in os.environ


def prestart() -> None:
    """Begin booting the shared MLflow server now (called at import by the test modules that use it)."""
    if _prestart_off() or "mlflow" in _SHARED:
        return
    server = MlflowServer(Path(tempfile.mkdtemp(prefix="trackdiag_mlflow_server_")))
    _SHARED["mlflow"] = server
    _launch(server)


def prestart_tensorboard() -> None:
    """Begin booting the shared TensorBoard on an empty log folder (it re-reads the folder every second)."""
    if _prestart_off() or "tensorboard" in _SHARED:
        return
    root = Path(tempfile.mkdtemp(prefix="trackdiag_tensorboard_"))
    (root / "logs").mkdir()
    server = TensorboardServer(root, root / "logs")
    _SHARED["tensorboard"] = server
    _launch(server)


def _shared(request, name: str, make):
    """The one server ``name`` of this pytest process: made on first use, (re)started if it is not running,
    stopped when pytest ends."""
    server = _SHARED.get(name)
    if server is None:
        server = _SHARED[name] = make()
    request.config.add_cleanup(server.stop)
    if server.proc is not None and server.proc.poll() is None:
        server.wait()
    else:
        server.start()
    return server


def _new_tensorboard() -> TensorboardServer:
    root = Path(tempfile.mkdtemp(prefix="trackdiag_tensorboard_"))
    (root / "logs").mkdir()
    return TensorboardServer(root, root / "logs")


def shared_tensorboard(request) -> TensorboardServer:
    """The one TensorBoard of this pytest process; write runs below its ``logdir``."""
    return _shared(request, "tensorboard", _new_tensorboard)


def shared_mlflow(request) -> MlflowServer:
    """The one MLflow server of this pytest process (started on first use, stopped when pytest ends).

    A test may stop and restart it (same port and store); it must leave it running.
    """
    return _shared(request, "mlflow",
                   lambda: MlflowServer(Path(tempfile.mkdtemp(prefix="trackdiag_mlflow_server_"))))
