"""Mutated request bodies through the pure gateway, the way the addon examines them
(pipeline.inspect, core cleaning, judge, rebuild), without the proxy or its worker pool.

Property: nothing but pipeline.RequestRefused escapes; and when the verdict forwards a
body, every image a lenient server could decode from it is clean (independent.py), and
none of the seeds' secrets is anywhere in it, raw or base64. The one exception to the
byte scan is a body Veil could not parse at all and forwards because the policy says
`unparsed_bodies: log` (documented: "what Veil cannot see"); even then, no image a
lenient server could decode from it may be dirty. And the scan skips multipart parts
whose content starts as no image at all (independent.opaque_spans): bytes of an image
further into a text field are data that no parser or decoder treats as an image.
"""

import functools

import pytest
from hypothesis import given, settings

from veil.proxy import pipeline, workers
from veil.policy import load_policy_text

from . import checks, independent, stats
from .bodies import Body, request_bodies
from .profiles import examples

# Pillow warns about the damaged files it is handed (truncated TIFF tags and the like):
# expected here, and noise in the suite's summary.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")

POLICY = """
version: 1
services:
  fuzz:
    hosts: [api.example.com]
    rules:
      - {name: log-unparsed, paths: ["/log"], faces: off, unparsed_bodies: log, image_references: log}
      - {name: block-unparsed, paths: ["/block"], faces: off, unparsed_bodies: block, image_references: log}
      - {name: masked, paths: ["/mask"], faces: mask}
"""
SECONDS_PER_EXAMPLE = 60


@functools.cache
def rule(path: str):
    return load_policy_text(POLICY).match("api.example.com", path, "POST").rule


def examine(body: bytes, content_type: str | None, chosen) -> pipeline.BodyVerdict:
    """What addon.Veil._examine does for a sanitise rule, with cleaning in this process."""
    inspection = pipeline.inspect(body, content_type, chosen)
    verdict = pipeline.BodyVerdict(inspection.envelope, unparsed=pipeline.unparsed_to_log(inspection, body, chosen), references=inspection.references)
    options = chosen.sanitise_options()
    for slot in inspection.slots:
        result, error, ms = workers.clean(slot.image, options)
        verdict.outcomes.append(pipeline.judge(slot, chosen, result, error, ms))
    if not verdict.blocked:
        verdict.body = pipeline.rebuild(body, verdict.outcomes)
    return verdict


def forwarded_is_clean(request: Body, path: str, prop: str) -> None:
    with stats.example(prop):
        _forwarded_is_clean(request, path, prop)


def _forwarded_is_clean(request: Body, path: str, prop: str) -> None:
    chosen = rule(path)
    with checks.time_limit(SECONDS_PER_EXAMPLE):
        try:
            verdict = examine(request.data, request.content_type, chosen)
        except pipeline.RequestRefused:
            stats.count(prop, "refused: body could not be read")
            return
    if verdict.blocked:
        stats.count(prop, "blocked: an image could not be cleaned")
        return
    forwarded = verdict.body if verdict.body is not None else request.data
    dirty = []
    for image in independent.images_in(forwarded, request.content_type):
        judgement = checks.judge(image, request.secrets)
        dirty += judgement.problems
    assert not dirty, f"{request!r}: Veil forwarded an image that is not clean: {dirty}"
    secrets = checks.secrets_in_body(forwarded, request.secrets, independent.opaque_spans(forwarded, request.content_type))
    if secrets != checks.secrets_in_body(forwarded, request.secrets):
        stats.note(prop, "a seed's secret inside a form field that no parser hands over as an image")
    if verdict.unparsed:
        stats.count(prop, "forwarded uninspected (unparsed_bodies: log)")
        if secrets:
            stats.note(prop, "an uninspected body held a seed's secret no lenient parser decodes as an image")
        return
    assert not secrets, f"{request!r}: the forwarded body still holds {secrets} (envelope {verdict.envelope})"
    cleaned = sum(outcome.event == "sanitised" for outcome in verdict.outcomes)
    stats.count(prop, f"forwarded: {cleaned} image(s) cleaned" if cleaned else "forwarded: no image in it")


@settings(max_examples=examples("envelope"))
@given(request_bodies)
def test_mutated_bodies_unparsed_logged(request):
    forwarded_is_clean(request, "/log", "envelopes, unparsed_bodies: log")


@settings(max_examples=examples("envelope"))
@given(request_bodies)
def test_mutated_bodies_unparsed_blocked(request):
    forwarded_is_clean(request, "/block", "envelopes, unparsed_bodies: block")


@settings(max_examples=examples("envelope_mask"))
@given(request_bodies)
def test_mutated_bodies_faces_masked(request):
    forwarded_is_clean(request, "/mask", "envelopes, faces masked")
