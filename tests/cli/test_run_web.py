"""`veil run --web` starts mitmweb with the Veil addon: every flow in a browser tab, with
Veil's comments and markers (issue 19: live feedback)."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

VEIL = Path(sys.executable).with_name("veil")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_veil_run_web_serves_mitmweb_with_the_addon(tmp_path):
    web_port, proxy_port = free_port(), free_port()
    log = tmp_path / "run.log"
    command = [str(VEIL), "run", "--web", "--listen-port", str(proxy_port), "--confdir", str(tmp_path / "ca"),
               "--audit-log", str(tmp_path / "audit.jsonl"), "--", "--set", f"web_port={web_port}"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        deadline, url = time.monotonic() + 60, None
        while time.monotonic() < deadline and url is None:
            assert process.poll() is None, log.read_text()
            found = re.search(rf"Web server listening at (http://127\.0\.0\.1:{web_port}/\?token=\w+)", log.read_text())
            url = found.group(1) if found else time.sleep(0.3)
        assert url, log.read_text()
        with urllib.request.urlopen(url, timeout=10) as response:  # mitmweb's page, with its token
            assert b"mitmproxy" in response.read().lower()
        assert "Veil is protecting" in log.read_text()  # the addon is loaded in mitmweb
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
