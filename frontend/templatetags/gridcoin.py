from django import template

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
