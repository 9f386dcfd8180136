"""Request bodies are decoded whole, as the services decode them, or refused."""

import gzip
import zlib

import pytest

from veil.proxy.content_encoding import UndecodableBody, decode_deflate, decode_gzip

DOCUMENT = b'{"messages": [{"content": "data:image/jpeg;base64,/9j/SECRET"}]}'


def test_every_gzip_member_is_decoded():
    cut = DOCUMENT.index(b"data:")
    assert decode_gzip(gzip.compress(DOCUMENT[:cut]) + gzip.compress(DOCUMENT[cut:])) == DOCUMENT


@pytest.mark.parametrize("tail", [b"junk", b"\x1f\x8b\x08", b"\x00"])
def test_bytes_after_the_gzip_data_that_are_no_whole_member_are_refused(tail):
    with pytest.raises(UndecodableBody):
        decode_gzip(gzip.compress(DOCUMENT) + tail)


def test_cut_off_gzip_is_refused():
    with pytest.raises(UndecodableBody, match="cut off"):
        decode_gzip(gzip.compress(DOCUMENT)[:-12])


def test_deflate_with_and_without_the_zlib_wrapper():
    raw = zlib.compressobj(wbits=-15)
    assert decode_deflate(zlib.compress(DOCUMENT)) == DOCUMENT
    assert decode_deflate(raw.compress(DOCUMENT) + raw.flush()) == DOCUMENT


def test_bytes_after_the_deflate_data_are_refused():
    with pytest.raises(UndecodableBody, match="follow the end"):
        decode_deflate(zlib.compress(b"{}") + zlib.compress(DOCUMENT))
