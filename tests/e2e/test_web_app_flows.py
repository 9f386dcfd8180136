"""The web apps' and multi-step uploads' request sequences (DESIGN §3, wire-formats §3-§12)
through a real mitmdump running Veil with the default policy. The upstream checks what
was declared before the bytes as the services do (e2e/declared_sizes.py), so a flow only
passes when Veil kept the length, the hashes and the size headers consistent."""

import base64
import hashlib
import io
import json
import subprocess

import pytest
from e2e.conftest import DEFAULT_POLICY, require_curl, start_mitmdump, stop
from e2e.declared_sizes import MISTRAL_BLOB_HOST
from e2e.photos import assert_clean_and_masked, face_photo_with_gps


def curl(env, *args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    require_curl()
    command = ["curl", "-sS", "--max-time", "60", *args]
    return subprocess.run(command, input=stdin, env=env, capture_output=True, timeout=90)


def status_and_body(done: subprocess.CompletedProcess) -> tuple[int, bytes]:
    """For `curl -i --suppress-connect-headers`: the final status code and the body."""
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def headers_of(done: subprocess.CompletedProcess) -> dict[str, str]:
    head = done.stdout.partition(b"\r\n\r\n")[0].decode()
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head.splitlines()[1:] if ":" in line)}


def multipart_field(received, name: str) -> bytes:
    boundary = received.headers["content-type"].split("boundary=")[1].strip('"').encode()
    for part in received.body.split(b"--" + boundary)[1:-1]:
        head, _, content = part.partition(b"\r\n\r\n")
        if f'name="{name}"'.encode() in head:
            return content[: -len(b"\r\n")]
    raise AssertionError(f"no part named {name}")


@pytest.fixture
def photo_file(tmp_path):
    path = tmp_path / "IMG_2041.jpg"
    path.write_bytes(face_photo_with_gps())
    return path


def sanitised_record(proxy, image: bytes, service: str) -> dict:
    digest = hashlib.sha256(image).hexdigest()
    record = next((r for r in reversed(proxy.audit_records()) if r["sha256_after"] == digest), None)
    assert record is not None, "no audit record has the hash of what the upstream received"
    assert record["event"] == "sanitised" and record["service"] == service
    return record


# ---- ChatGPT web: create with file_size, raw PUT to the blob host, then "uploaded" -----------


def test_chatgpt_web_blob_put_is_clean_masked_and_exactly_file_size_long(proxy, proxy_env, upstream, photo_file):
    photo = face_photo_with_gps()
    created = curl(
        proxy_env, "https://chatgpt.com/backend-api/files", "-H", "Content-Type: application/json",
        "--data", json.dumps({"file_name": "IMG_2041.jpg", "file_size": len(photo), "use_case": "multimodal"}),
    )  # fmt: skip
    answer = json.loads(created.stdout)
    upload_url, file_id = answer["upload_url"], answer["file_id"]
    assert ".oaiusercontent.com/files/" in upload_url
    put = curl(
        proxy_env, "-i", "--suppress-connect-headers", "-X", "PUT", upload_url, "--data-binary", f"@{photo_file}",
        "-H", "Content-Type: image/jpeg", "-H", "x-ms-blob-type: BlockBlob", "-H", "x-ms-version: 2020-04-08",
        "-H", f"Content-MD5: {base64.b64encode(hashlib.md5(photo).digest()).decode()}",  # of the original bytes
    )  # fmt: skip
    assert status_and_body(put)[0] == 201, put.stdout
    received = upstream.last(f"/files/{file_id}/raw")
    assert len(received.body) == len(photo)  # exactly the declared file_size
    assert received.body != photo
    assert_clean_and_masked(received.body)
    assert received.headers["content-md5"] == base64.b64encode(hashlib.md5(received.body).digest()).decode()
    assert received.headers["x-ms-blob-type"] == "BlockBlob"
    uploaded = curl(proxy_env, "-i", "--suppress-connect-headers", "-X", "POST", f"https://chatgpt.com/backend-api/files/{file_id}/uploaded", "--data", "{}")
    assert status_and_body(uploaded)[0] == 200, uploaded.stdout  # no file_size_mismatch
    record = sanitised_record(proxy, received.body, "chatgpt-web")
    assert record["bytes_before"] == record["bytes_after"] == len(photo) and record["faces"] >= 1
    assert record["actions"] == ["strip", "faces:mask", "reencode", "pad"]


# ---- Claude.ai: multipart `file` to /api/{org}/upload ----------------------------------------


def test_claude_web_upload_keeps_the_length(proxy, proxy_env, upstream, photo_file):
    done = curl(proxy_env, "https://claude.ai/api/0f3c-org/upload", "-F", f"file=@{photo_file};type=image/jpeg", "-F", "orgUuid=0f3c-org")
    assert done.returncode == 0, done.stderr
    received = upstream.last("/api/0f3c-org/upload")
    image = multipart_field(received, "file")
    assert len(image) == len(face_photo_with_gps())
    assert_clean_and_masked(image)
    assert multipart_field(received, "orgUuid") == b"0f3c-org"
    assert sanitised_record(proxy, image, "claude-web")["rule"] == "upload"


# ---- Gemini: resumable uploads, API (real SDK) and web (curl) ---------------------------------


def test_gemini_api_files_upload_with_the_real_sdk(proxy, upstream):
    genai = pytest.importorskip("google.genai")
    from google.genai import types

    options = types.HttpOptions(client_args={"proxy": proxy.url, "verify": proxy.ssl_context()})
    client = genai.Client(api_key="AIza-test", http_options=options)
    uploaded = client.files.upload(file=io.BytesIO(face_photo_with_gps()), config={"mime_type": "image/jpeg"})
    assert uploaded.name == "files/abc"  # the upstream answered "final": lengths agreed
    chunk = next(r for r in reversed(upstream.received) if "upload_id=" in r.path and r.host == "generativelanguage.googleapis.com")
    assert "finalize" in chunk.headers["x-goog-upload-command"] and chunk.headers["x-goog-upload-offset"] == "0"
    assert len(chunk.body) == len(face_photo_with_gps())
    assert_clean_and_masked(chunk.body)
    assert sanitised_record(proxy, chunk.body, "gemini-api")["rule"] == "file-upload"


def _gemini_web_start(proxy_env, size: int) -> str:
    start = curl(
        proxy_env, "-i", "--suppress-connect-headers", "https://push.clients6.google.com/upload/",
        "-H", "x-goog-upload-command: start", "-H", "x-goog-upload-protocol: resumable",
        "-H", f"x-goog-upload-header-content-length: {size}", "-H", "push-id: feeds/mcudyrk2a4khkz",
        "-H", "x-tenant-id: bard-storage", "--data", "File name: IMG_2041.jpg",
    )  # fmt: skip
    return headers_of(start)["x-goog-upload-url"]


def test_gemini_web_upload_finalize_keeps_the_declared_length(proxy, proxy_env, upstream, photo_file):
    photo = face_photo_with_gps()
    upload_url = _gemini_web_start(proxy_env, len(photo))
    done = curl(
        proxy_env, "-i", "--suppress-connect-headers", upload_url, "--data-binary", f"@{photo_file}",
        "-H", "x-goog-upload-command: upload, finalize", "-H", "x-goog-upload-offset: 0",
        "-H", "Content-Type: application/x-www-form-urlencoded;charset=utf-8",
    )  # fmt: skip
    assert status_and_body(done)[0] == 200, done.stdout
    received = upstream.last(upload_url.split("push.clients6.google.com")[1])
    assert len(received.body) == len(photo)
    assert_clean_and_masked(received.body)
    assert sanitised_record(proxy, received.body, "gemini-web")["rule"] == "upload"


def test_gemini_image_split_over_several_chunks_arrives_whole_and_clean(proxy, proxy_env, upstream, photo_file):
    """The outside test's leak: a first chunk too short to tell it is a photo. Veil holds
    the chunks, answers them as Google does, and sends the cleaned file whole at finalize."""
    photo = face_photo_with_gps()
    upload_url = _gemini_web_start(proxy_env, len(photo))
    path = upload_url.split("push.clients6.google.com")[1]
    upstream.clear()
    pieces = [(0, photo[:3], "upload"), (3, photo[3:40_000], "upload"), (40_000, photo[40_000:], "upload, finalize")]
    for offset, piece, command in pieces:
        done = curl(
            proxy_env, "-i", "--suppress-connect-headers", upload_url, "--data-binary", "@-",
            "-H", f"x-goog-upload-command: {command}", "-H", f"x-goog-upload-offset: {offset}", stdin=piece,
        )  # fmt: skip
        assert status_and_body(done)[0] == 200, done.stdout[:500]
        if command == "upload":
            assert headers_of(done)["x-goog-upload-status"] == "active"
            assert headers_of(done)["x-goog-upload-size-received"] == str(offset + len(piece))
    [received] = [r for r in upstream.received if r.path == path]  # one request reached Google
    assert received.headers["x-goog-upload-offset"] == "0" and len(received.body) == len(photo)
    assert_clean_and_masked(received.body)
    assert sanitised_record(proxy, received.body, "gemini-web")["rule"] == "upload"


def test_a_chunk_of_an_upload_veil_did_not_see_start_is_refused_with_a_record(proxy, proxy_env, upstream):
    photo = face_photo_with_gps()
    upstream.clear()
    done = curl(
        proxy_env, "-i", "--suppress-connect-headers", "https://push.clients6.google.com/upload/?upload_id=unseen",
        "--data-binary", "@-", "-H", "x-goog-upload-command: upload, finalize", "-H", "x-goog-upload-offset: 3",
        stdin=photo[3:],
    )  # fmt: skip
    status, body = status_and_body(done)
    assert status == 403 and "did not see" in json.loads(body)["error"]["message"]
    assert not [r for r in upstream.received if "unseen" in r.path]
    assert proxy.audit_records()[-1]["event"] == "blocked" and "did not see" in proxy.audit_records()[-1]["reason"]


def test_a_large_photo_uploaded_in_several_chunks_by_the_real_genai_sdk_arrives_clean(proxy, upstream):
    genai = pytest.importorskip("google.genai")
    from e2e.photos import large_face_photo_with_gps
    from google.genai import types

    photo = large_face_photo_with_gps()  # > 8 MiB: the SDK sends two chunks
    options = types.HttpOptions(client_args={"proxy": proxy.url, "verify": proxy.ssl_context()})
    client = genai.Client(api_key="AIza-test", http_options=options)
    upstream.clear()
    uploaded = client.files.upload(file=io.BytesIO(photo), config={"mime_type": "image/jpeg"})
    assert uploaded.name == "files/abc"  # the upstream answered "final": the declared length held
    [chunk] = [r for r in upstream.received if "upload_id=" in r.path]
    assert chunk.headers["x-goog-upload-offset"] == "0" and len(chunk.body) == len(photo)
    assert b"Jane Doe" not in chunk.body
    assert_clean_and_masked(chunk.body)


# ---- OpenAI Uploads: create (bytes), parts, complete (md5), with the real SDK ----------------


def test_openai_uploads_chunked_with_md5(proxy, upstream):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(
        api_key="sk-test", max_retries=0, http_client=openai.DefaultHttpxClient(proxy=proxy.url, verify=proxy.ssl_context())
    )
    photo = face_photo_with_gps()
    upload = client.uploads.upload_file_chunked(
        file=photo, filename="IMG_2041.jpg", bytes=len(photo), mime_type="image/jpeg", purpose="vision",
        md5=hashlib.md5(photo).hexdigest(),
    )  # fmt: skip
    assert upload.status == "completed"  # the upstream checked bytes and md5 against the parts it got
    part = next(r for r in reversed(upstream.received) if r.path.endswith("/parts"))
    data = multipart_field(part, "data")
    assert len(data) == len(photo)
    assert_clean_and_masked(data)
    complete = next(r for r in reversed(upstream.received) if r.path.endswith("/complete"))
    assert json.loads(complete.body)["md5"] == hashlib.md5(data).hexdigest() != hashlib.md5(photo).hexdigest()
    assert sanitised_record(proxy, data, "openai-api")["rule"] == "upload-parts"


def test_openai_uploads_in_many_small_parts_arrive_whole_and_clean(proxy, upstream):
    """Parts too short to sniff (the outside test's leak): Veil holds them, answers each with
    a part of its own, sends the cleaned file as the one real part and fixes `complete`."""
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(
        api_key="sk-test", max_retries=0, http_client=openai.DefaultHttpxClient(proxy=proxy.url, verify=proxy.ssl_context())
    )
    photo = face_photo_with_gps()
    upstream.clear()
    upload = client.uploads.upload_file_chunked(
        file=photo, filename="IMG_2041.jpg", bytes=len(photo), mime_type="image/jpeg", purpose="vision",
        part_size=4_000, md5=hashlib.md5(photo).hexdigest(),
    )  # fmt: skip
    assert upload.status == "completed"  # the upstream checked bytes and md5 against the parts it got
    [part] = [r for r in upstream.received if r.path.endswith("/parts")]
    data = multipart_field(part, "data")
    assert len(data) == len(photo)
    assert_clean_and_masked(data)
    complete = next(r for r in reversed(upstream.received) if r.path.endswith("/complete"))
    assert len(json.loads(complete.body)["part_ids"]) == 1
    assert sanitised_record(proxy, data, "openai-api")["rule"] == "upload-parts"


# ---- Perplexity: S3 presigned POST -------------------------------------------------------------


def _s3_policy(*conditions) -> str:
    return base64.b64encode(json.dumps({"expiration": "2026-11-27T00:00:00Z", "conditions": list(conditions)}).encode()).decode()


def test_the_fake_s3_enforces_the_signed_policy_as_s3_does():
    from e2e.declared_sizes import s3_presigned_post

    def post(policy: str, file: bytes, content_type: str = "image/jpeg"):
        body = (f'--B\r\nContent-Disposition: form-data; name="Content-Type"\r\n\r\n{content_type}\r\n'
                f'--B\r\nContent-Disposition: form-data; name="policy"\r\n\r\n{policy}\r\n'
                f'--B\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n').encode() + file + b"\r\n--B--\r\n"
        return s3_presigned_post({"content-type": "multipart/form-data; boundary=B"}, body)[0]

    exact = _s3_policy(["content-length-range", 10, 10], {"Content-Type": "image/jpeg"})
    assert post(exact, b"x" * 10) == 204
    assert post(exact, b"x" * 11) == 400 and post(exact, b"x" * 9) == 400
    assert post(exact, b"x" * 10, "image/png") == 400
    assert post(_s3_policy(["starts-with", "$Content-Type", "image/"]), b"x", "image/png") == 204
    assert post(_s3_policy(["eq", "$Content-Type", "image/png"]), b"x") == 400


def test_perplexity_s3_post_changes_only_the_file_bytes(proxy, proxy_env, upstream, photo_file):
    # A range exactly the original's length: the cleaned upload passes only because Veil kept it.
    length = len(face_photo_with_gps())
    policy = _s3_policy({"bucket": "ppl-ai-file-upload"}, ["content-length-range", length, length],
                        ["eq", "$Content-Type", "image/jpeg"])  # fmt: skip
    fields = {
        "key": "web/direct-files/attachments/images/u1/0a1b/IMG_2041.jpg", "Content-Type": "image/jpeg",
        "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": "AKIA/20261126/us-east-1/s3/aws4_request",
        "x-amz-date": "20261126T000000Z", "policy": policy, "x-amz-signature": "0f" * 32,
    }  # fmt: skip
    form = [arg for name, value in fields.items() for arg in ("-F", f"{name}={value}")]
    done = curl(proxy_env, "-i", "--suppress-connect-headers", "https://ppl-ai-file-upload.s3.amazonaws.com/", *form, "-F", f"file=@{photo_file};type=image/jpeg")
    assert status_and_body(done)[0] == 204, done.stdout
    received = upstream.last("/")
    assert received.host == "ppl-ai-file-upload.s3.amazonaws.com"
    for name, value in fields.items():
        assert multipart_field(received, name) == value.encode()
    image = multipart_field(received, "file")
    assert len(image) == len(face_photo_with_gps()) and len(received.body) == int(received.headers["content-length"])
    assert_clean_and_masked(image)
    sanitised_record(proxy, image, "perplexity-web")


# ---- DeepSeek: multipart with x-file-size ------------------------------------------------------


def test_deepseek_x_file_size_follows_the_cleaned_file(proxy, proxy_env, upstream, photo_file):
    photo = face_photo_with_gps()
    done = curl(
        proxy_env, "-i", "--suppress-connect-headers", "https://chat.deepseek.com/api/v0/file/upload_file",
        "-F", f"file=@{photo_file};type=image/jpeg", "-H", f"x-file-size: {len(photo)}", "-H", "x-ds-pow-response: abc",
    )  # fmt: skip
    assert status_and_body(done)[0] == 200, done.stdout  # the upstream compares x-file-size with the file
    received = upstream.last("/api/v0/file/upload_file")
    image = multipart_field(received, "file")
    assert len(image) < len(photo) and received.headers["x-file-size"] == str(len(image))
    assert received.headers["x-ds-pow-response"] == "abc"
    assert_clean_and_masked(image)
    sanitised_record(proxy, image, "deepseek-web")


# ---- Copilot raw image/*, Grok JSON base64 ------------------------------------------------------


def test_copilot_raw_image_post(proxy, proxy_env, upstream, photo_file):
    done = curl(proxy_env, "https://copilot.microsoft.com/c/api/attachments", "--data-binary", f"@{photo_file}", "-H", "Content-Type: image/jpeg")
    assert done.returncode == 0, done.stderr
    received = upstream.last("/c/api/attachments")
    assert_clean_and_masked(received.body)
    sanitised_record(proxy, received.body, "copilot-web")


def test_grok_json_base64_content(proxy, proxy_env, upstream):
    document = {"fileName": "IMG_2041.jpg", "fileMimeType": "image/jpeg", "content": base64.b64encode(face_photo_with_gps()).decode()}
    done = curl(proxy_env, "https://grok.com/rest/app-chat/upload-file", "-H", "Content-Type: application/json", "--data-binary", "@-", stdin=json.dumps(document).encode())
    assert done.returncode == 0, done.stderr
    sent = json.loads(upstream.last("/rest/app-chat/upload-file").body)
    assert sent["fileName"] == "IMG_2041.jpg" and sent["fileMimeType"] == "image/jpeg"
    image = base64.b64decode(sent["content"], validate=True)
    assert_clean_and_masked(image)
    sanitised_record(proxy, image, "grok-web")


# ---- Mistral Le Chat: tRPC hands out an Azure SAS URL, then a raw PUT --------------------------


@pytest.fixture(scope="module")
def mistral_proxy(upstream, tmp_path_factory):
    """The default policy with Le Chat's storage host added, as the catalogue entry asks
    operators to: a `services:` entry with hosts replaces the catalogue's mistral-web."""
    folder = tmp_path_factory.mktemp("mistral-proxy")
    policy = folder / "policy.yaml"
    text = DEFAULT_POLICY.read_text()
    assert "\nservices:" not in text, "the default policy now has services: of its own; add mistral-web there"
    policy.write_text(text + f'\nservices:\n  mistral-web:\n    hosts: ["chat.mistral.ai", "{MISTRAL_BLOB_HOST}"]\n')
    running = start_mitmdump(folder, upstream.port, policy)
    yield running
    stop(running)


def test_mistral_le_chat_raw_put(mistral_proxy, upstream, photo_file):
    env = {"PATH": "/usr/bin:/bin", "HTTPS_PROXY": mistral_proxy.url, "CURL_CA_BUNDLE": str(mistral_proxy.ca_file)}
    asked = curl(env, "https://chat.mistral.ai/api/trpc/file.uploadFile?batch=1", "-H", "Content-Type: application/json",
                 "--data", json.dumps({"0": {"json": {"type": "image", "count": 1}}}))  # fmt: skip
    [upload_url] = json.loads(asked.stdout)[0]["result"]["data"]["json"]["uploadURLs"]
    put = curl(
        env, "-i", "--suppress-connect-headers", "-X", "PUT", upload_url, "--data-binary", f"@{photo_file}",
        "-H", "Content-Type: image/jpeg", "-H", "x-ms-blob-type: BlockBlob",
    )  # fmt: skip
    assert status_and_body(put)[0] == 201, put.stdout
    received = upstream.last(upload_url.split(MISTRAL_BLOB_HOST)[1].split("?")[0])
    assert received.host == MISTRAL_BLOB_HOST and received.headers["x-ms-blob-type"] == "BlockBlob"
    assert_clean_and_masked(received.body)
    sanitised_record(mistral_proxy, received.body, "mistral-web")
