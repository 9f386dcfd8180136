import base64
import json

import pytest

from builders import encode, gradient, outside_spans
from veil.proxy.envelopes import EnvelopeError, find_images, splice
from veil.proxy.envelopes import multipart

BOUNDARY = b"----VeilBoundary7MA4YWxkTrZu0gW"
CONTENT_TYPE = "multipart/form-data; boundary=" + BOUNDARY.decode()

JPEG = encode(gradient(), "JPEG", quality=80)
PNG = encode(gradient((20, 12)), "PNG")
NEW_JPEG = encode(gradient((40, 40)), "JPEG", quality=60)
NEW_PNG = encode(gradient((8, 8)), "PNG")
# Binary content that holds every sequence a careless parser trips on: bare CRLFs, blank
# lines, "--", and the boundary itself followed by something other than CRLF or "--".
TRICKY_JPEG = JPEG + b"\r\n\r\n--\r\n--" + BOUNDARY + b"x\r\n\r\n-- \n\r\x00"


def field(name: str, value: bytes) -> tuple[bytes, bytes]:
    return f'Content-Disposition: form-data; name="{name}"'.encode(), value


def file_field(name: str, filename: str, content_type: str, data: bytes) -> tuple[bytes, bytes]:
    headers = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\nContent-Type: {content_type}'
    return headers.encode(), data


def form(*parts: tuple[bytes, bytes], boundary: bytes = BOUNDARY, preamble: bytes = b"", epilogue: bytes = b"\r\n") -> bytes:
    body = preamble + (b"\r\n" if preamble else b"")
    for headers, content in parts:
        header_block = headers + b"\r\n" if headers else b""  # a part may have no headers at all
        body += b"--" + boundary + b"\r\n" + header_block + b"\r\n" + content + b"\r\n"
    return body + b"--" + boundary + b"--" + epilogue


def assert_rewrites_exactly(body: bytes, content_type: str | None, replacements: list[bytes]) -> bytes:
    """Replace every image in order; the result keeps every other byte and re-parses to the new images."""
    _, slots = find_images(body, content_type)
    assert len(slots) == len(replacements)
    pairs = list(zip(slots, replacements))
    rewritten = splice(body, pairs[::-1])  # order must not matter
    _, new_slots = find_images(rewritten, content_type)
    assert [slot.image for slot in new_slots] == replacements
    assert outside_spans(rewritten, new_slots) == outside_spans(body, slots)
    assert splice(body, [(slot, slot.image) for slot in slots]) == body  # same image: same bytes
    return rewritten


def test_openai_files_upload_finds_the_file_part():
    body = form(field("purpose", b"vision"), file_field("file", "photo.jpg", "image/jpeg", JPEG))
    envelope, slots = find_images(body, CONTENT_TYPE)
    assert envelope == "multipart"
    [slot] = slots
    assert (slot.location, slot.declared_type, slot.filename, slot.image) == ("file", "image/jpeg", "photo.jpg", JPEG)
    assert body[slot.span[0] : slot.span[1]] == JPEG
    assert_rewrites_exactly(body, CONTENT_TYPE, [NEW_JPEG])


def test_binary_content_with_crlf_dashes_and_near_boundaries_survives_byte_for_byte():
    body = form(field("purpose", b"vision"), file_field("file", "a.jpg", "image/jpeg", TRICKY_JPEG), field("after", b"kept"))
    [slot] = find_images(body, CONTENT_TYPE)[1]
    assert slot.image == TRICKY_JPEG
    rewritten = assert_rewrites_exactly(body, CONTENT_TYPE, [NEW_JPEG + b"\r\n--\r\n"])
    assert rewritten.endswith(b'name="after"\r\n\r\nkept\r\n--' + BOUNDARY + b"--\r\n")


def test_preamble_and_epilogue_are_kept():
    body = form(
        file_field("file", "a.png", "image/png", PNG),
        preamble=b"This is the preamble.\r\n--not the boundary",
        epilogue=b"\r\nThis is the epilogue.\r\n",
    )
    [slot] = find_images(body, CONTENT_TYPE)[1]
    assert slot.image == PNG
    rewritten = assert_rewrites_exactly(body, CONTENT_TYPE, [NEW_PNG])
    assert rewritten.startswith(b"This is the preamble.\r\n--not the boundary\r\n--" + BOUNDARY)
    assert rewritten.endswith(b"--\r\nThis is the epilogue.\r\n")


def test_quoted_boundary_with_a_space_and_transport_padding():
    boundary = b"simple boundary"
    body = (
        b"--simple boundary  \t\r\n"  # whitespace after a delimiter is transport padding
        + b'Content-Disposition: form-data; name="file"; filename="x.jpg"\r\n\r\n'
        + JPEG
        + b"\r\n--simple boundary--"
    )
    content_type = 'multipart/form-data; charset=utf-8; boundary="simple boundary"'
    [slot] = find_images(body, content_type)[1]
    assert slot.image == JPEG
    assert multipart.parse_parts(body, boundary)[0].name == "file"
    assert_rewrites_exactly(body, content_type, [NEW_JPEG])


def test_repeated_image_fields_get_distinct_locations_and_non_images_are_untouched():
    notes = b"plain text notes\r\n--with dashes\r\n"
    body = form(
        field("prompt", b"make it blue"),
        field("model", b"gpt-image-1"),
        file_field("image[]", "one.jpg", "image/jpeg", JPEG),
        file_field("image[]", "two.png", "image/png", PNG),
        file_field("notes", "notes.txt", "text/plain", notes),
        file_field("mask", "mask.png", "image/png", PNG),
    )
    slots = find_images(body, CONTENT_TYPE)[1]
    assert [(slot.location, slot.filename) for slot in slots] == [
        ("image[]", "one.jpg"),
        ("image[]#1", "two.png"),
        ("mask", "mask.png"),
    ]
    rewritten = assert_rewrites_exactly(body, CONTENT_TYPE, [NEW_JPEG, NEW_PNG, NEW_PNG])
    assert b"\r\n\r\n" + notes + b"\r\n--" in rewritten


def test_declared_types_are_ignored_magic_bytes_decide():
    body = form(
        file_field("data", "upload", "application/octet-stream", JPEG),  # OpenAI Uploads part
        file_field("file", "fake.jpg", "image/jpeg", b"this is only text pretending to be a JPEG"),
    )
    [slot] = find_images(body, CONTENT_TYPE)[1]
    assert (slot.location, slot.declared_type, slot.filename) == ("data", "application/octet-stream", "upload")


def test_a_body_labelled_otherwise_that_opens_with_a_delimiter_is_still_parsed():
    body = form(file_field("file", "a.jpg", "image/jpeg", JPEG))
    for content_type in (None, "application/octet-stream"):
        envelope, slots = find_images(body, content_type)
        assert envelope == "multipart"
        assert [slot.image for slot in slots] == [JPEG]


@pytest.mark.parametrize(
    ("content_type", "reason"),
    [
        # Parser differential: Veil would split on the delimiter it sees, the server on the
        # one declared, and the two disagree about where the parts are.
        ("multipart/form-data; boundary=somethingelse", "other than the boundary its Content-Type declares"),
        ("multipart/form-data", "names no boundary"),
        # Python's email takes the first boundary=, most other parsers the last.
        (f"multipart/form-data; boundary=decoy; boundary={BOUNDARY.decode()}", "'boundary' parameter twice"),
        (f"multipart/form-data; boundary={BOUNDARY.decode()}; boundary=decoy", "'boundary' parameter twice"),
    ],
)
def test_a_boundary_other_than_the_one_declared_is_refused(content_type, reason):
    body = form(file_field("file", "a.jpg", "image/jpeg", JPEG))
    with pytest.raises(EnvelopeError, match=reason):
        find_images(body, content_type)


def test_a_part_that_names_itself_twice_is_refused():
    headers = b'Content-Disposition: form-data; name="note"; name="file"; filename="a.jpg"'
    with pytest.raises(EnvelopeError, match="'name' parameter twice"):
        find_images(form((headers, JPEG)), CONTENT_TYPE)


def test_a_quoted_printable_part_is_decoded_cleaned_and_written_back_the_same_way():
    import binascii

    encoded = binascii.b2a_qp(JPEG, quotetabs=True, istext=False).replace(b"=\n", b"=\r\n")
    headers = b'Content-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Transfer-Encoding: quoted-printable'
    body = form((headers, encoded))
    [slot] = find_images(body, CONTENT_TYPE)[1]
    assert slot.image == JPEG
    rewritten = assert_rewrites_exactly(body, CONTENT_TYPE, [NEW_JPEG])
    [part] = multipart.parse_parts(rewritten, BOUNDARY)
    assert binascii.a2b_qp(rewritten[part.content_start : part.content_end]) == NEW_JPEG


@pytest.mark.parametrize("encoding", ["x-uuencode", "gzip", "compress"])
def test_a_transfer_encoding_veil_does_not_decode_is_refused(encoding):
    headers = f'Content-Disposition: form-data; name="file"\r\nContent-Transfer-Encoding: {encoding}'.encode()
    with pytest.raises(EnvelopeError, match="does not decode"):
        find_images(form((headers, b"begin 644 a.jpg\r\n...")), CONTENT_TYPE)


def test_filename_parameters_quoted_escaped_and_extended():
    headers = (
        b'Content-Disposition: form-data; name="file"; filename="my \\"best\\" shot.jpg"; '
        b"filename*=UTF-8''%D1%84%D0%BE%D1%82%D0%BE.jpg\r\nContent-Type: image/jpeg"
    )
    other = b'Content-Disposition: form-data; name="b"; filename="say \\"cheese\\";.png"'
    slots = find_images(form((headers, JPEG), (other, PNG)), CONTENT_TYPE)[1]
    assert [slot.filename for slot in slots] == ["фото.jpg", 'say "cheese";.png']  # filename* wins


def test_part_headers_are_case_insensitive_and_may_be_folded():
    headers = b'content-disposition: form-data;\r\n name="file"; filename="a.jpg"\r\nCONTENT-TYPE: image/jpeg'
    [slot] = find_images(form((headers, JPEG)), CONTENT_TYPE)[1]
    assert (slot.location, slot.declared_type) == ("file", "image/jpeg")


def test_base64_transfer_encoded_part_is_rewritten_in_the_same_wrapping():
    wrapped = base64.encodebytes(JPEG).replace(b"\n", b"\r\n")
    headers = b'Content-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Transfer-Encoding: base64'
    body = form((headers, wrapped))
    [slot] = find_images(body, CONTENT_TYPE)[1]
    assert slot.image == JPEG
    assert slot.encode(JPEG) == wrapped
    rewritten = assert_rewrites_exactly(body, CONTENT_TYPE, [NEW_JPEG])
    assert base64.encodebytes(NEW_JPEG).replace(b"\n", b"\r\n") in rewritten


def test_data_url_in_a_text_field_is_an_image():
    data_url = b"data:image/png;base64," + base64.b64encode(PNG)
    body = form(field("prompt", b"describe"), field("image", data_url))
    [slot] = find_images(body, CONTENT_TYPE)[1]
    assert (slot.location, slot.declared_type, slot.image) == ("image", "image/png", PNG)
    rewritten = assert_rewrites_exactly(body, CONTENT_TYPE, [NEW_PNG])
    assert b"data:image/png;base64," + base64.b64encode(NEW_PNG) in rewritten


def test_json_part_with_a_base64_image_is_walked():
    metadata = json.dumps({"name": "x", "image": {"data": base64.b64encode(JPEG).decode()}}).encode()
    body = form(file_field("payload_json", "blob", "application/json", metadata))
    [slot] = find_images(body, CONTENT_TYPE)[1]
    assert (slot.location, slot.image) == ("payload_json:$.image.data", JPEG)
    assert_rewrites_exactly(body, CONTENT_TYPE, [NEW_JPEG])


def test_multipart_related_parts_without_names():
    metadata = b"Content-Type: application/json; charset=UTF-8"
    media = b"Content-Type: image/jpeg"
    body = form((metadata, b'{"name": "photo.jpg"}'), (media, JPEG), (b"", PNG))  # the last part has no headers
    content_type = "multipart/related; boundary=" + BOUNDARY.decode()
    slots = find_images(body, content_type)[1]
    assert [(slot.location, slot.image) for slot in slots] == [("part#1", JPEG), ("part#2", PNG)]
    assert_rewrites_exactly(body, content_type, [NEW_JPEG, NEW_PNG])


def test_nested_multipart_mixed_part_is_walked():
    # Found by tests/fuzz: RFC 2388 sends several files as one multipart/mixed part inside
    # the form, and servers such as Apache Commons FileUpload unpack it; its images were missed.
    inner = form(file_field("file", "one.jpg", "image/jpeg", JPEG), (b"Content-Type: image/png", PNG), boundary=b"inner-b", epilogue=b"")
    body = form(field("purpose", b"vision"), (b'Content-Disposition: form-data; name="files"\r\nContent-Type: multipart/mixed; boundary="inner-b"', inner))
    slots = find_images(body, CONTENT_TYPE)[1]
    assert [(slot.location, slot.image) for slot in slots] == [("files:file", JPEG), ("files:part#1", PNG)]
    assert_rewrites_exactly(body, CONTENT_TYPE, [NEW_JPEG, NEW_PNG])


def test_a_part_that_repeats_its_content_type_is_refused():
    # Found by tests/fuzz: Veil read the last Content-Type (text/plain), a lenient server
    # the first (multipart/mixed), and unpacked the image inside that Veil never cleaned.
    inner = form((b"Content\rDisposition: file\r\nContent-Type: image/jpeg", JPEG), boundary=b"1", epilogue=b"")
    headers = b'Content-Disposition: form-data; name="files"\r\nContent-Type: multipart/mixed; boundary="1"\r\nContent-Type: text/plain'
    with pytest.raises(EnvelopeError, match="part 1 of the multipart body repeats its content-type header"):
        find_images(form((headers, inner)), CONTENT_TYPE)


def test_multipart_nested_beyond_the_depth_guard_is_an_envelope_error():
    body = form(file_field("file", "a.jpg", "image/jpeg", JPEG), boundary=b"b0", epilogue=b"")
    for level in range(1, multipart.MAX_NESTING + 2):
        body = form((f"Content-Type: multipart/mixed; boundary=b{level - 1}".encode(), body), boundary=f"b{level}".encode(), epilogue=b"")
    with pytest.raises(EnvelopeError, match="nests parts deeper than"):
        find_images(body, f"multipart/mixed; boundary=b{multipart.MAX_NESTING + 1}")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        # Found by tests/fuzz: one damaged byte in the first delimiter turns the whole file part into preamble.
        (b"X" + form(file_field("file", "a.jpg", "image/jpeg", JPEG))[1:], "preamble"),
        (form(field("purpose", b"vision"), epilogue=b"\r\n" + PNG), "epilogue"),
        (form(field("purpose", b"vision"), epilogue=b"\r\nimage=" + base64.b64encode(JPEG)), "epilogue"),
        (b"note: data:image/png;base64," + base64.b64encode(PNG) + b"\r\n" + form(field("purpose", b"vision")), "preamble"),
        (b'{"image": "' + base64.b64encode(JPEG).replace(b"/", rb"\/") + b'\\n"}\r\n' + form(field("purpose", b"vision")), "preamble"),
        (b"\r\n".join(base64.b64encode(PNG)[at : at + 4] for at in range(0, 256, 4)) + b"\r\n" + form(field("purpose", b"vision")), "preamble"),
        (b"X" + form((b'Content-Disposition: form-data; name="image"\r\nContent-Length: 12', base64.b64encode(JPEG)))[1:], "preamble"),
    ],
)
def test_an_image_outside_every_part_is_an_envelope_error(body, where):
    with pytest.raises(EnvelopeError, match=f"in its {where}, outside every part"):
        find_images(body, CONTENT_TYPE)


@pytest.mark.parametrize("broken", [b"\n--", b"\r--", b"\r\nX--"])
def test_a_boundary_line_without_its_proper_line_break_is_an_envelope_error(broken):
    # Found by tests/fuzz: after "\n--boundary" Werkzeug and Go start a new part, Veil read
    # on, and the file part they hand over reached the service uncleaned inside a text field.
    body = form(field("purpose", b"vision"), file_field("file", "a.jpg", "image/jpeg", JPEG))
    second = body.index(b"\r\n--" + BOUNDARY, 10)
    damaged = body[:second] + broken + body[second + 4 :]
    with pytest.raises(EnvelopeError, match="not a proper delimiter"):
        find_images(damaged, CONTENT_TYPE)


def test_a_preamble_of_prose_and_tokens_is_not_an_image():
    body = b"This is a multi-part message in MIME format.\r\nid " + b"ab12" * 16 + b"\r\n" + form(field("purpose", b"vision"))
    assert find_images(body, CONTENT_TYPE) == ("multipart", [])


def test_form_without_images_applies_but_finds_nothing():
    assert find_images(form(field("purpose", b"vision")), CONTENT_TYPE) == ("multipart", [])
    assert find_images(b"--" + BOUNDARY + b"--\r\n", CONTENT_TYPE) == ("multipart", [])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (form(file_field("file", "a.jpg", "image/jpeg", JPEG))[:-40], "no closing boundary"),
        (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"file\"\r\n" + JPEG[:50], "headers of part 1 never end"),
        (b'{"not": "multipart"}', "never uses the boundary"),
        (b"", "never uses the boundary"),
    ],
)
def test_malformed_multipart_raises_a_readable_envelope_error(body, reason):
    with pytest.raises(EnvelopeError, match=reason) as caught:
        find_images(body, CONTENT_TYPE)
    assert caught.value.reason[0].islower() and len(caught.value.reason) > 20


def test_multipart_type_without_any_boundary_is_an_error():
    with pytest.raises(EnvelopeError, match="names no boundary"):
        find_images(b"hello", "multipart/form-data")


def test_not_multipart_returns_none():
    assert multipart.find_images(b'{"a": 1}', "application/json") is None
    assert multipart.find_images(b"--just dashes in text", None) is None


def test_field_content_finds_a_named_part_by_offsets():
    from veil.proxy.envelopes.multipart import field_content

    body = b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nvision\r\n--b\r\nContent-Disposition: form-data; name="data"\r\n\r\n\x00\r\nraw\r\n--b--\r\n'
    assert field_content(body, "multipart/form-data; boundary=b", "data") == b"\x00\r\nraw"
    assert field_content(body, "multipart/form-data; boundary=b", "missing") is None
    assert field_content(b"{}", "application/json", "data") is None
