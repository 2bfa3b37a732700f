"""What a notification says, rendered when it is shown or sent (so in the reader's language),
from the facts stored with it. Energy is shown in kWh, never in Wh."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from .models import Kind


def kwh_text(wh: Any) -> str:
    return f"{Decimal(int(wh)) / 1000:.3f}" if isinstance(wh, int) else "?"


def title(kind: str, data: dict[str, Any]) -> str:
    name = data.get("device_name") or data.get("device") or ""
    if kind == Kind.DEVICE_LOW:
        return _("%(device)s is running low") % {"device": name}
    if kind == Kind.DEVICE_OFF:
        return _("%(device)s switched off") % {"device": name}
    if kind == Kind.PAYMENT_CREDITED:
        return _("Your payment has landed")
    return _("GridCoin")


def body(kind: str, data: dict[str, Any]) -> str:
    if kind == Kind.DEVICE_LOW:
        return _("Only %(kwh)s kWh left. Add coins to keep it on.") % {"kwh": kwh_text(data.get("spendable_wh"))}
    if kind == Kind.DEVICE_OFF:
        return _("It has no coins left to use now. Add coins to switch it back on.")
    if kind == Kind.PAYMENT_CREDITED:
        return _("%(kwh)s kWh were added to your wallet.") % {"kwh": kwh_text(data.get("wh"))}
    return ""
