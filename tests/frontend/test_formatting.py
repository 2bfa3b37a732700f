"""Numbers, money and time-zone names per locale (Babel): the active language in the utility's
country. Pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import translation

from frontend.formatting import babel_locale, format_kwh, format_money, worth_minor, zone_country, zone_label

INDIA, PUERTO_RICO = "Asia/Kolkata", "America/Puerto_Rico"


@pytest.fixture
def utility_in(settings):
    def place(zone: str) -> None:
        settings.GRIDCOIN_UTILITY_TZ = zone
    return place


@pytest.mark.parametrize("zone,language,locale", [
    (INDIA, "hi", "hi_IN"), (INDIA, "en", "en_IN"), (INDIA, "en-in", "en_IN"),
    (PUERTO_RICO, "es", "es_PR"), (PUERTO_RICO, "en", "en_PR"),
    ("Europe/Berlin", "en", "en_DE"), ("Europe/Berlin", "hi", "hi"),  # no hi_DE in CLDR: the language
    (INDIA, "es", "es"), ("UTC", "en", "en"), ("UTC", "hi", "hi"),
])
def test_the_locale_is_the_language_in_the_utilitys_country(utility_in, zone, language, locale):
    utility_in(zone)
    assert str(babel_locale(language)) == locale


def test_zone_countries():
    assert zone_country(INDIA) == "IN" and zone_country(PUERTO_RICO) == "PR"
    assert zone_country("America/New_York") == "US" and zone_country("Nowhere/Atlantis") is None
    assert zone_country("Asia/Calcutta") == "IN" and zone_country("UTC") is None


@pytest.mark.parametrize("zone,language,expected", [
    (INDIA, "hi", "12,34,567.891"),
    (INDIA, "en-in", "12,34,567.891"),
    (INDIA, "en", "12,34,567.891"),
    (PUERTO_RICO, "es", "1,234,567.891"),
    (PUERTO_RICO, "en", "1,234,567.891"),
    (INDIA, "es", "1.234.567,891"),
])
def test_kwh_per_locale(utility_in, zone, language, expected):
    utility_in(zone)
    assert format_kwh(1_234_567_891, language=language) == expected  # Wh → 1234567.891 kWh
    assert format_kwh(-1_234_567_891, language=language) == "-" + expected


def test_kwh_sign_and_zero(utility_in):
    utility_in(INDIA)
    assert format_kwh(0, language="en") == "0.000"
    assert format_kwh(1500, signed=True, language="en") == "+1.500"
    assert format_kwh(-1500, signed=True, language="en") == "-1.500"


@pytest.mark.parametrize("zone,language,minor,currency,expected", [
    (INDIA, "hi", 123_456_789, "INR", "₹12,34,567.89"),
    (INDIA, "en-in", 123_456_789, "INR", "₹12,34,567.89"),
    (INDIA, "en", -123_456, "INR", "-₹1,234.56"),
    (PUERTO_RICO, "es", 123_456_789, "USD", "$1,234,567.89"),
    (PUERTO_RICO, "es", -1999, "USD", "-$19.99"),
    (PUERTO_RICO, "en", 5, "USD", "$0.05"),
    (INDIA, "en", 1500, "JPY", "JP¥1,500"),  # no minor unit
    (INDIA, "en", 1234, "KWD", "KWD1.234"),  # three decimals
])
def test_money_per_locale(utility_in, zone, language, minor, currency, expected):
    utility_in(zone)
    assert format_money(minor, currency, language=language).replace("\xa0", " ") == expected


def test_signed_money_and_the_active_language(utility_in):
    utility_in(INDIA)
    assert format_money(1, "INR", signed=True, language="en") == "+₹0.01"
    with translation.override("hi"):
        assert format_money(123_456_789, "INR") == "₹12,34,567.89"
        assert format_kwh(1_234_567_891) == "12,34,567.891"


def test_worth_rounds_half_to_even():
    assert worth_minor(5000, 800) == 4000  # 5 kWh at ₹8.00 = ₹40.00
    assert worth_minor(1, 500) == 0 and worth_minor(3, 500) == 2  # 1.5 paise → 2, 0.5 → 0
    assert worth_minor(1234567891, 850) == 1049382707


@pytest.mark.parametrize("zone,at,language,label", [
    (INDIA, datetime(2026, 12, 6, tzinfo=UTC), "en", "India Standard Time (IST)"),
    (INDIA, datetime(2026, 12, 6, tzinfo=UTC), "hi", "भारतीय मानक समय (IST)"),
    (PUERTO_RICO, datetime(2026, 7, 1, tzinfo=UTC), "en", "Atlantic Standard Time (AST)"),
    (PUERTO_RICO, datetime(2026, 7, 1, tzinfo=UTC), "es", "hora estándar del Atlántico (AST)"),
    ("America/New_York", datetime(2026, 1, 10, tzinfo=UTC), "en", "Eastern Standard Time (EST)"),
    ("America/New_York", datetime(2026, 7, 10, tzinfo=UTC), "en", "Eastern Daylight Time (EDT)"),
    ("Europe/Berlin", datetime(2026, 7, 10, tzinfo=UTC), "en", "Central European Summer Time (CEST)"),
])
def test_zone_labels(utility_in, zone, at, language, label):
    utility_in(zone)
    assert zone_label(at=at, language=language) == label
