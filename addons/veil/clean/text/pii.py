"""Which pieces of recognised text are personal: rules over the lines OCR read.

Each rule returns character spans of one line (`Hit`); a labelled field whose value sits on
the line below its label (ID cards) returns a whole line. Checksums come from kept
libraries: phonenumbers for phone numbers, python-stdnum for cards (Luhn), IBANs and
national ID numbers. Rules are written for Latin-script text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .ocr import Line

# Kinds, as the report counts them.
EMAIL, PHONE, CARD, IBAN, NATIONAL_ID, MRZ, NAME, BIRTH_DATE, ADDRESS, PLATE, CODE, TEXT = (
    "email", "phone", "card", "iban", "national_id", "mrz", "name", "birth_date", "address", "plate", "code", "text",
)  # fmt: skip


@dataclass(frozen=True)
class Hit:
    kind: str
    line: int  # index into the lines passed in
    start: int  # character span within that line's text
    end: int


_EMAIL = re.compile(r"[\w.+%-]+\s?@\s?[\w-]+(?:\s?\.\s?[\w-]+)+", re.UNICODE)

# Candidates for checksummed numbers; the validators decide.
_DIGIT_RUN = re.compile(r"(?<![\w])[A-Z]{0,2}\d[\d \-./]{6,34}\d[A-Z]?(?![\w])")
# IBANs are printed in groups of four; the checksum decides where one ends.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
# UK National Insurance numbers have no checksum (python-stdnum has no module for them): the
# format with the letters HMRC never issues is the test.
_NINO = re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][ ]?\d{2}[ ]?\d{2}[ ]?\d{2}[ ]?[A-D]\b")
_CODICE_FISCALE = re.compile(r"\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b")
_DNI = re.compile(r"\b[XYZ\d]\d{7}[- ]?[A-Z]\b")

# Machine-readable zones: runs of A-Z, 0-9 and the filler '<'. The recogniser reads the filler
# as '<' or as look-alikes (« ‹ Λ), and may split a zone line in two, so any line made only of
# those characters with a run of fillers is taken as (part of) an MRZ line.
_MRZ_FILLER_LOOKALIKES = str.maketrans({"«": "<", "‹": "<", "Λ": "<", "≤": "<", "く": "<"})
_MRZ = re.compile(r"^[A-Z0-9<]{8,46}$")
MIN_MRZ_FILLERS = 3

MIN_PHONE_DIGITS = 7
_PHONE_REGIONS = ("US", "GB", "FR", "DE", "ES", "IT", "NL", "PT", "BE", "CH", "AT", "IE", "LU")

# Labels whose value is personal on ID-like documents and forms; value after the label on the
# same line, or on the next line when the label stands alone (ID cards print it above).
_LABELS = {
    NAME: (
        "name", "surname", "given names", "given name", "first name", "last name", "full name", "forename", "forenames",
        "nom", "prénom", "prénoms", "prenom", "prenoms", "nom d'usage", "vorname", "vornamen", "nachname", "familienname",
        "geburtsname", "nombre", "nombres", "apellido", "apellidos", "nome", "cognome", "naam", "voornaam", "voornamen",
        "achternaam", "apelido", "apelidos", "nome completo", "holder", "titulaire", "passenger", "passager",
    ),
    BIRTH_DATE: (
        "date of birth", "birth date", "dob", "d.o.b.", "born", "date de naissance", "né le", "née le", "né(e) le",
        "geburtsdatum", "geboren am", "fecha de nacimiento", "data di nascita", "nato il", "nata il",
        "geboortedatum", "data de nascimento", "place of birth", "lieu de naissance", "geburtsort", "lugar de nacimiento",
        "luogo di nascita", "geboorteplaats", "local de nascimento",
    ),
    ADDRESS: (
        "address", "home address", "adresse", "domicile", "anschrift", "wohnort", "dirección", "direccion", "domicilio",
        "indirizzo", "residenza", "adres", "woonplaats", "morada", "endereço", "endereco",
    ),
    NATIONAL_ID: (
        "passport no", "passport number", "document no", "document number", "id number", "personal no", "personalausweisnummer",
        "n° de passeport", "numéro de document", "dni", "nie", "codice fiscale", "bsn", "nif", "ssn", "social security number",
        "national insurance number", "steuer-id", "steuerliche identifikationsnummer", "numéro de sécurité sociale",
    ),
}  # fmt: skip
_LABEL_PATTERNS = {
    kind: re.compile(
        r"^\s*(?:\d{1,2}[.)]?\s*)?(?:" + "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True)) + r")"
        r"(?:\s*/\s*[^:]{1,30})?\s*[:.]?\s*",
        re.IGNORECASE,
    )
    for kind, labels in _LABELS.items()
}

# Street addresses: a house number with a street-type word, in the orders these languages use.
# English puts the type last ("221B Baker Street"); French, Spanish, Italian and Portuguese
# put it first, before a capitalised name ("12 rue de la Paix", "Calle Mayor 5", "Via Roma 12").
_STREET_TYPE_LAST = re.compile(
    r"\b\d{1,5}[a-zA-Z]?\s+(?:[A-Z][\w'-]*\.?\s+){1,3}"
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Way|Place|Pl|Square|Terrace|Close|Crescent)\b\.?"
)
_STREET_TYPE_FIRST = re.compile(
    r"(?:\b\d{1,5}[a-zA-Z]?(?:\s?bis|\s?ter)?,?\s+)?"
    r"\b(?i:rue|avenue|av\.|boulevard|bd|chemin|allée|impasse|quai|place|cours|route|calle|c/|avenida|avda\.|paseo|"
    r"plaza|carrer|via|viale|piazza|corso|vicolo|rua|travessa|largo|praça)\s+"
    r"(?:[a-zà-ÿ']{1,4}\s+){0,3}[A-ZÀ-Ý][\w'-]*(?:\s+[A-ZÀ-Ý][\w'-]*){0,3}(?:,?\s*(?:n[º°o.]\s*)?\d{1,5}[a-zA-Z]?\b)?"
)
# German/Dutch compounds: Hauptstraße 5, Lindenstr. 12a, Kerkstraat 3, Goetheplatz 1.
_STREET_COMPOUND = re.compile(
    r"\b[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|straat|laan|gracht|plein|kade)\s*\d{1,5}[a-zA-Z]?\b",
    re.IGNORECASE,
)
# Postcodes with their town (the context that tells them from any number).
_TOWN = r"[A-ZÄÖÜÉÈ][a-zäöüßéèàçóíúãõ'-]+(?:[ -][A-ZÄÖÜÉÈ][a-zäöüßéèàçóíúãõ'-]+){0,2}"
_POSTCODE_TOWN = re.compile(
    rf"\b(?:[A-Z]{{1,2}}-)?\d{{4,5}}\s+{_TOWN}"  # 10115 Berlin, 75008 Paris, F-75008 Paris, 1012 Amsterdam
    rf"|\b\d{{4}}\s?[A-Z]{{2}}\s+{_TOWN}"  # 1012 AB Amsterdam
    r"|\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b"  # UK: SW1A 1AA
    r"|\b[A-Z]{2}\s\d{5}(?:-\d{4})?\b"  # US: CA 94103
    rf"|\b\d{{4}}-\d{{3}}\s+{_TOWN}"  # PT: 1000-001 Lisboa
)

# Vehicle registration plates (current formats of these countries).
_PLATE = re.compile(
    r"\b(?:"
    r"[A-Z]{2}\d{2}\s?[A-Z]{3}"  # GB: AB12 CDE
    r"|[A-Z]{2}-\d{3}-[A-Z]{2}"  # FR: AB-123-CD
    r"|[A-ZÄÖÜ]{1,3}[ -][A-Z]{1,2}\s?\d{1,4}[EH]?"  # DE: B-AB 1234, M XY 123
    r"|[A-Z]{2}\s?\d{3}\s?[A-Z]{2}"  # IT: AB 123 CD
    r"|\d{4}\s?[BCDFGHJKLMNPRSTVWXYZ]{3}"  # ES: 1234 BCD
    r"|[A-Z]{2}-\d{2}-[A-Z]{2}|\d{2}-[A-Z]{2}-\d{2}|[A-Z]{2}-[A-Z]{2}-\d{2}|\d{2}-[A-Z]{3}-\d|[A-Z]-\d{3}-[A-Z]{2}"  # NL
    r"|[A-Z]{2}-\d{2}-[A-Z]{2}|\d{2}-\d{2}-[A-Z]{2}|\d{2}-[A-Z]{2}-\d{2}"  # PT
    r")\b"
)


def find_personal_text(lines: list[Line], values_below_labels: bool = True) -> list[Hit]:
    """Every personal span in `lines`, as (kind, line, start, end). The verifier turns
    `values_below_labels` off: once a value is covered its label stands alone, and the line
    under it is not a value."""
    hits: list[Hit] = []
    for index, line in enumerate(lines):
        hits += _line_hits(index, line.text)
    if values_below_labels:
        hits += _values_below_labels(lines)
    return _most_specific(hits)


# When spans overlap, the kind proven by a checksum or a strict shape names the token (a
# card number also parses as a phone number somewhere; an SSN looks like a phone number).
_PRIORITY = [MRZ, EMAIL, IBAN, CARD, NATIONAL_ID, BIRTH_DATE, NAME, PHONE, ADDRESS, PLATE]


def _most_specific(hits: list[Hit]) -> list[Hit]:
    kept: list[Hit] = []
    for hit in sorted(_joined(hits), key=lambda hit: (_PRIORITY.index(hit.kind), hit.line, hit.start)):
        if not any(other.line == hit.line and other.start < hit.end and hit.start < other.end for other in kept):
            kept.append(hit)
    return sorted(kept, key=lambda hit: (hit.line, hit.start))


def _joined(hits: list[Hit]) -> list[Hit]:
    """Overlapping spans of the same kind as one (a number found whole for one country and in
    part for another is masked whole)."""
    joined: list[Hit] = []
    for hit in sorted(hits, key=lambda hit: (hit.kind, hit.line, hit.start)):
        last = joined[-1] if joined else None
        if last and last.kind == hit.kind and last.line == hit.line and hit.start < last.end:
            joined[-1] = Hit(hit.kind, hit.line, last.start, max(last.end, hit.end))
        else:
            joined.append(hit)
    return joined


def _line_hits(index: int, text: str) -> list[Hit]:
    spans: list[tuple[str, int, int]] = []
    spans += [(EMAIL, m.start(), m.end()) for m in _EMAIL.finditer(text)]
    spans += _phones(text)
    spans += _checksummed(text)
    spans += _mrz(text)
    spans += _labelled_values(text)
    spans += _addresses(text)
    spans += [(PLATE, m.start(), m.end()) for m in _PLATE.finditer(text)]
    return [Hit(kind, index, start, end) for kind, start, end in spans if end > start]


def _phones(text: str) -> list[tuple[str, int, int]]:
    if sum(ch.isdigit() for ch in text) < 7:
        return []
    import phonenumbers

    spans = set()
    for region in _PHONE_REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            # Short numbers (services, extensions) are valid in some plans but name nobody.
            if sum(ch.isdigit() for ch in match.raw_string) >= MIN_PHONE_DIGITS:
                spans.add((PHONE, match.start, match.end))
    return sorted(spans)


def _checksummed(text: str) -> list[tuple[str, int, int]]:
    """Card numbers (Luhn), IBANs and national ID numbers, each confirmed by its checksum."""
    from stdnum import iban, luhn
    from stdnum.de import idnr
    from stdnum.es import dni
    from stdnum.fr import nir
    from stdnum.it import codicefiscale
    from stdnum.us import ssn

    spans = []
    upper = text.upper()
    for match in _IBAN.finditer(text):
        if iban.is_valid(match.group()):
            spans.append((IBAN, match.start(), match.end()))
    for match in _DIGIT_RUN.finditer(upper):
        candidate = match.group()
        digits = re.sub(r"\D", "", candidate)
        if 13 <= len(digits) <= 19 and candidate[0].isdigit() and luhn.is_valid(digits):
            spans.append((CARD, match.start(), match.end()))
        elif any(check.is_valid(candidate) for check in (ssn, nir, idnr)):
            spans.append((NATIONAL_ID, match.start(), match.end()))
    spans += [(NATIONAL_ID, m.start(), m.end()) for m in _NINO.finditer(text)]
    for pattern, check in ((_CODICE_FISCALE, codicefiscale), (_DNI, dni)):
        spans += [(NATIONAL_ID, m.start(), m.end()) for m in pattern.finditer(upper) if check.is_valid(m.group())]
    spans += [(NATIONAL_ID, m.start(), m.end()) for m in re.finditer(r"\b\d{3}-\d{2}-\d{4}\b", text) if ssn.is_valid(m.group())]
    return spans


def _mrz(text: str) -> list[tuple[str, int, int]]:
    compact = text.replace(" ", "").translate(_MRZ_FILLER_LOOKALIKES)
    if _MRZ.match(compact) and "<<" in compact and compact.count("<") >= MIN_MRZ_FILLERS:
        return [(MRZ, 0, len(text))]
    return []


def _labelled_values(text: str) -> list[tuple[str, int, int]]:
    """The value after a label on the same line ("Date of birth: 12.03.1985")."""
    for kind, pattern in _LABEL_PATTERNS.items():
        match = pattern.match(text)
        if match and match.end() < len(text) and _looks_like_value(text[match.end():]):
            return [(kind, match.end(), len(text))]
    return []


def _looks_like_value(rest: str) -> bool:
    return any(ch.isalnum() for ch in rest)


def _is_bare_label(text: str) -> str | None:
    """The kind of a line that holds only a label (the value is printed below it)."""
    for kind, pattern in _LABEL_PATTERNS.items():
        match = pattern.match(text)
        if match and not _looks_like_value(text[match.end():]):
            return kind
    return None


def _values_below_labels(lines: list[Line]) -> list[Hit]:
    hits = []
    for index, line in enumerate(lines):
        kind = _is_bare_label(line.text)
        if kind is None:
            continue
        below = _line_below(lines, line)
        if below is not None:
            hits.append(Hit(kind, below, 0, len(lines[below].text)))
    return hits


def _line_below(lines: list[Line], label: Line) -> int | None:
    """The nearest line starting under the label, within two label heights, overlapping it sideways."""
    x0, _, x1, y1 = label.box
    best, best_gap = None, 2.0 * max(label.height, 1)
    for index, other in enumerate(lines):
        ox0, oy0, ox1, _ = other.box
        gap = oy0 - y1
        if -label.height / 2 < gap < best_gap and ox0 < x1 and ox1 > x0 and other is not label:
            best, best_gap = index, gap
    return best


def _addresses(text: str) -> list[tuple[str, int, int]]:
    spans = []
    for pattern in (_STREET_TYPE_LAST, _STREET_TYPE_FIRST, _STREET_COMPOUND, _POSTCODE_TOWN):
        # A street without a house number is a place name ("Rue de Rivoli" on a map), not an address.
        spans += [(ADDRESS, m.start(), m.end()) for m in pattern.finditer(text) if any(ch.isdigit() for ch in m.group())]
    return spans
