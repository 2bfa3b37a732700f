"""``energy-billing`` dues and fines: day statements, a household's dues, paying them.

Functions registered on the ``billing`` contract (``billing.py``), all money integer paise (INR):
- ``closeDay(stationId, date)`` (the station's distributor, the utility): once the local day (in
  ``billing-config.timezone``) has ended, each household's bills of its slots become a statement
  ``statement/<station>/<society>/<date>`` and a ``statement`` item in ``dues/<society>``.
  Closing again after a slot was re-billed re-issues the statement (``version`` + 1) and posts
  only the difference as an ``adjustment`` item; an unchanged day writes nothing. Never doubled.
- ``payDues(event_id, payer, payee, amount, currency, paid_at, account)`` (a bank, invoked as
  ``retail-seller.sell``/``charity-pool.donate`` are): ``account`` is the household's bill
  account ``bill:<society>``; the payee must be the utility that set the dues terms
  (``configure``), the currency INR. Clears open items oldest first; the rest is credit.
  Recorded at ``payment/<society>/<event_id>``; the same event id twice is refused.
- ``readDues(societyId)``, ``readStatement(societyId, stationId, date)``: the household itself,
  a distributor of one of its stations, the utility, the auditor.

``dues/<society>`` = ``{"items": [{"id", "kind", "amount", "open", "created", ...}], "credit",
"outstanding", "paid", "in_breach", "fines", "stations"}``. Items are kept in the order they were
posted (oldest first); a positive item is owed (``open`` falls as it is paid), a negative one (an
adjustment in the household's favour) is credit, as is an overpayment; credit is applied to the
oldest open items at once, so ``credit`` > 0 only when nothing is open. Always
``outstanding − credit = Σ amount − paid`` and ``outstanding = Σ open``.
A fine (item ``fine``, amount ``billing-config.fine``) is posted when ``outstanding`` rises above
``dues_threshold`` while the household is not in breach; the breach ends when ``outstanding``
falls to the threshold or below, so each breach is fined once. ``fines`` counts the fines
charged. No threshold configured: no breaches, no fines.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ..contracts import Context, ContractError
from ..keys import (
    BILLING_CONFIG_KEY,
    bill_account,
    bill_key,
    dues_key,
    dues_payment_key,
    society_of_bill_account,
    statement_key,
    station_key,
)
from . import billing_math as bm
from .billing import (
    AUDITOR,
    CURRENCY,
    DISTRIBUTOR,
    HOUSEHOLD,
    NAME_LENGTH,
    UTILITY,
    _name,
    _recorded,
    billing,
    may_read_household,
    own_station,
    timezone_of,
)
from .energy import when_arg

BANK = "bank"


# --- the dues arithmetic (pure: a dues record in, the same record changed) -----------------------

def new_dues(society: str) -> dict[str, Any]:
    return {"societyId": society, "items": [], "credit": 0, "outstanding": 0, "paid": 0, "in_breach": False,
            "fines": 0, "stations": []}


def _apply_credit(dues: dict[str, Any]) -> list[dict[str, Any]]:
    """Spend the credit on the oldest open items; returns what it cleared (``{id, amount}``)."""
    cleared = []
    for item in dues["items"]:
        if dues["credit"] == 0:
            break
        take = min(item["open"], dues["credit"])
        if take:
            item["open"] -= take
            dues["credit"] -= take
            cleared.append({"id": item["id"], "amount": take})
    return cleared


def _settle(dues: dict[str, Any], terms: dict[str, Any], now: str) -> dict[str, Any] | None:
    """Apply credit, recount, and fine a new breach; returns the fine item posted, if any."""
    _apply_credit(dues)
    dues["outstanding"] = sum(item["open"] for item in dues["items"])
    threshold, fine = terms.get("dues_threshold"), terms.get("fine") or 0
    if threshold is None or dues["outstanding"] <= threshold:
        dues["in_breach"] = False
        return None
    if dues["in_breach"]:
        return None
    dues["in_breach"] = True
    if not fine:
        return None
    dues["fines"] += 1
    item = {"id": f"fine:{dues['fines']}", "kind": "fine", "amount": fine, "open": fine, "created": now}
    dues["items"].append(item)
    dues["outstanding"] += fine
    return item


def post(dues: dict[str, Any], item: dict[str, Any], terms: dict[str, Any], now: str) -> dict[str, Any] | None:
    """Post a statement or adjustment item (``id``, ``kind``, ``amount`` and any details); a
    negative amount is credit. Returns the fine this posting caused, if any."""
    amount = item["amount"]
    dues["items"].append({**item, "open": max(amount, 0), "created": now})
    if amount < 0:
        dues["credit"] += -amount
    return _settle(dues, terms, now)


def pay(dues: dict[str, Any], amount: int, terms: dict[str, Any], now: str) -> list[dict[str, Any]]:
    """A payment of ``amount`` clears open items oldest first; the rest stays credit. Returns
    what it cleared (``{id, amount}``)."""
    dues["paid"] += amount
    dues["credit"] += amount
    cleared = _apply_credit(dues)
    _settle(dues, terms, now)
    return cleared


# --- helpers -------------------------------------------------------------------------------------

def _terms(ctx: Context) -> dict[str, Any]:
    return ctx.get_state(BILLING_CONFIG_KEY) or {}


def _date(ctx: Context) -> date:
    text = ctx.arg_str("date", max_length=10)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or len(text) != 10:
        raise ContractError("argument 'date' must be a local date, YYYY-MM-DD")
    return day


def _statement(existing: dict[str, Any] | None, fresh: dict[str, Any]) -> bool:
    """Whether ``fresh`` differs from the statement issued before."""
    return existing is None or any(existing[f] != fresh[f] for f in ("amount", "slots", "missing", "timezone"))


# --- statements ----------------------------------------------------------------------------------

@billing.function("closeDay", orgs={DISTRIBUTOR, UTILITY})
def close_day(ctx: Context) -> dict:
    """Turn each household's bills of a finished local day into its statement and a due item;
    after a re-bill, re-issue the statement and post the difference."""
    station = _name(ctx, "stationId")
    day = _date(ctx)
    record = own_station(ctx, station)
    tz = timezone_of(ctx)
    day_slots = bm.day_slots(day, tz)
    slots = [bm.slot_id(start) for start, _ in day_slots]
    if day_slots[-1][1] > ctx.now:
        raise ContractError(f"{day.isoformat()} has not ended yet in {tz}")
    terms, now, societies = _terms(ctx), ctx.now.isoformat(), record["societies"]
    states = ctx.get_states([bill_key(station, s, slot) for s in societies for slot in slots]
                            + [statement_key(station, s, day.isoformat()) for s in societies]
                            + [dues_key(s) for s in societies])
    issued, total, fined = 0, 0, []
    for society in societies:
        bills = {slot: states[bill_key(station, society, slot)] for slot in slots}
        present = [b for b in bills.values() if b is not None]
        fresh = {"societyId": society, "stationId": station, "date": day.isoformat(), "timezone": tz,
                 "amount": sum(b["amount"] for b in present), "currency": CURRENCY, "slots": len(present),
                 "missing": [slot for slot, b in bills.items() if b is None]}
        total += fresh["amount"]
        key = statement_key(station, society, day.isoformat())
        existing = states[key]
        dues = states[dues_key(society)] or new_dues(society)
        dues = {**dues, "items": [dict(i) for i in dues["items"]], "stations": list(dues["stations"])}
        changed = station not in dues["stations"]
        if changed:
            dues["stations"] = sorted({*dues["stations"], station})
        if _statement(existing, fresh):
            issued += 1
            fresh.update(version=1 if existing is None else existing["version"] + 1, closedAt=now)
            before = 0 if existing is None else existing["amount"]
            if existing is not None:
                fresh["replaces"] = before
            ctx.put_state(key, fresh)
            difference = fresh["amount"] - before
            if difference:
                kind = "statement" if existing is None else "adjustment"
                item_id = (f"statement:{station}:{day.isoformat()}" if existing is None
                           else f"adjustment:{station}:{day.isoformat()}:{fresh['version']}")
                fine = post(dues, {"id": item_id, "kind": kind, "amount": difference, "stationId": station,
                                   "date": day.isoformat()}, terms, now)
                changed = True
                if fine is not None:
                    fined.append(society)
                    ctx.emit("billing.fined", {"societyId": society, "amount": fine["amount"],
                                               "outstanding": dues["outstanding"]})
            ctx.emit("billing.statement", {"key": key, "amount": fresh["amount"], "version": fresh["version"],
                                           "difference": difference})
        if changed:
            ctx.put_state(dues_key(society), dues)
    return {"stationId": station, "date": day.isoformat(), "statements": len(societies), "issued": issued,
            "amount": total, "currency": CURRENCY, "fined": fined}


@billing.function("readStatement", orgs={DISTRIBUTOR, UTILITY, HOUSEHOLD, AUDITOR})
def read_statement(ctx: Context) -> dict:
    society, station = _name(ctx, "societyId"), _name(ctx, "stationId")
    day = _date(ctx).isoformat()
    may_read_household(ctx, station, society)
    return _recorded(ctx, statement_key(station, society, day),
                     f"no statement for {society!r} at {station!r} on {day}")


# --- dues ----------------------------------------------------------------------------------------

def _may_read_dues(ctx: Context, society: str, dues: dict[str, Any]) -> None:
    if ctx.invoker.org_type == HOUSEHOLD and ctx.invoker.msp_id != society:
        raise ContractError(f"{ctx.invoker.msp_id} may read only its own records")
    if ctx.invoker.org_type == DISTRIBUTOR:
        stations = ctx.get_states([station_key(s) for s in dues["stations"]])
        if not any(s is not None and s["distributor"] == ctx.invoker.msp_id and society in s["societies"]
                   for s in stations.values()):
            raise ContractError(f"{society!r} is not served by a station of {ctx.invoker.msp_id}")


@billing.function("readDues", orgs={DISTRIBUTOR, UTILITY, HOUSEHOLD, AUDITOR})
def read_dues(ctx: Context) -> dict:
    society = _name(ctx, "societyId")
    if ctx.invoker.org_type == HOUSEHOLD and ctx.invoker.msp_id != society:
        raise ContractError(f"{ctx.invoker.msp_id} may read only its own records")
    dues = _recorded(ctx, dues_key(society), f"no dues for {society!r}: no day of it has been closed")
    _may_read_dues(ctx, society, dues)
    return {**dues, "account": bill_account(society)}


@billing.function("payDues", orgs={BANK})
def pay_dues(ctx: Context) -> dict:
    """Bank reports: ``payer`` (any msp id, or "") paid ``amount`` to the utility (``payee``)
    for the household whose bill account is ``account`` → its open items cleared oldest first,
    the rest its credit."""
    payer = ctx.args.get("payer", "")
    if not isinstance(payer, str) or len(payer) > 64:
        raise ContractError("argument 'payer' must be a string of at most 64 characters")
    payee, amount = ctx.arg_str("payee", max_length=64), ctx.arg_int("amount")
    currency, paid_at = ctx.arg_str("currency", max_length=10), when_arg(ctx, "paid_at")
    event_id, account = ctx.arg_str("event_id"), ctx.arg_str("account", max_length=NAME_LENGTH + 5)
    society = society_of_bill_account(account)
    if society is None:
        raise ContractError(f"{account!r} is not a bill account (bill:<household msp id>)")
    terms = _terms(ctx)
    utility = terms.get("utility")
    if not utility:
        raise ContractError("no utility has set dues terms (configure dues_threshold/fine): dues cannot be paid")
    if payee != utility or currency != CURRENCY:
        raise ContractError(f"dues are paid in {CURRENCY} to {utility}")
    key = dues_payment_key(society, event_id)
    states = ctx.get_states([dues_key(society), key])
    if states[dues_key(society)] is None:
        raise ContractError(f"unknown bill account {account!r}: no day of {society!r} has been closed")
    if states[key] is not None:
        raise ContractError(f"payment {event_id} of {account} exists already")
    dues = states[dues_key(society)]
    dues = {**dues, "items": [dict(i) for i in dues["items"]]}
    now = ctx.now.isoformat()
    cleared = pay(dues, amount, terms, now)
    ctx.put_state(dues_key(society), dues)
    record = {"event_id": event_id, "account": account, "payer": payer, "payee": payee, "amount": amount,
              "currency": currency, "paid_at": paid_at.isoformat(), "cleared": cleared,
              "credit": dues["credit"], "outstanding": dues["outstanding"], "recordedAt": now}
    ctx.put_state(key, record)
    result = {**record, "societyId": society}
    ctx.emit("billing.duesPaid", result)
    return result
