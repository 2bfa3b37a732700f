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


# --- reversals (refunds, lost disputes, bank returns) and the debt they can leave ------------

def refunded_wh(*, refunded: int, sale_wh: int, price_per_kwh: int) -> int:
    """The Wh that ``refunded`` minor units of a sale bought at its price, floored like a
    purchase and never more than the sale delivered. Cumulative: a reversal takes back
    ``refunded_wh(before + now) - refunded_wh(before)``, so the steps of any sequence of
    partial refunds add up to at most the sale, and a full refund takes back exactly what the
    payment itself bought (energy bought with older credit stays with the buyer)."""
    if price_per_kwh <= 0:
        raise ValueError("price must be positive")
    if refunded < 0 or sale_wh < 0:
        raise ValueError("amounts cannot be negative")
    return min(sale_wh, refunded * WH_PER_KWH // price_per_kwh)


@dataclass(frozen=True)
class Reversal:
    wh: int  # energy the reversal takes back
    returned: int  # taken from the buyer's account
    owed: int  # what the buyer had already spent or given away: their new debt


def reversal_of(*, sale_wh: int, price_per_kwh: int, sale_amount: int, reversed_before: int, amount: int,
                held: int) -> Reversal:
    """Reverse ``amount`` more minor units of a sale of which ``reversed_before`` were reversed
    already; the buyer holds ``held`` Wh. Raises ValueError if the reversals would exceed the
    sale's amount."""
    if amount <= 0:
        raise ValueError("a reversal must be positive")
    if reversed_before < 0 or reversed_before + amount > sale_amount:
        raise ValueError(f"reversals would total {reversed_before + amount}, more than the sale's {sale_amount}")
    wh = (refunded_wh(refunded=reversed_before + amount, sale_wh=sale_wh, price_per_kwh=price_per_kwh)
          - refunded_wh(refunded=reversed_before, sale_wh=sale_wh, price_per_kwh=price_per_kwh))
    returned = min(wh, max(held, 0))
    return Reversal(wh=wh, returned=returned, owed=wh - returned)


def debt_repayment(*, wh: int, debt: int) -> tuple[int, int]:
    """A purchase of ``wh`` by a buyer owing ``debt`` Wh: (repaid, delivered). The debt is
    paid first; the seller keeps the repaid energy and delivers the rest."""
    repaid = min(wh, max(debt, 0))
    return repaid, wh - repaid
