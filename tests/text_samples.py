"""Pictures with known text, for the text-masking tests and scripts/bench/text.

Each sample is rendered here with Pillow (DejaVu fonts from matplotlib) from seeded faker
values in several locales, and knows where every token is: the personal ones (with their
kind and string) and the others, plus the boxes of its QR codes and barcodes. Document
"photos" are perspective-warped renderings, and their boxes are warped with them.
"""

from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LOCALES = ("en_GB", "fr_FR", "de_DE", "es_ES", "it_IT", "nl_NL", "pt_PT")
_REGION = {"en_GB": "GB", "fr_FR": "FR", "de_DE": "DE", "es_ES": "ES", "it_IT": "IT", "nl_NL": "NL", "pt_PT": "PT"}
_LABELS = {  # surname, given names, date of birth
    "en_GB": ("Surname", "Given names", "Date of birth"),
    "fr_FR": ("Nom", "Prénoms", "Date de naissance"),
    "de_DE": ("Name", "Vornamen", "Geburtsdatum"),
    "es_ES": ("Apellidos", "Nombre", "Fecha de nacimiento"),
    "it_IT": ("Cognome", "Nome", "Data di nascita"),
    "nl_NL": ("Achternaam", "Voornamen", "Geboortedatum"),
    "pt_PT": ("Apelidos", "Nome", "Data de nascimento"),
}
_STREETS = {
    "en_GB": "{n} {name} Street", "fr_FR": "{n} rue {name}", "de_DE": "{name}straße {n}", "es_ES": "Calle {name} {n}",
    "it_IT": "Via {name} {n}", "nl_NL": "{name}straat {n}", "pt_PT": "Rua {name} {n}",
}
_POSTCODES = {
    "en_GB": "SW1A 2AA", "fr_FR": "75002 Paris", "de_DE": "10115 Berlin", "es_ES": "28013 Madrid", "it_IT": "00184 Roma",
    "nl_NL": "1012 AB Amsterdam", "pt_PT": "1100-148 Lisboa",
}


def font_path(mono: bool = False) -> str:
    import matplotlib

    name = "DejaVuSansMono.ttf" if mono else "DejaVuSans.ttf"
    return os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf", name)


@dataclass
class Token:
    text: str
    box: tuple[int, int, int, int]
    kind: str | None = None  # the personal kind, None for other words


@dataclass
class Sample:
    name: str
    image: Image.Image
    tokens: list[Token] = field(default_factory=list)
    codes: list[tuple[int, int, int, int]] = field(default_factory=list)

    @property
    def personal(self) -> list[Token]:
        return [token for token in self.tokens if token.kind]

    @property
    def other_words(self) -> list[Token]:
        return [token for token in self.tokens if not token.kind]

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.image.save(buffer, "PNG")
        return buffer.getvalue()


class _Writer:
    """Draws lines of segments and records each word's box (personal segments whole)."""

    def __init__(self, image: Image.Image, size: int, mono: bool = False):
        self.draw = ImageDraw.Draw(image)
        self.font = ImageFont.truetype(font_path(mono), size)
        self.tokens: list[Token] = []

    def line(self, x: int, y: int, segments: list[tuple[str, str | None]]) -> None:
        for text, kind in segments:
            if kind:
                self._put(x, y, text, kind)
                x = self.draw.textbbox((x, y), text + " ", font=self.font)[2]
            else:
                for word in text.split():
                    self._put(x, y, word, None)
                    x = self.draw.textbbox((x, y), word + " ", font=self.font)[2]

    def _put(self, x: int, y: int, text: str, kind: str | None) -> None:
        self.draw.text((x, y), text, font=self.font, fill=(20, 20, 20))
        self.tokens.append(Token(text, tuple(self.draw.textbbox((x, y), text, font=self.font)), kind))


def _faker(locale: str, seed: int):
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(seed)
    return fake


def phone_number(locale: str, rng: random.Random) -> str:
    import phonenumbers

    region = _REGION[locale]
    kind = rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
    number = phonenumbers.example_number_for_type(region, kind)
    style = rng.choice([phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.NATIONAL])
    return phonenumbers.format_number(number, style)


def iban(fake) -> str:
    from stdnum import iban as iban_check

    value = fake.iban()
    assert iban_check.is_valid(value), value
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4))


def _sentence(fake, rng: random.Random) -> str:
    return fake.sentence(nb_words=rng.randint(6, 11)).rstrip(".")


def qr_code(payload: str, scale: int = 4) -> Image.Image:
    import segno

    buffer = io.BytesIO()
    segno.make(payload, error="m").save(buffer, kind="png", scale=scale, border=0)
    return Image.open(buffer).convert("RGB")


def barcode(payload: str) -> Image.Image:
    import barcode as python_barcode
    from barcode.writer import ImageWriter

    writer = ImageWriter()
    rendered = python_barcode.get("code128", payload, writer=writer).render({"quiet_zone": 0, "write_text": False, "module_height": 12})
    return rendered.convert("RGB")


def screenshot(seed: int, size: tuple[int, int] = (1920, 1080), text_px: int | None = None) -> Sample:
    """An e-mail thread as a 1080p screenshot: 10-14 px text, addresses, a phone number, an
    IBAN, lines of ordinary words and a QR code."""
    rng = random.Random(seed)
    locale = LOCALES[seed % len(LOCALES)]
    fake = _faker(locale, seed)
    image = Image.new("RGB", size, (250, 250, 250))
    writer = _Writer(image, text_px or rng.randint(11, 14))
    step = writer.font.size * 2
    y = 40
    rows: list[list[tuple[str, str | None]]] = [
        [("From:", None), (fake.email(), "email")],
        [("To:", None), (fake.email(), "email")],
        [("Subject:", None), (_sentence(fake, rng), None)],
    ]
    rows += [[(_sentence(fake, rng), None)] for _ in range(6)]
    rows += [[("Call me on", None), (phone_number(locale, rng), "phone"), ("tomorrow", None)]]
    rows += [[(_sentence(fake, rng), None)] for _ in range(4)]
    rows += [[("Bank details: IBAN", None), (iban(fake), "iban")]]
    rows += [[(_sentence(fake, rng), None)] for _ in range(4)]
    for row in rows:
        writer.line(60, y, row)
        y += step
    code = qr_code(f"https://example.org/u/{fake.user_name()}", scale=4)
    at = (size[0] - code.width - 120, 80)
    image.paste(code, at)
    return Sample(f"screenshot-{seed}", image, writer.tokens, [(*at, at[0] + code.width, at[1] + code.height)])


def id_card(seed: int) -> Sample:
    """An ID card: labels with their values underneath, a document number, a two-line MRZ."""
    rng = random.Random(seed)
    locale = LOCALES[seed % len(LOCALES)]
    fake = _faker(locale, seed)
    image = Image.new("RGB", (1012, 638), (226, 236, 244))
    ImageDraw.Draw(image).rectangle((40, 110, 300, 450), fill=(180, 190, 200))  # the photo's place
    head = _Writer(image, 30)
    head.line(40, 40, [("IDENTITY CARD", None)])
    labels, values = _Writer(image, 16), _Writer(image, 24)
    surname, given = fake.last_name().upper(), fake.first_name().upper()
    birth = fake.date_of_birth(minimum_age=18, maximum_age=90).strftime("%d.%m.%Y")
    number = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(9))
    y = 110
    for label, value, kind in zip(_LABELS[locale], (surname, given, birth), ("name", "name", "birth_date")):
        labels.line(340, y, [(label, None)])
        values.line(340, y + 24, [(value, kind)])
        y += 80
    labels.line(340, y, [("Document No", None)])
    values.line(340, y + 24, [(number, "national_id")])
    mrz = _Writer(image, 28, mono=True)
    line1 = f"IDD<<{number}<<<<<<<<<<<<<<<"[:30].ljust(30, "<")
    line2 = _mrz_letters(f"{surname}<<{given}")[:30].ljust(30, "<")
    mrz.line(40, 510, [(line1, "mrz")])
    mrz.line(40, 560, [(line2, "mrz")])
    tokens = head.tokens + labels.tokens + values.tokens + mrz.tokens
    return Sample(f"id-card-{seed}", image, tokens)


def _mrz_letters(text: str) -> str:
    """Names as an MRZ writes them: accents dropped, anything but A-Z as the filler '<'."""
    import re
    import unicodedata

    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()
    return re.sub(r"[^A-Z<]", "<", plain)


def letter(seed: int) -> Sample:
    """A letter on an A4 page at 150 dpi: sender's street address and postcode, e-mail,
    phone, IBAN, ordinary paragraphs and a barcode."""
    rng = random.Random(seed)
    locale = LOCALES[seed % len(LOCALES)]
    fake = _faker(locale, seed)
    image = Image.new("RGB", (1240, 1754), (255, 255, 255))
    writer = _Writer(image, 22)  # ~3.7 mm line height at 150 dpi
    street = _STREETS[locale].format(n=rng.randint(2, 180), name=fake.last_name())
    rows = [
        [(street, "address")],
        [(_POSTCODES[locale], "address")],
        [(fake.email(), "email")],
        [(phone_number(locale, rng), "phone")],
        [],
    ]
    rows += [[(_sentence(fake, rng), None)] for _ in range(12)]
    rows += [[("IBAN", None), (iban(fake), "iban")]]
    rows += [[(_sentence(fake, rng), None)] for _ in range(8)]
    y = 120
    for row in rows:
        writer.line(120, y, row)
        y += 44
    code = barcode(f"INV-{rng.randint(100000, 999999)}")
    at = (120, y + 40)
    image.paste(code, at)
    return Sample(f"letter-{seed}", image, writer.tokens, [(*at, at[0] + code.width, at[1] + code.height)])


def photographed(sample: Sample, seed: int, turn: int = 0) -> Sample:
    """The sample as a photo: a mild perspective on a grey background at 2000x1500 (or turned
    `turn` degrees counter-clockwise); every box is carried through the same transform."""
    rng = random.Random(seed)
    page = sample.image
    out_w, out_h = 2000, 1500
    scale = min(out_w * 0.8 / page.width, out_h * 0.9 / page.height)
    w, h = page.width * scale, page.height * scale
    x0, y0 = (out_w - w) / 2, (out_h - h) / 2
    jitter = lambda: rng.uniform(-0.04, 0.04) * w  # noqa: E731
    corners = [(x0 + jitter(), y0 + jitter()), (x0 + w + jitter(), y0 + jitter()), (x0 + w + jitter(), y0 + h + jitter()), (x0 + jitter(), y0 + h + jitter())]
    source = [(0, 0), (page.width, 0), (page.width, page.height), (0, page.height)]
    to_source = _homography(source, corners)
    photo = Image.new("RGB", (out_w, out_h), (90, 94, 98))
    warped = page.transform((out_w, out_h), Image.Transform.PERSPECTIVE, to_source, Image.Resampling.BICUBIC, fillcolor=(90, 94, 98))
    mask = Image.new("L", page.size, 255).transform((out_w, out_h), Image.Transform.PERSPECTIVE, to_source, fillcolor=0)
    photo.paste(warped, (0, 0), mask)
    to_photo = _homography(corners, source)
    tokens = [Token(t.text, _warp_box(t.box, to_photo), t.kind) for t in sample.tokens]
    codes = [_warp_box(box, to_photo) for box in sample.codes]
    if turn:
        tokens = [Token(t.text, _turn_box(t.box, turn, photo.size), t.kind) for t in tokens]
        codes = [_turn_box(box, turn, photo.size) for box in codes]
        photo = photo.rotate(turn, expand=True)
    return Sample(f"{sample.name}-photo{'-turned' + str(turn) if turn else ''}", photo, tokens, codes)


def _homography(src, dst) -> tuple:
    """Coefficients (a..h) of the perspective mapping dst points to src points, as PIL's
    PERSPECTIVE transform wants them (it maps output to input)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return tuple(np.linalg.solve(np.array(rows, float), np.array(rhs, float)))


def _warp_box(box, coefficients) -> tuple[int, int, int, int]:
    a, b, c, d, e, f, g, h = coefficients
    points = [(box[0], box[1]), (box[2], box[1]), (box[2], box[3]), (box[0], box[3])]
    mapped = [((a * x + b * y + c) / (g * x + h * y + 1), (d * x + e * y + f) / (g * x + h * y + 1)) for x, y in points]
    xs, ys = [p[0] for p in mapped], [p[1] for p in mapped]
    return int(min(xs)), int(min(ys)), int(np.ceil(max(xs))), int(np.ceil(max(ys)))


def _turn_box(box, turn: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box of an upright picture in the picture turned `turn` degrees counter-clockwise."""
    width, height = size
    x0, y0, x1, y1 = box
    if turn == 90:
        return y0, width - x1, y1, width - x0
    if turn == 180:
        return width - x1, height - y1, width - x0, height - y0
    return height - y1, x0, height - y0, x1  # 270


def plate(seed: int) -> Sample:
    """A car's rear with its registration plate (a British, French, German, Spanish or Italian format)."""
    rng = random.Random(seed)
    number = rng.choice(["AB12 CDE", "GH-472-KL", "B-MW 2471", "4821 BCD", "EX 418 ZT"])
    image = Image.new("RGB", (1280, 720), (60, 70, 90))
    draw = ImageDraw.Draw(image)
    draw.rectangle((240, 200, 1040, 560), fill=(140, 20, 30))  # the car
    draw.rectangle((440, 420, 840, 500), fill=(245, 245, 240), outline=(0, 0, 0), width=3)
    writer = _Writer(image, 56)
    left, _, right, _ = writer.draw.textbbox((0, 0), number, font=writer.font)
    writer.line(640 - (right - left) // 2, 428, [(number, "plate")])
    return Sample(f"plate-{seed}", image, writer.tokens)


@dataclass
class Verdict:
    personal_covered: int
    personal_total: int
    others_kept: int
    others_total: int
    codes_covered: int
    codes_total: int
    missed: list[str] = field(default_factory=list)  # kinds of the personal tokens left readable


def judge(sample: Sample, output: Image.Image) -> Verdict:
    """By pixels: a personal token (or code) is covered when nearly all of its box lost its
    detail (flat, as an opaque mask leaves it); another word is kept when its box is unchanged."""
    before = np.asarray(sample.image.convert("L"), dtype=np.int16)
    after = np.asarray(output.convert("L"), dtype=np.int16)
    covered = [t for t in sample.personal if _flat(after, t.box)]
    kept = [t for t in sample.other_words if _unchanged(before, after, t.box)]
    codes = [box for box in sample.codes if _flat(after, box)]
    missed = [t.kind for t in sample.personal if t not in covered]
    return Verdict(len(covered), len(sample.personal), len(kept), len(sample.other_words), len(codes), len(sample.codes), missed)


def _region(pixels: np.ndarray, box) -> np.ndarray:
    x0, y0, x1, y1 = (max(0, int(v)) for v in box)
    return pixels[y0:y1, x0:x1]


def _flat(after: np.ndarray, box) -> bool:
    region = _region(after, box)
    # Detail lost: at most 3% of the box still differs from the box's most common value.
    values, counts = np.unique(region, return_counts=True)
    return region.size > 0 and counts.max() >= 0.97 * region.size


def _unchanged(before: np.ndarray, after: np.ndarray, box) -> bool:
    a, b = _region(before, box), _region(after, box)
    return a.size > 0 and float(np.mean(np.abs(a - b) > 24)) < 0.02  # JPEG noise aside, the same pixels
