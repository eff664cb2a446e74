"""The dashboards in a real browser: headless Chromium (Debian's ``chromium``, background networking off)
opens the MLflow run page of a run a test filled, and TensorBoard's custom-scalars page. Screenshots are kept
under ``test-artifacts/``. Without chromium these tests skip, except under ``CI=true`` where they fail."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import trackdiag
from tests.support.cdp import DEEP_TEXT, Browser, card_images, find_chromium
from tests.support.servers import prestart, prestart_tensorboard, shared_mlflow, shared_tensorboard
from trackdiag.analyzers.base import Analyzer, AnalyzerParams, Result

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = find_chromium()

if CHROMIUM is not None:
    prestart()
    prestart_tensorboard()


@pytest.fixture
def browser(tmp_path):
    if CHROMIUM is None:
        message = ("chromium is not installed (`make browser`, or apt-get install chromium): "
                   "dashboard checks skipped")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true requires chromium for the dashboard checks; " + message)
        pytest.skip(message)
    with Browser(CHROMIUM, tmp_path / "chromium-profile", width=1600, height=1100) as b:
        yield b


@dataclass
class SpectrumParams(AnalyzerParams):
    pass


class SpectrumAnalyzer(Analyzer):
    """Per-sample mean and contrast, and a log-power spectrum figure of sample 0 (a heat map with a title)."""

    name = "browser"
    Params = SpectrumParams

    def compute(self, inputs):
        gray = inputs.pred.mean(dim=1)
        power = torch.fft.fftshift(torch.fft.fft2(gray[0] - gray[0].mean()).abs().pow(2))
        return {"mean_value": gray.mean(dim=(1, 2)), "contrast": gray.std(dim=(1, 2)),
                "map/spectrum": torch.log10(power + 1e-6)}

    def render(self, result: Result):
        from trackdiag.plots import heatmap

        title = "log10 power spectrum (trackdiag browser check)"
        return {"spectrum": heatmap(result.maps["spectrum"], title=title)}


def stripes(i: int, b: int = 2, size: int = 32) -> torch.Tensor:
    """Vertical stripes: brightness and contrast grow with ``i``, the period shrinks; a little noise."""
    g = torch.Generator().manual_seed(i)
    x = torch.arange(size, dtype=torch.float32)
    period = 16 / (1 + i)
    img = 0.3 + 0.05 * i + (0.1 + 0.03 * i) * torch.sin(2 * torch.pi * x / period)[None, :].expand(size, size)
    return (img.expand(b, 3, size, size) + 0.02 * torch.rand(b, 3, size, size, generator=g)).clamp(0, 1)


CONFIG = {"analyzer": {"browser": {"_target_": "tests.report.test_browser.SpectrumAnalyzer",
                                   "schedule": {"every": 1}},
                       "mean": {"_target_": "tests.support.probes.MeanAnalyzer", "schedule": {"every": 1}}}}
STEPS = (0, 10, 20, 30)


def fill(backend: dict, **kw) -> trackdiag.Session:
    s = trackdiag.init(config={**CONFIG, "backend": backend}, overrides=["analyzer=[]"],
                       allow_external_targets=True, on_error="raise", **kw)
    for i, step in enumerate(STEPS):
        s.log(step, stripes(i))
    summary = s.finish()
    assert summary.clean, str(summary)
    return s


@pytest.mark.slow  # an MLflow server and headless Chromium: 53 s on a loaded 2-core box
def test_mlflow_run_page_shows_the_metrics_and_the_figures(request, browser, tmp_path):
    from mlflow import MlflowClient

    server = shared_mlflow(request)
    s = fill({"mlflow": {"tracking_uri": server.url}}, experiment="dashboard",
             run_name=f"dashboard-{int(time.time())}", out_dir=str(tmp_path / "out"))
    mlflow_backend = s.backends[0]
    run_url = f"{server.url}/#/experiments/{mlflow_backend.experiment_id}/runs/{mlflow_backend.run_id}"
    client = MlflowClient(server.url)
    latest = client.get_run(mlflow_backend.run_id).data.metrics
    keys = ["trackdiag/browser/mean_value", "trackdiag/browser/contrast", "trackdiag/mean/mean"]

    # 1. Overview: the metrics table lists every trackdiag metric with its latest value.
    browser.open(run_url)
    assert browser.wait_for(f"({DEEP_TEXT}).includes('trackdiag/mean/mean')", timeout=120, settle=2), \
        "the MLflow run page never showed the metrics"
    text = browser.text()
    browser.screenshot(ARTIFACTS / "mlflow_run_overview.png")
    for key in keys:
        assert key in text
        assert repr(latest[key]) in text, (key, latest[key])
    assert "trackdiag.analyzers" in text  # the tags

    # 2. Model metrics: one chart section per analyzer and the image grid with its step slider.
    browser.open(run_url + "/model-metrics")
    grid_js = f"{card_images('trackdiag/browser/spectrum')}.length"
    assert browser.wait_for(f"{grid_js} > 0", timeout=120, settle=2), "the image grid never loaded the figure"
    text = browser.text()
    assert "trackdiag/browser" in text and "trackdiag/browser/spectrum" in text
    # Open the figure's card full screen (the card lists the run's params above the image, which pushes the
    # image out of the small card) and check the full-size figure really loaded.
    opened = browser.evaluate("""(() => {
      const title = [...document.querySelectorAll('*')].find(
          e => e.children.length === 0 && e.textContent.trim() === 'trackdiag/browser/spectrum');
      let card = title;
      const menuSel = '[data-testid=experiment-view-compare-runs-card-menu]';
      while (card && !card.querySelector(menuSel)) card = card.parentElement;
      if (!card) return false;
      const buttons = [...card.querySelectorAll('button')];
      const menu = buttons.findIndex(b => b.dataset.testid === 'experiment-view-compare-runs-card-menu');
      if (menu < 1) return false;
      buttons[menu - 1].click();
      return true;
    })()""")
    assert opened, "no full-screen button on the image card"
    # (the dialog shows this card's figure only: MLflow 3.18 names it by a blob: URL, earlier by its artifact)
    dialog_js = ("[...document.querySelectorAll('[role=dialog] img')].filter(i => i.complete "
                 "&& i.naturalWidth > 0 && (i.src.startsWith('blob:') "
                 "|| i.src.includes('trackdiag~browser~spectrum')))")
    assert browser.wait_for(f"{dialog_js}.length > 0", timeout=60, settle=1)
    browser.evaluate(f"{dialog_js}[0].scrollIntoView({{block: 'center'}})")
    time.sleep(1)
    shown = browser.evaluate(
        f"{dialog_js}.map(i => [i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width])")
    assert shown[0][0] >= 200 and shown[0][2] >= 200, shown  # a real figure, displayed large
    browser.screenshot(ARTIFACTS / "mlflow_image_step0.png")
    # The step slider spans the logged steps; moving it to the end shows the last step's figure.
    slider = browser.evaluate("[...document.querySelectorAll('[role=dialog] [role=slider]')].map("
                              "e => [e.getAttribute('aria-valuemin'), e.getAttribute('aria-valuemax')])")
    assert slider == [[str(STEPS[0]), str(STEPS[-1])]], slider
    end = browser.evaluate("""(() => { let el = document.querySelector('[role=dialog] [role=slider]');
        while (el && el.getBoundingClientRect().width < 300) el = el.parentElement;  // the slider's track
        const r = el.getBoundingClientRect(); return [r.right - 2, r.top + r.height / 2]; })()""")
    first_src = browser.evaluate(f"{dialog_js}[0].src")
    browser.click(*end)
    # the last step's figure: its artifact name (MLflow ≤ 3.17), or (3.18: blob: URLs) another image than the
    # first step's with the slider at the last step
    last = f"%2Bstep%2B{STEPS[-1]}%2B"
    at_end = (f"(document.querySelector('[role=dialog] [role=slider]') || {{}}).getAttribute"
              f"?.('aria-valuenow') === '{STEPS[-1]}'")
    switched = (f"{dialog_js}.some(i => i.src.includes('{last}') || (i.src.startsWith('blob:') "
                f"&& i.src !== {json.dumps(first_src)} && {at_end}))")
    assert browser.wait_for(switched, timeout=60, settle=2), \
        "the step slider did not switch the figure to the last step"
    browser.evaluate(f"{dialog_js}[0].scrollIntoView({{block: 'center'}})")
    browser.screenshot(ARTIFACTS / "mlflow_image_last_step.png")


@pytest.mark.slow  # a TensorBoard server and headless Chromium: 25 s on a loaded 2-core box
def test_tensorboard_custom_scalars_page(request, browser):
    server = shared_tensorboard(request)
    log_dir = server.logdir / f"run-{int(time.time())}"
    fill({"tensorboard": {"log_dir": str(log_dir)}}, run_name="tb", out_dir=str(server.root / "out"))
    browser.open(server.url + "/#custom_scalars")
    wanted = ["trackdiag/browser", "trackdiag/mean", "mean_value", "contrast"]
    js = f"(() => {{ const t = ({DEEP_TEXT}); return {json.dumps(wanted)}.every(w => t.includes(w)); }})()"
    ok = browser.wait_for(js, timeout=120, settle=3)
    browser.screenshot(ARTIFACTS / "tensorboard_custom_scalars.png")
    assert ok, f"the custom scalars page never showed {wanted}"
    text = browser.text()
    # every chart found its series (TensorBoard prints "Matches (n)" under a chart; 0 = an empty chart)
    assert text.count("Matches (1)") == 3 and "Matches (0)" not in text
    # the charts are drawn: each has a plotted line (an SVG path with data)
    drawn = browser.evaluate("""(() => { let n = 0;
      const walk = (root) => root.querySelectorAll('*').forEach(el => {
        if (el.tagName === 'path' && el.closest && (el.getAttribute('d') || '').length > 20) n++;
        if (el.shadowRoot) walk(el.shadowRoot); }); walk(document); return n; })()""")
    assert drawn >= 3, drawn
