"""Just enough of the Chrome DevTools Protocol to drive Debian's headless chromium from a
test: open a page, navigate, run JavaScript, put a file in a file input, take a screenshot.
One websocket to the browser, one flattened session per page."""

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

from e2e.conftest import stop_process_group

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1000,700")  # fmt: skip


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("chromium is not installed (scripts/install-system-deps installs Debian's chromium)")
    return found


class DevToolsError(Exception):
    pass


class Browser:
    def __init__(self, folder: Path, *flags: str, home: Path | None = None, timeout: float = 30.0):
        """Starts chromium with a fresh profile in `folder`; `home` becomes its $HOME (where it
        finds the NSS database ~/.pki/nssdb)."""
        profile = folder / "profile"
        profile.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, HOME=str(home or folder))
        self.log_file = folder / "chromium.log"
        command = [chromium(), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", *flags, "about:blank"]
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._id = 0
        self._events: list[dict] = []
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise DevToolsError(f"chromium did not start:\n{self.log_file.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self._connection = connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=timeout)
        self._socket = self._connection.__enter__()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if getattr(self, "_socket", None):
            self._connection.__exit__(None, None, None)
            self._socket = None
        stop_process_group(self.process)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60.0) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._socket.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            data = self._receive(deadline, method)
            if data.get("id") == self._id:
                if "error" in data:
                    raise DevToolsError(f"{method}: {data['error'].get('message')}")
                return data.get("result", {})
            self._events.append(data)

    def wait_event(self, method: str, session: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for event in self._events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self._events.remove(event)
                    return event.get("params", {})
            self._events.append(self._receive(deadline, method))

    def _receive(self, deadline: float, waiting_for: str) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DevToolsError(f"timed out waiting for {waiting_for}")
        try:
            return json.loads(self._socket.recv(timeout=remaining))
        except TimeoutError:
            raise DevToolsError(f"timed out waiting for {waiting_for}") from None

    def new_page(self) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.send("Page.enable")
        page.send("Runtime.enable")
        return page


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        return self.browser.send(method, params, self.session, timeout)

    def navigate(self, url: str, timeout: float = 60.0):
        self._forget("Page.loadEventFired")
        result = self.send("Page.navigate", {"url": url}, timeout)
        if result.get("errorText"):
            raise DevToolsError(f"navigating to {url}: {result['errorText']}")
        self.browser.wait_event("Page.loadEventFired", self.session, timeout)

    def evaluate(self, expression: str, timeout: float = 60.0):
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}, timeout
        )
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0):
        """Polls until `expression` is truthy (and survives navigations meanwhile)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression, timeout=max(1.0, deadline - time.monotonic()))
                if value:
                    return value
            except DevToolsError:
                pass  # the page is navigating: its execution context went away
            if time.monotonic() > deadline:
                raise DevToolsError(f"timed out waiting for {expression}")
            time.sleep(0.1)

    def set_file(self, selector: str, path: Path):
        root = self.send("DOM.getDocument")["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        self.send("DOM.setFileInputFiles", {"files": [str(path)], "nodeId": node})

    def screenshot(self, path: Path):
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"]))

    def _forget(self, method: str):
        self.browser._events = [
            e for e in self.browser._events if not (e.get("method") == method and e.get("sessionId") == self.session)
        ]
