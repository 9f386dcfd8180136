"""What a decoding layer may ask of the scan that runs it (scanner.Scan fulfils it). A
protocol of its own, so the layers and the walk that calls them import no cycle."""

from typing import Protocol

from .model import ScanLimits

Where = tuple[str, ...]  # the layers that led to a stream: ("base64 at byte 12", "zip member a.jpg")


class ScanContext(Protocol):
    limits: ScanLimits
    images_found: int  # every image confirmed so far: a container counts its own by difference

    def descend(self, child: bytes, where: Where, depth: int) -> None:
        """Search a decoded stream one layer down (or report it as too deep)."""

    def image(self, image_format: str, stream: bytes, pos: int, end: int | None, where: Where) -> None: ...

    def document(self, document_format: str, where: Where, images_inside: int) -> None: ...

    def opaque(self, opaque_format: str, where: Where, reason: str) -> None: ...

    def out_of_time(self, where: Where) -> bool: ...

    def budget_left(self) -> int:
        """Decoded bytes decompression may still produce."""

    def spend(self, decoded: int) -> None: ...

    def count_member(self, where: Where) -> bool:
        """False once the scan has opened ScanLimits.max_members members."""
