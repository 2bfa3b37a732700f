"""Reads for devices, wallets and prices: pure arithmetic over ledger rows, never a write."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from ledger.chaincodes.energy_math import price_at, relay_on, reserved, spendable, window_active
from ledger.db import bound_cursor, sql_in
from ledger.models import Account, Organisation, OrgType, Posting, StateEntry, Transaction
from ledger.selectors import organisations_of
from ledger.units import format_amount

from .models import Device, DeviceKind, EnrolmentState

ENERGY = "k"
WINDOWS_PREFIX = "windows/"


def kwh(wh: int) -> str:
    """Wh shown as kWh with three decimals (no floats)."""
    return format_amount(wh, 3)


# --- devices --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    funder: str
    amount: int
    remaining: int
    start: datetime
    end: datetime
    active: bool


@dataclass(frozen=True)
class DeviceState:
    device: Device
    balance: int  # Wh on the device's account
    reserved: int  # Wh that belong to funded windows
    spendable: int  # Wh the device may burn now
    raw_windows: list[dict]
    relay: str  # "on" or "off"
    at: datetime

    @property
    def windows(self) -> list[Window]:
        return [
            Window(funder=w["funder"], amount=w["amount"], remaining=w["remaining"],
                   start=datetime.fromisoformat(w["start"]), end=datetime.fromisoformat(w["end"]),
                   active=window_active(w, self.at))
            for w in self.raw_windows
        ]


def _figures(balance: int, windows: list[dict], now: datetime) -> tuple[int, int, str]:
    """Reserved and spendable Wh and the relay, from a device's balance and funded windows."""
    return reserved(windows), spendable(balance, windows, now), "on" if relay_on(balance, windows, now) else "off"


def _state_of(device: Device, balance: int, windows: list[dict], now: datetime) -> DeviceState:
    held, free, relay = _figures(balance, windows, now)
    return DeviceState(device=device, balance=balance, reserved=held, spendable=free, raw_windows=windows,
                       relay=relay, at=now)


def _balance_key(device: Device) -> str:
    # A producer meter holds nothing itself; its production is the producer's. (``live_states``
    # states the same rule in SQL.)
    if device.kind == DeviceKind.PRODUCER_METER:
        return f"producer:{device.organisation.msp_id}"
    return device.account_key


def device_state(device: Device, now: datetime | None = None) -> DeviceState:
    """Balance, reserved and spendable coins, funded windows and relay from ledger data."""
    return device_states([device], now)[0]


def device_states(devices: list[Device], now: datetime | None = None) -> list[DeviceState]:
    """``device_state`` for many devices in two queries."""
    now = now or timezone.now()
    keys = {d.pk: _balance_key(d) for d in devices}
    balances = dict(Account.objects.filter(key__in=set(keys.values()), asset_id=ENERGY).values_list("key", "balance"))
    windows = {
        e.key[len(WINDOWS_PREFIX):]: e.value or []
        for e in StateEntry.objects.filter(namespace="devices", is_deleted=False,
                                           key__in=[f"{WINDOWS_PREFIX}{d.public_id}" for d in devices])
    }
    return [_state_of(d, balances.get(keys[d.pk], 0), windows.get(d.public_id, []), now) for d in devices]


@dataclass(frozen=True)
class LiveState:
    """What a device's listeners and its relay are told (``device_state`` without the model)."""

    public_id: str
    balance: int
    reserved: int
    spendable: int
    relay: str


def live_states(public_ids: list[str], now: datetime | None = None) -> list[LiveState]:
    """Balances, windows and relays of many devices in one query, no ORM rows: what a gateway
    batch announces after commit, thousands of devices a second."""
    if not public_ids:
        return []
    now = now or timezone.now()
    where, params = sql_in("d.public_id", public_ids)
    with bound_cursor() as cur:
        # One index lookup per device for its account and its windows (correlated subqueries):
        # joined instead, on keys built from the device's columns, PostgreSQL hashed both whole
        # tables for every batch.
        cur.execute(
            "SELECT d.public_id, "
            "(SELECT a.balance FROM ledger_account a WHERE a.asset_id = %s AND a.key = CASE WHEN d.kind = %s "
            "THEN 'producer:' || o.msp_id ELSE 'device:' || d.public_id END), "
            "(SELECT e.value FROM ledger_stateentry e WHERE e.namespace = 'devices' AND e.key = %s || d.public_id "
            "AND NOT e.is_deleted) "
            f"FROM meters_device d JOIN ledger_organisation o ON o.id = d.organisation_id WHERE {where}",
            [ENERGY, DeviceKind.PRODUCER_METER.value, WINDOWS_PREFIX, *params])
        rows = cur.fetchall()
    states = []
    for public_id, balance, windows in rows:
        windows = (json.loads(windows) if isinstance(windows, (str, bytes)) else windows) or []
        balance = balance or 0
        states.append(LiveState(public_id, balance, *_figures(balance, windows, now)))
    return states


def public_devices() -> QuerySet[Device]:
    return (Device.objects.filter(is_public=True).exclude(state=EnrolmentState.RETIRED)
            .select_related("organisation").order_by("public_id"))


def device_by_public_id(public_id: str) -> Device | None:
    return Device.objects.select_related("organisation").filter(public_id=public_id).first()


def windows_due(now: datetime) -> list[tuple[str, str]]:
    """(public id, latest ended window end) of every device with a window that has ended."""
    due = []
    entries = StateEntry.objects.filter(namespace="devices", key__startswith=WINDOWS_PREFIX, is_deleted=False)
    for key, windows in entries.order_by("key").values_list("key", "value"):
        ended = [w["end"] for w in windows or [] if datetime.fromisoformat(w["end"]) <= now]
        if ended:
            due.append((key[len(WINDOWS_PREFIX):], max(ended, key=datetime.fromisoformat)))
    return due


# --- wallet ---------------------------------------------------------------------------------

@dataclass
class Balance:
    account: Account

    @property
    def asset(self) -> str:
        return self.account.asset_id

    @property
    def display(self) -> str:
        return format_amount(self.account.balance, self.account.asset.scale)

    @property
    def unit(self) -> str:
        return self.account.asset.display_unit


@dataclass
class WalletOrganisation:
    organisation: Organisation
    energy: list[Balance] = field(default_factory=list)  # coins the organisation can spend
    devices: list[Balance] = field(default_factory=list)  # coins already on its devices
    credit: list[Balance] = field(default_factory=list)  # fiat credit

    @property
    def is_household(self) -> bool:
        return self.organisation.org_type == OrgType.HOUSEHOLD

    @property
    def energy_total(self) -> str:
        return kwh(sum(b.account.balance for b in self.energy))


def wallet_balances(user) -> list[WalletOrganisation]:
    """Each organisation of the user with its k accounts (kWh), the k on its own devices and
    its fiat credit accounts."""
    orgs = {o.pk: WalletOrganisation(o) for o in sorted(organisations_of(user), key=lambda o: o.pk)}
    accounts = (Account.objects.filter(organisation_id__in=orgs).exclude(kind="issuance")
                .select_related("asset").order_by("asset_id", "key"))
    for account in accounts:
        wallet = orgs[account.organisation_id]
        if account.asset_id != ENERGY:
            wallet.credit.append(Balance(account))
        elif account.kind == "device":
            wallet.devices.append(Balance(account))
        else:
            wallet.energy.append(Balance(account))
    return list(orgs.values())


def wallet_transactions(user) -> QuerySet[Transaction]:
    """Transactions the user's organisations invoked or whose accounts they touched, newest first."""
    orgs = organisations_of(user)
    touched = Posting.objects.filter(transaction=OuterRef("pk"), account__organisation__in=orgs)
    return (Transaction.objects.filter(Q(invoker__organisation__in=orgs) | Exists(touched))
            .select_related("invoker__organisation", "block").order_by("-id"))


TITLES = {
    ("resident", "fund"): "Funded a device",
    ("resident", "settle"): "Unspent window coins returned",
    ("retail-seller", "sell"): "Bought coins",
    ("wholesale-seller", "sell"): "Wholesale purchase",
    ("token", "mint"): "Coins issued",
    ("token", "transfer"): "Transfer",
    ("token", "burn"): "Coins destroyed",
    ("consumer", "burn"): "Consumption",
    ("generator", "mint"): "Production",
    ("pricing", "set"): "Price set",
}


@dataclass
class HistoryEntry:
    tx: Transaction
    title: str
    energy_wh: int | None  # net change of the user's organisations' k accounts
    fiat: dict[str, int]  # net change of their fiat accounts, per currency (minor units)
    counterparties: list[str]
    scales: dict[str, int] = field(default_factory=dict)

    @property
    def call(self) -> str:
        return f"{self.tx.chaincode}.{self.tx.function}"

    @property
    def energy_kwh(self) -> str | None:
        if self.energy_wh is None:
            return None
        text = kwh(self.energy_wh)
        return text if self.energy_wh < 0 else f"+{text}"

    @property
    def fiat_display(self) -> list[tuple[str, str]]:
        """(currency, signed amount) with each currency's decimals."""
        shown = []
        for currency, amount in self.fiat.items():
            text = format_amount(amount, self.scales.get(currency, 2))
            shown.append((currency, text if amount < 0 else f"+{text}"))
        return shown


def history_entry(tx: Transaction, org_ids: set[int]) -> HistoryEntry:
    energy: int | None = None
    fiat: dict[str, int] = defaultdict(int)
    scales: dict[str, int] = {}
    others: list[str] = []
    for posting in tx.postings.all():
        account = posting.account
        if account.organisation_id in org_ids and account.kind != "issuance":
            if posting.asset_id == ENERGY:
                energy = (energy or 0) + posting.amount
            else:
                fiat[posting.asset_id] += posting.amount
                scales[posting.asset_id] = posting.asset.scale
        elif account.key != "issuance" and account.key not in others:
            others.append(account.key)
    if not others:
        args = tx.args or {}
        for name in ("device", "to", "payee"):
            if isinstance(args.get(name), str):
                others.append(f"device:{args[name]}" if name == "device" else args[name])
                break
    return HistoryEntry(tx=tx, title=TITLES.get((tx.chaincode, tx.function), f"{tx.chaincode}.{tx.function}"),
                        energy_wh=energy, fiat=dict(fiat), counterparties=others, scales=scales)


def history_entries(user, transactions: list[Transaction]) -> list[HistoryEntry]:
    org_ids = {o.pk for o in organisations_of(user)}
    return [history_entry(tx, org_ids) for tx in transactions]


def wallet_history(user, *, before: int | None = None, limit: int = 20) -> tuple[list[HistoryEntry], int | None]:
    """A page of history, newest first, and the id to page back from (None on the last page)."""
    qs = wallet_transactions(user).prefetch_related("postings__account", "postings__asset")
    if before is not None:
        qs = qs.filter(id__lt=before)
    page = list(qs[: limit + 1])
    older = page[limit - 1].pk if len(page) > limit else None
    return history_entries(user, page[:limit]), older


# --- prices ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PriceSchedule:
    utility: str
    kind: str
    currency: str
    entries: list[dict]  # [{"from": iso, "price": minor units per kWh}], oldest first
    current: int | None

    @property
    def key(self) -> str:
        return f"{self.utility}/{self.kind}/{self.currency}"


def price_schedule(utility: str, kind: str, currency: str, now: datetime | None = None) -> PriceSchedule | None:
    found = price_schedules(now, key=f"{utility}/{kind}/{currency}")
    return found[0] if found else None


def price_schedules(now: datetime | None = None, *, key: str | None = None) -> list[PriceSchedule]:
    """Every utility's schedules from world state (namespace ``pricing``)."""
    now = now or timezone.now()
    schedules = []
    entries = StateEntry.objects.filter(namespace="pricing", is_deleted=False)
    if key is not None:
        entries = entries.filter(key=key)
    for key, value in entries.order_by("key").values_list("key", "value"):
        parts = key.split("/")
        if len(parts) != 3:
            continue
        entries = sorted(value or [], key=lambda e: datetime.fromisoformat(e["from"]))
        schedules.append(PriceSchedule(utility=parts[0], kind=parts[1], currency=parts[2], entries=entries,
                                       current=price_at(entries, now)))
    return schedules
