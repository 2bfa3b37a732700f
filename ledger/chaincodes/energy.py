"""The seed's energy economy (seed 002): generator, wholesale-seller, retail-seller, resident,
consumer, and the utility's price list. Every movement of k or fiat credit happens here.

The account keys and world-state keys it uses are named in ``ledger.keys`` (shared with apps).
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta

from ..contracts import Context, Contract, ContractError, registry
from ..keys import (
    DEBT,
    DEVICES_NAMESPACE,
    ENERGY,
    GENERATOR_NAMESPACE,
    PRICE_KINDS,
    PRICING_NAMESPACE,
    UTILITY_SHARDS,
    account_key_parts,
    campaign_key,
    credit_account,
    debt_account,
    device_account,
    household_account,
    price_key,
    producer_account,
    registers_key,
    utility_account,
    windows_key,
)
from .energy_math import (
    allocate_burn,
    debt_repayment,
    due_for_settlement,
    fiat_to_wh,
    price_at,
    relay_on,
    reserved,
)

MAX_WINDOW = timedelta(days=7)


def _owed(ctx: Context, debtor: str, creditor: str) -> int:
    """The debtor's debt (Wh) to the creditor: 0 while no reversal ever opened the account.
    The account must have been offered to ``lock_present`` by the caller."""
    key = debt_account(debtor, creditor)
    return ctx.balance(key, DEBT) if ctx.holds(key, DEBT) else 0


def when_arg(ctx: Context, name: str) -> datetime:
    moment = when_arg_optional(ctx, name, required=True)
    assert moment is not None  # a required argument is present or refused
    return moment


def when_arg_optional(ctx: Context, name: str, *, required: bool = False) -> datetime | None:
    text = ctx.arg_str(name, required=required, max_length=40)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ContractError(f"argument {name!r} must be an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise ContractError(f"argument {name!r} must carry a timezone")
    return moment


# --- prices --------------------------------------------------------------------------------------

pricing = registry.register(Contract("pricing", "The utility's wholesale and retail prices per kWh.",
                                      namespace=PRICING_NAMESPACE))


@pricing.function("set", orgs={"utility"})
def set_price(ctx: Context) -> dict:
    """Add a price (minor units per kWh) for a currency, in force from ``effective_from``."""
    kind, currency = ctx.arg_str("kind"), ctx.arg_str("currency", max_length=10)
    price = ctx.arg_int("price")
    effective = when_arg(ctx, "effective_from")
    if kind not in PRICE_KINDS:
        raise ContractError(f"kind must be one of {', '.join(PRICE_KINDS)}")
    key = price_key(ctx.invoker.msp_id, kind, currency)
    schedule = [e for e in (ctx.get_state(key) or []) if e["from"] != effective.isoformat()]
    schedule.append({"from": effective.isoformat(), "price": price})
    schedule.sort(key=lambda e: datetime.fromisoformat(e["from"]))
    ctx.put_state(key, schedule)
    return {"kind": kind, "currency": currency, "price": price, "effective_from": effective.isoformat()}


def price_in_force(ctx: Context, utility: str, kind: str, currency: str, when: datetime) -> int:
    schedule = ctx.get_state(price_key(utility, kind, currency), namespace=PRICING_NAMESPACE) or []
    price = price_at(schedule, when)
    if price is None:
        raise ContractError(f"{utility} has no {kind} price in {currency} in force at {when.isoformat()}")
    return price


def _payment(ctx: Context) -> tuple[str, str, int, str, datetime, str]:
    return (ctx.arg_str("payer", max_length=64), ctx.arg_str("payee", max_length=64), ctx.arg_int("amount"),
            ctx.arg_str("currency", max_length=10), when_arg(ctx, "paid_at"), ctx.arg_str("event_id"))


def settle_credit(ctx: Context, key: str, currency: str, old: int, new: int) -> None:
    if new > old:
        ctx.mint(key, new - old, currency)
    elif new < old:
        ctx.burn(key, old - new, currency)


def shard_index(spread_key: str) -> int:
    return zlib.crc32(spread_key.encode()) % UTILITY_SHARDS


def first_shard(utility: str, spread_key: str) -> str:
    return utility_account(utility, shard_index(spread_key))


def take_from_utility(ctx: Context, utility: str, wh: int, spread_key: str, destination: str) -> None:
    """Debit ``wh`` from the utility's shards, starting at one picked by ``spread_key`` so
    concurrent sales lock different rows; several shards are combined when one is short."""
    start = shard_index(spread_key)
    left = wh
    available = 0
    for n in range(UTILITY_SHARDS):
        shard = utility_account(utility, (start + n) % UTILITY_SHARDS)
        balance = ctx.balance(shard, ENERGY)
        available += balance
        take = min(balance, left)
        if take:
            ctx.transfer(shard, destination, take, ENERGY)
            left -= take
        if not left:
            return
    raise ContractError(f"the utility {utility} cannot cover {wh} Wh: it holds {available} Wh")


def _meter_touches(account_of):
    """What a meter's report reads: its account, issuance, its registers (and windows)."""
    def touches(args: dict, invoker) -> tuple[list[tuple[str, str]], list[str]]:
        name = invoker.identity_name
        return ([(account_of(invoker), ENERGY), ("issuance", ENERGY)], [registers_key(name), windows_key(name)])

    return touches


# --- generator: producers mint ---------------------------------------------------------------

generator = registry.register(Contract("generator", "A producer's meter mints one k per kWh produced.",
                                        namespace=GENERATOR_NAMESPACE))


@generator.function(orgs={"producer"}, touches=_meter_touches(lambda invoker: producer_account(invoker.msp_id)))
def mint(ctx: Context) -> dict:
    """The producer's own meter reports produced energy (Wh, or a cumulative export register)
    → k minted to the producer."""
    meter = ctx.require_device()
    wh, reading = _metered(ctx, meter, "export_wh")
    account = producer_account(ctx.invoker.msp_id)
    if wh:
        ctx.mint(account, wh, ENERGY)
    result = {"meter": meter, "account": account, "wh": wh, "counter": reading["counter"] if reading else None}
    ctx.emit("minted", result)
    return result


# --- wholesale and retail: the bank is the fiat oracle ----------------------------------------

wholesale = registry.register(Contract("wholesale-seller", "The utility buys k from a producer for fiat."))


@wholesale.function("sell", orgs={"bank"})
def wholesale_sell(ctx: Context) -> dict:
    """Bank reports: utility (payer) paid producer (payee) ``amount`` → k producer → utility."""
    utility, producer, amount, currency, paid_at, event_id = _payment(ctx)
    price = price_in_force(ctx, utility, "wholesale", currency, paid_at)
    credit_key = credit_account(utility, producer)
    source = producer_account(producer)
    ctx.lock_present((credit_key, currency), (source, ENERGY), (debt_account(utility, producer), DEBT))
    credit = ctx.balance(credit_key, currency)
    sale = fiat_to_wh(amount=amount, credit=credit, price_per_kwh=price)
    # A debt left by a reversal is paid first: the producer keeps that energy.
    repaid, delivered = debt_repayment(wh=sale.wh, debt=_owed(ctx, utility, producer))
    held = ctx.balance(source, ENERGY)
    if delivered > held:
        raise ContractError(f"producer {producer} cannot cover {delivered} Wh: it holds {held} Wh")
    if repaid:
        ctx.burn(debt_account(utility, producer), repaid, DEBT)
    # Spread the purchase evenly over the utility's shards.
    share, extra = divmod(delivered, UTILITY_SHARDS)
    for n in range(UTILITY_SHARDS):
        part = share + (1 if n < extra else 0)
        if part:
            ctx.transfer(source, utility_account(utility, n), part, ENERGY)
    settle_credit(ctx, credit_key, currency, credit, sale.credit)
    result = {"event_id": event_id, "wh": sale.wh, "price": price, "charged": sale.charged, "credit": sale.credit,
              "currency": currency}
    if repaid:
        result.update(debt_repaid=repaid, delivered=delivered)
    ctx.emit("wholesale", result)
    return result


retail = registry.register(Contract("retail-seller", "A resident buys k from the utility for fiat."))


@retail.function("sell", orgs={"bank"})
def retail_sell(ctx: Context) -> dict:
    """Bank reports: resident household (payer) paid the utility (payee) → k utility → resident."""
    household, utility, amount, currency, paid_at, event_id = _payment(ctx)
    price = price_in_force(ctx, utility, "retail", currency, paid_at)
    credit_key = credit_account(household, utility)
    debt_key = debt_account(household, utility)
    # One read for all three; the debt account exists only once a reversal has opened it.
    ctx.lock_present((credit_key, currency), (first_shard(utility, event_id), ENERGY), (debt_key, DEBT))
    credit = ctx.balance(credit_key, currency)
    sale = fiat_to_wh(amount=amount, credit=credit, price_per_kwh=price)
    # A debt left by a reversal is paid first: the utility keeps that energy.
    repaid, delivered = debt_repayment(wh=sale.wh, debt=_owed(ctx, household, utility))
    if repaid:
        ctx.burn(debt_key, repaid, DEBT)
    if delivered:
        take_from_utility(ctx, utility, delivered, event_id, household_account(household))
    settle_credit(ctx, credit_key, currency, credit, sale.credit)
    result = {"event_id": event_id, "wh": sale.wh, "price": price, "charged": sale.charged, "credit": sale.credit,
              "currency": currency, "account": household_account(household)}
    if repaid:
        result.update(debt_repaid=repaid, delivered=delivered)
    ctx.emit("retail", result)
    return result


# --- resident funds devices; consumer devices burn -------------------------------------------

resident = registry.register(Contract("resident", "Residents fund any consumer device.", namespace=DEVICES_NAMESPACE))
consumer = registry.register(Contract("consumer", "A device's meter burns what it consumes.", namespace=DEVICES_NAMESPACE))


def require_unreserved(ctx: Context, account: str, wh: int) -> None:
    """Earmarks: coins in a device's funded windows leave it only by ``consumer.burn`` or by
    ``resident.settle`` to their funder, so any other movement of ``wh`` out of a device account
    must fit in what the windows leave free. The balance is read (and its row locked) before the
    windows: everything that changes a device's windows also changes its balance, so under that
    lock the windows read are the latest, whichever namespace the caller runs in."""
    role, names = account_key_parts(account)
    if role != "device":
        return
    balance = ctx.balance(account, ENERGY)
    held = reserved(ctx.get_state(windows_key(names[0]), namespace=DEVICES_NAMESPACE) or [])
    if balance - held < wh:
        raise ContractError(f"device {names[0]} holds {balance} Wh of which {held} Wh are earmarked for funded "
                            f"windows: only its meter's burns or their settlement back to the funder move them")


def windows_of(ctx: Context, device: str) -> list[dict]:
    return ctx.get_state(windows_key(device)) or []


def save_windows(ctx: Context, device: str, windows: list[dict]) -> None:
    if windows:
        ctx.put_state(windows_key(device), windows)
    elif ctx.get_state(windows_key(device)) is not None:
        ctx.del_state(windows_key(device))


@resident.function(orgs={"household", "charity", "utility"})
def fund(ctx: Context) -> dict:
    """Move k from the invoker's own account to any consumer device, optionally only for a
    window (``window_start``/``window_end``): usable only inside it, unspent coins return to
    the funder when it ends."""
    device = ctx.arg_str("device", max_length=64)
    wh = ctx.arg_int("amount")
    source = ctx.arg_str("from", required=False) or household_account(ctx.invoker.msp_id)
    start, end = when_arg_optional(ctx, "window_start"), when_arg_optional(ctx, "window_end")
    if (start is None) != (end is None):
        raise ContractError("a window needs both window_start and window_end")
    ctx.require_owner(source, ENERGY)
    require_unreserved(ctx, source, wh)
    target = device_account(device)
    ctx.transfer(source, target, wh, ENERGY)
    windows = windows_of(ctx, device)
    if start is not None and end is not None:
        if end <= start:
            raise ContractError("window_end must be after window_start")
        if end <= ctx.now:
            raise ContractError("the window has already ended")
        if end - start > MAX_WINDOW:
            raise ContractError("a window may last at most 7 days")
        window = {"funder": source, "amount": wh, "remaining": wh, "start": start.isoformat(),
                  "end": end.isoformat(), "funded_at": ctx.now.isoformat()}
        windows = [*windows, window]
        save_windows(ctx, device, windows)
    balance = ctx.balance(target, ENERGY)
    on = relay_on(balance, windows, ctx.now)
    result = {"device": device, "account": target, "amount": wh, "balance": balance, "relay": "on" if on else "off",
              "window": None if start is None or end is None else {"start": start.isoformat(), "end": end.isoformat()}}
    ctx.emit("funded", result)
    return result


@resident.function(orgs={"utility"})
def settle(ctx: Context) -> dict:
    """Return the unspent coins of a device's ended windows to their funders. Only the utility
    (its scheduler) may ask: "ended" is judged at the proposal's time, which the invoker
    signs, so an untrusted invoker could date a proposal ahead and close windows early."""
    device = ctx.arg_str("device", max_length=64)
    windows = windows_of(ctx, device)
    ended, still_open = due_for_settlement(windows, ctx.now)
    if not ended:
        raise ContractError(f"device {device} has no ended window to settle")
    target = device_account(device)
    returned = []
    to_campaigns: dict[str, int] = {}
    for w in ended:
        if w["remaining"]:
            ctx.transfer(target, w["funder"], w["remaining"], ENERGY)
            if "campaign" in w:
                to_campaigns[w["campaign"]] = to_campaigns.get(w["campaign"], 0) + w["remaining"]
        returned.append({"funder": w["funder"], "returned": w["remaining"], "end": w["end"]})
    save_windows(ctx, device, still_open)
    # A charity's pool books what its shares return (campaign/<slug>.returned_wh), so the
    # campaign's books keep equal to its pool's balance.
    for slug, wh in to_campaigns.items():
        campaign = ctx.get_state(campaign_key(slug))
        if campaign is not None:
            ctx.put_state(campaign_key(slug), {**campaign, "returned_wh": campaign["returned_wh"] + wh})
    balance = ctx.balance(target, ENERGY)
    on = relay_on(balance, still_open, ctx.now)
    result = {"device": device, "returned": returned, "balance": balance, "relay": "on" if on else "off"}
    if to_campaigns:
        result["campaigns"] = to_campaigns
    ctx.emit("settled", result)
    return result


def _metered(ctx: Context, device: str, register: str) -> tuple[int, dict | None]:
    """The energy (Wh) a meter reports: either ``amount`` directly, or a cumulative reading
    (``counter``, ``import_wh``, ``export_wh``, ``timestamp``, OBIS 1.8.0 / 2.8.0) whose delta
    against the last accepted reading (world state ``registers_key(device)``) is the energy. A
    lost reading loses nothing (the next one covers it); a replayed or older counter, or a
    register that went backwards, is refused."""
    if "counter" not in ctx.args:
        return ctx.arg_int("amount"), None
    counter = ctx.arg_int("counter", positive=False)
    import_wh, export_wh = ctx.arg_int("import_wh", positive=False), ctx.arg_int("export_wh", positive=False)
    when_arg(ctx, "timestamp")
    if counter < 0 or import_wh < 0 or export_wh < 0:
        raise ContractError("counter and registers cannot be negative")
    key = registers_key(device)
    last = ctx.get_state(key) or {"counter": -1, "import_wh": 0, "export_wh": 0}
    if counter <= last["counter"]:
        raise ContractError(f"reading counter {counter} is not after the last accepted {last['counter']} "
                            "(replayed or out of order)")
    if import_wh < last["import_wh"] or export_wh < last["export_wh"]:
        raise ContractError("a cumulative register went backwards")
    reading = {"counter": counter, "import_wh": import_wh, "export_wh": export_wh, "timestamp": ctx.args["timestamp"]}
    ctx.put_state(key, reading)
    return reading[register] - last[register], reading


@consumer.function(orgs=None, touches=_meter_touches(lambda invoker: device_account(invoker.identity_name)))
def burn(ctx: Context) -> dict:
    """The device's own meter reports consumption (Wh, or a cumulative import register) → k
    destroyed from the device. What the device cannot pay for is recorded as a shortfall and the
    relay turns off."""
    device = ctx.require_device()
    wh, reading = _metered(ctx, device, "import_wh")
    account = device_account(device)
    ctx.require_owner(account, ENERGY)  # a meter burns only its own organisation's device
    balance = ctx.balance(account, ENERGY)
    windows = windows_of(ctx, device)
    burned, updated = allocate_burn(wh, balance, windows, ctx.now)
    if burned:
        ctx.burn(account, burned, ENERGY)
    campaigns: dict[str, int] = {}
    if updated != windows:
        save_windows(ctx, device, updated)
        # What a charity's shares paid for, per campaign (the charts of burned kWh per campaign).
        for before, after_window in zip(windows, updated, strict=True):
            if "campaign" in before and before["remaining"] != after_window["remaining"]:
                slug = before["campaign"]
                campaigns[slug] = campaigns.get(slug, 0) + before["remaining"] - after_window["remaining"]
    after = balance - burned
    on = relay_on(after, updated, ctx.now)
    result = {"device": device, "requested": wh, "burned": burned, "shortfall": wh - burned, "balance": after,
              "reserved": reserved(updated), "relay": "on" if on else "off",
              "counter": reading["counter"] if reading else None}
    if campaigns:
        result["campaigns"] = campaigns
    ctx.emit("burned", result)
    return result
