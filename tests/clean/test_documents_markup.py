"""SVG and HTML: embedded data: images cleaned in place, editor metadata gone, scripts refused."""

import base64
import io
import re

import documents_builders as build
import pytest
from PIL import Image
from veil.clean.core import sanitise
from veil.clean.errors import UnsupportedFormat
from veil.clean.options import FaceMode, SanitiseOptions

FAST = SanitiseOptions(faces=FaceMode.OFF)


def data_url(wrap: bool = False) -> str:
    encoded = base64.b64encode(build.face_jpeg_with_gps()).decode()
    if wrap:
        encoded = "\n".join(encoded[at : at + 76] for at in range(0, len(encoded), 76))
    return "data:image/jpeg;base64," + encoded


def embedded_jpegs(text: bytes) -> list[bytes]:
    return [base64.b64decode(re.sub(rb"\s|&#10;", b"", payload)) for payload in re.findall(rb"base64,([A-Za-z0-9+/=\s&#;]+)", text)]


def test_svg_loses_editor_metadata_and_its_photo_is_cleaned():
    svg = f"""<?xml version="1.0"?>
<!-- drawn by {build.AUTHOR} -->
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" inkscape:export-filename="/home/jane/secret.png" width="100" height="100">
  <metadata><author>{build.AUTHOR}</author></metadata>
  <text x="1" y="20">{build.BODY_TEXT}</text>
  <image width="50" height="50" xlink:href="{data_url(wrap=True)}"/>
</svg>""".encode()
    result = sanitise(svg, FAST)
    assert build.AUTHOR.encode() not in result.data and b"/home/jane" not in result.data and b"metadata" not in result.data
    assert build.BODY_TEXT.encode() in result.data
    (jpeg,) = embedded_jpegs(result.data)
    assert not Image.open(io.BytesIO(jpeg)).getexif() and jpeg in result.embedded_outputs


def test_html_photo_cleaned_and_author_meta_removed():
    html = f'<!DOCTYPE html><html><head><meta name="author" content="{build.AUTHOR}"></head><body><p>{build.BODY_TEXT}</p><img src="{data_url()}"></body></html>'.encode()
    result = sanitise(html, FAST)
    assert build.AUTHOR.encode() not in result.data and build.BODY_TEXT.encode() in result.data
    (jpeg,) = embedded_jpegs(result.data)
    assert not Image.open(io.BytesIO(jpeg)).getexif()


@pytest.mark.parametrize(
    "markup",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b'<!DOCTYPE html><html><body><script>fetch("/x")</script></body></html>',
        b'<!DOCTYPE html><html><body><a href="javascript:alert(1)">x</a></body></html>',
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>',
    ],
    ids=["svg-script", "svg-onload", "html-script", "html-javascript-url", "svg-entity"],
)
def test_active_markup_is_refused(markup):
    with pytest.raises(UnsupportedFormat):
        sanitise(markup, FAST)
