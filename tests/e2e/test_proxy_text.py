"""Text masking through a real mitmdump: the unmodified openai SDK uploads a screenshot
holding e-mail addresses and a QR code; what reaches the service has both masked, and the
audit record counts them by kind."""

import base64
import hashlib
import io
import json
from textwrap import dedent

import pytest
from PIL import Image

import text_samples as samples
from e2e.conftest import start_mitmdump, stop

POLICY = dedent("""\
    version: 1
    defaults:
      faces: off
      text: pii
      limits:
        image_timeout_seconds: 180   # OCR on a shared 2-core machine
    services:
      openai:
        hosts: ["api.openai.com"]
    """)


@pytest.fixture(scope="module")
def text_proxy(upstream, tmp_path_factory):
    folder = tmp_path_factory.mktemp("veil-text-proxy")
    policy = folder / "policy.yaml"
    policy.write_text(POLICY)
    running = start_mitmdump(folder, upstream.port, policy)
    yield running
    stop(running)


def test_a_screenshot_uploaded_by_the_openai_sdk_arrives_with_addresses_and_code_masked(text_proxy, upstream):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(
        api_key="sk-test", max_retries=0, timeout=300,
        http_client=openai.DefaultHttpxClient(proxy=text_proxy.url, verify=text_proxy.ssl_context(), timeout=300),
    )  # fmt: skip
    sample = samples.screenshot(21)
    original = sample.png()
    url = "data:image/png;base64," + base64.b64encode(original).decode()
    answer = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Summarise"}, {"type": "image_url", "image_url": {"url": url}}]}],
    )
    assert answer.choices[0].message.content == "ok"
    sent = json.loads(upstream.last("/v1/chat/completions").body)
    received = base64.b64decode(sent["messages"][0]["content"][1]["image_url"]["url"].split(",", 1)[1])
    verdict = samples.judge(sample, Image.open(io.BytesIO(received)).convert("RGB"))
    assert verdict.missed == [] and verdict.codes_covered == verdict.codes_total == 1
    assert verdict.others_kept >= 0.9 * verdict.others_total
    record = next(r for r in reversed(text_proxy.audit_records()) if r["sha256_after"] == hashlib.sha256(received).hexdigest())
    assert record["event"] == "sanitised" and record["sha256_before"] == hashlib.sha256(original).hexdigest()
    assert record["text"]["email"] == 2 and record["text"]["code"] == 1
    assert "text:pii" in record["actions"]
    assert all(token.text not in json.dumps(record) for token in sample.personal)
