"""The policy's `detection:` block: how faces are searched for, per defaults, service and rule."""

from textwrap import dedent

import pytest
from veil.clean.options import DetectionSettings
from veil.policy import PolicyError, load_default_policy, load_policy_text

MINIMAL = """\
version: 1
services:
  svc:
    hosts: ["api.example.com"]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(dedent(text), "p.yaml")
    return str(caught.value).splitlines()


def rule_for(policy, path: str = "/"):
    return policy.match("api.example.com", path, "POST").rule


def test_the_built_in_detection_settings_are_the_strategy_defaults():
    shipped = load_default_policy()
    assert shipped.defaults.detection == DetectionSettings()
    assert shipped.defaults.sanitise_options().detection == DetectionSettings()


def test_detection_settings_inherit_key_by_key_and_reach_sanitise_options():
    layered = load_policy_text(dedent("""\
        version: 1
        defaults:
          detection:
            threshold: 0.3
            min_face_px: 16
        services:
          svc:
            hosts: ["api.example.com"]
            detection:
              tile_px: 960
            rules:
              - name: fast
                paths: ["/fast"]
                detection:
                  min_face_px: 40
                  mask_scale: 1.5
              - name: rest
        """), "p.yaml")
    fast, rest = rule_for(layered, "/fast"), rule_for(layered, "/other")
    assert fast.detection == DetectionSettings(threshold=0.3, min_face_px=40, tile_px=960, mask_scale=1.5)
    assert rest.detection == DetectionSettings(threshold=0.3, min_face_px=16, tile_px=960)
    assert layered.defaults.detection == DetectionSettings(threshold=0.3, min_face_px=16)
    assert fast.sanitise_options().detection is fast.detection


def test_every_detection_key_can_be_set():
    text = MINIMAL + (
        "    detection:\n"
        "      threshold: 0.25\n"
        "      nms_iou: 0.4\n"
        "      min_face_px: 24\n"
        "      max_detect_long_side: 1920\n"
        "      upscale_below: 0\n"
        "      tile_px: 960\n"
        "      tile_overlap_px: 128\n"
        "      largest_face_px: 400\n"
        "      mask_scale: 1.2\n"
        "      mask_min_margin_px: 0\n"
    )
    assert rule_for(load_policy_text(text, "p.yaml")).detection == DetectionSettings(
        threshold=0.25, nms_iou=0.4, min_face_px=24, max_detect_long_side=1920, upscale_below=0,
        tile_px=960, tile_overlap_px=128, largest_face_px=400, mask_scale=1.2, mask_min_margin_px=0,
    )


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("    detection: 5\n", "line 5: services.svc.detection: expected a mapping of keys to values, got '5'"),
        ("    detection:\n      threshold: 0\n",
         "line 6: services.svc.detection.threshold: must be greater than 0 and at most 1, got 0"),
        ("    detection:\n      threshold: 1.5\n",
         "line 6: services.svc.detection.threshold: must be greater than 0 and at most 1, got 1.5"),
        ("    detection:\n      min_face_px: 12.5\n",
         "line 6: services.svc.detection.min_face_px: expected a whole number (underscores allowed: 50_000_000), got '12.5'"),
        ("    detection:\n      min_face_px: 2\n",
         "line 6: services.svc.detection.min_face_px: must be from 4 to 10000, got 2"),
        ("    detection:\n      tile_px: 1000\n",
         "line 6: services.svc.detection.tile_px: must be a multiple of 32 (the network's input step), got 1000"),
        ("    detection:\n      mask_scale: 0.9\n",
         "line 6: services.svc.detection.mask_scale: must be from 1 to 4, got 0.9"),
        ('    detection:\n      threshold: "0.2"\n',
         "line 6: services.svc.detection.threshold: expected a number, got the text '0.2'; remove the quotes"),
        ("    detection:\n      tile_size: 512\n",
         "line 6: services.svc.detection.tile_size: unknown key; did you mean 'tile_px'? allowed here: threshold, "
         "nms_iou, min_face_px, max_detect_long_side, upscale_below, tile_px, tile_overlap_px, largest_face_px, mask_scale, "
         "mask_min_margin_px"),
    ],
)
def test_detection_mistakes_are_reported_precisely(block, message):
    assert problems(MINIMAL + block) == [f"p.yaml, {message}"]


def test_the_largest_face_must_fit_in_half_a_tile_wherever_each_was_set():
    assert problems("""\
        version: 1
        defaults:
          detection:
            tile_px: 640
        services:
          svc:
            hosts: ["api.example.com"]
            detection:
              largest_face_px: 400
        """) == [
        "p.yaml, line 4: defaults.detection.tile_px: detection.largest_face_px (450, built in) must be at most "
        "half of detection.tile_px (640, here), so the largest face fits whole in a tile; raise tile_px or lower "
        "largest_face_px",
        "p.yaml, line 9: services.svc.detection.largest_face_px: detection.largest_face_px (400, here) must be at "
        "most half of detection.tile_px (640, from defaults.detection.tile_px, line 4), so the largest face fits "
        "whole in a tile; raise tile_px or lower largest_face_px",
    ]
    fits = load_policy_text(dedent("""\
        version: 1
        defaults:
          detection: {tile_px: 640, largest_face_px: 320}
        services:
          svc:
            hosts: ["api.example.com"]
        """), "p.yaml")
    assert rule_for(fits).detection.largest_face_px == 320


def test_the_tile_overlap_must_fit_in_half_a_tile():
    assert problems(MINIMAL + "    detection: {tile_px: 1024, tile_overlap_px: 600}\n") == [
        "p.yaml, line 5: services.svc.detection.tile_overlap_px: detection.tile_overlap_px (600, here) must be at "
        "most half of detection.tile_px (1024, from services.svc.detection.tile_px, line 5), so the tiles advance; "
        "raise tile_px or lower tile_overlap_px"
    ]


def test_a_larger_tile_overlap_is_used_where_the_pass_needs_less():
    from veil.clean.faces.scale import plan_passes

    default = plan_passes(4000, 3000, DetectionSettings())
    wider = plan_passes(4000, 3000, DetectionSettings(tile_overlap_px=200))
    assert default[0].overlap == 96 and wider[0].overlap == 224  # rounded up to the network's 32 px step
    assert wider[-1].overlap == default[-1].overlap  # the coarsest pass already overlaps more
