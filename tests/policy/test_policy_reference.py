"""The policy reference (addons/veil/policy/reference.py, rendered into the docs at build
time) documents every key the reader accepts, with the code's defaults and allowed values."""

import re

import pytest
from veil.clean.options import DetectionSettings, FaceMode, TextMode
from veil.policy import reader, reference, settings
from veil.policy.model import (
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


def every_key() -> list[str]:
    """Every key the reader accepts, as the reference names it (blocks' keys prefixed)."""
    return [
        *reader.TOP_LEVEL_KEYS,
        *reader.SERVICE_KEYS,
        *reader.RULE_KEYS,
        *(f"limits.{key}" for key in settings.LIMIT_READERS),
        *(f"detection.{key}" for key in settings.DETECTION_READERS),
    ]


def row_of(page: str, key: str) -> str:
    rows = [line for line in page.splitlines() if line.startswith(f"| `{key}` |")]
    assert rows, f"no row for {key}"
    return rows[0]


def test_every_key_the_reader_accepts_has_a_description():
    described = {
        **{key: reference.TOP_LEVEL.get(key) for key in reader.TOP_LEVEL_KEYS},
        **{key: reference.SERVICE.get(key) or reference.SETTINGS.get(key) for key in reader.SERVICE_KEYS},
        **{key: reference.RULE.get(key) or reference.SETTINGS.get(key) for key in reader.RULE_KEYS},
        **{f"limits.{key}": reference.LIMITS.get(key) for key in settings.LIMIT_READERS},
        **{f"detection.{key}": reference.DETECTION.get(key) for key in settings.DETECTION_READERS},
    }
    assert [key for key, text in described.items() if not (text and text.strip())] == []
    reference.check_descriptions()


def test_the_rendered_page_has_a_row_for_every_key():
    page = reference.render_reference()
    for key in every_key():
        row_of(page, key)


def test_every_enum_value_is_listed_in_its_settings_row():
    page = reference.render_reference()
    enums = reference.enums_documented()
    assert set(enums.values()) == {
        Action, OnError, UnparsedBodies, ImageReferences, OpaqueFiles, Documents, UnknownMembers, DocumentComments,
        OfficeMacros, FaceMode, TextMode,
    }  # fmt: skip
    for key, enum in enums.items():
        row = row_of(page, key)
        allowed = row.split(" | ")[1]
        assert re.findall(r"`([^`]+)`", allowed) == [member.value for member in enum], key


def test_defaults_are_the_codes():
    page = reference.render_reference()
    built_in = Rule()
    for key in settings.SETTING_READERS:
        assert row_of(page, key).split(" | ")[2] == reference.yaml_value(getattr(built_in, key))
    for key in settings.LIMIT_READERS:
        assert row_of(page, f"limits.{key}").split(" | ")[2] == reference.yaml_value(getattr(Limits(), key))
    for key in settings.DETECTION_READERS:
        default = getattr(DetectionSettings(), key)
        assert row_of(page, f"detection.{key}").split(" | ")[2] == reference.yaml_value(default)


def test_allowed_values_come_from_the_readers_bounds():
    page = reference.render_reference()
    assert "a multiple of 32" in row_of(page, "detection.tile_px")
    assert row_of(page, "detection.threshold").split(" | ")[1] == "a number > 0, ≤ 1"
    assert row_of(page, "limits.max_body_bytes").split(" | ")[1] == "a whole number > 0"
    assert row_of(page, "strip").split(" | ")[1] == "`true` or `false`"


def test_a_new_setting_without_a_description_fails_the_render(monkeypatch):
    monkeypatch.setitem(settings.SETTING_READERS, "new_setting", settings.SETTING_READERS["strip"])
    monkeypatch.setattr(reader, "SETTING_KEYS", (*reader.SETTING_KEYS, "new_setting"))
    with pytest.raises(reference.UndocumentedPolicyKeys, match="'new_setting' has no description"):
        reference.render_reference()


def test_a_new_detection_key_without_a_description_fails_the_render(monkeypatch):
    monkeypatch.setitem(settings.DETECTION_READERS, "new_knob", settings.DETECTION_READERS["tile_px"])
    with pytest.raises(reference.UndocumentedPolicyKeys, match="detection: 'new_knob' has no description"):
        reference.render_reference()


def test_a_description_of_a_removed_key_fails_the_render(monkeypatch):
    monkeypatch.setitem(reference.RULE, "priority", "A key the reader never accepted.")
    with pytest.raises(reference.UndocumentedPolicyKeys, match="'priority' is described but the reader does not accept it"):
        reference.render_reference()


def test_a_reader_of_an_unknown_kind_fails_the_render(monkeypatch):
    monkeypatch.setitem(settings.SETTING_READERS, "strip", lambda node: True)
    with pytest.raises(reference.UndocumentedPolicyKeys, match="not one reference.allowed_values knows"):
        reference.render_reference()
