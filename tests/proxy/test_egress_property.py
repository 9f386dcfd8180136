"""Property: a dirty photo wrapped in any stack of one to three encodings is found, and is
unaccounted for when Veil produced nothing."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_egress_samples import BYTE_ENCODINGS, dirty_image

from veil.proxy.egress import scan, unaccounted

FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "TIFF": "tiff"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    image_format=st.sampled_from(sorted(FORMATS)),
    seed=st.integers(0, 3),
    stack=st.lists(st.sampled_from(sorted(BYTE_ENCODINGS)), min_size=1, max_size=3),
    prefix=st.binary(max_size=5),
)
def test_a_dirty_photo_under_any_stack_of_encodings_is_found(image_format, seed, stack, prefix):
    image = dirty_image(image_format, seed=seed)
    body = image
    for encoding in stack:
        body = BYTE_ENCODINGS[encoding](body)
    result = scan(b'{"upload":' + prefix + body + b"}")
    found = [finding for finding in result.of_kind("image") if bytes(finding.data[: len(image)]) == image]
    assert found and found[0].format == FORMATS[image_format], f"{' → '.join(stack)}: {result.findings}"
    assert unaccounted(result, [])
