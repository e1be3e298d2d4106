"""browser_check.py - load an HTML file in headless Chromium and report what it shows.

usage: browser_check.py CHROMIUM PAGE.html SCREENSHOT.png
Talks the DevTools protocol over --remote-debugging-pipe (fds 3 and 4,
NUL-separated JSON; stdlib only), loads the page, evaluates a DOM check
(every <img> complete with a natural width, the SVG curve, the tables, the
amount of text), takes a full-page screenshot, and prints one JSON line with
the findings. Exit 0 when the browser answered, 1 otherwise.
"""
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

CHECK = r"""
(() => {
  const imgs = Array.from(document.images);
  const svg = document.querySelector('svg#curve');
  const poly = svg ? svg.querySelector('polyline#train-loss') : null;
  return JSON.stringify({
    images: imgs.length,
    images_loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    image_widths: imgs.map(i => i.naturalWidth),
    curve: !!svg,
    curve_points: poly ? poly.getAttribute('points').trim().split(/\s+/).length : 0,
    best_marked: !!document.querySelector('#best-step'),
    curve_width: svg ? svg.getBoundingClientRect().width : 0,
    tables: Array.from(document.querySelectorAll('table')).map(t => t.id || t.className),
    accuracy_rows: Array.from(document.querySelectorAll('table.acc tr')).length,
    text_chars: document.body.innerText.length,
    height: document.documentElement.scrollHeight,
    title: document.title,
    headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
    // a map beside its SD map (figure.pair): one row, the second to the right of the first
    pairs_side_by_side: Array.from(document.querySelectorAll('figure.pair')).filter(f => f.querySelectorAll('img').length == 2)
      .map(f => { const [a, b] = f.querySelectorAll('img'); const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
                  return Math.abs(ra.top - rb.top) < 2 && rb.left >= ra.right - 1 && rb.width > 300; }),
  });
})()
"""


class Pipe:
    def __init__(self, proc, to_browser, from_browser):
        self.proc, self.w, self.r, self.buf, self.next_id = proc, to_browser, from_browser, b"", 0
        self.events = []

    def send(self, method, params=None, session=None, timeout=60):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        return self.wait(lambda m: m.get("id") == self.next_id, timeout)

    def wait(self, pred, timeout=60):
        for m in self.events:
            if pred(m):
                self.events.remove(m)
                return m
        end = time.time() + timeout
        while time.time() < end:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                m = json.loads(raw)
                if pred(m):
                    return m
                self.events.append(m)
            ready, _, _ = select.select([self.r], [], [], 1)
            if ready:
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise RuntimeError("browser closed the pipe")
                self.buf += chunk
            elif self.proc.poll() is not None:
                raise RuntimeError("browser exited with %s" % self.proc.returncode)
        raise TimeoutError("no answer from the browser")


def main():
    chrome, page, shot = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
    profile = tempfile.mkdtemp(prefix="geneinr-chromium-")
    to_b_r, to_b_w = os.pipe()
    from_b_r, from_b_w = os.pipe()

    def child():
        # Copies first: a pipe end may already be fd 3 or 4, and os.pipe()
        # ends are close-on-exec; dup2 onto 3 and 4 makes inheritable ones.
        a, b = os.dup(to_b_r), os.dup(from_b_w)
        os.dup2(a, 3)
        os.dup2(b, 4)

    args = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
            "--user-data-dir=" + profile, "--remote-debugging-pipe", "about:blank"]
    proc = subprocess.Popen(args, preexec_fn=child, close_fds=False, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=None if os.environ.get("BROWSER_DEBUG") else subprocess.DEVNULL)
    os.close(to_b_r)
    os.close(from_b_w)
    p = Pipe(proc, to_b_w, from_b_r)
    try:
        target = p.send("Target.createTarget", {"url": "about:blank"})["result"]["targetId"]
        session = p.send("Target.attachToTarget", {"targetId": target, "flatten": True})["result"]["sessionId"]
        p.send("Page.enable", session=session)
        p.send("Emulation.setDeviceMetricsOverride",
               {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        p.send("Page.navigate", {"url": "file://" + page}, session=session)
        p.wait(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session, 60)
        res = p.send("Runtime.evaluate", {"expression": CHECK, "returnByValue": True}, session=session)
        found = json.loads(res["result"]["result"]["value"])
        h = min(int(found["height"]), 16000)
        png = p.send("Page.captureScreenshot",
                     {"format": "png", "captureBeyondViewport": True,
                      "clip": {"x": 0, "y": 0, "width": 1280, "height": h, "scale": 1}}, session=session)
        with open(shot, "wb") as f:
            f.write(base64.b64decode(png["result"]["data"]))
        found["screenshot"] = shot
        print(json.dumps(found))
        try:
            p.send("Browser.close", timeout=10)
        except Exception:
            pass
        return 0
    except Exception as e:
        print(json.dumps({"error": str(e)}))
        return 1
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
