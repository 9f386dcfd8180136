"""The contract every container module fulfils, and what they share.

Like the image formats: a container is recognised by its first bytes, cleaned whole or
refused with one SanitiseError, and its output is checked again by an independent look
(`findings`) before it is returned. Images inside are cleaned by the image core, through
`Embedded.clean`, so a photo in a PDF is treated exactly like the same photo uploaded alone.
"""

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import TooLarge, VerificationFailed
from ..options import SanitiseOptions
from ..report import Report, Result


@dataclass
class Embedded:
    """The images (and nested documents) cleaned inside one document, as they are cleaned."""

    clean_member: Callable[[bytes], Result]  # the core's sanitise, one level deeper
    options: SanitiseOptions
    reports: list[dict] = field(default_factory=list)
    outputs: list[bytes] = field(default_factory=list)
    faces: list[dict] = field(default_factory=list)

    def clean(self, data: bytes, where: str, leaves: bool = True) -> bytes:
        """The cleaned bytes of one embedded image or member. `leaves`: the bytes are written
        into the document as they are (not only their pixels), so egress will meet them."""
        if len(self.reports) >= self.options.documents.max_images:
            raise TooLarge(f"the document holds more than {self.options.documents.max_images} images; the limit is reached")
        result = self.clean_member(data)
        self.reports.append({"where": where} | result.report.to_dict())
        if leaves:
            self.outputs.append(result.data)
            self.outputs.extend(result.embedded_outputs)
        self.faces.extend(result.report.faces)
        return result.data


class Container(ABC):
    name: ClassVar[str]

    @staticmethod
    @abstractmethod
    def accepts(head: bytes) -> bool:
        """Recognise the container from its first bytes only."""

    @abstractmethod
    def clean(self, data: bytes, embedded: Embedded) -> tuple[bytes, list[str]]:
        """The cleaned document and the metadata fields it removed, or a SanitiseError."""

    @abstractmethod
    def findings(self, data: bytes) -> list[str]:
        """The verifier's view of an output: everything personal or active still in it."""

    def format_of(self, output: bytes) -> str:
        """The name a report and an audit record give this file (a container may hold several kinds)."""
        return self.name


def document_result(container: Container, data: bytes, options: SanitiseOptions, clean_member) -> Result:
    """Clean `data` as `container`, verify the output independently, and report."""
    started = time.perf_counter()
    embedded = Embedded(clean_member, options)
    output, removed = container.clean(data, embedded)
    cleaned_at = time.perf_counter()
    left = container.findings(output)
    if left:
        raise VerificationFailed(f"the cleaned {container.name.upper()} still holds {', '.join(left[:3])}")
    verified_at = time.perf_counter()
    report = Report(
        format=container.format_of(output),
        width=0,
        height=0,
        output_width=0,
        output_height=0,
        bytes_before=len(data),
        bytes_after=len(output),
        orientation=1,
        metadata_removed=sorted(set(removed)),
        icc="none",
        face_mode=options.faces.value,
        faces=embedded.faces,
        masks=[],
        reencoded=False,
        jpeg_quality=None,
        timings_ms={"clean": _ms(started, cleaned_at), "verify": _ms(cleaned_at, verified_at), "total": _ms(started, verified_at)},
        verification={"container": container.name, "findings": 0, "embedded": len(embedded.reports)},
        embedded=embedded.reports,
        input_bytes=data,
        output_bytes=output,
    )
    return Result(output, report, tuple(embedded.outputs))


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 3)
