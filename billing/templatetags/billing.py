"""Billing figures as the reader reads them (Babel, the active language): hertz, rates."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_decimal
from django import template
from django.urls import reverse

from frontend.formatting import babel_locale, format_money

register = template.Library()


@register.filter
def hz(centi: int | None) -> str:
    """Centi-hertz as hertz with two decimals: 4997 → 49.97."""
    if centi is None:
        return "—"
    return format_decimal(Decimal(int(centi)).scaleb(-2), format="#,##0.00", locale=babel_locale())


@register.filter
def hz_unit(centi: int | None) -> str:
    """With the unit (an SI symbol, the same in every language): 4997 → 49.97 Hz."""
    return "—" if centi is None else f"{hz(centi)}\N{NO-BREAK SPACE}Hz"


@register.filter
def rate(centipaise: int | None) -> str:
    """A rate in hundredths of a paisa per kWh as rupees per kWh: 17800 → ₹1.7800."""
    if centipaise is None:
        return "—"
    return format_money(int(centipaise), "INR", scale=4)


@register.simple_tag(takes_context=True)
def billing_home(context) -> str:
    """The signed-in user's billing page, or "" when they have no billing role."""
    from billing import selectors

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    cached = getattr(request, "_billing_home", None)
    if cached is None:
        name = selectors.home_for(user)
        cached = request._billing_home = reverse(name) if name else ""
    return cached
