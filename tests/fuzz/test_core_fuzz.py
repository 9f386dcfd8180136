"""Mutated images of every supported format through `sanitise`: it refuses them with one
typed SanitiseError, or returns an image that is clean by checks independent of it.
Never another exception, never a hang, never a secret of the seed in the output."""

import pytest
from hypothesis import given, settings

from veil.clean.core import sanitise
from veil.clean.errors import SanitiseError
from veil.clean.options import FaceMode, SanitiseOptions

from . import checks, stats
from .mutations import Mutant, mutants
from .profiles import examples
from .seeds import face_seeds, strip_seeds

# Pillow warns about the damaged files it is handed (truncated TIFF tags and the like):
# expected here, and noise in the suite's summary.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")

STRIP_ONLY = SanitiseOptions(faces=FaceMode.OFF)
MASKING = SanitiseOptions(faces=FaceMode.MASK)
SECONDS_PER_EXAMPLE = 30  # the slowest example seen took ~0.3 s: this is a hang, not a busy machine
# The catch-all in core.sanitise turns an unexpected exception into MalformedImage with
# this wording; counted apart, since each is a parser that failed in a way nobody chose.
CAUGHT_BY_THE_SAFETY_NET = "the image could not be processed ("


def clean_or_refused(mutant: Mutant, options: SanitiseOptions, prop: str) -> None:
    with stats.example(prop):
        _clean_or_refused(mutant, options, prop)


def _clean_or_refused(mutant: Mutant, options: SanitiseOptions, prop: str) -> None:
    with checks.time_limit(SECONDS_PER_EXAMPLE):
        try:
            result = sanitise(mutant.data, options)
        except SanitiseError as error:
            net = error.reason.startswith(CAUGHT_BY_THE_SAFETY_NET)
            stats.count(prop, f"blocked: {error.kind}" + (" (safety net)" if net else ""))
            return
    report = result.report
    expected_orientation = 1 if report.reencoded else report.orientation
    judgement = checks.judge(result.data, mutant.seed.secrets, expected_orientation)
    assert not judgement.problems, f"{report.format} output of {mutant!r} is not clean: {judgement.problems}"
    stats.count(prop, "cleaned" if judgement.pixels_decode else "cleaned (pixel data damaged, as in the input)")
    if judgement.secret_in_image_data:
        stats.note(prop, "a secret moved into pixel data by the mutation")


@settings(max_examples=examples("core_strip"))
@given(mutants(strip_seeds()))
def test_mutated_images_strip_only(mutant):
    clean_or_refused(mutant, STRIP_ONLY, "core, strip only")


@settings(max_examples=examples("core_mask"))
@given(mutants(face_seeds()))
def test_mutated_face_photos_masked(mutant):
    clean_or_refused(mutant, MASKING, "core, faces masked")
