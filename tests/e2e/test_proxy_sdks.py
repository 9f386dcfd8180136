"""The official openai, anthropic and google-genai SDKs, unmodified, talking to their
real base URLs through a real mitmdump running Veil."""

import base64
import hashlib
import json

import pytest

from e2e.photos import assert_clean_and_masked, face_photo_with_gps

PHOTO = "photo"  # placeholder for the image inside documents compared structurally


def _received_image_matches_audit(proxy, image: bytes, service: str) -> dict:
    digest = hashlib.sha256(image).hexdigest()
    # Cleaning is deterministic, so earlier tests may have produced the same bytes: take the latest.
    record = next((r for r in reversed(proxy.audit_records()) if r["sha256_after"] == digest), None)
    assert record is not None, "no audit record has the hash of what the upstream received"
    assert record["event"] == "sanitised" and record["service"] == service
    assert record["sha256_before"] == hashlib.sha256(face_photo_with_gps()).hexdigest()
    assert "gps" in record["metadata_removed"] and record["faces"] >= 1
    return record


def _data_url() -> str:
    return "data:image/jpeg;base64," + base64.b64encode(face_photo_with_gps()).decode()


def _multipart_file(body: bytes, content_type: str, field: str) -> list[bytes]:
    boundary = content_type.split("boundary=")[1].strip('"').encode()
    files = []
    for part in body.split(b"--" + boundary)[1:-1]:
        headers, _, content = part.partition(b"\r\n\r\n")
        if f'name="{field}"'.encode() in headers:
            files.append(content[: -len(b"\r\n")])
    return files


@pytest.fixture
def openai_client(proxy):
    openai = pytest.importorskip("openai")
    http_client = openai.DefaultHttpxClient(proxy=proxy.url, verify=proxy.ssl_context())
    return openai.OpenAI(api_key="sk-test", max_retries=0, http_client=http_client)


@pytest.fixture
def anthropic_client(proxy, tmp_path, monkeypatch):
    anthropic = pytest.importorskip("anthropic")
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path))  # no credential chain from the home folder
    http_client = anthropic.DefaultHttpxClient(proxy=proxy.url, verify=proxy.ssl_context())
    return anthropic.Anthropic(api_key="sk-ant-test", max_retries=0, http_client=http_client)


@pytest.fixture
def genai_client(proxy):
    genai = pytest.importorskip("google.genai")
    from google.genai import types

    options = types.HttpOptions(client_args={"proxy": proxy.url, "verify": proxy.ssl_context()})
    return genai.Client(api_key="AIza-test", http_options=options)


def test_openai_chat_completions_with_a_data_url(openai_client, upstream, proxy):
    answer = openai_client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this photo?"},
            {"type": "image_url", "image_url": {"url": _data_url(), "detail": "high"}}]}],
    )  # fmt: skip
    assert answer.choices[0].message.content == "ok"
    sent = json.loads(upstream.last("/v1/chat/completions").body)
    image_url = sent["messages"][0]["content"][1]["image_url"]
    assert image_url["url"].startswith("data:image/jpeg;base64,") and image_url["detail"] == "high"
    image = base64.b64decode(image_url["url"].split(",", 1)[1])
    assert_clean_and_masked(image)
    image_url["url"] = PHOTO
    assert sent == {"model": "gpt-test", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this photo?"},
        {"type": "image_url", "image_url": {"url": PHOTO, "detail": "high"}}]}]}  # fmt: skip
    record = _received_image_matches_audit(proxy, image, "openai-api")
    assert record["envelope"] == "json" and record["location"] == "$.messages[0].content[1].image_url.url"


def test_openai_responses_with_input_image(openai_client, upstream, proxy):
    answer = openai_client.responses.create(
        model="gpt-test",
        input=[{"role": "user", "content": [
            {"type": "input_text", "text": "Describe"}, {"type": "input_image", "image_url": _data_url()}]}],
    )  # fmt: skip
    assert answer.output_text == "ok"
    sent = json.loads(upstream.last("/v1/responses").body)
    image = base64.b64decode(sent["input"][0]["content"][1]["image_url"].split(",", 1)[1])
    assert_clean_and_masked(image)
    _received_image_matches_audit(proxy, image, "openai-api")


def test_openai_files_create(openai_client, upstream, proxy):
    created = openai_client.files.create(file=("photo.jpg", face_photo_with_gps(), "image/jpeg"), purpose="vision")
    assert created.id == "file-1"
    received = upstream.last("/v1/files")
    [image] = _multipart_file(received.body, received.headers["content-type"], "file")
    assert_clean_and_masked(image)
    assert _multipart_file(received.body, received.headers["content-type"], "purpose") == [b"vision"]
    _received_image_matches_audit(proxy, image, "openai-api")


def test_openai_batch_input_file_with_images_on_every_line(openai_client, upstream, proxy):
    """A Batch API input file (.jsonl): each line a chat request with a base64 photo."""
    url = "data:image/jpeg;base64," + base64.b64encode(face_photo_with_gps()).decode()
    lines = [{"custom_id": f"r{n}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}}
             for n in (1, 2)]  # fmt: skip
    batch = "".join(json.dumps(line) + "\n" for line in lines).encode()
    openai_client.files.create(file=("batch.jsonl", batch, "application/jsonl"), purpose="batch")
    received = upstream.last("/v1/files")
    [sent] = _multipart_file(received.body, received.headers["content-type"], "file")
    for line in sent.splitlines():
        image_url = json.loads(line)["body"]["messages"][0]["content"][0]["image_url"]["url"]
        assert_clean_and_masked(base64.b64decode(image_url.split(",", 1)[1]))
    records = [r for r in proxy.audit_records() if r["location"] and "line " in r["location"]][-2:]
    assert [r["location"] for r in records] == [f"file:line {n}:$.body.messages[0].content[0].image_url.url" for n in (1, 2)]
    assert all(r["event"] == "sanitised" for r in records)


def test_openai_images_edit_with_several_images(openai_client, upstream, proxy):
    photo = face_photo_with_gps()
    edited = openai_client.images.edit(
        model="gpt-image-1", prompt="make it sunny", image=[("a.jpg", photo, "image/jpeg"), ("b.jpg", photo, "image/jpeg")]
    )
    assert edited.data[0].b64_json == "aGk="
    received = upstream.last("/v1/images/edits")
    images = _multipart_file(received.body, received.headers["content-type"], "image[]")
    assert len(images) == 2
    for image in images:
        assert_clean_and_masked(image)
        _received_image_matches_audit(proxy, image, "openai-api")


def test_anthropic_messages_with_base64_image(anthropic_client, upstream, proxy):
    answer = anthropic_client.messages.create(
        model="claude-test",
        max_tokens=16,
        messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                         "data": base64.b64encode(face_photo_with_gps()).decode()}},
            {"type": "text", "text": "Who is this?"}]}],
    )  # fmt: skip
    assert answer.content[0].text == "ok"
    sent = json.loads(upstream.last("/v1/messages").body)
    source = sent["messages"][0]["content"][0]["source"]
    image = base64.b64decode(source["data"], validate=True)  # still bare standard base64
    assert_clean_and_masked(image)
    source["data"] = PHOTO
    assert sent["messages"][0]["content"][1] == {"type": "text", "text": "Who is this?"}
    assert source == {"type": "base64", "media_type": "image/jpeg", "data": PHOTO}
    _received_image_matches_audit(proxy, image, "anthropic-api")


def test_anthropic_files_upload(anthropic_client, upstream, proxy):
    uploaded = anthropic_client.beta.files.upload(file=("photo.jpg", face_photo_with_gps(), "image/jpeg"))
    assert uploaded.id == "file_1"
    received = upstream.last("/v1/files")
    [image] = _multipart_file(received.body, received.headers["content-type"], "file")
    assert_clean_and_masked(image)
    _received_image_matches_audit(proxy, image, "anthropic-api")


def test_google_genai_generate_content_with_inline_data(genai_client, upstream, proxy):
    from google.genai import types

    answer = genai_client.models.generate_content(
        model="gemini-test",
        contents=[types.Part.from_bytes(data=face_photo_with_gps(), mime_type="image/jpeg"), "What is this?"],
    )
    assert answer.text == "ok"
    sent = json.loads(upstream.last(":generateContent").body)
    inline = sent["contents"][0]["parts"][0]["inlineData"]
    assert "+" not in inline["data"] and "/" not in inline["data"]  # written back URL-safe, as the SDK sent it
    image = base64.urlsafe_b64decode(inline["data"] + "=" * (-len(inline["data"]) % 4))
    assert_clean_and_masked(image)
    _received_image_matches_audit(proxy, image, "gemini-api")
