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


# --- navigation ---------------------------------------------------------------------------------

# Which tab of the tab bar (or the top bar's Explorer) holds each page, by URL name.
NAV_SECTIONS = {
    "wallet": {"frontend:wallet", "frontend:receipt"},
    "devices": {"frontend:devices", "frontend:device", "frontend:stickers"},
    "prices": {"frontend:prices"},
    "scan": {"frontend:scan"},
    "simulate": {"frontend:producer-simulator", "frontend:consumer-simulator"},
    "explorer": {"frontend:explorer", "frontend:block", "frontend:transaction"},
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
