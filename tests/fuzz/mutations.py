"""Hypothesis strategies that damage a seed image the way broken writers, truncated
uploads and hostile files do.

One structural mutation at most (duplicate, reorder or drop a segment/chunk/box, lie in
a length field, declare huge dimensions), then up to three byte-level ones (flips,
truncation, inserted, deleted or duplicated runs, interesting values), then optionally
the checksums and container sizes made true again so the damage reaches deeper code.

A Mutant's repr names the seed and the steps, never the bytes: hypothesis prints it
when a property fails, and image bytes do not belong in logs.
"""

import re
import struct
import zlib

from hypothesis import strategies as st

from . import structure
from .seeds import Seed

_INTERESTING_VALUES = (0, 1, 2, 3, 4, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x4000, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0xFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
_HUGE_DIMENSIONS = (0, 1, 0x3FFF, 0x4000, 0xFFFF, 50_000, 0xFFFFFF, 0x7FFFFFFF, 0xFFFFFFFF)


class Mutant:
    """Not a dataclass: hypothesis prints dataclasses field by field, bytes included."""

    def __init__(self, seed: Seed, data: bytes, steps: tuple[str, ...]):
        self.seed = seed
        self.data = data
        self.steps = steps

    def __repr__(self) -> str:
        return f"Mutant(seed={self.seed.name!r}, {len(self.data)} bytes, steps={list(self.steps)})"


# ---------------------------------------------------------------------------------------
# Structural mutations: need the seed's layout.


@st.composite
def _structural(draw, seed: Seed) -> tuple[bytes, str]:
    data = seed.data
    shape = structure.layout(data)
    pieces = shape.pieces
    kinds = ["none", "dimensions"] + (["duplicate", "swap", "drop", "length"] if pieces else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return data, "no structural change"
    if kind == "dimensions":
        return _huge_dimensions(draw, data, shape)
    index = draw(st.integers(0, len(pieces) - 1))
    piece = pieces[index]
    if kind == "duplicate":
        target = draw(st.sampled_from(pieces))
        at = draw(st.sampled_from((target.start, target.end)))
        return data[:at] + data[piece.start : piece.end] + data[at:], f"duplicate {piece.label} at {at}"
    if kind == "drop":
        return data[: piece.start] + data[piece.end :], f"drop {piece.label}"
    if kind == "swap":
        other = pieces[draw(st.integers(0, len(pieces) - 1))]
        first, second = sorted((piece, other), key=lambda p: p.start)
        if first is second or first.end > second.start:
            return data, "swap (same piece)"
        swapped = data[: first.start] + data[second.start : second.end] + data[first.end : second.start] + data[first.start : first.end] + data[second.end :]
        return swapped, f"swap {first.label} and {second.label}"
    if piece.length is None:
        return data, f"length of {piece.label} (has none)"
    true_value = int.from_bytes(data[piece.length.offset : piece.length.offset + piece.length.width], piece.length.order)
    value = draw(st.one_of(st.sampled_from(_INTERESTING_VALUES), st.sampled_from((true_value - 1, true_value + 1, true_value * 2)), st.integers(0, 1 << 32)))
    return piece.length.patch(data, value), f"length of {piece.label} := {value}"


def _huge_dimensions(draw, data: bytes, shape: structure.Layout) -> tuple[bytes, str]:
    value = draw(st.sampled_from(_HUGE_DIMENSIONS))
    if shape.format == "pnm":
        return re.sub(rb"(?<=\s)\d+", str(value).encode(), data, count=1), f"PNM width := {value}"
    if not shape.dimensions:
        return data, "dimensions (no field)"
    field = draw(st.sampled_from(shape.dimensions))
    return field.patch(data, value), f"dimension field at {field.offset} := {value}"


# ---------------------------------------------------------------------------------------
# Byte-level mutations: work on whatever bytes there are.


_SIGNATURE_BYTES = 16


def _position(size: int):
    """Anywhere in the file, or (as often) past its signature: damage to the first bytes
    only ever tests the format sniffer."""
    last = max(size - 1, 0)
    return st.one_of(st.integers(0, last), st.integers(min(_SIGNATURE_BYTES, last), last))


@st.composite
def _byte_level(draw, data: bytes) -> tuple[bytes, str]:
    size = len(data)
    kind = draw(st.sampled_from(("flip", "truncate", "insert", "delete", "duplicate", "value")))
    position = draw(_position(size))
    if kind == "flip":
        count = draw(st.integers(1, 8))
        spots = draw(st.lists(_position(size), min_size=count, max_size=count))
        masks = draw(st.lists(st.integers(1, 255), min_size=count, max_size=count))
        flipped = bytearray(data)
        for spot, mask in zip(spots, masks):
            if spot < size:
                flipped[spot] ^= mask
        return bytes(flipped), f"flip {count} byte(s) near {spots[:3]}"
    if kind == "truncate":
        return data[:position], f"truncate to {position}"
    if kind == "insert":
        run = draw(st.one_of(st.binary(min_size=1, max_size=64), st.builds(lambda b, n: bytes([b]) * n, st.sampled_from((0, 0xFF)), st.integers(1, 300))))
        return data[:position] + run + data[position:], f"insert {len(run)} byte(s) at {position}"
    if kind == "delete":
        length = draw(st.integers(1, 256))
        return data[:position] + data[position + length :], f"delete {length} byte(s) at {position}"
    if kind == "duplicate":
        length = draw(st.integers(1, 256))
        at = draw(_position(size + 1))
        return data[:at] + data[position : position + length] + data[at:], f"copy {length} byte(s) from {position} to {at}"
    width = draw(st.sampled_from((1, 2, 4)))
    order = draw(st.sampled_from(("big", "little")))
    value = draw(st.sampled_from(_INTERESTING_VALUES)) % (1 << (8 * width))
    return structure.Field(position, width, order).patch(data, value), f"write {value} ({width} bytes) at {position}"


# ---------------------------------------------------------------------------------------
# Fix-ups: make the cheapest checks pass again so the damage is seen by deeper code.


def _recompute_png_crcs(data: bytes) -> bytes:
    """Every chunk whose length still fits gets a correct CRC."""
    out, pos = bytearray(data), 8
    while pos + 12 <= len(out):
        length = struct.unpack_from(">I", out, pos)[0]
        end = pos + 12 + length
        if end > len(out):
            break
        struct.pack_into(">I", out, end - 4, zlib.crc32(bytes(out[pos + 4 : end - 4])))
        pos = end
    return bytes(out)


def _fix_up(draw, data: bytes, shape: structure.Layout) -> tuple[bytes, str | None]:
    if shape.crc_chunks and data.startswith(b"\x89PNG") and draw(st.booleans()):
        return _recompute_png_crcs(data), "PNG CRCs recomputed"
    if shape.riff_size is not None and len(data) >= 8 and draw(st.booleans()):
        return shape.riff_size.patch(data, len(data) - 8), "RIFF size made true"
    return data, None


@st.composite
def mutants(draw, seeds: tuple[Seed, ...], max_byte_mutations: int = 3) -> Mutant:
    seed = draw(st.sampled_from(seeds))
    data, step = draw(_structural(seed))
    steps = [step]
    for _ in range(draw(st.integers(0, max_byte_mutations))):
        data, step = draw(_byte_level(data))
        steps.append(step)
    data, step = _fix_up(draw, data, structure.layout(seed.data))
    if step:
        steps.append(step)
    return Mutant(seed, data, tuple(steps))
