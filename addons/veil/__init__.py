"""Veil: strips metadata and masks faces in photos on their way to AI services.

The core is pure (bytes in, bytes and a report out): see `veil.core.sanitise`.
"""

from .clean.errors import (
    MalformedImage,
    SanitiseError,
    TooLarge,
    UnsupportedFormat,
    VerificationFailed,
)
from .clean.options import FaceMode, SanitiseOptions

__all__ = [
    "FaceMode",
    "MalformedImage",
    "SanitiseError",
    "SanitiseOptions",
    "TooLarge",
    "UnsupportedFormat",
    "VerificationFailed",
    "sanitise",
]


def sanitise(data: bytes, options: SanitiseOptions | None = None):
    """Lazy re-export so `import veil` stays cheap (the core pulls in numpy and onnxruntime)."""
    from .clean.core import sanitise as _sanitise

    return _sanitise(data, options)
