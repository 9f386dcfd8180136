"""The settings a rule resolves: how each key is read, and the layers they are resolved
through (built-in defaults <- `defaults:` <- service <- rule; for a catalogue service, the
policy's own settings last). The docs' policy reference is rendered from these readers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yaml.nodes import Node

from ..clean.options import DetectionSettings, FaceMode, TextDetectionSettings, TextMode
from .model import (
    Action,
    DocumentComments,
    Documents,
    ImageReferences,
    Limits,
    OfficeMacros,
    OnError,
    OpaqueFiles,
    Rule,
    UnknownMembers,
    UnparsedBodies,
)
from .values import enum_reader, positive_reader, range_reader, read_bool

SETTING_READERS: dict[str, Callable[[Node], Any]] = {
    "action": enum_reader(Action),
    "strip": read_bool,
    "faces": enum_reader(FaceMode),
    "keep_icc": read_bool,
    "on_error": enum_reader(OnError),
    "preserve_length": read_bool,
    "unparsed_bodies": enum_reader(UnparsedBodies),
    "image_references": enum_reader(ImageReferences),
    "opaque_files": enum_reader(OpaqueFiles),
    "text": enum_reader(TextMode),
    "documents": enum_reader(Documents),
    "unknown_members": enum_reader(UnknownMembers),
    "document_comments": enum_reader(DocumentComments),
    "office_macros": enum_reader(OfficeMacros),
}
LIMIT_READERS: dict[str, Callable[[Node], Any]] = {
    "max_image_pixels": positive_reader(accept_fractions=False),
    "max_body_bytes": positive_reader(accept_fractions=False),
    "image_timeout_seconds": positive_reader(accept_fractions=True),
    "max_document_pages": positive_reader(accept_fractions=False),
    "max_archive_members": positive_reader(accept_fractions=False),
    "max_inflated_bytes": positive_reader(accept_fractions=False),
}


# `detection:` (see DetectionSettings for what each one does).
DETECTION_READERS: dict[str, Callable[[Node], Any]] = {
    "threshold": range_reader(True, 0.0, 1.0, low_inclusive=False),
    "nms_iou": range_reader(True, 0.0, 1.0, low_inclusive=False),
    "min_face_px": range_reader(False, 4, 10_000),
    "max_detect_long_side": range_reader(False, 64, 100_000),
    "upscale_below": range_reader(False, 0, 10_000),
    "tile_px": range_reader(False, 128, 8192, multiple=32),
    "tile_overlap_px": range_reader(False, 0, 4096),
    "largest_face_px": range_reader(False, 32, 4096),
    "mask_scale": range_reader(True, 1.0, 4.0),
    "mask_min_margin_px": range_reader(False, 0, 1000),
}
# `text_detection:` (see TextDetectionSettings for what each one does).
TEXT_DETECTION_READERS: dict[str, Callable[[Node], Any]] = {
    "detect_long_side": range_reader(False, 320, 8192),
    "box_threshold": range_reader(True, 0.0, 1.0, low_inclusive=False),
    "min_text_score": range_reader(True, 0.0, 1.0, low_inclusive=False),
    "mask_margin": range_reader(True, 0.0, 2.0),
    "mask_min_margin_px": range_reader(False, 0, 200),
    "rotate_below_chars": range_reader(False, 0, 100_000),
}

@dataclass(frozen=True)
class Setting:
    """A value with where it was written, so a conflict can point at the right line."""

    value: Any
    line: int | None
    path: str
    # 0 built in, 1 defaults, 2 service, 3 rule; for a catalogue service, 4 the policy's
    # settings for the service and 5 its rule_settings: higher is more specific, and the
    # policy always has the last word over the catalogue.
    depth: int
    source: str = ""  # the file it was written in (the policy or a catalogue file)


# A layer maps setting names ("faces", "limits.max_body_bytes") to where they were set.
Layer = dict[str, Setting]


def built_in_layer() -> Layer:
    built_in = Rule()
    layer = {key: Setting(getattr(built_in, key), None, "", 0) for key in SETTING_READERS}
    for key in LIMIT_READERS:
        layer[f"limits.{key}"] = Setting(getattr(built_in.limits, key), None, "", 0)
    for key in DETECTION_READERS:
        layer[f"detection.{key}"] = Setting(getattr(built_in.detection, key), None, "", 0)
    for key in TEXT_DETECTION_READERS:
        layer[f"text_detection.{key}"] = Setting(getattr(built_in.text_detection, key), None, "", 0)
    return layer


def rule_from(layer: Layer) -> Rule:
    limits = Limits(**{key: layer[f"limits.{key}"].value for key in LIMIT_READERS})
    detection = DetectionSettings(**{key: layer[f"detection.{key}"].value for key in DETECTION_READERS})
    text_detection = TextDetectionSettings(**{key: layer[f"text_detection.{key}"].value for key in TEXT_DETECTION_READERS})
    return Rule(
        **{key: layer[key].value for key in SETTING_READERS}, limits=limits, detection=detection, text_detection=text_detection
    )
