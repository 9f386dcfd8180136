"""Images a request only refers to (URL, file id): found per provider shape, never with a query."""

import json

import pytest

from veil.proxy.envelopes.references import Reference, find_references, public_target


def refs(document) -> list[Reference]:
    return find_references(json.dumps(document).encode())


def test_openai_chat_image_url_object():
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://cdn.example.com/a/cat.jpg?X-Amz-Signature=SECRET", "detail": "high"}},
    ]}]}  # fmt: skip
    assert refs(body) == [Reference("$.messages[0].content[1].image_url.url", "url", "https://cdn.example.com/a/cat.jpg")]


def test_openai_responses_input_image_url_and_file_id():
    body = {"model": "gpt-4.1", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://example.com/dog.png"},
        {"type": "input_image", "file_id": "file-abc123"},
        {"type": "input_file", "file_id": "file-pdf"},  # a document, not an image
    ]}]}  # fmt: skip
    assert refs(body) == [
        Reference("$.input[0].content[0].image_url", "url", "https://example.com/dog.png"),
        Reference("$.input[0].content[1].file_id", "file_id", None),
    ]


def test_openai_assistants_image_file():
    body = {"role": "user", "content": [{"type": "image_file", "image_file": {"file_id": "file-x"}}]}
    assert refs(body) == [Reference("$.content[0].image_file.file_id", "file_id", None)]


def test_anthropic_url_and_file_sources_but_not_documents():
    body = {"model": "claude", "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://upload.example.org/x.jpg#frag"}},
        {"source": {"file_id": "file_011", "type": "file"}, "type": "image"},  # type after source
        {"type": "document", "source": {"type": "url", "url": "https://example.org/paper.pdf"}},
        {"type": "document", "source": {"type": "file", "file_id": "file_doc"}},
    ]}]}  # fmt: skip
    assert refs(body) == [
        Reference("$.messages[0].content[0].source.url", "url", "https://upload.example.org/x.jpg"),
        Reference("$.messages[0].content[1].source.file_id", "file_id", None),
    ]


def test_gemini_file_data_both_spellings_and_mime_type():
    body = {"contents": [{"parts": [
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}},
        {"file_data": {"file_uri": "gs://bucket/photos/me.jpg"}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/doc.pdf"}},
        {"text": "describe"},
    ]}]}  # fmt: skip
    assert refs(body) == [
        Reference("$.contents[0].parts[0].fileData.fileUri", "url", "https://generativelanguage.googleapis.com/v1beta/files/abc"),
        Reference("$.contents[0].parts[1].file_data.file_uri", "url", "gs://bucket/photos/me.jpg"),
    ]


def test_mistral_plain_string_image_url():
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "http://example.com:8080/p.webp?token=T"}]}]}
    assert refs(body) == [Reference("$.messages[0].content[0].image_url", "url", "http://example.com:8080/p.webp")]


@pytest.mark.parametrize("url", ["data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
                                 "data:image/jpeg;base64,"])  # fmt: skip
def test_a_data_url_is_not_a_reference(url):
    assert refs({"messages": [{"content": [{"type": "image_url", "image_url": {"url": url}}]}]}) == []
    assert refs({"input": [{"type": "input_image", "image_url": url}]}) == []


def test_other_bodies_hold_no_references():
    assert find_references(b"\x0a\x05hello") == []
    assert find_references(b'{"url": "https://example.com/a.jpg"}') == []  # a url with no image context
    assert find_references(b'{"broken": ') == []


def test_query_strings_userinfo_and_fragments_never_reach_the_target():
    assert public_target("https://user:pw@Bucket.s3.amazonaws.com/k/a.jpg?X-Amz-Signature=SECRET#x") == (
        "https://bucket.s3.amazonaws.com/k/a.jpg"
    )
    body = json.dumps({"messages": [{"content": [{"type": "image_url", "image_url": {"url": "https://h/a.jpg?sig=SECRET"}}]}]})
    [found] = find_references(body.encode())
    assert "SECRET" not in repr(found) and "SECRET" not in found.describe()
    assert found.describe() == "the image is given by URL (https://h/a.jpg); the provider fetches it, Veil never sees it"


def test_escaped_json_is_read_as_its_reader_would():
    body = b'{"messages":[{"content":[{"type":"image_url","image_url":{"url":"https:\\/\\/example.com\\/a.jpg?s=1"}}]}]}'
    assert find_references(body) == [Reference("$.messages[0].content[0].image_url.url", "url", "https://example.com/a.jpg")]
