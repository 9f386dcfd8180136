"""Which recognised text is personal: the rules alone, on lines as OCR returns them (no pixels)."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from stdnum import luhn

from text_samples import LOCALES, _faker, iban, phone_number
from veil.clean.text import pii
from veil.clean.text.ocr import Line


def lines_of(*texts: str) -> list[Line]:
    return [Line(text, 0.99, (10, 40 * i, 10 + 8 * len(text), 40 * i + 20), ()) for i, text in enumerate(texts)]


def kinds_in(text: str) -> list[str]:
    return [hit.kind for hit in pii.find_personal_text(lines_of(text))]


def spans_in(text: str) -> list[str]:
    return [text[hit.start : hit.end] for hit in pii.find_personal_text(lines_of(text))]


@pytest.mark.parametrize("locale", LOCALES)
def test_faker_values_of_every_locale_are_found_with_their_kind(locale):
    fake, rng = _faker(locale, 7), random.Random(7)
    email, phone, account = fake.email(), phone_number(locale, rng), iban(fake)
    line = f"Contact {email} or {phone}, account {account} thanks"
    assert spans_in(line) == [email, phone, account]
    assert kinds_in(line) == [pii.EMAIL, pii.PHONE, pii.IBAN]


def test_a_card_number_needs_its_luhn_digit():
    valid = "4539 1488 0343 6467"
    assert luhn.is_valid(valid.replace(" ", ""))
    wrong = valid[:-1] + str((int(valid[-1]) + 1) % 10)
    assert kinds_in(f"Card {valid} expires") == [pii.CARD]
    assert pii.CARD not in kinds_in(f"Card {wrong} expires")


def test_an_iban_needs_its_checksum():
    assert kinds_in("IBAN DE89 3704 0044 0532 0130 00") == [pii.IBAN]
    assert pii.IBAN not in kinds_in("IBAN DE88 3704 0044 0532 0130 00")


@pytest.mark.parametrize(
    "text, identifier",
    [
        ("SSN 536-22-1234", "536-22-1234"),  # US, area/group/serial rules
        ("NI number AB 12 34 56 C", "AB 12 34 56 C"),  # UK, format (no checksum exists)
        ("sécu 1 85 05 78 006 084 91", "1 85 05 78 006 084 91"),  # French INSEE with its key
        ("Steuer-ID 86095742719", "86095742719"),  # German tax id, check digit
        ("DNI 12345678Z", "12345678Z"),  # Spanish DNI letter
        ("CF RSSMRA85T10A562S", "RSSMRA85T10A562S"),  # Italian codice fiscale
    ],
)
def test_national_id_numbers_are_found_by_their_checksums(text, identifier):
    assert identifier in spans_in(text)


def test_a_number_of_the_same_shape_with_a_wrong_check_is_not_an_id():
    # (an 11-digit run may still be a valid phone number somewhere: then it is masked as one)
    assert pii.NATIONAL_ID not in kinds_in("reference 86095742718 attached")
    assert kinds_in("code 12345678A") == []


def test_phone_numbers_in_national_and_international_formats():
    for region in ("GB", "FR", "DE", "ES", "IT", "NL", "PT", "US"):
        number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        for style in (phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.NATIONAL):
            written = phonenumbers.format_number(number, style)
            assert spans_in(f"Ring {written} now") == [written], (region, written)


def test_mrz_lines_both_and_in_pieces():
    assert kinds_in("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<") == [pii.MRZ]
    assert kinds_in("L898902C36UTO7408122F1204159ZE184226B<<<<<10") == [pii.MRZ]
    assert kinds_in("ΛΛΛΛΛΛΛΛΛΛΛΛ") == [pii.MRZ]  # fillers read by the recogniser as look-alikes
    assert kinds_in("THE QUICK BROWN FOX") == []


def test_labelled_values_on_the_same_line_and_below():
    assert spans_in("Date of birth: 12.03.1985") == ["12.03.1985"]
    assert spans_in("Geburtsdatum 03.12.1990") == ["03.12.1990"]
    below = pii.find_personal_text(lines_of("Nom", "DUPONT", "Prénoms", "JEAN PIERRE"))
    assert [(hit.kind, hit.line) for hit in below] == [(pii.NAME, 1), (pii.NAME, 3)]


@pytest.mark.parametrize(
    "address",
    ["221B Baker Street", "12 rue de la Paix", "Hauptstraße 5", "Calle Mayor 12", "Via Roma 12", "Kerkstraat 14", "75002 Paris", "SW1A 2AA"],
)
def test_street_addresses_and_postcodes_in_context(address):
    assert pii.ADDRESS in kinds_in(f"Send it to {address} please")


@pytest.mark.parametrize("number", ["AB12 CDE", "GH-472-KL", "B-MW 2471", "4821 BCD", "EX 418 ZT"])
def test_number_plates(number):
    assert kinds_in(number) == [pii.PLATE]


def test_ordinary_sentences_in_every_language_are_left_alone():
    for locale in LOCALES:
        fake = _faker(locale, 3)
        for _ in range(30):
            sentence = fake.sentence(nb_words=10)
            assert kinds_in(sentence) == [], (locale, sentence)
    assert kinds_in("Meeting at 10:30 on 12 May, room 204, agenda items 1-7") == []
    assert kinds_in("Place your order by Friday") == []
