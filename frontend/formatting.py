"""Numbers, money and time-zone names as a resident reads them, with Babel (CLDR data).

The Babel locale is the active Django language together with the utility's country (taken from
the utility's time zone, ``settings.GRIDCOIN_UTILITY_TZ``, through CLDR's zone territories):
in India ``hi`` becomes ``hi_IN`` and ``en`` becomes ``en_IN`` (Indian digit grouping,
12,34,567.89, and ₹); in Puerto Rico ``es`` becomes ``es_PR``. A language that names its own
region (``en-in``) keeps it; a pair CLDR does not know falls back to the language alone.
Integer ledger units go in, never floats: Wh for energy, minor units for money.
"""

from __future__ import annotations

import copy
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.dates import get_timezone_name
from babel.numbers import format_currency, get_plus_sign_symbol, parse_pattern
from django.conf import settings
from django.utils import timezone, translation

from payments.notices import minor_exponent

WH_PER_KWH = 1000
ENERGY_DECIMALS = 3


def zone_country(zone_name: str) -> str | None:
    """ISO 3166 country of a tz database zone (``Asia/Kolkata`` → ``IN``, also under its old
    name ``Asia/Calcutta``), None for a zone of no country (``UTC``)."""
    territories, aliases = get_global("zone_territories"), get_global("zone_aliases")
    country = territories.get(zone_name) or territories.get(aliases.get(zone_name, ""))
    return None if country in (None, "ZZ", "001") else country


def utility_zone() -> ZoneInfo:
    return ZoneInfo(settings.GRIDCOIN_UTILITY_TZ)


@cache
def _babel_locale(language: str, territory: str | None) -> Locale:
    language = (language or "en").replace("-", "_")
    candidates = [language] if "_" in language else []
    if territory and "_" not in language:
        candidates.append(f"{language}_{territory}")
    candidates.append(language.split("_")[0])
    for candidate in candidates:
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse("en")


def babel_locale(language: str | None = None) -> Locale:
    """The Babel locale for ``language`` (default: the active Django language) in the utility's
    country."""
    return _babel_locale(language or translation.get_language() or settings.LANGUAGE_CODE,
                         zone_country(settings.GRIDCOIN_UTILITY_TZ))


def _fixed_decimals(value: Decimal, decimals: int, locale: Locale) -> str:
    """``value`` with exactly ``decimals`` fraction digits and the locale's grouping and signs."""
    pattern = copy.copy(parse_pattern(locale.decimal_formats[None]))
    pattern.frac_prec = (decimals, decimals)
    return pattern.apply(value, locale)


def _signed(text: str, value: Decimal | int, signed: bool, locale: Locale) -> str:
    return get_plus_sign_symbol(locale) + text if signed and value > 0 else text


def format_kwh(wh: int, *, signed: bool = False, language: str | None = None) -> str:
    """Energy in Wh shown as kWh with three decimals: ``1234567891`` → ``12,34,567.891`` (en_IN)."""
    locale = babel_locale(language)
    value = Decimal(int(wh)) / WH_PER_KWH
    return _signed(_fixed_decimals(value, ENERGY_DECIMALS, locale), value, signed, locale)


def format_money(minor: int, currency: str, *, scale: int | None = None, signed: bool = False,
                 language: str | None = None) -> str:
    """Money in minor units with the currency's symbol and the locale's grouping:
    ``123456789, "INR"`` → ``₹12,34,567.89`` (en_IN); ``-1999, "USD"`` → ``-$19.99``."""
    locale = babel_locale(language)
    exponent = minor_exponent(currency) if scale is None else int(scale)
    value = Decimal(int(minor)).scaleb(-exponent)
    text = format_currency(value, currency, locale=locale, currency_digits=False,
                           format_type="standard", decimal_quantization=False,
                           format=_currency_pattern(locale, exponent))
    return _signed(text, value, signed, locale)


def _currency_pattern(locale: Locale, exponent: int):
    pattern = copy.copy(parse_pattern(locale.currency_formats["standard"]))
    pattern.frac_prec = (exponent, exponent)
    return pattern


def worth_minor(wh: int, price_minor_per_kwh: int) -> int:
    """What ``wh`` is worth at a price per kWh, in minor units (half to even)."""
    value = Decimal(int(wh)) * Decimal(int(price_minor_per_kwh)) / WH_PER_KWH
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


# --- time zones ------------------------------------------------------------------------------

def _metazone_name(zone_key: str, moment: datetime, locale: Locale, width: str) -> str | None:
    aliases = get_global("zone_aliases")
    metazones = get_global("meta_zones")
    metazone = metazones.get(zone_key) or metazones.get(aliases.get(zone_key, ""))
    if metazone is None:
        for alias, canonical in aliases.items():
            if canonical == zone_key and alias in metazones:
                metazone = metazones[alias]
                break
    if metazone is None:
        return None
    names = locale.meta_zones.get(metazone, {}).get(width, {})
    variant = "daylight" if moment.dst() else "standard"
    return names.get(variant) or (names.get("generic") if not moment.dst() else None)


def zone_label(zone: tzinfo | None = None, *, at: datetime | None = None, language: str | None = None) -> str:
    """The zone's name and abbreviation at ``at`` (default now): ``India Standard Time (IST)``,
    ``Eastern Daylight Time (EDT)``; the name in the active language."""
    zone = zone or utility_zone()
    moment = (at or timezone.now()).astimezone(zone)
    locale = babel_locale(language)
    key = getattr(zone, "key", None) or str(zone)
    name = _metazone_name(key, moment, locale, "long") or get_timezone_name(moment, locale=locale)
    abbreviation = zone_abbreviation(zone, at=moment)
    return f"{name} ({abbreviation})" if abbreviation not in name else name


def zone_abbreviation(zone: tzinfo | None = None, *, at: datetime | None = None) -> str:
    zone = zone or utility_zone()
    moment = (at or timezone.now()).astimezone(zone)
    abbreviation = moment.tzname() or ""
    if not abbreviation or abbreviation[0] in "+-":  # the tz database has no letters for it
        text = moment.strftime("UTC%z")
        abbreviation = f"{text[:-2]}:{text[-2:]}"
    return abbreviation
