import base64
import json

import pytest

from builders import encode, gradient, outside_spans
from veil.proxy.envelopes import EnvelopeError, find_images, json_base64, splice

JPEG = encode(gradient(), "JPEG", quality=80)
PNG = encode(gradient((20, 12)), "PNG")
NEW_JPEG = encode(gradient((40, 40)), "JPEG", quality=60)
NEW_PNG = encode(gradient((8, 8)), "PNG")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_url(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{b64(data)}"


def dumps(document, **options) -> bytes:
    return json.dumps(document, **options).encode()


def assert_rewrites_exactly(body: bytes, replacements: list[bytes]) -> bytes:
    """Replace every image; the result keeps every other byte, stays valid JSON, and
    re-parses to the new images. Writing back the same image gives the same body."""
    envelope, slots = find_images(body, "application/json")
    assert envelope == "json"
    assert len(slots) == len(replacements)
    assert splice(body, [(slot, slot.image) for slot in slots]) == body
    rewritten = splice(body, list(zip(slots, replacements))[::-1])
    json.loads(rewritten)
    _, new_slots = find_images(rewritten, "application/json")
    assert [slot.image for slot in new_slots] == replacements
    assert [slot.location for slot in new_slots] == [slot.location for slot in slots]
    assert outside_spans(rewritten, new_slots) == outside_spans(body, slots)
    return rewritten


def openai_chat(image_url: str) -> dict:
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You describe photos."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": image_url, "detail": "high"}},
                ],
            },
        ],
    }


def test_openai_chat_completions_data_url():
    body = dumps(openai_chat(data_url(JPEG)))
    [slot] = find_images(body, "application/json")[1]
    assert (slot.location, slot.declared_type, slot.image) == ("$.messages[1].content[1].image_url.url", "image/jpeg", JPEG)
    assert body[slot.span[0] : slot.span[1]] == data_url(JPEG).encode()
    rewritten = assert_rewrites_exactly(body, [NEW_JPEG])
    assert json.loads(rewritten) == openai_chat(data_url(NEW_JPEG))


def test_data_url_mime_type_is_reported_but_magic_decides():
    body = dumps(openai_chat(data_url(PNG, "application/octet-stream")))
    [slot] = find_images(body, None)[1]
    assert (slot.declared_type, slot.image) == ("application/octet-stream", PNG)


def test_data_url_prefix_with_parameters_is_kept_byte_for_byte():
    url = "data:image/png;name=shot.png;BASE64," + b64(PNG)
    rewritten = assert_rewrites_exactly(dumps(openai_chat(url)), [NEW_JPEG])
    assert b'"data:image/png;name=shot.png;BASE64,' + b64(NEW_JPEG).encode() + b'"' in rewritten


def test_openai_responses_input_image_is_a_plain_string():
    document = {
        "model": "gpt-4.1",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Describe"},
                    {"type": "input_image", "image_url": data_url(PNG, "image/png"), "detail": "auto"},
                ],
            },
            {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_image", "image_url": data_url(JPEG)}]},
        ],
    }
    slots = find_images(dumps(document), None)[1]
    assert [(slot.location, slot.image) for slot in slots] == [
        ("$.input[0].content[1].image_url", PNG),
        ("$.input[1].output[0].image_url", JPEG),
    ]
    assert_rewrites_exactly(dumps(document), [NEW_PNG, NEW_JPEG])


def test_anthropic_bare_base64_in_messages_and_inside_a_tool_result():
    def image_block(data: bytes, media_type: str) -> dict:
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": b64(data)}}

    document = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": [image_block(JPEG, "image/jpeg"), {"type": "text", "text": "Hi"}]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [image_block(PNG, "image/png")]}],
            },
        ],
    }
    body = dumps(document, indent=2)
    slots = find_images(body, "application/json")[1]
    assert [(slot.location, slot.declared_type, slot.image) for slot in slots] == [
        ("$.messages[0].content[0].source.data", "image/jpeg", JPEG),
        ("$.messages[1].content[0].content[0].source.data", "image/png", PNG),
    ]
    assert_rewrites_exactly(body, [NEW_JPEG, NEW_PNG])


def test_google_genai_inline_data_url_safe_without_padding():
    image = next(JPEG + bytes(n) for n in range(3) if len(JPEG + bytes(n)) % 3)  # needs padding
    encoded = base64.urlsafe_b64encode(image).decode().rstrip("=")
    assert "-" in encoded or "_" in encoded
    document = {"contents": [{"parts": [{"inlineData": {"mime_type": "image/jpeg", "data": encoded}}, {"text": "caption"}]}]}
    body = dumps(document, separators=(",", ":"))
    [slot] = find_images(body, None)[1]
    assert (slot.location, slot.declared_type, slot.image) == ("$.contents[0].parts[0].inlineData.data", "image/jpeg", image)
    replacement = next(NEW_JPEG + bytes(n) for n in range(3) if len(NEW_JPEG + bytes(n)) % 3)
    written = slot.encode(replacement)
    assert written == base64.urlsafe_b64encode(replacement).rstrip(b"=")
    assert_rewrites_exactly(body, [replacement])


def test_padded_standard_base64_stays_padded():
    image = next(PNG + bytes(n) for n in range(3) if len(PNG + bytes(n)) % 3)
    [slot] = find_images(dumps({"data": b64(image)}), None)[1]
    assert slot.encode(image) == base64.b64encode(image) and slot.encode(image).endswith(b"=")


def test_escaped_slashes_are_read_and_written_back_escaped():
    body = dumps(openai_chat(data_url(JPEG))).replace(b"/", b"\\/")  # PHP's json_encode style
    [slot] = find_images(body, None)[1]
    assert slot.image == JPEG
    written = slot.encode(NEW_JPEG)
    assert written.startswith(b"data:image\\/jpeg;base64,") and b"/" not in written.replace(b"\\/", b"")
    assert_rewrites_exactly(body, [NEW_JPEG])


def test_unicode_escaped_plus_and_slash_are_written_back_the_same_way():
    payload = b64(JPEG).replace("+", "\\u002B").replace("/", "\\u002f")
    body = b'{"fileName":"a.jpg","fileMimeType":"image/jpeg","content":"' + payload.encode() + b'"}'
    [slot] = find_images(body, None)[1]
    assert (slot.image, slot.filename, slot.declared_type) == (JPEG, "a.jpg", "image/jpeg")
    assert slot.encode(JPEG) == payload.encode()
    assert_rewrites_exactly(body, [NEW_JPEG])


def test_line_wrapped_base64_keeps_its_wrapping():
    wrapped = base64.encodebytes(PNG).decode()  # 76-character lines, each ending in a newline
    body = dumps({"image": wrapped})
    [slot] = find_images(body, None)[1]
    assert slot.image == PNG
    rewritten = assert_rewrites_exactly(body, [NEW_JPEG])
    assert json.loads(rewritten)["image"] == base64.encodebytes(NEW_JPEG).decode()


def test_images_nested_deep_are_found():
    document: object = {"image": b64(PNG)}
    for level in range(200):
        document = [document] if level % 2 else {"level": document}
    [slot] = find_images(dumps(document), None)[1]
    assert slot.image == PNG
    assert slot.location == "$" + "[0].level" * 100 + ".image"


def test_nesting_beyond_the_depth_guard_is_an_envelope_error():
    body = b"[" * 600 + b"]" * 600
    with pytest.raises(EnvelopeError, match="nests deeper"):
        find_images(body, "application/json")


def test_base64_that_is_not_an_image_is_ignored():
    document = {
        "text": b64(b"just some text that happens to be base64 encoded, long enough"),
        "random": b64(bytes(range(7, 200))),
        "hash": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        "prose": "This is a long sentence that is certainly not base64 encoded data at all.",
        "url": "https://example.com/photo.jpg?width=1024&height=768&format=jpeg",
    }
    assert find_images(dumps(document), None) == ("json", [])


def test_a_pdf_data_url_is_a_slot_too():
    """Documents are cleaned like images now: the envelope hands the PDF to the cleaner."""
    pdf = b"%PDF-1.7\n" + bytes(100)
    envelope, (slot,) = find_images(dumps({"pdf": "data:application/pdf;base64," + b64(pdf)}), None)
    assert (envelope, slot.image, slot.declared_type) == ("json", pdf, "application/pdf")


def test_pretty_printed_and_compact_documents_stay_byte_identical():
    document = openai_chat(data_url(JPEG))
    for options in ({}, {"indent": 2}, {"indent": "\t", "sort_keys": True}, {"separators": (",", ":")}):
        body = dumps(document, **options).replace(b"\n", b"\r\n") + b"\n  "
        assert_rewrites_exactly(body, [NEW_JPEG])


def test_unicode_elsewhere_in_the_document_is_preserved():
    document = openai_chat(data_url(JPEG))
    document["messages"][0]["content"] = "Réponds en français 🙂 — “quoted” \\ \"escaped\" \n\t"
    document["métadonnées"] = {"clé 🔑": ["ü", 1.5e-3, True, None, -0, 12345678901234567890]}
    for ensure_ascii in (True, False):
        body = dumps(document, ensure_ascii=ensure_ascii, indent=1)
        rewritten = assert_rewrites_exactly(body, [NEW_JPEG])
        assert json.loads(rewritten)["métadonnées"] == document["métadonnées"]


def test_keys_that_are_not_identifiers_are_bracketed_in_the_path():
    document = {"parts list": [{"it's": {"data": b64(PNG)}}]}
    [slot] = find_images(dumps(document), None)[1]
    assert slot.location == "$['parts list'][0]['it\\'s'].data"


def test_grok_web_upload_reports_sibling_filename_and_type():
    document = {"fileName": "IMG_0001.jpg", "fileMimeType": "image/jpeg", "content": b64(JPEG)}
    [slot] = find_images(dumps(document), None)[1]
    assert (slot.location, slot.filename, slot.declared_type) == ("$.content", "IMG_0001.jpg", "image/jpeg")


def test_a_string_that_starts_like_an_image_but_is_not_base64_is_an_error():
    """An upstream that decodes leniently would still get the image: block, do not pass."""
    body = dumps({"data": b64(JPEG)[:400] + "!not base64!"})
    with pytest.raises(EnvelopeError, match=r"\$\.data starts like a base64-encoded image"):
        find_images(body, None)


def test_prose_that_mentions_an_image_signature_is_not_an_image():
    body = dumps({"content": "iVBORw0KGgo and /9j/ are how PNG and JPEG files start in base64, explain why"})
    assert find_images(body, None) == ("json", [])


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1,}',
        b'{"a": 1',
        b"{a: 1}",
        b'{"a" 1}',
        b'["a" "b"]',
        b"[1, 2]]",
        b'{"a": 1} {"b": 2}',
        b'{"a": "\\x"}',
        b'{"a": 01}',
        b"[1.]",
        b"[tru]",
        b"[nan]",
        b"[Infinity-]",
        b'{"a": [}',
        b'{"a": "unterminated}',
        b"",
        b'"a string"',
        b"42",
        b"not json at all",
    ],
)
def test_invalid_json_is_not_the_json_envelope(body):
    assert json_base64.find_images(body, "application/json") is None


def test_python_json_extensions_nan_and_infinity_do_not_hide_images():
    # Found by tests/fuzz: json.dumps writes NaN/Infinity for floats and json.loads reads
    # them, so such a body reaches a Python server whole; it must not pass uninspected.
    body = dumps({"temperature": float("nan"), "top_p": float("inf"), "n": float("-inf"), **openai_chat(data_url(JPEG))})
    assert b"NaN" in body and b"-Infinity" in body
    envelope, slots = find_images(body, "application/json")
    assert envelope == "json" and [slot.image for slot in slots] == [JPEG]
    assert_rewrites_exactly(body, [NEW_JPEG])


def test_json_is_recognised_by_content_not_by_declared_type():
    body = dumps(openai_chat(data_url(JPEG)))
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
        envelope, slots = find_images(body, content_type)
        assert envelope == "json" and [slot.image for slot in slots] == [JPEG]


def test_empty_containers_and_scalars_everywhere_parse():
    body = b' \r\n\t{"a": [], "b": {}, "c": [[], {}, -1.5E+10, 0, true, false, null, ""], "d": {"e": [{}]}} \n'
    assert json_base64.find_images(body, None) == []
