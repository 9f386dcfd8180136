"""A real HAProxy in front of local Veil instances, configured from deploy/haproxy/haproxy.cfg.

The deployment file names its servers for docker-compose (veil-1:8080, checked on port 9464
through Docker's DNS). Here it runs unchanged except for what a single machine must change:
the bind address, the server lines (127.0.0.1 and each instance's own ports), no Docker
resolver, and an admin socket to read the servers' state. Every other line (TCP mode, the
balance algorithm, the /readyz check, the timeouts) is the deployment's own. Used by
tests/e2e/test_scaleout_haproxy.py and scripts/bench/scaleout.py."""

import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from e2e.conftest import stop_process_group

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"


def haproxy_binary() -> str | None:
    """Debian installs it in /usr/sbin, which a non-root PATH may lack."""
    return shutil.which("haproxy") or next(
        (path for path in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(path, os.X_OK)), None
    )


@dataclass(frozen=True)
class Backend:
    name: str
    port: int  # the Veil instance's proxy port on 127.0.0.1
    check_port: int  # its metrics port, which answers /readyz


def local_config(text: str, bind_port: int, backends: list[Backend], admin_socket: Path) -> str:
    """deploy/haproxy/haproxy.cfg for instances on this machine. Fails when the file no longer
    has the shape this expects, rather than quietly testing some other configuration."""
    lines = text.splitlines()
    out: list[str] = []
    changed = {"global": 0, "bind": 0, "default-server": 0, "server": 0, "resolvers": 0}
    in_resolvers = False
    for line in lines:
        words = line.split()
        keyword = words[0] if words and not line.startswith((" ", "\t")) else None
        if keyword:
            in_resolvers = keyword == "resolvers"
            if in_resolvers:
                changed["resolvers"] += 1
                continue
        if in_resolvers:
            continue  # Docker's DNS does not exist here, and the servers are addresses
        if keyword == "global":
            out += [line, f"    stats socket {admin_socket} mode 600 level admin"]
            changed["global"] += 1
        elif words[:1] == ["bind"]:
            out.append(f"    bind 127.0.0.1:{bind_port}")
            changed["bind"] += 1
        elif words[:1] == ["default-server"]:
            kept = re.sub(r"\s(port|resolvers|init-addr)\s+\S+", "", line)
            out.append(kept)
            changed["default-server"] += 1
        elif words[:1] == ["server"]:
            if not changed["server"]:
                out += [f"    server {b.name} 127.0.0.1:{b.port} port {b.check_port}" for b in backends]
            changed["server"] += 1
        else:
            out.append(line)
    missing = [what for what, count in changed.items() if not count]
    assert not missing, f"{DEPLOY_CONFIG} has no {', '.join(missing)} line any more: update tests/e2e/haproxy.py"
    assert changed["bind"] == 1, f"{DEPLOY_CONFIG} binds more than once"
    return "\n".join(out) + "\n"


@dataclass
class HAProxy:
    process: subprocess.Popen
    port: int
    admin_socket: Path
    config: Path
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, text: str) -> str:
        with socket.socket(socket.AF_UNIX) as admin:
            admin.settimeout(5)
            admin.connect(str(self.admin_socket))
            admin.sendall(text.encode() + b"\n")
            chunks = []
            while chunk := admin.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """`show stat` for the backend's servers: name -> the CSV fields (status, stot…)."""
        rows = self.command("show stat").splitlines()
        header = rows[0].lstrip("# ").split(",")
        table = [dict(zip(header, row.split(","))) for row in rows[1:] if row]
        return {row["svname"]: row for row in table if row["pxname"] == "veil" and row["svname"] not in ("BACKEND", "FRONTEND")}

    def wait_until_up(self, names: list[str], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.process.returncode}:\n{self.output()}")
            try:
                states = {name: row["status"] for name, row in self.servers().items()}
            except OSError:
                states = {}
            if all(states.get(name) == "UP" for name in names):
                return
            if time.monotonic() > deadline:
                checks = {name: row.get("check_status") + " " + row.get("last_chk", "") for name, row in self.servers().items()}
                raise RuntimeError(f"HAProxy's servers are not all UP after {timeout} s: {states}; last checks: {checks}")
            time.sleep(0.2)

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self) -> None:
        stop_process_group(self.process)


def start_haproxy(binary: str, folder: Path, port: int, backends: list[Backend]) -> HAProxy:
    folder.mkdir(parents=True, exist_ok=True)
    admin_socket, config, log_file = folder / "admin.sock", folder / "haproxy.cfg", folder / "haproxy.log"
    config.write_text(local_config(DEPLOY_CONFIG.read_text(), port, backends, admin_socket))
    checked = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    if checked.returncode != 0:
        raise RuntimeError(f"haproxy -c refused the derived configuration:\n{checked.stdout}{checked.stderr}")
    with open(log_file, "wb") as log:
        # -db: stay in the foreground, so the process is ours to stop.
        process = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    haproxy = HAProxy(process, port, admin_socket, config, log_file)
    deadline = time.monotonic() + 10
    while not admin_socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            haproxy.stop()
            raise RuntimeError(f"haproxy did not start:\n{haproxy.output()}")
        time.sleep(0.05)
    return haproxy
