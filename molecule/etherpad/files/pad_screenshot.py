#!/usr/bin/python3
"""Open a pad in headless Chromium, wait until it shows a text, screenshot it.

    pad_screenshot.py URL TEXT OUT.png [TIMEOUT]

Chromium's --screenshot fires on page load, before Etherpad has fetched the
pad over socket.io (the page still says "Loading..."). This drives Chromium
through its DevTools protocol instead: it polls the editor's inner frame
until TEXT is rendered there, then captures the page. Exit 0 with the PNG
written, 1 when the text did not show up within TIMEOUT seconds.
"""

import base64
import json
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # Debian's python3-websocket

PORT = 9223
# The pad's text lives two frames down: ace_outer, then ace_inner.
INNER_TEXT = """(() => {
  const outer = document.querySelector('iframe[name="ace_outer"]');
  const inner = outer && outer.contentDocument.querySelector('iframe[name="ace_inner"]');
  return inner ? inner.contentDocument.body.innerText : '';
})()"""


def devtools_target(deadline):
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/json/list", timeout=2) as answer:
                pages = [t for t in json.load(answer) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("chromium's DevTools endpoint did not answer")


def main():
    url, text, out = sys.argv[1:4]
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
    deadline = time.monotonic() + timeout
    profile = tempfile.mkdtemp(prefix="pad-screenshot-")
    browser = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--hide-scrollbars", "--window-size=1280,800", f"--user-data-dir={profile}",
         f"--remote-debugging-port={PORT}", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ws = websocket.create_connection(devtools_target(deadline), timeout=10, suppress_origin=True)
        ids = iter(range(1, 1_000_000))

        def call(method, **params):
            number = next(ids)
            ws.send(json.dumps({"id": number, "method": method, "params": params}))
            while True:
                message = json.loads(ws.recv())
                if message.get("id") == number:
                    return message.get("result", {})

        # The window's viewport is smaller than --window-size (browser UI):
        # fix the page's size so that the screenshot is 1280x800.
        call("Emulation.setDeviceMetricsOverride", width=1280, height=800, deviceScaleFactor=1,
             mobile=False)
        shown = ""
        while time.monotonic() < deadline:
            result = call("Runtime.evaluate", expression=INNER_TEXT, returnByValue=True)
            shown = result.get("result", {}).get("value") or ""
            if text in shown:
                break
            time.sleep(0.5)
        else:
            print(f"the pad did not show {text!r} within {timeout:.0f} s (it shows {shown[:200]!r})",
                  file=sys.stderr)
            return 1
        time.sleep(1)  # let the editor finish painting
        png = base64.b64decode(call("Page.captureScreenshot", format="png")["data"])
        with open(out, "wb") as handle:
            handle.write(png)
        print(f"the pad shows the text; {len(png)} bytes written to {out}")
        return 0
    finally:
        browser.kill()
        browser.wait()


if __name__ == "__main__":
    sys.exit(main())
