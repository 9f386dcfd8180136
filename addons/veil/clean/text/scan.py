"""One picture, top to bottom: read it (turned when it reads badly upright), find the
personal text and the codes, and say which rectangles to cover.

Rectangles are always in the upright picture's pixels, whichever turn the text was read at.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from PIL import Image

from .. import turns
from ..options import TextDetectionSettings, TextMode
from . import codes, pii
from .masks import grown, span_rect
from .ocr import Line, Rect, default_reader

TURNS = tuple(turns.BY_DEGREES)  # degrees counter-clockwise, as Image.rotate counts
# A character counts as read well when its line scored at least this.
WELL_READ_SCORE = 0.8
# The turns are tried only when the detector found at least this many lines (or lines on
# end): a document read the wrong way up still shows many lines, whereas a photo where the
# detector takes a texture or two for text must not pay three more passes.
MIN_LINES_FOR_TURNS = 3


@dataclass(frozen=True)
class TextScan:
    rects: list[Rect] = field(default_factory=list)  # to cover, upright pixels
    kinds: dict[str, int] = field(default_factory=dict)  # what was found, by kind: never the text
    turn: int = 0  # the turn the text was read at (the verifier reads again at the same turn)
    # Animations: output frame index -> (its rectangles, its turn), for the verifier.
    frames: dict[int, tuple[list[Rect], int]] = field(default_factory=dict)


def scan(image: Image.Image, mode: TextMode, settings: TextDetectionSettings) -> TextScan:
    found_codes = codes.find_codes(image)
    rects = [codes.masked_rect(code, image.size) for code in found_codes]
    kinds: Counter[str] = Counter({pii.CODE: len(found_codes)} if found_codes else {})
    lines, turn = read_best_turn(image, settings)
    turned_size = turns.turned_size(image.size, turns.BY_DEGREES[turn]) if turn else image.size
    for kind, rect in _text_rects(lines, mode, settings, turned_size):
        rects.append(unturn_rect(rect, turn, image.size))
        kinds[kind] += 1
    return TextScan(rects, dict(kinds), turn)


def _text_rects(lines: list[Line], mode: TextMode, settings: TextDetectionSettings, size) -> list[tuple[str, Rect]]:
    if mode is TextMode.ALL:
        return [(pii.TEXT, grown(line.box, line.height, settings, size)) for line in lines]
    found = [(hit.kind, span_rect(lines[hit.line], hit.start, hit.end, settings, size)) for hit in pii.find_personal_text(lines)]
    return _whole_mrz_rows(found)


def _whole_mrz_rows(found: list[tuple[str, Rect]]) -> list[tuple[str, Rect]]:
    """Pieces of one MRZ line (the detector may split it where fillers run) become one mask
    across the row, so no character between the pieces is left."""
    others = [entry for entry in found if entry[0] != pii.MRZ]
    rows: list[Rect] = []
    for _, rect in sorted((entry for entry in found if entry[0] == pii.MRZ), key=lambda entry: entry[1][0]):
        same_row = next((i for i, row in enumerate(rows) if _same_row(row, rect)), None)
        if same_row is None:
            rows.append(rect)
        else:
            row = rows[same_row]
            rows[same_row] = (min(row[0], rect[0]), min(row[1], rect[1]), max(row[2], rect[2]), max(row[3], rect[3]))
    return others + [(pii.MRZ, row) for row in rows]


def _same_row(a: Rect, b: Rect) -> bool:
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    return overlap > 0.5 * min(a[3] - a[1], b[3] - b[1])


def read_best_turn(image: Image.Image, settings: TextDetectionSettings) -> tuple[list[Line], int]:
    """The lines of the picture, read upright; when little reads well upright (or the lines
    stand on end) the other three turns are read too and the best one wins."""
    reader = default_reader()
    lines = reader.read(image, settings)
    if not _worth_turning(lines, settings):
        return lines, 0  # no text, a stray box or two, or plenty of upright text: done
    best = (_legibility(lines), 0, lines)
    for turn in TURNS:
        turned_lines = reader.read(image.rotate(turn, expand=True), settings)
        best = max(best, (_legibility(turned_lines), turn, turned_lines), key=lambda entry: entry[0])
    return best[2], best[1]


def _legibility(lines: list[Line]) -> float:
    """Characters read well on lines lying flat. A line standing on end may read well too
    (the recogniser turns tall crops), but its boxes would not match the characters."""
    return sum(len(line.text.strip()) * line.score for line in lines if line.score >= WELL_READ_SCORE and not _on_end(line))


def _on_end(line: Line) -> bool:
    return line.height > 1.5 * (line.box[2] - line.box[0])


def _worth_turning(lines: list[Line], settings: TextDetectionSettings) -> bool:
    on_end = any(_on_end(line) for line in lines)
    return (len(lines) >= MIN_LINES_FOR_TURNS or on_end) and not _reads_well(lines, settings)


def _reads_well(lines: list[Line], settings: TextDetectionSettings) -> bool:
    on_end = sum(1 for line in lines if _on_end(line))
    return _legibility(lines) >= settings.rotate_below_chars and on_end * 2 < len(lines)


def unturn_rect(rect: Rect, turn: int, upright_size: tuple[int, int]) -> Rect:
    """A rectangle of the picture turned `turn` degrees counter-clockwise, in upright pixels."""
    return turns.unturn_rect(rect, turns.BY_DEGREES[turn], upright_size) if turn else rect
