"""`veil demo`: Veil at work in a minute, on this machine only.

Starts Veil (mitmdump with the addon, the default policy) on a free loopback port with a
local stand-in for the AI service, uploads a photo with a face and GPS through it with a
real HTTPS client to https://api.openai.com/v1/files (rerouted to the stand-in, so
nothing leaves the machine), and shows what the service received: the metadata before
and after, the faces masked, a side-by-side picture, and the audit record.

Exit codes: 0 shown, 1 the demo failed (the proxy's log is printed), 2 something it needs
is missing (scikit-image for the photo, the face model).
"""

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .demo_service import (
    MissingSampleLibrary,
    file_in_multipart,
    multipart_upload,
    sample_photo,
    stand_in_service,
)
from .installation import face_model_problem
from .run import MITMDUMP_ENTRY

EXIT_FAILED, EXIT_MISSING = 1, 2
UPLOAD_URL = "https://api.openai.com/v1/files"
REROUTE_ADDON = Path(__file__).resolve().parents[1] / "proxy" / "reroute_local.py"
START_TIMEOUT_SECONDS = 60


def register(commands) -> None:
    demo = commands.add_parser("demo", help="see Veil clean a photo on its way to an AI service (all on this machine)")
    demo.add_argument("--out", default="veil-demo", help="folder for the pictures, the audit log and the proxy's log (default ./veil-demo)")
    demo.set_defaults(handler=_demo)


class DemoFailed(Exception):
    pass


def _demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        photo = sample_photo()
    except MissingSampleLibrary as error:
        return _missing(str(error))
    problem = face_model_problem()
    if problem:
        return _missing(problem)
    out.mkdir(parents=True, exist_ok=True)
    try:
        received, record = _upload_through_veil(photo, out)
    except DemoFailed as error:
        print(f"veil demo: {error}", file=sys.stderr)
        return EXIT_FAILED
    _show(photo, received, record, out)
    return 0


def _missing(message: str) -> int:
    print(f"veil demo: {message}", file=sys.stderr)
    return EXIT_MISSING


def _upload_through_veil(photo: bytes, out: Path) -> tuple[bytes, dict]:
    """(the photo as the service received it, the audit record of the upload)."""
    audit_log = out / "audit.jsonl"
    audit_log.unlink(missing_ok=True)  # one demo, one chain
    with stand_in_service() as service:
        proxy = _start_veil(out, audit_log, service.port)
        try:
            print(f"Uploading a photo to {UPLOAD_URL} through Veil on {proxy.url} …", flush=True)
            _upload(photo, proxy)
        finally:
            proxy.stop()
        if service.received is None:
            raise DemoFailed(f"nothing reached the stand-in service; the proxy's log is {proxy.log}")
        received = file_in_multipart(*service.received)
    records = [json.loads(line) for line in audit_log.read_text().splitlines() if line]
    # The upload's own record, not the `upstream` one that follows it with the outcome.
    uploads = [record for record in records if record.get("event") != "upstream"]
    if received is None or not uploads:
        raise DemoFailed(f"the upload was not cleaned as expected; the proxy's log is {proxy.log}")
    return received, uploads[-1]


class _Veil:
    def __init__(self, process: subprocess.Popen, port: int, ca: Path, log: Path):
        self.process, self.port, self.ca, self.log = process, port, ca, log
        self.url = f"http://127.0.0.1:{port}"

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _start_veil(out: Path, audit_log: Path, stand_in_port: int) -> _Veil:
    from ..policy import DEFAULT_POLICY_PATH

    port, confdir, log = _free_port(), out / "ca", out / "mitmdump.log"
    command = [
        str(Path(sys.executable).with_name("mitmdump")),
        "--listen-host", "127.0.0.1", "--listen-port", str(port),
        "--set", f"confdir={confdir}",
        # Ask the stand-in, not api.openai.com, for the certificate details Veil mimics.
        "--set", "connection_strategy=lazy",
        "-s", str(MITMDUMP_ENTRY),
        "--set", f"veil_policy={DEFAULT_POLICY_PATH}", "--set", f"veil_audit_log={audit_log}",
        "-s", str(REROUTE_ADDON), "--set", f"reroute_port={stand_in_port}",
    ]  # fmt: skip
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    veil = _Veil(process, port, confdir / "mitmproxy-ca-cert.pem", log)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while "Veil is protecting" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            veil.stop()
            raise DemoFailed(f"Veil did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    return veil


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _upload(photo: bytes, proxy: _Veil) -> None:
    """What any HTTPS client does once it trusts Veil's CA and uses it as its proxy."""
    body, content_type = multipart_upload(photo)
    request = urllib.request.Request(UPLOAD_URL, data=body, method="POST",
                                     headers={"Content-Type": content_type, "Authorization": "Bearer sk-demo"})  # fmt: skip
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": proxy.url}),
        urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(proxy.ca))),
    )
    try:
        with opener.open(request, timeout=120) as response:
            response.read()
    except OSError as error:
        raise DemoFailed(f"the upload through Veil failed: {error}; the proxy's log is {proxy.log}") from None


# --------------------------------------------------------------------------------------------
# Showing what happened
# --------------------------------------------------------------------------------------------


def _show(before: bytes, after: bytes, record: dict, out: Path) -> None:
    (out / "before.jpg").write_bytes(before)
    (out / "after.jpg").write_bytes(after)
    picture = out / "side-by-side.png"
    side_by_side(before, after).save(picture)
    faces = record.get("faces") or 0
    rows = [("", "you sent", "the service received"), *metadata_rows(before, after),
            ("faces", f"{faces} visible", f"{faces} masked" if record.get("event") == "sanitised" else "unchanged"),
            ("bytes", f"{len(before):,}", f"{len(after):,}")]  # fmt: skip
    print()
    print(_table(rows))
    print(f"\nPictures: {out / 'before.jpg'}, {out / 'after.jpg'} and, side by side, {picture}")
    print(f"\nThe audit record ({out / 'audit.jsonl'}; check it with `veil audit verify {out / 'audit.jsonl'}`):")
    print(json.dumps(record, indent=2, ensure_ascii=False))


def metadata_rows(before: bytes, after: bytes) -> list[tuple[str, str, str]]:
    said_before, said_after = visible_metadata(before), visible_metadata(after)
    return [(name, said_before.get(name, "-"), said_after.get(name, "-")) for name in said_before]


def visible_metadata(jpeg: bytes) -> dict[str, str]:
    """What anyone reading the file's EXIF learns: who, with what, when, where."""
    import io

    from PIL import ExifTags, Image

    exif = Image.open(io.BytesIO(jpeg)).getexif()
    found = {label: str(exif[tag]) for label, tag in (
        ("camera", ExifTags.Base.Model), ("owner", ExifTags.Base.Artist), ("taken", ExifTags.Base.DateTime),
    ) if tag in exif}  # fmt: skip
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    if gps.get(2) and gps.get(4):
        found["where (GPS)"] = f"{_degrees(gps[2])}{gps.get(1, '')} {_degrees(gps[4])}{gps.get(3, '')}"
    return found


def _degrees(value) -> str:
    degrees, minutes, seconds = (float(part) for part in value)
    return f"{degrees:.0f}°{minutes:.0f}'{seconds:.1f}\""


def side_by_side(before: bytes, after: bytes):
    import io

    from PIL import Image, ImageDraw

    left, right = Image.open(io.BytesIO(before)).convert("RGB"), Image.open(io.BytesIO(after)).convert("RGB")
    gap, caption = 16, 24
    canvas = Image.new("RGB", (left.width + gap + right.width, max(left.height, right.height) + caption), "white")
    canvas.paste(left, (0, caption))
    canvas.paste(right, (left.width + gap, caption))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), "you sent", fill="black")
    draw.text((left.width + gap + 4, 4), "the AI service received (through Veil)", fill="black")
    return canvas


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
