"""Every catalogue service through a real mitmdump: a multipart upload and a JSON data URL to
one of its hosts arrive at the recording upstream cleaned, each with a `sanitised` record
naming the service. The services whose flows are known are also driven by their own flows
(test_web_app_flows.py, test_proxy_sdks.py); this is the generic floor under all of them.

Then the catch-all (`protect: all-uploads`): an upload to an arbitrary host arrives clean
with a record; a `tunnel:` host is not decrypted; an unnamed destination (a bare IP without
a server name) is refused. And `veil_decrypt_all` without a matching rule records what passed.
"""

import base64
import hashlib
import http.client
import json
import ssl
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from e2e.conftest import start_mitmdump, stop
from e2e.photos import assert_clean_and_masked, face_photo_with_gps, metadata_problems
from veil.policy import CATCH_ALL_SERVICE, load_catalogue, load_policy_text

EVERYTHING = "version: 1\ncatalogue: {include: [all, upload-storage]}\n"


def concrete_host(pattern) -> str:
    """A host a pattern matches: wildcards and label globs filled in."""
    if pattern.is_wildcard:
        return "upload-7" + pattern.suffix.replace("*", "eu-west-1")
    return pattern.text.replace("*", "eu-west-1")


def upload_target(service) -> tuple[str, str, str]:
    """(host, method, path) of a request the service's first upload rule covers, the path
    unique to the service so the upstream's records cannot be confused."""
    route = service.routes[-1] if service.routes[-1].paths is None else service.routes[0]
    method = "POST" if "POST" in route.methods or "*" in route.methods else min(route.methods)
    tag = f"veil-{service.name}"
    path = route.paths[0].text.replace("*", tag) if route.paths else f"/{tag}/upload"
    return concrete_host(service.hosts[0]), method, path


def multipart(photo: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + photo + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
    return body, f"multipart/form-data; boundary={boundary}"


def data_url_json(photo: bytes) -> tuple[bytes, str]:
    url = "data:image/jpeg;base64," + base64.b64encode(photo).decode()
    document = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}
    return json.dumps(document).encode(), "application/json"


def send(proxy, host: str, method: str, path: str, body: bytes, content_type: str, tls: bool = True) -> int:
    if tls:
        connection = http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=60, context=proxy.ssl_context())
        connection.set_tunnel(host, 443)
        target = path
    else:
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=60)
        target = f"http://{host}{path}"
    try:
        connection.request(method, target, body, {"Content-Type": content_type})
        return connection.getresponse().status
    finally:
        connection.close()


def image_in(received: bytes, content_type: str) -> bytes:
    if content_type.startswith("multipart/"):
        start = received.index(b"\r\n\r\n") + 4
        return received[start : received.rindex(b"\r\n--")]
    url = json.loads(received)["messages"][0]["content"][0]["image_url"]["url"]
    return base64.b64decode(url.split(",", 1)[1])


def running_proxy(upstream, tmp_path_factory, name: str, policy_text: str, *options: str):
    """A mitmdump with Veil on `policy_text`, for a module fixture to yield from."""
    folder = tmp_path_factory.mktemp(name)
    policy = folder / "policy.yaml"
    policy.write_text(policy_text)
    running = start_mitmdump(folder, upstream.port, policy, *options)
    yield running
    stop(running)


@pytest.fixture(scope="module")
def catalogue_proxy(upstream, tmp_path_factory):
    yield from running_proxy(upstream, tmp_path_factory, "catalogue-proxy", EVERYTHING, "--set", "veil_workers=2")


def test_every_catalogue_service_cleans_a_generic_upload(catalogue_proxy, upstream):
    services = load_policy_text(EVERYTHING).services
    assert {service.name for service in services} == set(load_catalogue().entries)
    photo = face_photo_with_gps()
    jobs = [(service, *upload_target(service), *encode(photo)) for service in services for encode in (multipart, data_url_json)]

    def run(job):
        _service, host, method, path, body, content_type = job
        return send(catalogue_proxy, host, method, path, body, content_type)

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(run, jobs))
    assert [job[0].name for job, status in zip(jobs, statuses) if status != 200] == []
    records = catalogue_proxy.audit_records()
    seen_images = set()
    for service, host, _method, path, _body, content_type in jobs:
        received = [r for r in upstream.received if r.path == path and r.host == host and r.headers.get("content-type") == content_type]
        assert received, (service.name, host, path)
        image = image_in(received[-1].body, content_type)
        assert metadata_problems(image) == [], service.name
        digest = hashlib.sha256(image).hexdigest()
        assert any(r["event"] == "sanitised" and r["service"] == service.name and r["sha256_after"] == digest for r in records), service.name
        seen_images.add(image)
    for image in seen_images:  # cleaning is deterministic: a few distinct outputs (padded or not), each checked for faces
        assert_clean_and_masked(image)
    assert len(seen_images) <= 4


# ---- protect: all-uploads ------------------------------------------------------------------------

GATEWAY = """\
version: 1
protect: all-uploads
tunnel: ["127.0.0.1"]
unnamed_destinations: block
catalogue: {include: [openai]}
"""


@pytest.fixture(scope="module")
def gateway_proxy(upstream, tmp_path_factory):
    yield from running_proxy(upstream, tmp_path_factory, "gateway-proxy", GATEWAY, "--set", "veil_workers=1")


def test_an_upload_to_any_host_arrives_clean_with_a_record(gateway_proxy, upstream):
    body, content_type = multipart(face_photo_with_gps())
    assert send(gateway_proxy, "photos.example.org", "POST", "/albums/upload", body, content_type) == 200
    received = upstream.last("/albums/upload")
    assert received.host == "photos.example.org"
    image = image_in(received.body, content_type)
    assert_clean_and_masked(image)
    record = gateway_proxy.audit_records()[-1]
    assert record["event"] == "sanitised" and record["service"] == CATCH_ALL_SERVICE
    assert record["sha256_after"] == hashlib.sha256(image).hexdigest()


def test_a_tunnelled_host_is_not_decrypted(gateway_proxy, direct_tls_server):
    url, server_cert = direct_tls_server
    port = int(url.rsplit(":", 1)[1].strip("/"))
    trusting_the_server = ssl.create_default_context(cafile=str(server_cert))
    connection = http.client.HTTPSConnection("127.0.0.1", gateway_proxy.port, timeout=30, context=trusting_the_server)
    connection.set_tunnel("127.0.0.1", port)
    connection.request("GET", "/")
    assert connection.getresponse().read() == b"direct"  # the real server's certificate: not decrypted
    connection.close()


def test_an_unnamed_destination_is_refused_when_decrypted(gateway_proxy):
    """all-uploads decrypts the connection to a bare IP; its requests name no host and are refused."""
    assert send(gateway_proxy, "127.0.0.2", "POST", "/upload", b"x", "text/plain", tls=False) == 403
    assert send(gateway_proxy, "127.0.0.2", "POST", "/upload", b"x", "text/plain") == 403  # no SNI for an IP
    blocked = [r for r in gateway_proxy.audit_records() if r["service"] == "unnamed-destination"]
    assert [(r["event"], r["url"].split(":", 1)[0]) for r in blocked] == [("blocked", "http"), ("blocked", "https")]


@pytest.fixture(scope="module")
def named_only_proxy(upstream, tmp_path_factory):
    policy = "version: 1\ncatalogue: {include: [anthropic-api]}\nunnamed_destinations: block\n"
    yield from running_proxy(upstream, tmp_path_factory, "named-only-proxy", policy, "--set", "veil_workers=1")


def test_an_unnamed_destination_is_closed_rather_than_tunnelled(named_only_proxy):
    with pytest.raises(OSError):  # ssl.SSLError and the connection errors alike
        send(named_only_proxy, "127.0.0.2", "POST", "/upload", b"x", "text/plain")
    [record] = named_only_proxy.audit_records()
    assert record["event"] == "blocked" and record["service"] == "unnamed-destination"
    assert record["url"] == "tcp://127.0.0.2:443"


# ---- veil_decrypt_all: what passes is said --------------------------------------------------------


@pytest.fixture(scope="module")
def decrypt_all_proxy(upstream, tmp_path_factory):
    policy = "version: 1\ncatalogue: {include: [anthropic-api]}\n"
    yield from running_proxy(upstream, tmp_path_factory, "decrypt-all-proxy", policy,
                             "--set", "veil_workers=1", "--set", "veil_decrypt_all=true")  # fmt: skip


def test_decrypt_all_records_an_upload_no_rule_covers(decrypt_all_proxy, upstream):
    photo = face_photo_with_gps()
    assert send(decrypt_all_proxy, "files.example.net", "PUT", "/bucket/photo.jpg", photo, "image/jpeg") == 200
    assert upstream.last("/bucket/photo.jpg").body == photo  # forwarded as it was: no rule covers it
    record = decrypt_all_proxy.audit_records()[-1]
    assert record["event"] == "passed" and record["service"] == "no-rule" and "no rule of the policy" in record["reason"]
    assert record["url"].startswith("https://files.example.net/bucket/photo.jpg")
