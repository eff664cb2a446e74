"""MLflow backend: an explicit ``MlflowClient`` and run id, batched metrics, images with their step.

The default store is embedded: ``sqlite:///mlruns.db`` in the working directory, no server. Any tracking
URI works, including an ``mlflow server`` over HTTP. Figures go through ``log_image(key=, step=)`` so the
MLflow UI's image grid and step slider show them; tables go through ``log_table`` (appended per key; after
the first append this process keeps the table and uploads the merged file itself, in MLflow's format, so an
append costs one upload instead of a listing, a download, an upload and a run lookup);
the flattened configuration becomes params; the run gets the tags ``trackdiag.version`` and
``trackdiag.analyzers`` (plus ``run.tags``).

The run: a given ``run_id``, else the run the user's code started (``mlflow.start_run()`` on the thread that
called ``trackdiag.init``, when ``attach_active``), else a new run in ``experiment``. Only a run this backend
created is terminated at ``close``.

Over HTTP every request is bounded: ``http_timeout_s`` per request and no client-side retries (MLflow's
default is 7 retries with exponential back-off, minutes against a dead server). The worker's spool does the
retrying instead, without blocking anything. One failure is not left to it: MLflow keeps one pool of
keep-alive connections for the whole process, and a server that fails a request (an artifact upload the
store refuses: HTTP 500) closes that connection right after answering, so the next call, whichever lane makes
it, may be sent on a dead connection. The run's scalar calls (metrics, params, tags, status) are therefore
sent again, on a new connection, when their connection was dropped (:func:`~.base.is_dropped_connection`);
each of them is idempotent in MLflow (a metric point identical in key, step, timestamp and value is stored
once; a param with the same value and a tag are set again). These environment variables (and
``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false``, so that appending to a table does not print a progress bar on
the user's console) are set only around this backend's own calls; values the user exported are respected.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import BackendError, MissingDependencyError
from .base import Backend, BackendParams, ImageItem, is_dropped_connection

__all__ = ["MlflowBackend", "MlflowParams"]

#: MLflow's own limits per log_batch call.
_MAX_METRICS = 1000
_MAX_PARAMS = 100
_MAX_PARAM_LEN = 6000
#: MLflow's limit on a tag value.
_MAX_TAG_LEN = 8000
#: Error codes that mean "try again later" (HTTP 429 and 5xx).
_RETRY_STATUS = 500
#: How many times a scalar call is sent again after its connection was dropped (each time on a new one).
_RESENDS = 2

_ENV_LOCK = threading.Lock()
#: Run tag holding :attr:`MlflowParams.run_key`.
RUN_KEY_TAG = "trackdiag.run_key"


@dataclass
class MlflowParams(BackendParams):
    #: The tracking URI: the embedded store in the working directory (no server) by default; any URI works
    #: (http://127.0.0.1:5000 ...).
    tracking_uri: str = "sqlite:///mlruns.db"
    #: Attach to this existing run instead of creating one.
    run_id: Optional[str] = None
    #: Attach to ``mlflow.active_run()`` when there is one (the run the user's own code started).
    attach_active: bool = True
    artifact_location: Optional[str] = None
    #: Seconds to wait for an HTTP tracking server per request (MLflow's own retries are turned off).
    http_timeout_s: float = 10.0
    #: Seconds between attempts to reach the tracker again after a failure (the spool keeps everything).
    retry_s: float = 5.0
    #: Terminate the run at close: None = only a run this backend created.
    terminate_on_close: Optional[bool] = None
    #: Tag (``trackdiag.run_key``) of the run this backend creates, chosen before it is created, so that
    #: ``trackdiag.sync`` finds that run even when the process died before its id reached the spool.
    run_key: Optional[str] = None
    #: At close, log the run's history digest (every metric point this backend delivered, one artifact,
    #: :mod:`trackdiag.backends.mlflow_digest`), so that comparisons read it from a server in one request.
    history_digest: bool = True


class MlflowBackend(Backend):
    name = "mlflow"
    Params = MlflowParams
    params: MlflowParams

    def __init__(self, params: Optional[MlflowParams] = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        try:
            import mlflow
        except ImportError:  # pragma: no cover - mlflow is a core dependency
            raise MissingDependencyError("mlflow", purpose="the mlflow backend") from None
        self.client: Any = None
        self.run_id: Optional[str] = self.params.run_id
        self.experiment_id: Optional[str] = None
        self.tracking_uri = absolute_sqlite_uri(self.params.tracking_uri)
        self._owns_run = False
        self.run_key = self.params.run_key or uuid.uuid4().hex
        self._resume_step: Optional[int] = None
        #: (run id, table key) → the table as this process last uploaded it (see :meth:`log_table`).
        self._tables: dict[tuple[str, str], Any] = {}
        #: Artifact folders uploaded by log_artifacts (reports), linked from the run description.
        self._reports: list[str] = []
        #: The run whose ``mlflow.loggedImages`` tag this backend has set (once per run, see log_images).
        self._images_tagged: Optional[str] = None
        from .mlflow_digest import DigestRecorder

        #: The metric points delivered to the run, for its history digest (written at close).
        self._digest = DigestRecorder()
        # MLflow's active run is thread-local and open() runs on the worker: look for it here, on the
        # thread that called trackdiag.init().
        active = mlflow.active_run() if self.params.attach_active and self.run_id is None else None
        if active is not None:
            self.run_id = active.info.run_id
            self.tracking_uri = mlflow.get_tracking_uri()
        self._http = self.tracking_uri.startswith(("http://", "https://"))
        # No "Downloading artifacts" progress bar on the user's console each time log_table appends rows.
        env = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        if self._http:
            env.update(MLFLOW_HTTP_REQUEST_TIMEOUT=str(max(1, round(self.params.http_timeout_s))),
                       MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
        self._env = {k: v for k, v in env.items() if k not in os.environ}

    @contextmanager
    def _bounded(self) -> Iterator[None]:
        """Our environment settings (bounded HTTP, no progress bars) for the duration of one of our calls."""
        if not self._env:
            yield
            return
        with _ENV_LOCK:
            saved = {k: os.environ.get(k) for k in self._env}
            os.environ.update(self._env)
            try:
                yield
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

    @staticmethod
    def _again(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)``, sent again (at most ``_RESENDS`` times) when the pooled connection it
        went out on had been dropped by the server (see the module docstring). Only for idempotent calls."""
        for attempt in range(_RESENDS + 1):
            try:
                return call(*args, **kwargs)
            except Exception as exc:
                if attempt == _RESENDS or not is_dropped_connection(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- lifecycle ------------------------------------------------------------------------------------
    def open(self) -> None:
        from mlflow import MlflowClient

        with self._bounded():
            self.client = MlflowClient(tracking_uri=self.tracking_uri)
            if self.run_id is not None:
                run = self.client.get_run(self.run_id)  # raises when the run does not exist
                self.experiment_id = run.info.experiment_id
                if not self._owns_run:  # a continued run (not one this backend created and re-opens)
                    self._digest.keys_before |= set(run.data.metrics)
                    steps = [m.step for m in getattr(run.data, "_metric_objs", [])
                             if m.key.startswith("trackdiag/")]
                    self._resume_step = max(steps) if steps else None
                self._set_tags()
                return
            exp = self.client.get_experiment_by_name(self.run.experiment)
            exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(
                self.run.experiment,
                artifact_location=self.params.artifact_location or _beside_sqlite(self.tracking_uri))
            run = self._created_before(exp_id) or self.client.create_run(
                exp_id, run_name=self.run.run_name, tags={**self.run.tags, RUN_KEY_TAG: self.run_key})
            self._digest.keys_before |= set(run.data.metrics)  # a run found by its key may hold points
            self.run_id = run.info.run_id
            self.experiment_id = exp_id
            self._owns_run = True
            self._set_tags()

    def _created_before(self, experiment_id: str) -> Any:
        """The run this backend (or the process it replays) already created, found by its run key."""
        if self.params.run_key is None:
            return None
        query = f"tags.`{RUN_KEY_TAG}` = '{self.run_key}'"
        runs = self.client.search_runs([experiment_id], filter_string=query, max_results=1)
        return runs[0] if runs else None

    def _set_tags(self) -> None:
        from mlflow.entities import RunTag

        tags = [RunTag(k, str(v)) for k, v in self.run.tags.items()]
        if tags:
            self._again(self.client.log_batch, self.run_id, tags=tags, synchronous=True)

    def close(self, status: str = "FINISHED") -> None:
        terminate = self.params.terminate_on_close
        terminate = self._owns_run if terminate is None else terminate
        if self.client is not None and self.run_id is not None and self.params.history_digest \
                and not self._digest.failing:
            self._log_digest()
        if self.client is not None and self.run_id is not None and terminate:
            with self._bounded():
                self._again(self.client.set_terminated, self.run_id, status=status)
            self._owns_run = False

    def _log_digest(self) -> None:
        """The run's history digest (artifact, then tag); a failure is logged and changes nothing else:
        readers then read the histories themselves."""
        from .mlflow_digest import log_digest

        try:
            with self._bounded():
                log_digest(self.client, str(self.run_id), self._digest, tracking_uri=self.tracking_uri)
        except Exception as exc:
            import logging

            logging.getLogger("trackdiag").warning("trackdiag: no history digest for MLflow run %s (%s: %s)",
                                                   self.run_id, type(exc).__name__, str(exc)[:200])

    def last_step(self) -> Optional[int]:
        return self._resume_step

    def release(self) -> None:
        """Let go of the run without changing its status (used by ``trackdiag.sync``)."""
        self.client = None

    def resume_params(self) -> dict[str, Any]:
        """Parameters that rebuild this backend attached to the same run (for ``trackdiag.sync``)."""
        return {**asdict(self.params), "tracking_uri": self.tracking_uri, "run_id": self.run_id,
                "run_key": self.run_key, "attach_active": False,
                # a run that trackdiag.sync has to create (the tracker was never reached) is its own to finish
                "terminate_on_close": (self.params.terminate_on_close if self.params.terminate_on_close
                                       is not None else (self._owns_run or self.run_id is None))}

    def is_transient(self, exc: BaseException) -> bool:
        """Network errors, timeouts and HTTP 429/5xx are worth retrying; a 4xx (bad value) is not."""
        from mlflow.exceptions import MlflowException

        if super().is_transient(exc):
            return True
        if isinstance(exc, MlflowException):
            status = exc.get_http_status_code()
            return status >= _RETRY_STATUS or status == 429
        return False

    # -- data -----------------------------------------------------------------------------------------
    def _require(self) -> Any:
        if self.client is None or self.run_id is None:
            raise BackendError("mlflow backend is not open")
        return self.client

    def log_metrics(self, metrics: Mapping[str, float], step: int, *, timestamp_ms: int) -> None:
        from mlflow.entities import Metric

        client = self._require()
        items = [Metric(key=k, value=float(v), timestamp=timestamp_ms, step=int(step))
                 for k, v in metrics.items()]
        self._deliver_metrics(client, items)

    def log_metrics_many(self, batches: Sequence[tuple[int, int, Mapping[str, float]]]) -> None:
        """Several steps' metrics in as few ``log_batch`` calls as MLflow's limit (1000 metrics) allows."""
        from mlflow.entities import Metric

        client = self._require()
        items = [Metric(key=k, value=float(v), timestamp=int(ts), step=int(step))
                 for step, ts, metrics in batches for k, v in metrics.items()]
        self._deliver_metrics(client, items)

    def _deliver_metrics(self, client: Any, items: Sequence[Any]) -> None:
        """``log_batch`` in chunks of MLflow's limit; delivered points are recorded for the history digest
        (a failed chunk may or may not have been stored: the digest is then read back from the store)."""
        try:
            with self._bounded():
                for i in range(0, len(items), _MAX_METRICS):
                    self._again(client.log_batch, self.run_id, metrics=items[i:i + _MAX_METRICS],
                                synchronous=True)
        except BaseException:
            self._digest.uncertain = self._digest.failing = True
            raise
        self._digest.failing = False
        self._digest.add((m.key, m.step, m.timestamp, m.value) for m in items)

    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        client = self._require()
        with self._bounded():
            client.log_image(self.run_id, np.ascontiguousarray(image), key=key, step=int(step),
                             synchronous=True)

    def log_images(self, items: Sequence[ImageItem]) -> None:
        """Several figures in one upload, each PNG as the spool wrote it (:mod:`.mlflow_images`)."""
        from .mlflow_images import upload_images

        client = self._require()
        with self._bounded():
            if not upload_images(client, str(self.run_id), items):
                super().log_images(items)  # an MLflow whose file-name scheme is unknown: its own log_image
                return
            if self._images_tagged != self.run_id:
                from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_IMAGES

                client.set_tag(self.run_id, MLFLOW_LOGGED_IMAGES, True)
                self._images_tagged = self.run_id

    def log_table(self, key: str, rows: Sequence[Mapping[str, Any]], step: int) -> None:
        if not rows:
            return
        columns: dict[str, list[Any]] = {}
        for row in rows:
            for col in row:
                columns.setdefault(col, [])
        for row in rows:
            for col, values in columns.items():
                values.append(row.get(col))
        client = self._require()
        artifact = f"tables/{key}.json"
        known = self._tables.get((str(self.run_id), key))
        with self._bounded():
            if known is None:
                # The first append of this process: MLflow's own call merges with a table the run already
                # holds (a resumed run), writes it and registers it for the UI's table view. Read the result
                # once, so that later appends need neither a listing nor a download.
                existing = _download_table(client, self.run_id, artifact)
                if existing is not None:
                    columns = _without_known_rows(existing, columns)
                    if not any(columns.values()):  # a resend of rows the table holds (after a crash)
                        self._tables[(str(self.run_id), key)] = existing
                        return
                client.log_table(self.run_id, data=columns, artifact_file=artifact)
                try:  # the rows are delivered: a failure here must not make the worker send them again
                    with tempfile.TemporaryDirectory() as tmp:
                        local = client.download_artifacts(self.run_id, artifact, tmp)
                        self._tables[(str(self.run_id), key)] = _read_table(local)
                except Exception:
                    pass
                return
            columns = _without_known_rows(known, columns)
            if not any(columns.values()):
                return
            merged = _append_rows(known, columns)
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(tmp) / posixpath.basename(artifact)
                merged.to_json(local, orient="split", index=False, date_format="iso")  # MLflow's own format
                client.log_artifact(self.run_id, str(local), artifact_path=posixpath.dirname(artifact))
            self._tables[(str(self.run_id), key)] = merged

    def log_artifacts(self, local_dir: Path, name: str) -> None:
        client = self._require()
        with self._bounded():
            client.log_artifacts(self.run_id, str(local_dir), artifact_path=name)
        if name != "config" and name not in self._reports:
            self._reports.append(name)

    def log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        client = self._require()
        with self._bounded():
            existing = self._again(client.get_run, self.run_id).data.params
            items = [Param(k, str(v)[:_MAX_PARAM_LEN]) for k, v in params.items() if k not in existing]
            for i in range(0, len(items), _MAX_PARAMS):
                self._again(client.log_batch, self.run_id, params=items[i:i + _MAX_PARAMS], synchronous=True)

    def publish_findings(self, findings: Mapping[str, Any], step: int) -> None:
        """The run description (``mlflow.note.content``, Markdown) and the tags ``trackdiag.verdict``
        (``none|info|warn|bad``) and ``trackdiag.causes`` (sorted warn/bad codes), so the runs table can show
        them as columns. Replaced at every analysis step."""
        from mlflow.entities import RunTag

        client = self._require()
        note = str(findings.get("markdown", ""))
        if self.experiment_id is not None:
            base = f"#/experiments/{self.experiment_id}/runs/{self.run_id}"
            links = [f"[figures (artifacts/images)]({base}/artifacts/images)",
                     f"[charts]({base}/model-metrics)",
                     f"[configuration (config.yaml)]({base}/artifacts/config)"]
            links += [f"[report {name}]({base}/artifacts/{name})" for name in self._reports]
            note = note.rstrip() + "\n\n" + " · ".join(links) + "\n"
        tags = [RunTag("mlflow.note.content", note[:_MAX_TAG_LEN]),
                RunTag("trackdiag.verdict", str(findings.get("verdict", "none"))),
                RunTag("trackdiag.causes", ",".join(findings.get("causes", [])) or "-")]
        with self._bounded():
            self._again(client.log_batch, self.run_id, tags=tags, synchronous=True)

    def location(self) -> str:
        uri = self.tracking_uri
        if self._http and self.experiment_id is not None:
            return f"{uri.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"
        if uri.startswith("sqlite"):
            from ..core.findings import shell_command
            from ..ui import store_uri

            command = shell_command('trackdiag', 'ui', '--store', store_uri(uri))
            return f"mlflow run {self.run_id} (open it: {command})"
        return f"mlflow run {self.run_id} ({uri})"


def _download_table(client: Any, run_id: Optional[str], artifact: str) -> Any:
    """The table the run already holds under ``artifact`` (a DataFrame), or None when it has none."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return _read_table(client.download_artifacts(run_id, artifact, tmp))
    except Exception:
        return None


def _norm_cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    return str(value)


def _without_known_rows(table: Any, columns: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """``columns`` without the rows the table already holds, cell for cell: appends are not idempotent, and
    an append retried after a partial failure (or replayed after a crash) must not duplicate rows. Rows carry
    their step, so two identical rows are a resend."""
    cols = list(columns)
    if not cols or not set(cols) <= set(map(str, table.columns)):
        return dict(columns)
    seen = {tuple(_norm_cell(v) for v in row) for row in table[cols].itertuples(index=False, name=None)}
    n = len(columns[cols[0]])
    keep = [i for i in range(n) if tuple(_norm_cell(columns[c][i]) for c in cols) not in seen]
    return {c: [columns[c][i] for i in keep] for c in cols}


def _read_table(path: str) -> Any:
    """A table file as MLflow's ``log_table`` reads it back before appending (pandas, ``orient="split"``)."""
    import pandas as pd

    return pd.read_json(path, orient="split")


def _append_rows(table: Any, columns: Mapping[str, list[Any]]) -> Any:
    """``table`` (a DataFrame) with the rows ``columns`` (column → values) appended, as ``log_table`` does."""
    import pandas as pd

    return pd.concat([table, pd.DataFrame(dict(columns))], ignore_index=True)


def absolute_sqlite_uri(uri: str) -> str:
    """``sqlite:///relative.db`` → ``sqlite:////abs/path/relative.db`` (resolved against the working directory
    now), so that a later ``chdir`` cannot send the run elsewhere (MLflow caches one engine per URI string)
    and the printed ``mlflow ui`` command works from any folder. Other URIs are returned unchanged.

    >>> absolute_sqlite_uri("http://127.0.0.1:5000")
    'http://127.0.0.1:5000'
    >>> absolute_sqlite_uri("sqlite:////tmp/x.db")
    'sqlite:////tmp/x.db'
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return uri
    path = uri[len(prefix):]
    if path in ("", ":memory:") or path.startswith("/"):
        return uri
    return prefix + Path(path).resolve().as_posix()


def _beside_sqlite(uri: str) -> Optional[str]:
    """For an embedded ``sqlite:///path/x.db`` store: ``path/mlruns`` (a ``file://`` URI), so that a new
    experiment keeps its artifacts next to its database. MLflow's own default is ``./mlruns`` under whatever
    the working directory is when the experiment is created. None for any other store (its own default)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri[len(prefix):] in ("", ":memory:"):
        return None
    return (Path(uri[len(prefix):]).resolve().parent / "mlruns").as_uri()
