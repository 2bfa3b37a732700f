from django import template
from django.utils.safestring import mark_safe

from ledger.units import format_amount

register = template.Library()


@register.filter
def amount(value: int, scale: int) -> str:
    """Integer ledger units as a decimal string: ``5000|amount:3`` → ``5.000``."""
    return format_amount(int(value), int(scale))


@register.filter
def signed_amount(value: int, scale: int) -> str:
    text = format_amount(int(value), int(scale))
    return text if value < 0 else f"+{text}"


@register.filter
def short_hash(value: str, length: int = 12) -> str:
    return (value or "")[: int(length)]


# --- locale formatting (Babel) and the utility's time zone ---
# Amounts in the active language's locale in the utility's country (frontend.formatting): Wh as
# kWh with three decimals, money in minor units with its currency's symbol and decimals.

@register.filter
def kwh(value: int | None, signed: str = "") -> str:
    """``1234567891|kwh`` → ``12,34,567.891`` (en_IN); ``|kwh:"signed"`` adds ``+`` to gains."""
    from frontend.formatting import format_kwh

    return "" if value is None else format_kwh(int(value), signed=bool(signed))


@register.filter
def money(value: int | None, currency: str) -> str:
    """Minor units of ``currency``: ``123456789|money:"INR"`` → ``₹12,34,567.89`` (en_IN)."""
    from frontend.formatting import format_money

    return "" if value is None else format_money(int(value), str(currency))


@register.filter
def signed_money(value: int | None, currency: str) -> str:
    from frontend.formatting import format_money

    return "" if value is None else format_money(int(value), str(currency), signed=True)


def _retail_price(context):
    """Today's retail price, looked up once per rendering."""
    from wallet.selectors import retail_price_now

    cache = context.render_context
    if "gridcoin_retail_price" not in cache:
        cache["gridcoin_retail_price"] = retail_price_now()
    return cache["gridcoin_retail_price"]


@register.simple_tag(takes_context=True)
def worth(context, wh: int | None) -> str:
    """What ``wh`` is worth at the retail price in force now (``₹150.00``); empty without a
    price."""
    from frontend.formatting import format_money, worth_minor

    schedule = _retail_price(context)
    if wh is None or schedule is None:
        return ""
    return format_money(worth_minor(abs(int(wh)), schedule.current), schedule.currency)


@register.simple_tag
def utility_tz() -> str:
    """The utility's time zone as residents read it: ``India Standard Time (IST)``."""
    from frontend.formatting import zone_label

    return zone_label()


@register.simple_tag
def tz_abbr() -> str:
    from frontend.formatting import zone_abbreviation

    return zone_abbreviation()


@register.filter
def absolute(value: int | None) -> int | None:
    return None if value is None else abs(int(value))


@register.filter
def isotime(value: str | None):
    """An ISO 8601 time from a ledger result as an aware datetime (rendered in the site's zone)."""
    from datetime import datetime

    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


@register.filter
def account_name(key: str) -> str:
    """A ledger account key as the public would name it (``household:hh-alice`` → "Alice's
    household"); keys stay on the explorer."""
    from frontend.wording import Namer

    return Namer(None, []).account(str(key))


@register.simple_tag
def utility_tz_name() -> str:
    """The utility's IANA zone name (``Asia/Kolkata``) for scripts that format times."""
    from django.conf import settings

    return settings.GRIDCOIN_UTILITY_TZ


@register.simple_tag
def number_locale() -> str:
    """The Babel locale of the page as a BCP 47 tag (``en-IN``) for scripts' Intl formats."""
    from frontend.formatting import babel_locale

    locale = babel_locale()
    return "-".join(part for part in (locale.language, locale.territory) if part)


@register.filter
def organisation_name(msp_id: str) -> str:
    """An organisation's name from its ledger id (``gridco-utility`` → "GridCo Utility")."""
    from frontend.wording import Namer

    return Namer(None, []).organisation_name(str(msp_id))


# --- navigation ---------------------------------------------------------------------------------

# Which tab of the tab bar (or the top bar's Explorer) holds each page, by URL name.
NAV_SECTIONS = {
    "wallet": {"frontend:wallet", "frontend:receipt"},
    "devices": {"frontend:devices", "frontend:device", "frontend:stickers", "charity:group", "charity:group-new"},
    "prices": {"frontend:prices"},
    "scan": {"frontend:scan"},
    "simulate": {"frontend:producer-simulator", "frontend:consumer-simulator"},
    "explorer": {"frontend:explorer", "frontend:block", "frontend:transaction"},
    "campaigns": {"charity:campaigns", "charity:campaign", "charity:campaign-new", "charity:campaign-edit",
                  "charity:my-donations"},
    "billing": {"billing:index", "billing:grid", "billing:distributor", "billing:household", "billing:tariffs",
                "billing:simulate", "billing:simulation-run"},
}


@register.simple_tag(takes_context=True)
def current_tab(context, section: str) -> str:
    """`` aria-current="page"`` on the link of the section the current page belongs to, so the
    tab is marked for screen readers and styled from the same attribute."""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    if match is not None and match.view_name in NAV_SECTIONS.get(section, ()):
        return mark_safe(' aria-current="page"')
    return ""
