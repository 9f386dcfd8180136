"""The policy's `text:` key and `text_detection:` block, per defaults, service and rule."""

from textwrap import dedent

import pytest
from veil.clean.options import TextDetectionSettings, TextMode
from veil.policy import PolicyError, load_default_policy, load_policy_text


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(dedent(text), "p.yaml")
    return str(caught.value).splitlines()


def test_the_shipped_policy_leaves_text_alone_and_loads_no_ocr():
    shipped = load_default_policy()
    assert shipped.defaults.text is TextMode.OFF
    assert shipped.defaults.sanitise_options().text is TextMode.OFF
    assert not shipped.masks_text()


def test_text_and_its_settings_inherit_and_reach_sanitise_options():
    policy = load_policy_text(dedent("""\
        version: 1
        defaults:
          text: pii
          text_detection:
            detect_long_side: 1600
        services:
          svc:
            hosts: ["api.example.com"]
            text_detection:
              mask_margin: 0.5
            rules:
              - name: screenshots
                paths: ["/shots/*"]
                text: all
              - name: rest
        """), "p.yaml")
    shots = policy.match("api.example.com", "/shots/1", "POST").rule.sanitise_options()
    rest = policy.match("api.example.com", "/other", "POST").rule.sanitise_options()
    assert shots.text is TextMode.ALL and rest.text is TextMode.PII
    expected = TextDetectionSettings(detect_long_side=1600, mask_margin=0.5)
    assert shots.text_detection == expected and rest.text_detection == expected
    assert policy.masks_text()


def test_a_wrong_text_value_or_setting_is_reported_on_its_line():
    found = problems("""\
        version: 1
        defaults:
          text: names
          text_detection:
            detect_long_side: 10
            mask_colour: red
        services:
          svc:
            hosts: ["api.example.com"]
        """)
    text = "\n".join(found)
    assert "line 3" in text and "names" in text
    assert "line 5" in text and "detect_long_side" in text
    assert "line 6" in text and "mask_colour" in text
