"""``charity-pool``: a charity's campaign pools money and coins and turns them into electricity
for named households; neighbours pool coins in escrow to light a public device for a window
(docs/charity.md). The only code that moves a campaign's coins and keeps its books.

World state lives in the ``devices`` namespace (shared with ``resident`` and ``consumer``), so a
disbursement writes the beneficiaries' funded windows and ``resident.settle`` books what returns
to a pool. The books of a campaign always equal its pool's k balance:

    donated_wh + matched_wh + returned_wh - disbursed_wh - refunded_wh - rolled_wh

(a roll arriving from an earlier campaign is a ``roll`` donation, counted in ``donated_wh``).

Refunds are paid in rounds, each pro rata against a snapshot of the pool (``refundable_wh``;
``refund_basis`` = donated_wh + matched_wh when the campaign stopped): in each round a donation
gets back ``refundable_wh × wh / refund_basis`` and the sponsor ``refundable_wh × matched_wh /
refund_basis`` (each floored), once, so the order of refunds changes nothing and a round's sum
never exceeds its snapshot. Round 1 starts when the campaign stops. Coins that reach the pool
later (windows settled after the stop, a refunded roll) and a round's rounding dust are shared
by the next round (``next_refund_round``), which opens once the current one is done and the
pool holds more than that round left in it; what stays is dust no donor's share turns into a
whole Wh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..contracts import Context, Contract, ContractError, registry
from ..keys import (
    DEVICES_NAMESPACE,
    ENERGY,
    account_key_parts,
    beneficiaries_key,
    campaign_key,
    credit_account,
    device_account,
    disbursement_key,
    donation_key,
    escrow_account,
    group_key,
    household_account,
    match_account,
    pool_account,
    windows_key,
)
from .energy import (
    MAX_WINDOW,
    first_shard,
    price_in_force,
    require_unreserved,
    settle_credit,
    take_from_utility,
    when_arg,
    when_arg_optional,
    windows_of,
)
from .energy_math import WH_PER_KWH, fiat_to_wh

charity_pool = registry.register(Contract(
    "charity-pool", "Charity campaigns (pools, matching, disbursements, refunds) and group funding.",
    namespace=DEVICES_NAMESPACE))

RULES = ("equal", "cap", "weights")
LEFTOVER_RULES = ("refund", "roll")
STOPPED = ("cancelled", "failed", "refunding")  # refunds are paid in these
MAX_BENEFICIARIES = 100_000
MAX_WEIGHT = 1_000_000


# --- arguments and state ---------------------------------------------------------------------

def _slug(ctx: Context, name: str = "campaign") -> str:
    slug = ctx.arg_str(name, max_length=60)
    if "/" in slug or ":" in slug:
        raise ContractError(f"argument {name!r} cannot contain '/' or ':'")
    return slug


def _existing(ctx: Context, key: str, what: str) -> dict[str, Any]:
    value = ctx.get_state(key)
    if value is None:
        raise ContractError(f"no {what}")
    return value


def _campaign(ctx: Context, slug: str) -> dict[str, Any]:
    return _existing(ctx, campaign_key(slug), f"campaign {slug!r}")


def _charity_only(ctx: Context, slug: str, campaign: dict) -> None:
    if ctx.invoker.org_id != campaign["charity_org"]:
        raise ContractError(f"only the charity {campaign['charity']} may do this for campaign {slug}")


def _charity_or_utility(ctx: Context, slug: str, campaign: dict) -> None:
    if ctx.invoker.org_id != campaign["charity_org"] and ctx.invoker.msp_id != campaign["utility"]:
        raise ContractError(f"only the charity {campaign['charity']} or the utility {campaign['utility']} "
                            f"may do this for campaign {slug}")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _source(ctx: Context) -> str:
    """The account coins come from: ``from`` or the invoker's household account; the invoker's
    organisation must own it, and a device's earmarked coins cannot leave this way."""
    return ctx.arg_str("from", required=False, max_length=120) or household_account(ctx.invoker.msp_id)


def _spend(ctx: Context, source: str, destination: str, wh: int) -> None:
    ctx.require_owner(source, ENERGY)
    require_unreserved(ctx, source, wh)
    ctx.transfer(source, destination, wh, ENERGY)


def _beneficiary_list(ctx: Context, name: str) -> dict[str, int]:
    """``[{device, weight}]`` → {device: weight}, each a device account the invoker does not own."""
    raw = ctx.args.get(name)
    if raw is None:
        return {}
    if not isinstance(raw, list) or len(raw) > MAX_BENEFICIARIES:
        raise ContractError(f"argument {name!r} must be a list of at most {MAX_BENEFICIARIES} beneficiaries")
    wanted: dict[str, int] = {}
    for entry in raw:
        device = entry.get("device") if isinstance(entry, dict) else None
        weight = entry.get("weight", 1) if isinstance(entry, dict) else None
        if not isinstance(device, str) or not device or len(device) > 64:
            raise ContractError(f"argument {name!r}: every beneficiary needs a device public id")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 < weight <= MAX_WEIGHT:
            raise ContractError(f"beneficiary {device}: weight must be an integer from 1 to {MAX_WEIGHT}")
        if device in wanted:
            raise ContractError(f"beneficiary {device} is listed twice")
        wanted[device] = weight
    found = ctx.accounts([(device_account(d), ENERGY) for d in wanted])
    for device in wanted:
        info = found.get((device_account(device), ENERGY))
        if info is None or info.kind != "device":
            raise ContractError(f"beneficiary {device} is not a device account")
        if info.organisation_id == ctx.invoker.org_id:
            raise ContractError(f"beneficiary {device} belongs to the charity itself")
    return wanted


def _device_list(ctx: Context, name: str) -> list[str] | None:
    raw = ctx.args.get(name)
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or len(raw) > MAX_BENEFICIARIES \
            or not all(isinstance(d, str) and d for d in raw):
        raise ContractError(f"argument {name!r} must be a non-empty list of device public ids")
    if len(set(raw)) != len(raw):
        raise ContractError(f"argument {name!r} names a device twice")
    return raw


def _worth(wh: int, price: int) -> int:
    """Minor units ``wh`` are worth at ``price`` per kWh (floored)."""
    return wh * price // WH_PER_KWH


def _require_new(ctx: Context, key: str, what: str) -> None:
    if ctx.get_state(key) is not None:
        raise ContractError(f"{what} exists already")


# --- campaigns -------------------------------------------------------------------------------

@charity_pool.function("open", orgs={"charity"})
def open_campaign(ctx: Context) -> dict:
    """Write a campaign and its beneficiaries. The charity must own the pool (``pool:<slug>``
    in k and in the campaign's currency, opened by the service)."""
    slug = _slug(ctx)
    utility, currency = ctx.arg_str("utility", max_length=64), ctx.arg_str("currency", max_length=10)
    goal, minimum = ctx.arg_int("goal"), ctx.arg_int("minimum", positive=False)
    start, end = when_arg(ctx, "start"), when_arg(ctx, "end")
    trigger_start, trigger_end = when_arg_optional(ctx, "trigger_start"), when_arg_optional(ctx, "trigger_end")
    rule, leftover = ctx.arg_str("rule", max_length=10), ctx.arg_str("leftover", max_length=10)
    cap_wh = ctx.arg_int("cap_wh", required=False)
    next_slug = ctx.arg_str("next", required=False, max_length=60)
    if minimum < 0 or minimum > goal:
        raise ContractError("minimum must be between 0 and the goal")
    if end <= start:
        raise ContractError("end must be after start")
    if (trigger_start is None) != (trigger_end is None):
        raise ContractError("a trigger period needs both trigger_start and trigger_end")
    if trigger_start is not None and trigger_end is not None:
        if trigger_end <= trigger_start:
            raise ContractError("trigger_end must be after trigger_start")
        if trigger_start < start or trigger_end > end:
            raise ContractError("the trigger period must lie inside the campaign")
    if rule not in RULES:
        raise ContractError(f"rule must be one of {', '.join(RULES)}")
    if rule == "cap" and cap_wh is None:
        raise ContractError("the cap rule needs cap_wh")
    if leftover not in LEFTOVER_RULES:
        raise ContractError(f"leftover must be one of {', '.join(LEFTOVER_RULES)}")
    if leftover == "roll" and (next_slug is None or next_slug == slug):
        raise ContractError("rolling the leftover needs another campaign as next")
    _require_new(ctx, campaign_key(slug), f"campaign {slug}")
    pool = pool_account(slug)
    ctx.require_owner(pool, ENERGY)
    ctx.require_owner(pool, currency)
    price_in_force(ctx, utility, "retail", currency, start)  # a campaign needs a price to value coins
    beneficiaries = _beneficiary_list(ctx, "beneficiaries")
    earmark_end = trigger_end or end
    campaign = {
        "charity": ctx.invoker.msp_id, "charity_org": ctx.invoker.org_id, "utility": utility, "currency": currency,
        "goal": goal, "minimum": minimum, "start": start.isoformat(), "end": end.isoformat(),
        "trigger_start": trigger_start.isoformat() if trigger_start else None,
        "trigger_end": trigger_end.isoformat() if trigger_end else None, "earmark_end": earmark_end.isoformat(),
        "rule": rule, "cap_wh": cap_wh, "leftover": leftover, "next": next_slug, "status": "open",
        "raised": 0, "donated_wh": 0, "matched_wh": 0, "disbursed_wh": 0, "returned_wh": 0, "refunded_wh": 0,
        "refunded_amount": 0, "rolled_wh": 0, "donations": 0, "disbursements": 0, "refund_basis": 0,
        "refundable_wh": 0, "sponsor": None, "pledged_wh": 0, "sponsor_refunded": False,
        "refund_round": 0, "round_refunds": 0, "round_refunded_wh": 0, "sponsor_round": None, "largest_wh": 0,
    }
    ctx.put_state(campaign_key(slug), campaign)
    ctx.put_state(beneficiaries_key(slug), {d: {"weight": w, "received": 0} for d, w in beneficiaries.items()})
    result = {"campaign": slug, "account": pool, "charity": ctx.invoker.msp_id, "utility": utility,
              "currency": currency, "goal": goal, "minimum": minimum, "rule": rule, "leftover": leftover,
              "earmark_end": earmark_end.isoformat(), "beneficiaries": len(beneficiaries)}
    ctx.emit("campaign_opened", result)
    return result


@charity_pool.function("beneficiaries", orgs={"charity"})
def change_beneficiaries(ctx: Context) -> dict:
    """Add (``add: [{device, weight}]``, a listed device's weight changes) and remove
    (``remove: [device]``) beneficiaries while the campaign is open."""
    slug = _slug(ctx)
    campaign = _campaign(ctx, slug)
    _charity_only(ctx, slug, campaign)
    if campaign["status"] != "open":
        raise ContractError(f"campaign {slug} is {campaign['status']}")
    add = _beneficiary_list(ctx, "add")
    remove = _device_list(ctx, "remove") or []
    if not add and not remove:
        raise ContractError("nothing to add or remove")
    listed = dict(ctx.get_state(beneficiaries_key(slug)) or {})
    for device in remove:
        if device not in listed:
            raise ContractError(f"{device} is not a beneficiary of campaign {slug}")
        del listed[device]
    for device, weight in add.items():
        listed[device] = {"weight": weight, "received": listed.get(device, {}).get("received", 0)}
    ctx.put_state(beneficiaries_key(slug), listed)
    result = {"campaign": slug, "added": sorted(add), "removed": sorted(remove), "beneficiaries": len(listed)}
    ctx.emit("beneficiaries_changed", result)
    return result


def _donation(ctx: Context, slug: str, campaign: dict, *, donation_id: str, kind: str, account: str, payer: str,
              payment: str, amount: int, wh: int, price: int) -> dict:
    """Book a donation whose ``wh`` are already on their way into the pool; match it 1:1 from
    the sponsor's reserve while that lasts."""
    match = match_account(slug)
    matched = 0
    if kind != "roll" and wh:
        ctx.lock_present((match, ENERGY))
        if ctx.holds(match, ENERGY):
            matched = min(wh, ctx.balance(match, ENERGY))
            if matched:
                ctx.transfer(match, pool_account(slug), matched, ENERGY)
    donation = {"kind": kind, "account": account, "payer": payer, "payment": payment, "amount": amount,
                "currency": campaign["currency"], "wh": wh, "price": price, "matched_wh": matched, "refunded": False,
                "refunded_wh": 0, "refunded_amount": 0, "at": ctx.now.isoformat()}
    ctx.put_state(donation_key(slug, donation_id), donation)
    campaign = {**campaign, "raised": campaign["raised"] + amount, "donated_wh": campaign["donated_wh"] + wh,
                "matched_wh": campaign["matched_wh"] + matched, "donations": campaign["donations"] + 1}
    if "largest_wh" in campaign:  # absent in campaigns opened before refund rounds: never judged by it
        campaign["largest_wh"] = max(campaign["largest_wh"], wh)
    ctx.put_state(campaign_key(slug), campaign)
    return {"campaign": slug, "donation": donation_id, "kind": kind, "account": account, "payer": payer,
            "payment": payment, "amount": amount, "currency": campaign["currency"], "wh": wh, "price": price,
            "matched_wh": matched, "pool": pool_account(slug), "raised": campaign["raised"],
            "donated_wh": campaign["donated_wh"], "campaign_matched_wh": campaign["matched_wh"]}


def _open_for_donations(slug: str, campaign: dict, when: datetime) -> None:
    if campaign["status"] != "open":
        raise ContractError(f"campaign {slug} is {campaign['status']}")
    if not _moment(campaign["start"]) <= when < _moment(campaign["end"]):
        raise ContractError(f"campaign {slug} takes donations from {campaign['start']} until {campaign['end']}")


def _paid(ctx: Context) -> tuple[str, str, int, str, datetime, str]:
    """A bank's payment report, whose payer may be "" (a donor without an account)."""
    payer = ctx.args.get("payer", "")
    if not isinstance(payer, str) or len(payer) > 64:
        raise ContractError("argument 'payer' must be a string of at most 64 characters")
    return (payer, ctx.arg_str("payee", max_length=64), ctx.arg_int("amount"), ctx.arg_str("currency", max_length=10),
            when_arg(ctx, "paid_at"), ctx.arg_str("event_id"))


def _buy(ctx: Context, *, utility: str, amount: int, currency: str, paid_at: datetime, event_id: str,
         credit_key: str, destination: str) -> tuple[int, int, int, int]:
    """A retail purchase delivered to ``destination``: (wh, price, charged, credit). The
    sub-Wh remainder stays in ``credit_key`` for the next purchase, as a resident's does."""
    price = price_in_force(ctx, utility, "retail", currency, paid_at)
    ctx.lock_present((credit_key, currency), (first_shard(utility, event_id), ENERGY))
    credit = ctx.balance(credit_key, currency) if ctx.holds(credit_key, currency) else 0
    sale = fiat_to_wh(amount=amount, credit=credit, price_per_kwh=price)
    if sale.wh:
        take_from_utility(ctx, utility, sale.wh, event_id, destination)
    settle_credit(ctx, credit_key, currency, credit, sale.credit)
    return sale.wh, price, sale.charged, sale.credit


@charity_pool.function("donate", orgs={"bank"})
def donate(ctx: Context) -> dict:
    """Bank reports: ``payer`` (a household msp id, or "") paid the campaign's utility
    (``payee``) ``amount`` for the campaign → k from the utility into the pool at the retail
    price in force at ``paid_at``, matched."""
    payer, utility, amount, currency, paid_at, event_id = _paid(ctx)
    slug = _slug(ctx)
    campaign = _campaign(ctx, slug)
    if utility != campaign["utility"] or currency != campaign["currency"]:
        raise ContractError(f"campaign {slug} takes {campaign['currency']} paid to {campaign['utility']}")
    _open_for_donations(slug, campaign, paid_at)
    _require_new(ctx, donation_key(slug, event_id), f"donation {event_id} to campaign {slug}")
    pool = pool_account(slug)
    wh, price, charged, credit = _buy(ctx, utility=utility, amount=amount, currency=currency, paid_at=paid_at,
                                      event_id=event_id, credit_key=pool, destination=pool)
    result = _donation(ctx, slug, campaign, donation_id=event_id, kind="fiat",
                       account=household_account(payer) if payer else "", payer=payer, payment=event_id,
                       amount=amount, wh=wh, price=price)
    result.update(event_id=event_id, charged=charged, credit=credit)
    ctx.emit("donated", result)
    return result


@charity_pool.function(orgs={"household", "charity", "utility"})
def give(ctx: Context) -> dict:
    """Give ``amount`` Wh from an account the invoker owns (``from``, default its household
    account) to the campaign's pool, valued at today's retail price, matched."""
    slug = _slug(ctx)
    donation_id, wh = ctx.arg_str("donation"), ctx.arg_int("amount")
    source = _source(ctx)
    campaign = _campaign(ctx, slug)
    _open_for_donations(slug, campaign, ctx.now)
    _require_new(ctx, donation_key(slug, donation_id), f"donation {donation_id} to campaign {slug}")
    if source in (pool_account(slug), match_account(slug)):
        raise ContractError("a campaign cannot give to itself")
    price = price_in_force(ctx, campaign["utility"], "retail", campaign["currency"], ctx.now)
    _spend(ctx, source, pool_account(slug), wh)
    result = _donation(ctx, slug, campaign, donation_id=donation_id, kind="coins", account=source,
                       payer=ctx.invoker.msp_id, payment="", amount=_worth(wh, price), wh=wh, price=price)
    ctx.emit("given", result)
    return result


@charity_pool.function(orgs=None)
def pledge(ctx: Context) -> dict:
    """A sponsor moves ``amount`` Wh from ``from`` into the campaign's matching reserve; later
    donations are matched 1:1 from it until it is used up. One sponsor (account) per campaign,
    who may top up."""
    slug = _slug(ctx)
    wh = ctx.arg_int("amount")
    source = ctx.arg_str("from", max_length=120)
    campaign = _campaign(ctx, slug)
    if campaign["status"] != "open" or ctx.now >= _moment(campaign["end"]):
        raise ContractError(f"campaign {slug} takes no pledges any more")
    if campaign["sponsor"] not in (None, source):
        raise ContractError(f"campaign {slug} is matched by {campaign['sponsor']} already")
    if source in (pool_account(slug), match_account(slug)):
        raise ContractError("a campaign cannot sponsor itself")
    reserve = match_account(slug)
    _spend(ctx, source, reserve, wh)
    campaign = {**campaign, "sponsor": source, "pledged_wh": campaign["pledged_wh"] + wh}
    ctx.put_state(campaign_key(slug), campaign)
    result = {"campaign": slug, "account": reserve, "from": source, "sponsor": ctx.invoker.msp_id, "amount": wh,
              "wh": wh, "pledged_wh": campaign["pledged_wh"]}
    ctx.emit("pledged", result)
    return result


def shares_by_rule(rule: str, amount: int, listed: dict[str, dict], cap_wh: int | None) -> dict[str, int]:
    """Whole-Wh shares of ``amount`` over ``listed`` ({device: {weight, received}}), floored:
    ``equal`` splits evenly; ``cap`` splits evenly but tops nobody above ``cap_wh`` in total
    (what they received before counts; what the capped cannot take goes to the others);
    ``weights`` splits in proportion to the weights. The sum never exceeds ``amount``."""
    devices = list(listed)
    if not devices:
        return {}
    if rule == "weights":
        total = sum(listed[d]["weight"] for d in devices)
        return {d: amount * listed[d]["weight"] // total for d in devices}
    if rule == "equal":
        share = amount // len(devices)
        return dict.fromkeys(devices, share)
    # cap: fill the households with the least room first; each takes the smaller of its room
    # and an even split of what is left among those not yet served.
    assert cap_wh is not None
    room = {d: max(cap_wh - listed[d]["received"], 0) for d in devices}
    left, shares = amount, {}
    for served, d in enumerate(sorted(devices, key=lambda d: (room[d], d))):
        share = min(room[d], left // (len(devices) - served))
        shares[d] = share
        left -= share
    return shares


@charity_pool.function(orgs={"charity"})
def disburse(ctx: Context) -> dict:
    """Split ``amount`` Wh of the pool (default: all of it) over the beneficiaries (or the
    subset ``to``) by the campaign's rule; each share moves pool → ``device:<id>`` as a funded
    window ending at the campaign's earmark end, usable only by the device's burns or returned
    to the pool. The rounding remainder stays in the pool."""
    slug = _slug(ctx)
    disbursement_id = ctx.arg_str("disbursement")
    wanted = ctx.arg_int("amount", required=False)
    to = _device_list(ctx, "to")
    campaign = _campaign(ctx, slug)
    _charity_only(ctx, slug, campaign)
    if campaign["status"] != "open":
        raise ContractError(f"campaign {slug} is {campaign['status']}")
    if not _moment(campaign["start"]) <= ctx.now < _moment(campaign["end"]):
        raise ContractError(f"campaign {slug} disburses only from {campaign['start']} until {campaign['end']}")
    if campaign["trigger_start"] and not (_moment(campaign["trigger_start"]) <= ctx.now
                                          < _moment(campaign["trigger_end"])):
        raise ContractError(f"campaign {slug} disburses only in its trigger period, {campaign['trigger_start']} "
                            f"until {campaign['trigger_end']}")
    _require_new(ctx, disbursement_key(slug, disbursement_id), f"disbursement {disbursement_id} of campaign {slug}")
    listed = ctx.get_state(beneficiaries_key(slug)) or {}
    if to is not None:
        strangers = [d for d in to if d not in listed]
        if strangers:
            raise ContractError(f"not beneficiaries of campaign {slug}: {', '.join(strangers[:5])}")
        chosen = {d: listed[d] for d in to}
    else:
        chosen = listed
    if not chosen:
        raise ContractError(f"campaign {slug} has no beneficiaries")
    pool = pool_account(slug)
    held = ctx.balance(pool, ENERGY)
    amount = held if wanted is None else wanted
    if amount > held:
        raise ContractError(f"the pool of campaign {slug} holds {held} Wh, not {amount} Wh")
    shares = {d: wh for d, wh in shares_by_rule(campaign["rule"], amount, chosen, campaign["cap_wh"]).items() if wh}
    total = sum(shares.values())
    if not total:
        raise ContractError(f"{amount} Wh give no beneficiary a whole Wh under the {campaign['rule']} rule")
    window_keys = {d: windows_key(d) for d in shares}
    windows = ctx.get_states(list(window_keys.values()))
    start, end, now = ctx.now.isoformat(), campaign["earmark_end"], ctx.now.isoformat()
    updated = dict(listed)
    for device, wh in shares.items():
        ctx.transfer(pool, device_account(device), wh, ENERGY)
        window = {"funder": pool, "amount": wh, "remaining": wh, "start": start, "end": end, "funded_at": now,
                  "campaign": slug}
        ctx.put_state(window_keys[device], [*(windows[window_keys[device]] or []), window])
        updated[device] = {**listed[device], "received": listed[device]["received"] + wh}
    ctx.put_state(beneficiaries_key(slug), updated)
    remainder = amount - total
    ctx.put_state(disbursement_key(slug, disbursement_id),
                  {"total": total, "households": len(shares), "remainder": remainder, "at": now, "amount": amount})
    campaign = {**campaign, "disbursed_wh": campaign["disbursed_wh"] + total,
                "disbursements": campaign["disbursements"] + 1}
    ctx.put_state(campaign_key(slug), campaign)
    result = {"campaign": slug, "disbursement": disbursement_id, "account": pool, "amount": amount, "total": total,
              "wh": total, "households": len(shares), "shares": len(shares), "remainder": remainder,
              "rule": campaign["rule"], "earmark_end": end, "disbursed_wh": campaign["disbursed_wh"],
              "pool_balance": held - total}
    ctx.emit("disbursed", result)
    return result


def _stop(ctx: Context, slug: str, campaign: dict, status: str) -> dict:
    """The campaign stops taking donations; refund round 1 snapshots what it shares."""
    return {**campaign, "status": status, "refundable_wh": ctx.balance(pool_account(slug), ENERGY),
            "refund_basis": campaign["donated_wh"] + campaign["matched_wh"], **_first_round()}


def _first_round() -> dict[str, Any]:
    return {"refund_round": 1, "round_refunds": 0, "round_refunded_wh": 0}


# Campaigns stopped before refund rounds existed lack the round fields: everything they refunded
# was their round 1.

def refund_round_of(campaign: dict) -> int:
    """The refund round in progress: 0 before the campaign stopped (or while closed by a roll)."""
    if "refund_round" in campaign:
        return campaign["refund_round"]
    return 1 if campaign["status"] in STOPPED else 0


def _donation_round(donation: dict) -> int:
    """The last round the donation was refunded in (0: never)."""
    return donation.get("refunded_round", 1 if donation["refunded"] else 0)


def _sponsor_round(campaign: dict) -> int | None:
    """The last round the sponsor was refunded in (None: never; 0: at a roll's close)."""
    if "sponsor_round" in campaign:
        return campaign["sponsor_round"]
    return refund_round_of(campaign) if campaign["sponsor_refunded"] else None


def donation_refunds(donation: dict) -> dict[str, dict[str, int]]:
    """{round: {wh, amount}} the donation was refunded, by round (keys are strings: JSON)."""
    if "refunds" in donation:
        return donation["refunds"]
    if donation["refunded"]:
        return {"1": {"wh": donation["refunded_wh"], "amount": donation["refunded_amount"]}}
    return {}


def _sponsor_owed(campaign: dict) -> bool:
    """The current round waits for the sponsor: it has a matched share, or its unused reserve
    has not gone back yet."""
    if campaign["sponsor"] is None:
        return False
    done = _sponsor_round(campaign)
    return done is None or (done < refund_round_of(campaign) and campaign["matched_wh"] > 0)


def refund_round_done(campaign: dict) -> bool:
    """Every donation and the sponsor (when owed) were refunded in the current round."""
    return campaign.get("round_refunds", 0) >= campaign["donations"] and not _sponsor_owed(campaign)


def refund_round_due(campaign: dict, pool_wh: int) -> bool:
    """A new refund round may open: the campaign is stopped, its round is done, the pool holds
    more than that round left in it (coins came back since its snapshot), and the pool gives at
    least one shareholder a whole Wh."""
    if campaign.get("status") not in STOPPED or not refund_round_done(campaign):
        return False
    left = campaign["refundable_wh"] - campaign.get("round_refunded_wh", campaign["refunded_wh"])
    basis = campaign["refund_basis"]
    if pool_wh <= left or not basis:
        return False
    largest = campaign.get("largest_wh")
    return largest is None or pool_wh * max(largest, campaign["matched_wh"]) // basis > 0


@charity_pool.function(orgs={"charity"})
def cancel(ctx: Context) -> dict:
    """The charity calls the campaign off: status cancelled, refunds open."""
    slug = _slug(ctx)
    reason = ctx.arg_str("reason", max_length=500)
    campaign = _campaign(ctx, slug)
    _charity_only(ctx, slug, campaign)
    if campaign["status"] != "open":
        raise ContractError(f"campaign {slug} is {campaign['status']}")
    campaign = {**_stop(ctx, slug, campaign, "cancelled"), "cancel_reason": reason}
    ctx.put_state(campaign_key(slug), campaign)
    result = {"campaign": slug, "status": "cancelled", "reason": reason, "refundable_wh": campaign["refundable_wh"],
              "refund_basis": campaign["refund_basis"]}
    ctx.emit("campaign_cancelled", result)
    return result


@charity_pool.function(orgs={"utility", "charity"})
def close(ctx: Context) -> dict:
    """After the end: below the minimum → failed (refunds); otherwise by the leftover rule,
    refund → refunding, roll → the pool moves into the next campaign's pool as a ``roll``
    donation there, and the campaign is closed."""
    slug = _slug(ctx)
    campaign = _campaign(ctx, slug)
    _charity_or_utility(ctx, slug, campaign)
    if campaign["status"] != "open":
        raise ContractError(f"campaign {slug} is {campaign['status']}")
    if ctx.now < _moment(campaign["end"]):
        raise ContractError(f"campaign {slug} runs until {campaign['end']}")
    result: dict[str, Any] = {"campaign": slug, "rolled_wh": 0}
    if campaign["raised"] < campaign["minimum"]:
        campaign = _stop(ctx, slug, campaign, "failed")
    elif campaign["leftover"] == "refund":
        campaign = _stop(ctx, slug, campaign, "refunding")
    else:
        campaign, rolled = _roll(ctx, slug, campaign)
        result.update(rolled)
    ctx.put_state(campaign_key(slug), campaign)
    result.update(status=campaign["status"], refundable_wh=campaign["refundable_wh"],
                  refund_basis=campaign["refund_basis"], raised=campaign["raised"], minimum=campaign["minimum"])
    ctx.emit("campaign_closed", result)
    return result


def _roll(ctx: Context, slug: str, campaign: dict) -> tuple[dict, dict]:
    next_slug = campaign["next"]
    following = ctx.get_state(campaign_key(next_slug))
    if following is None or following["status"] != "open":
        raise ContractError(f"the next campaign {next_slug} is not open")
    if following["charity_org"] != campaign["charity_org"]:
        raise ContractError(f"the next campaign {next_slug} belongs to another charity")
    pool = pool_account(slug)
    wh = ctx.balance(pool, ENERGY)
    rolled: dict[str, Any] = {"next": next_slug, "rolled_wh": wh}
    if wh:
        price = price_in_force(ctx, following["utility"], "retail", following["currency"], ctx.now)
        donation_id = f"roll-{slug}"
        _require_new(ctx, donation_key(next_slug, donation_id), f"donation {donation_id} to campaign {next_slug}")
        ctx.transfer(pool, pool_account(next_slug), wh, ENERGY)
        _donation(ctx, next_slug, following, donation_id=donation_id, kind="roll", account=pool, payer="",
                  payment="", amount=_worth(wh, price), wh=wh, price=price)
        rolled["donation"] = donation_id
    closed = {**campaign, "status": "closed", "rolled_wh": campaign["rolled_wh"] + wh, "refundable_wh": 0,
              "refund_basis": campaign["donated_wh"] + campaign["matched_wh"]}
    return closed, rolled


@charity_pool.function(orgs={"utility", "charity"})
def refund(ctx: Context) -> dict:
    """Refund one donation of a cancelled, failed or refunding campaign in the current round:
    its pro-rata share of the round's snapshot goes back to where it came from (a fiat
    donation's to the utility, with ``refunded_amount`` for the payments path to give back; coins
    to their account; a roll to the earlier campaign's pool). Once per donation and round."""
    slug = _slug(ctx)
    donation_id = ctx.arg_str("donation")
    campaign = _campaign(ctx, slug)
    _charity_or_utility(ctx, slug, campaign)
    if campaign["status"] not in STOPPED:
        raise ContractError(f"campaign {slug} is {campaign['status']}: nothing is refunded")
    key = donation_key(slug, donation_id)
    donation = _existing(ctx, key, f"donation {donation_id} to campaign {slug}")
    round_ = refund_round_of(campaign)
    if _donation_round(donation) >= round_:
        raise ContractError(f"donation {donation_id} to campaign {slug} was refunded already in refund round "
                            f"{round_}")
    basis = campaign["refund_basis"]
    share = campaign["refundable_wh"] * donation["wh"] // basis if basis else 0
    total_wh = donation["refunded_wh"] + share
    refunded_amount = 0
    if donation["kind"] == "fiat":
        destination = first_shard(campaign["utility"], donation["payment"])
        # The money follows the coins over all rounds: what the Wh returned so far are worth of
        # what was paid (all of it once all of them returned), less what earlier rounds gave back.
        owed = donation["amount"] if total_wh >= donation["wh"] else donation["amount"] * total_wh // donation["wh"]
        refunded_amount = max(owed - donation["refunded_amount"], 0)
    else:
        destination = donation["account"]
    if share:
        ctx.transfer(pool_account(slug), destination, share, ENERGY)
    if donation["kind"] == "roll" and share:
        _roll_returned(ctx, account_key_parts(destination)[1][0], share)
    refunds = {**donation_refunds(donation), str(round_): {"wh": share, "amount": refunded_amount}}
    ctx.put_state(key, {**donation, "refunded": True, "refunded_round": round_, "refunded_wh": total_wh,
                        "refunded_amount": donation["refunded_amount"] + refunded_amount, "refunds": refunds})
    campaign = {**campaign, "refunded_wh": campaign["refunded_wh"] + share,
                "refunded_amount": campaign["refunded_amount"] + refunded_amount, "refund_round": round_,
                "round_refunds": campaign.get("round_refunds", 0) + 1,
                "round_refunded_wh": campaign.get("round_refunded_wh", 0) + share}
    ctx.put_state(campaign_key(slug), campaign)
    result = {"campaign": slug, "donation": donation_id, "kind": donation["kind"], "account": destination,
              "payer": donation["payer"], "payment": donation["payment"], "event_id": donation["payment"],
              "amount": donation["amount"], "currency": donation["currency"], "wh": donation["wh"], "round": round_,
              "refunded_wh": share, "refunded_amount": refunded_amount, "total_refunded_wh": total_wh,
              "total_refunded_amount": donation["refunded_amount"] + refunded_amount,
              "status": campaign["status"], "round_done": refund_round_done(campaign)}
    ctx.emit("donation_refunded", result)
    return result


def _roll_returned(ctx: Context, earlier_slug: str, wh: int) -> None:
    """A refunded roll's coins went back to the earlier campaign's pool: they were not rolled
    after all. A campaign closed by its roll never refunded its donors, so it turns refunding
    and its round 1 shares its whole pool; one refunding already shares them in its next round."""
    earlier = ctx.get_state(campaign_key(earlier_slug))
    if earlier is None:
        return
    earlier = {**earlier, "rolled_wh": earlier["rolled_wh"] - wh}
    if earlier["status"] == "closed":
        earlier.update(status="refunding", refundable_wh=ctx.balance(pool_account(earlier_slug), ENERGY),
                       sponsor_round=_sponsor_round(earlier), **_first_round())
        earlier["sponsor_refunded"] = earlier["sponsor"] is not None and not _sponsor_owed(earlier)
    ctx.put_state(campaign_key(earlier_slug), earlier)


@charity_pool.function(orgs={"utility", "charity"})
def refund_sponsor(ctx: Context) -> dict:
    """Back to the sponsor: the matched coins' pro-rata share of the current round's snapshot,
    plus what is left in the matching reserve. Once per round (once at a roll's close)."""
    slug = _slug(ctx)
    campaign = _campaign(ctx, slug)
    _charity_or_utility(ctx, slug, campaign)
    if campaign["status"] not in (*STOPPED, "closed"):
        raise ContractError(f"campaign {slug} is {campaign['status']}: nothing is refunded")
    sponsor = campaign["sponsor"]
    if sponsor is None:
        raise ContractError(f"campaign {slug} has no sponsor")
    round_ = refund_round_of(campaign)
    done = _sponsor_round(campaign)
    if done is not None and done >= round_:
        raise ContractError(f"the sponsor of campaign {slug} was refunded already in refund round {round_}")
    basis = campaign["refund_basis"]
    share = campaign["refundable_wh"] * campaign["matched_wh"] // basis if basis else 0
    if share:
        ctx.transfer(pool_account(slug), sponsor, share, ENERGY)
    reserve = match_account(slug)
    unused = ctx.balance(reserve, ENERGY)
    if unused:
        ctx.transfer(reserve, sponsor, unused, ENERGY)
    campaign = {**campaign, "sponsor_refunded": True, "sponsor_round": round_,
                "refunded_wh": campaign["refunded_wh"] + share,
                "round_refunded_wh": campaign.get("round_refunded_wh", 0) + share,
                "sponsor_refunded_wh": campaign.get("sponsor_refunded_wh", 0) + share,
                "match_returned_wh": campaign.get("match_returned_wh", 0) + unused}
    ctx.put_state(campaign_key(slug), campaign)
    result = {"campaign": slug, "account": sponsor, "round": round_, "refunded_wh": share, "unused_wh": unused,
              "wh": share + unused, "status": campaign["status"], "round_done": refund_round_done(campaign)}
    ctx.emit("sponsor_refunded", result)
    return result


@charity_pool.function(orgs={"utility", "charity"})
def next_refund_round(ctx: Context) -> dict:
    """Open the next refund round of a cancelled, failed or refunding campaign once every refund
    of the current one is done and coins came back to the pool since its snapshot (windows
    settled later, a refunded roll): the pool is snapshotted again, and each donation and the
    sponsor may be refunded their pro-rata share of it, once."""
    slug = _slug(ctx)
    campaign = _campaign(ctx, slug)
    _charity_or_utility(ctx, slug, campaign)
    if campaign["status"] not in STOPPED:
        raise ContractError(f"campaign {slug} is {campaign['status']}: nothing is refunded")
    round_ = refund_round_of(campaign)
    if not refund_round_done(campaign):
        raise ContractError(f"refund round {round_} of campaign {slug} is not done: "
                            f"{campaign.get('round_refunds', 0)} of {campaign['donations']} donations refunded"
                            + (", the sponsor not yet" if _sponsor_owed(campaign) else ""))
    held = ctx.balance(pool_account(slug), ENERGY)
    if not refund_round_due(campaign, held):
        raise ContractError(f"nothing to share in a new refund round of campaign {slug}: the pool holds {held} Wh, "
                            f"what round {round_} left or less than any donor's whole Wh")
    campaign = {**campaign, "refund_round": round_ + 1, "refundable_wh": held, "round_refunds": 0,
                "round_refunded_wh": 0, "sponsor_round": _sponsor_round(campaign)}
    campaign["sponsor_refunded"] = campaign["sponsor"] is not None and not _sponsor_owed(campaign)
    ctx.put_state(campaign_key(slug), campaign)
    result = {"campaign": slug, "round": round_ + 1, "refundable_wh": held, "refund_basis": campaign["refund_basis"],
              "donations": campaign["donations"], "status": campaign["status"]}
    ctx.emit("refund_round_opened", result)
    return result


# --- group funding ---------------------------------------------------------------------------

def _group(ctx: Context, slug: str) -> dict[str, Any]:
    return _existing(ctx, group_key(slug), f"group funding {slug!r}")


@charity_pool.function(orgs=None)
def group_open(ctx: Context) -> dict:
    """Neighbours collect ``goal`` Wh by ``deadline`` to light a public device from
    ``window_start`` to ``window_end``. The escrow (``escrow:<group>``, the utility's) must
    exist; the device must be a public device, i.e. one of the escrow owner's."""
    slug = _slug(ctx, "group")
    device = ctx.arg_str("device", max_length=64)
    goal = ctx.arg_int("goal")
    deadline, start, end = when_arg(ctx, "deadline"), when_arg(ctx, "window_start"), when_arg(ctx, "window_end")
    if deadline <= ctx.now:
        raise ContractError("the deadline has passed")
    if end <= start:
        raise ContractError("window_end must be after window_start")
    if end - start > MAX_WINDOW:
        raise ContractError(f"a window may last at most {MAX_WINDOW.days} days")
    if deadline > end:
        raise ContractError("the deadline must come before the window ends")
    _require_new(ctx, group_key(slug), f"group funding {slug}")
    escrow = escrow_account(slug)
    found = ctx.accounts([(escrow, ENERGY), (device_account(device), ENERGY)])
    if (escrow, ENERGY) not in found:
        raise ContractError(f"no k account {escrow!r}")
    target = found.get((device_account(device), ENERGY))
    if target is None or target.kind != "device" or target.organisation_id != found[(escrow, ENERGY)].organisation_id:
        raise ContractError(f"{device} is not a public device")
    group = {"device": device, "organiser": ctx.invoker.msp_id, "goal": goal, "deadline": deadline.isoformat(),
             "window_start": start.isoformat(), "window_end": end.isoformat(), "status": "open", "raised": 0,
             "contributors": {}, "contributions": {}}
    ctx.put_state(group_key(slug), group)
    result = {"group": slug, "device": device, "account": escrow, "goal": goal, "deadline": deadline.isoformat(),
              "window_start": start.isoformat(), "window_end": end.isoformat(), "organiser": ctx.invoker.msp_id}
    ctx.emit("group_opened", result)
    return result


def _contribution(ctx: Context, slug: str, group: dict, contribution_id: str, account: str, wh: int) -> dict:
    """Book ``wh`` already on their way into the escrow; at the goal, fund the device."""
    contributors = {**group["contributors"], account: group["contributors"].get(account, 0) + wh}
    contributions = {**group["contributions"], contribution_id: {"account": account, "wh": wh}}
    group = {**group, "raised": group["raised"] + wh, "contributors": contributors, "contributions": contributions}
    result: dict[str, Any] = {"group": slug, "contribution": contribution_id, "account": account, "amount": wh,
                              "wh": wh, "raised": group["raised"], "goal": group["goal"], "funded": False}
    if group["raised"] >= group["goal"]:
        escrow, device = escrow_account(slug), group["device"]
        ctx.transfer(escrow, device_account(device), group["raised"], ENERGY)
        windows = [{"funder": funder, "amount": given, "remaining": given, "start": group["window_start"],
                    "end": group["window_end"], "funded_at": ctx.now.isoformat(), "group": slug}
                   for funder, given in contributors.items()]
        ctx.put_state(windows_key(device), [*windows_of(ctx, device), *windows])
        group = {**group, "status": "funded", "funded_at": ctx.now.isoformat()}
        result.update(funded=True, device=device, windows=len(windows))
    ctx.put_state(group_key(slug), group)
    result["status"] = group["status"]
    return result


def _open_group(ctx: Context, slug: str, group: dict, contribution_id: str, when: datetime) -> None:
    if group["status"] != "open":
        raise ContractError(f"group funding {slug} is {group['status']}")
    if when >= _moment(group["deadline"]):
        raise ContractError(f"group funding {slug} closed at {group['deadline']}")
    if contribution_id in group["contributions"]:
        raise ContractError(f"contribution {contribution_id} to {slug} exists already")


@charity_pool.function(orgs={"household", "charity", "utility"})
def contribute(ctx: Context) -> dict:
    """Move ``amount`` Wh from an account the invoker owns into the group's escrow."""
    slug = _slug(ctx, "group")
    contribution_id, wh = ctx.arg_str("contribution"), ctx.arg_int("amount")
    source = _source(ctx)
    group = _group(ctx, slug)
    _open_group(ctx, slug, group, contribution_id, ctx.now)
    escrow = escrow_account(slug)
    if source == escrow or source == device_account(group["device"]):
        raise ContractError("the group's own accounts cannot contribute")
    _spend(ctx, source, escrow, wh)
    result = _contribution(ctx, slug, group, contribution_id, source, wh)
    ctx.emit("contributed", result)
    return result


@charity_pool.function(orgs={"bank"})
def contribute_paid(ctx: Context) -> dict:
    """Bank reports a household's (``payer``) payment to the utility (``payee``) for a group:
    k bought at the retail price at ``paid_at`` into the escrow, attributed to
    ``household:<payer>``; the sub-Wh remainder stays the household's credit."""
    payer, utility, amount, currency, paid_at, event_id = _paid(ctx)
    if not payer:
        raise ContractError("argument 'payer' is required: a contribution is refunded to the payer's household")
    slug = _slug(ctx, "group")
    group = _group(ctx, slug)
    _open_group(ctx, slug, group, event_id, paid_at)
    escrow = escrow_account(slug)
    owner = ctx.account(escrow, ENERGY).organisation_id
    utility_org = ctx.account(first_shard(utility, event_id), ENERGY).organisation_id
    if owner != utility_org:
        raise ContractError(f"group funding {slug} is not held by {utility}")
    wh, price, charged, credit = _buy(ctx, utility=utility, amount=amount, currency=currency, paid_at=paid_at,
                                      event_id=event_id, credit_key=credit_account(payer, utility), destination=escrow)
    if not wh:
        raise ContractError(f"{amount} {currency} buy no whole Wh")
    result = _contribution(ctx, slug, group, event_id, household_account(payer), wh)
    result.update(event_id=event_id, payer=payer, price=price, charged=charged, credit=credit, currency=currency,
                  paid=amount)
    ctx.emit("contributed", result)
    return result


@charity_pool.function(orgs={"utility"})
def group_expire(ctx: Context) -> dict:
    """After the deadline, goal not reached: every contributor gets their coins back from the
    escrow. Only the utility (its scheduler) may ask: "after" is judged at the proposal's time,
    which the invoker signs."""
    slug = _slug(ctx, "group")
    group = _group(ctx, slug)
    if group["status"] != "open":
        raise ContractError(f"group funding {slug} is {group['status']}")
    if ctx.now < _moment(group["deadline"]):
        raise ContractError(f"group funding {slug} runs until {group['deadline']}")
    escrow = escrow_account(slug)
    for account, wh in group["contributors"].items():
        if wh:
            ctx.transfer(escrow, account, wh, ENERGY)
    group = {**group, "status": "refunded", "refunded_at": ctx.now.isoformat()}
    ctx.put_state(group_key(slug), group)
    result = {"group": slug, "account": escrow, "status": "refunded", "refunded_wh": group["raised"],
              "contributors": len(group["contributors"]), "refunds": dict(group["contributors"])}
    ctx.emit("group_refunded", result)
    return result

