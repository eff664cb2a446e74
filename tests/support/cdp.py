"""Drive headless Chromium through the DevTools protocol over a pipe (stdlib only, no websocket client).

``--remote-debugging-pipe`` makes Chromium read commands on fd 3 and write replies on fd 4, each message a
JSON object followed by a NUL byte. That is enough to open a page, wait until the single-page app has really
rendered what we look for (instead of guessing a virtual time budget), read its text and take a screenshot,
all in one browser start.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--no-default-browser-check", "--mute-audio",
         "--hide-scrollbars", "--disable-dev-shm-usage", "--remote-debugging-pipe"]

#: Text of the page including open shadow roots (TensorBoard's Polymer dashboards live in shadow DOM).
DEEP_TEXT = """
(() => {
  const out = [];
  const walk = (root) => {
    const tw = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
    for (let n = tw.currentNode; n; n = tw.nextNode()) {
      if (n.nodeType === Node.TEXT_NODE) {
        const tag = n.parentElement ? n.parentElement.tagName : '';
        const t = n.textContent.trim();
        if (t && !['STYLE', 'SCRIPT', 'NOSCRIPT', 'TEMPLATE'].includes(tag)) out.push(t);
      }
      else if (n.shadowRoot) walk(n.shadowRoot);
    }
  };
  walk(document.documentElement);
  return out.join('\\n');
})()
"""

#: Loaded <img> elements (also inside shadow roots): their src and natural size.
DEEP_IMAGES = """
(() => {
  const out = [];
  const walk = (root) => {
    root.querySelectorAll('*').forEach((el) => {
      if (el.tagName === 'IMG' && el.complete && el.naturalWidth > 0)
        out.push({src: el.currentSrc || el.src, w: el.naturalWidth, h: el.naturalHeight});
      if (el.shadowRoot) walk(el.shadowRoot);
    });
  };
  walk(document);
  return out;
})()
"""


def card_images(key: str) -> str:
    """A JS expression: the loaded ``<img>`` elements of the MLflow chart card titled ``key`` (e.g.
    ``trackdiag/samples``). MLflow up to 3.17 loads an image card's figure from a URL that names the artifact
    (``…trackdiag~samples…``); 3.18 fetches it and shows a ``blob:`` URL, so the card is found by its title:
    from the leaf element whose text is ``key``, the nearest ancestor with a loaded image, short of one
    that holds another chart's title (``trackdiag/…``: then the card has no image yet)."""
    return f"""(() => {{
      const key = {json.dumps(key)}, tilde = key.split('/').join('~');
      const loaded = (i) => i.complete && i.naturalWidth > 0;
      const bySrc = [...document.querySelectorAll('img')].filter(
          i => loaded(i) && (i.currentSrc || i.src).includes(tilde));
      if (bySrc.length) return bySrc;
      const leaves = [...document.querySelectorAll('*')].filter(e => e.children.length === 0);
      const out = [];
      leaves.filter(e => e.textContent.trim() === key).forEach((title) => {{
        for (let el = title.parentElement; el; el = el.parentElement) {{
          const other = leaves.some(l => el.contains(l) && l.textContent.trim().startsWith('trackdiag/')
                                         && l.textContent.trim() !== key);
          if (other) break;
          const imgs = [...el.querySelectorAll('img')].filter(loaded);
          if (imgs.length) {{ out.push(...imgs); break; }}
        }}
      }});
      return out;
    }})()"""


def find_chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class CDPError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page. Use as a context manager."""

    def __init__(self, binary: str, user_data_dir: Path, *, width: int = 1400, height: int = 1000) -> None:
        user_data_dir.mkdir(parents=True, exist_ok=True)
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Move the child's ends above the low fds so the dup2 onto 3 and 4 cannot clobber one another.
        hi_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 20)
        hi_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 20)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def wire() -> None:  # runs in the child before exec
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        cmd = [binary, *FLAGS, f"--user-data-dir={user_data_dir}", f"--window-size={width},{height}",
               "about:blank"]
        self.log = user_data_dir / "chromium.log"
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                         pass_fds=(3, 4), preexec_fn=wire, start_new_session=True)
        os.close(hi_r)
        os.close(hi_w)
        self._out = to_chrome_w
        self._in = from_chrome_r
        self._buf = b""
        self._id = 0
        self.session: Optional[str] = None
        self.width, self.height = width, height

    # -- protocol ------------------------------------------------------------------------------------------
    def _send(self, method: str, params: Optional[dict] = None, *, session: Optional[str] = None) -> int:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        return self._id

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError("timed out waiting for Chromium")
            ready, _, _ = select.select([self._in], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self._in, 1 << 20)
                if not chunk:
                    tail = self.log.read_text(errors="replace")[-2000:]
                    raise CDPError(f"Chromium closed the pipe; log:\n{tail}")
                self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def call(self, method: str, params: Optional[dict] = None, *, page: bool = True,
             timeout: float = 60.0) -> dict:
        msg_id = self._send(method, params, session=self.session if page else None)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_message(deadline)
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise CDPError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    # -- page helpers --------------------------------------------------------------------------------------
    def open(self, url: str) -> None:
        if self.session is None:
            target = self.call("Target.createTarget", {"url": "about:blank"}, page=False)["targetId"]
            self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                     page=False)["sessionId"]
            self.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                              "deviceScaleFactor": 1, "mobile": False})
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True})
        if "exceptionDetails" in res:
            raise CDPError(f"JS error: {res['exceptionDetails']}")
        return res.get("result", {}).get("value")

    def text(self) -> str:
        return self.evaluate(DEEP_TEXT) or ""

    def images(self) -> list[dict]:
        return self.evaluate(DEEP_IMAGES) or []

    def wait_for(self, predicate_js: str, *, timeout: float = 90.0, settle: float = 1.0) -> bool:
        """Poll a JS expression until truthy, then wait ``settle`` s for late paints. False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate(predicate_js):
                    time.sleep(settle)
                    return True
            except CDPError:
                pass
            time.sleep(0.5)
        return False

    def click(self, x: float, y: float) -> None:
        """A left click at page coordinates (CSS pixels)."""
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent",
                      {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self._send("Browser.close")
            self.proc.wait(timeout=10)
        except Exception:
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(timeout=10)
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
