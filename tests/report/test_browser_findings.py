"""The findings where users look, in a real browser (headless Chromium over CDP): the MLflow run page's
description and tags, the image cards of the MLflow charts page, the HTML report and TensorBoard's text and
HParams tabs, each after a real training run with a planted stride artifact. Screenshots go to
``test-artifacts/``. Without chromium these tests skip, except under ``CI=true`` where they fail."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch

import trackdiag
from tests.compare.test_compare import store  # noqa: F401 - the fixture: two runs in an MLflow store
from tests.support.cdp import DEEP_IMAGES, DEEP_TEXT, Browser, card_images, find_chromium
from tests.support.servers import TensorboardServer, prestart, shared_mlflow
from trackdiag.testing import synth

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = find_chromium()
STEPS = range(0, 41)
ONSET = 20  # the transposed-convolution artifact appears from this step on

if CHROMIUM is not None:
    prestart()


@pytest.fixture
def browser(tmp_path):
    if CHROMIUM is None:
        message = "chromium is not installed (`make browser`, or apt-get install chromium): checks skipped"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true requires chromium for the dashboard checks; " + message)
        pytest.skip(message)
    with Browser(CHROMIUM, tmp_path / "chromium-profile", width=1600, height=1100) as b:
        yield b


def wall(step: int) -> torch.Tensor:
    """A 2×3×192×192 brick wall; from ONSET on it went through a stride-2 transposed convolution."""
    g = torch.Generator().manual_seed(step)
    x = synth.brick(192, 192, period_px=24.0, generator=g)[None].expand(3, -1, -1)[None].repeat(2, 1, 1, 1)
    if step >= ONSET:
        x = synth.upsample_x2(torch.nn.functional.avg_pool2d(x, 2), mode="deconv")
    return (x + 0.01 * torch.rand(x.shape, generator=g)).clamp(0, 1)


def train(backend: dict, out: Path, **kw) -> trackdiag.Session:
    s = trackdiag.init(overrides=["analyzer=[tiling,loss]", "analyzer.tiling.schedule.every=10",
                                  "analyzer.loss.figures_every=15"],
                       config={"backend": backend}, out_dir=str(out), on_error="raise", **kw)
    for step in STEPS:
        s.log(step, wall(step) if step % 10 == 0 else None, loss=1.0 / (1 + step) + 0.01)
    summary = s.finish()
    assert summary.clean, str(summary)
    assert summary.verdict == "bad" and "checkerboard" in summary.findings, summary.findings
    return s


def test_mlflow_run_page_shows_the_verdict_and_the_image_cards_show_images(request, browser, tmp_path):
    from mlflow import MlflowClient

    server = shared_mlflow(request)
    s = train({"mlflow": {"tracking_uri": server.url}}, tmp_path / "out", experiment="findings",
              run_name=f"findings-{int(time.time())}")
    backend = s.backends[0]
    run = MlflowClient(server.url).get_run(backend.run_id)
    assert run.data.tags["trackdiag.verdict"] == "bad" and "checkerboard" in run.data.tags["trackdiag.causes"]
    assert len(run.data.params) <= 30  # the few params that matter; the rest is in config/config.yaml
    run_url = f"{server.url}/#/experiments/{backend.experiment_id}/runs/{backend.run_id}"

    # 1. The overview: the description holds the verdict, the finding, since when, and the tags.
    browser.open(run_url)
    ok = browser.wait_for(f"({DEEP_TEXT}).includes('Problem found')", timeout=120, settle=2)
    browser.screenshot(ARTIFACTS / "findings_mlflow_overview.png")
    assert ok, "the run description with the verdict never showed on the run's overview"
    text = browser.text()
    assert "Checkerboard" in text and "checkerboard" in text and "since step" in text
    # "since step" in the description is where the verdict chart last went from 0 to > 0
    row = next(line for line in run.data.tags["mlflow.note.content"].splitlines() if "`checkerboard`" in line)
    since = int(row.split("|")[4])
    history = sorted((m.step, m.value) for m in MlflowClient(server.url).get_metric_history(
        backend.run_id, "trackdiag/tiling/verdict/checkerboard"))
    assert [st for st, _ in history] == list(range(0, 41, 10)) and history[-1][1] == 2.0
    onset = max(st for i, (st, v) in enumerate(history) if v > 0 and (i == 0 or history[i - 1][1] == 0))
    assert since == onset, (since, history)
    assert "trackdiag.verdict" in text and "trackdiag.causes" in text

    # 2. The charts page: the image cards show their images (not pushed out of the card by params).
    browser.open(run_url + "/model-metrics")
    ok = browser.wait_for(f"{card_images('trackdiag/samples')}.length > 0", timeout=120, settle=3)
    visible = browser.evaluate(f"""{card_images('trackdiag/samples')}
        .map(i => {{ const r = i.getBoundingClientRect(); return [i.src.split('/').pop().slice(0, 60),
            Math.round(r.width), Math.round(r.height)]; }})""")
    browser.screenshot(ARTIFACTS / "findings_mlflow_charts.png")
    assert ok, "the samples figure never loaded on the charts page"
    shown = [v for v in visible if v[1] >= 80 and v[2] >= 80]
    assert shown, f"no image card shows its image at a readable size: {visible}"


def test_report_page_shows_the_marked_image_first(browser, tmp_path):
    from trackdiag.diagnose import main
    from trackdiag.plots import save_rgb_png

    x = wall(ONSET)[0]
    save_rgb_png((x.permute(1, 2, 0).numpy() * 255).astype("uint8"), tmp_path / "pred.png")
    out = tmp_path / "report"
    assert main(["--pred", str(tmp_path / "pred.png"), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "bad" and "checkerboard" in summary["causes"]
    browser.open((out / "index.html").as_uri())
    assert browser.wait_for(f"({DEEP_IMAGES}).length >= 3", timeout=60, settle=1)
    browser.screenshot(ARTIFACTS / "findings_report.png")
    text = browser.text()
    assert text.index("Verdict:") < text.index("Findings") < text.index("All ")
    first = browser.evaluate("""(() => { const i = document.querySelector('img');
        const r = i.getBoundingClientRect();
        return [i.getAttribute('src'), i.naturalWidth, r.top, r.width]; })()""")
    assert first[0] == "diagnosed.png" and first[1] > 300 and first[3] > 300, first
    assert first[2] < 1100, "the marked image is not on the first screen"
    assert not browser.evaluate("document.querySelector('details').open")  # the full table starts collapsed


def test_tensorboard_shows_the_verdict_text_and_the_hparams_table(request, browser, tmp_path):
    # its own TensorBoard: the shared one's custom-scalars page is checked chart by chart elsewhere
    (tmp_path / "logs").mkdir()
    server = TensorboardServer(tmp_path, tmp_path / "logs").start()
    request.addfinalizer(server.stop)
    name = f"findings-{int(time.time())}"
    train({"tensorboard": {"log_dir": str(server.logdir / name)}}, server.root / "out", run_name=name)
    browser.open(server.url + "/#text")
    ok = browser.wait_for(f"({DEEP_TEXT}).includes('Problem found')", timeout=120, settle=3)
    browser.screenshot(ARTIFACTS / "findings_tensorboard_text.png")
    assert ok, "TensorBoard's text tab never showed the findings"
    text = browser.text()
    assert text.index("findings") < text.index("trackdiag/config")  # the findings come first
    browser.open(server.url + "/#hparams")
    ok = browser.wait_for(f"({DEEP_TEXT}).includes('trackdiag.verdict')", timeout=120, settle=3)
    browser.screenshot(ARTIFACTS / "findings_tensorboard_hparams.png")
    assert ok, "TensorBoard's HParams tab never showed the trackdiag.verdict column"
    text = browser.text()
    assert "trackdiag.causes" in text and "trackdiag/verdict_level" in text and "every 10 steps" in text


def test_comparison_page_has_its_own_best_checkpoint_box(store, browser, tmp_path):  # noqa: F811 - fixture
    from tests.compare.test_compare import run_compare

    run_compare(store, tmp_path, "steps=[100,300,500]", "baseline=run-a@100", outputs=True)
    browser.open((tmp_path / "out" / "index.html").as_uri())
    assert browser.wait_for(f"({DEEP_IMAGES}).length >= 2", timeout=60, settle=1)
    browser.screenshot(ARTIFACTS / "findings_comparison.png")
    text = browser.text()
    assert "Likely causes" not in text and "Fix:" not in text
    best = text.index("Best checkpoint: run-a @ step 500.")
    assert text.index("In short:") < best < text.index("What got worse")
    boxes = browser.evaluate("[...document.querySelectorAll('div.best, div.verdict')].map(e => e.className)")
    assert boxes[0] == "best" and boxes.count("best") == 1 and "verdict bad" in boxes  # run-b got worse
