"""Which findings Veil did not write itself."""

import hashlib
from collections.abc import Iterable

from .model import Finding, ScanResult


def unaccounted(result: ScanResult, produced: Iterable[bytes], documents_cleaned: bool = False) -> list[Finding]:
    """The findings the caller must act on: every image that is not one of `produced` (the
    cleaned outputs Veil wrote into this request, including the images it wrote inside the
    documents it cleaned), every document or archive holding an image unless the caller
    cleaned or knowingly passed the documents (`documents_cleaned`: each image inside is
    then judged on its own), and every opaque finding (the caller's `opaque_files` policy decides).

    An image is accounted for when a produced output starts exactly where it starts in the
    decoded stream (a byte-exact prefix match, so one differing byte is enough to report it),
    or when the sha256 of its known extent is a produced output's."""
    outputs = [bytes(output) for output in produced if output]  # an empty output would match anything
    digests = {hashlib.sha256(output).hexdigest() for output in outputs}
    return [finding for finding in result.findings if not _accounted(finding, outputs, digests, documents_cleaned)]


def _accounted(finding: Finding, outputs: list[bytes], digests: set[str], documents_cleaned: bool) -> bool:
    if finding.kind == "document":
        return finding.images_inside == 0 or documents_cleaned
    if finding.kind == "opaque":
        return False
    if finding.sha256 is not None and finding.sha256 in digests:
        return True
    data = finding.data
    return data is not None and any(len(data) >= len(output) and data[: len(output)] == output for output in outputs)
