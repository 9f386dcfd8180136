"""curl through a real mitmdump running Veil: the most literal client there is."""

import hashlib
import json
import subprocess

import pytest

from e2e.conftest import require_curl
from e2e.photos import assert_clean_and_masked, face_photo_with_gps


def curl(env, *args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    require_curl()
    command = ["curl", "-sS", "--max-time", "60", *args]
    return subprocess.run(command, input=stdin, env=env, capture_output=True, timeout=90)


def test_multipart_upload_arrives_clean_with_every_other_byte_unchanged(proxy, proxy_env, upstream, tmp_path):
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(face_photo_with_gps())
    done = curl(
        proxy_env,
        "https://api.openai.com/v1/files",
        "-F", "purpose=vision",
        "-F", f"file=@{photo};type=image/jpeg",
        "-H", "Authorization: Bearer sk-test",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] == "file-1"  # the response came back unchanged

    received = upstream.last("/v1/files")
    boundary = received.headers["content-type"].split("boundary=")[1].encode()
    parts = received.body.split(b"--" + boundary)
    image_part = next(part for part in parts if b'name="file"' in part)
    headers, _, content = image_part.partition(b"\r\n\r\n")
    image = content[: -len(b"\r\n")]
    assert b'filename="holiday.jpg"' in headers and b"Content-Type: image/jpeg" in headers
    assert b'name="purpose"\r\n\r\nvision\r\n' in received.body
    assert_clean_and_masked(image)

    record = next(r for r in proxy.audit_records() if r["sha256_after"] == hashlib.sha256(image).hexdigest())
    assert record["event"] == "sanitised" and record["service"] == "openai-api"
    assert record["url"] == "https://api.openai.com/v1/files" and record["location"] == "file"
    assert "gps" in record["metadata_removed"] and record["faces"] >= 1
    assert record["sha256_before"] == hashlib.sha256(face_photo_with_gps()).hexdigest()


def test_raw_put_body_is_cleaned(proxy, proxy_env, upstream, tmp_path):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(face_photo_with_gps())
    done = curl(
        proxy_env, "-X", "PUT", "--data-binary", f"@{photo}", "-H", "Content-Type: application/json",
        "https://sdmntprwestus.oaiusercontent.com/files/abc/raw?sig=SECRET",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    received = upstream.last("/files/abc/raw")
    assert received.path.endswith("?sig=SECRET")  # the query reaches the service...
    assert_clean_and_masked(received.body)
    record = next(r for r in proxy.audit_records() if r["url"].endswith("/files/abc/raw"))
    assert "SECRET" not in json.dumps(record)  # ...but never the audit log


def test_hostile_image_is_blocked_with_a_readable_403_and_nothing_forwarded(proxy, proxy_env, upstream, tmp_path):
    broken = face_photo_with_gps()[:5000]  # truncated inside the scan
    photo = tmp_path / "broken.jpg"
    photo.write_bytes(broken)
    upstream.clear()
    done = curl(proxy_env, "-i", "--suppress-connect-headers", "https://api.anthropic.com/v1/files", "-F", f"file=@{photo}")
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"403" and b"x-veil: blocked" in head.lower()  # curl speaks HTTP/2 here
    error = json.loads(body)["error"]
    assert error["type"] == "veil_blocked" and "truncated" in error["message"]
    assert upstream.received == []
    # and the proxy keeps serving
    assert curl(proxy_env, "https://api.anthropic.com/v1/files", "-F", "note=hello").returncode == 0


def test_unprotected_hosts_are_tunnelled_not_decrypted(proxy, proxy_env, direct_tls_server):
    """allow_hosts is derived from the policy: for a host it does not protect, the client
    gets the real server's certificate through the proxy, never one forged by Veil's CA."""
    url, server_cert = direct_tls_server
    done = curl(proxy_env, "--cacert", str(server_cert), url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"direct"
    forged = curl(proxy_env, "--cacert", str(proxy.ca_file), url)
    assert forged.returncode != 0  # Veil's CA signed nothing for this host


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd", "deflate"])
def test_compressed_request_bodies_are_cleaned(proxy, proxy_env, upstream, encoding):
    import base64

    from mitmproxy.net.encoding import decode, encode

    document = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(face_photo_with_gps()).decode()}}]}]}  # fmt: skip
    body = encode(json.dumps(document).encode(), encoding)
    done = curl(
        proxy_env, "https://api.openai.com/v1/chat/completions", "--data-binary", "@-",
        "-H", f"Content-Encoding: {encoding}", "-H", "Content-Type: application/json", stdin=body,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    received = upstream.last("/v1/chat/completions")
    assert received.headers["content-encoding"] == encoding
    sent = json.loads(decode(received.body, encoding))
    url = sent["messages"][0]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert_clean_and_masked(base64.b64decode(url.split(",", 1)[1]))
