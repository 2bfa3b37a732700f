"""Reversals of seller chaincode sales: a refund, a lost dispute or a bank's return takes back
the energy the reversed money bought at the sale's price (energy_math.reversal_of), first from
the buyer's account; what the buyer already spent or gave away becomes the buyer's debt to the
seller (``debt:<buyer>@<seller>``, asset k-owed), paid first out of the buyer's next purchase.

World state ``reversals/<payment id>`` (per seller chaincode) keeps the sale's facts as the first
reversal gave them, the money and energy reversed so far and the reversal ids applied: a reversal
id applies once, and the reversals of a sale never exceed it. The bank (the fiat oracle) invokes,
passing the sale's facts from the sale's own ledger result."""

from __future__ import annotations

from typing import Any

from ..contracts import Context, ContractError
from .energy import (
    DEBT,
    ENERGY,
    UTILITY_SHARDS,
    debt_account,
    first_shard,
    household_account,
    producer_account,
    retail,
    shard_index,
    utility_account,
    wholesale,
)
from .energy_math import Reversal, reversal_of

REVERSAL_KINDS = ("refund", "dispute", "return")


def _apply(ctx: Context, held_of, give_back, *, buyer: str, seller: str) -> dict[str, Any]:
    """The shared body: validate, compute, move, remember. ``held_of()`` is what the buyer
    holds; ``give_back(wh)`` moves that much energy from the buyer back to the seller."""
    payment_id, reversal_id = ctx.arg_str("payment_id"), ctx.arg_str("reversal_id")
    kind, currency = ctx.arg_str("kind", max_length=10), ctx.arg_str("currency", max_length=10)
    amount = ctx.arg_int("amount")
    sale_amount, sale_wh = ctx.arg_int("sale_amount"), ctx.arg_int("sale_wh", positive=False)
    sale_price = ctx.arg_int("sale_price")
    sale = {"amount": sale_amount, "wh": sale_wh, "price": sale_price, "currency": currency}
    if kind not in REVERSAL_KINDS:
        raise ContractError(f"kind must be one of {', '.join(REVERSAL_KINDS)}")
    key = f"reversals/{payment_id}"
    record = ctx.get_state(key) or {"sale": sale, "amount": 0, "wh": 0, "ids": []}
    if record["sale"] != sale:
        raise ContractError(f"payment {payment_id} was reversed before as a sale of {record['sale']}, not {sale}")
    if reversal_id in record["ids"]:
        raise ContractError(f"reversal {reversal_id} of payment {payment_id} was applied before")
    try:
        reversal: Reversal = reversal_of(sale_wh=sale_wh, price_per_kwh=sale_price, sale_amount=sale_amount,
                                         reversed_before=record["amount"], amount=amount, held=held_of())
    except ValueError as exc:
        raise ContractError(f"payment {payment_id}: {exc}") from None
    if reversal.returned:
        give_back(reversal.returned)
    if reversal.owed:
        ctx.mint(debt_account(buyer, seller), reversal.owed, DEBT)
    record = {"sale": sale, "amount": record["amount"] + amount, "wh": record["wh"] + reversal.wh,
              "ids": [*record["ids"], reversal_id]}
    ctx.put_state(key, record)
    result = {"payment_id": payment_id, "reversal_id": reversal_id, "kind": kind, "amount": amount,
              "currency": currency, "wh": reversal.wh, "taken_back": reversal.returned, "owed": reversal.owed,
              "reversed_amount": record["amount"], "reversed_wh": record["wh"], "debtor": buyer, "creditor": seller}
    ctx.emit("reversed", result)
    return result


@retail.function("reverse", orgs={"bank"})
def retail_reverse(ctx: Context) -> dict:
    """Bank reports money given back to a household (payer) for a retail sale by the utility
    (payee) → k household → utility, the rest as the household's debt."""
    household, utility = ctx.arg_str("payer", max_length=64), ctx.arg_str("payee", max_length=64)
    account = household_account(household)
    destination = first_shard(utility, ctx.arg_str("payment_id"))
    return _apply(ctx, lambda: ctx.balance(account, ENERGY),
                  lambda wh: ctx.transfer(account, destination, wh, ENERGY), buyer=household, seller=utility)


@wholesale.function("reverse", orgs={"bank"})
def wholesale_reverse(ctx: Context) -> dict:
    """Bank reports money given back to the utility (payer) for a wholesale purchase from a
    producer (payee) → k utility → producer, the rest as the utility's debt to the producer."""
    utility, producer = ctx.arg_str("payer", max_length=64), ctx.arg_str("payee", max_length=64)
    start = shard_index(ctx.arg_str("payment_id"))
    shards = [utility_account(utility, (start + n) % UTILITY_SHARDS) for n in range(UTILITY_SHARDS)]

    def give_back(wh: int) -> None:
        left = wh
        for shard in shards:
            take = min(ctx.balance(shard, ENERGY), left)
            if take:
                ctx.transfer(shard, producer_account(producer), take, ENERGY)
                left -= take
            if not left:
                return

    return _apply(ctx, lambda: sum(ctx.balance(s, ENERGY) for s in shards), give_back,
                  buyer=utility, seller=producer)
