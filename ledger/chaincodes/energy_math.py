"""Pure arithmetic of the energy economy: prices, fiat → Wh, funded windows, relay state.
No ORM, no I/O: the contracts call these and tests exercise them directly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

WH_PER_KWH = 1000


def price_at(schedule: list[dict], when: datetime) -> int | None:
    """The price (minor units per kWh) in force at ``when``: the latest entry whose
    ``from`` is not after it. ``schedule`` is [{"from": iso, "price": int}], any order."""
    best: tuple[datetime, int] | None = None
    for entry in schedule:
        start = datetime.fromisoformat(entry["from"])
        if start <= when and (best is None or start >= best[0]):
            best = (start, entry["price"])
    return None if best is None else best[1]


@dataclass(frozen=True)
class Sale:
    wh: int  # energy bought, floored to whole Wh
    charged: int  # fiat minor units that pay for it (rounded up to a whole minor unit)
    credit: int  # fiat minor units kept as the payer's credit for the next purchase


def fiat_to_wh(*, amount: int, credit: int, price_per_kwh: int) -> Sale:
    """Convert a payment plus the payer's standing credit into whole Wh.

    Wh = floor((amount + credit) × 1000 / price). The energy is charged at its exact cost
    rounded up to the next whole minor unit (money has no smaller unit), and everything
    else stays with the payer as credit: amount + credit = charged + new credit, always.
    """
    if price_per_kwh <= 0:
        raise ValueError("price must be positive")
    total = amount + credit
    wh = total * WH_PER_KWH // price_per_kwh
    charged = -(-wh * price_per_kwh // WH_PER_KWH)
    return Sale(wh=wh, charged=charged, credit=total - charged)


def window_active(window: dict, now: datetime) -> bool:
    return datetime.fromisoformat(window["start"]) <= now < datetime.fromisoformat(window["end"])


def reserved(windows: list[dict]) -> int:
    """Coins on the device that belong to funded windows (not spendable outside them)."""
    return sum(w["remaining"] for w in windows)


def spendable(balance: int, windows: list[dict], now: datetime) -> int:
    free = balance - reserved(windows)
    return free + sum(w["remaining"] for w in windows if window_active(w, now))


def relay_on(balance: int, windows: list[dict], now: datetime) -> bool:
    """ON while the device has coins it may burn now: unrestricted coins, or coins of a window
    it is inside."""
    return spendable(balance, windows, now) > 0


def allocate_burn(amount: int, balance: int, windows: list[dict], now: datetime) -> tuple[int, list[dict]]:
    """Burn up to ``amount``: first from active windows (earliest end first), then from
    unrestricted coins. Returns (burned, updated windows)."""
    updated = [dict(w) for w in windows]
    left = amount
    for w in sorted((w for w in updated if window_active(w, now)), key=lambda w: w["end"]):
        take = min(left, w["remaining"])
        w["remaining"] -= take
        left -= take
    free = balance - reserved(windows)
    take = min(left, max(free, 0))
    left -= take
    return amount - left, updated


def due_for_settlement(windows: list[dict], now: datetime) -> tuple[list[dict], list[dict]]:
    """Split windows into (ended, still open)."""
    ended = [w for w in windows if datetime.fromisoformat(w["end"]) <= now]
    return ended, [w for w in windows if datetime.fromisoformat(w["end"]) > now]
