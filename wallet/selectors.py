"""Reads of wallets and prices: each organisation's balances, its history of transactions, the
utilities' price schedules. Arithmetic over ledger rows, never a write."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from ledger.chaincodes.energy_math import price_at
from ledger.keys import ENERGY, device_account, price_key, price_key_parts
from ledger.models import Account, Organisation, OrgType, Posting, Transaction
from ledger.selectors import balance_by_day, organisations_of, price_schedule_entries
from ledger.units import format_amount, kwh

# --- balances ----------------------------------------------------------------------------

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
        return kwh(self.energy_wh)

    @property
    def energy_wh(self) -> int:
        return sum(b.account.balance for b in self.energy)


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
                others.append(device_account(args[name]) if name == "device" else args[name])
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
        return price_key(self.utility, self.kind, self.currency)


def price_schedule(utility: str, kind: str, currency: str, now: datetime | None = None) -> PriceSchedule | None:
    found = price_schedules(now, key=price_key(utility, kind, currency))
    return found[0] if found else None


def price_schedules(now: datetime | None = None, *, key: str | None = None) -> list[PriceSchedule]:
    """Every utility's schedules (or the one at ``key``) from the ``pricing`` chaincode's state."""
    now = now or timezone.now()
    schedules = []
    for found, value in price_schedule_entries(None if key is None else [key]).items():
        parts = price_key_parts(found)
        if parts is None:
            continue
        entries = sorted(value, key=lambda e: datetime.fromisoformat(e["from"]))
        utility, kind, currency = parts
        schedules.append(PriceSchedule(utility=utility, kind=kind, currency=currency, entries=entries,
                                       current=price_at(entries, now)))
    return schedules


def retail_price_now(now: datetime | None = None) -> PriceSchedule | None:
    """The retail schedule whose price is in force now (the first by utility and currency when a
    deployment has several): what a kWh is worth to a resident today."""
    current = [s for s in price_schedules(now) if s.kind == "retail" and s.current is not None]
    return min(current, key=lambda s: (s.utility, s.currency)) if current else None


# --- balance over time -------------------------------------------------------------------

def energy_balance_by_day(user, *, first_day: date, last_day: date) -> list[tuple[date, int]]:
    """(day, Wh) at the end of each day from ``first_day`` to ``last_day`` (the current time
    zone's days) of the coins the user's organisations hold to spend: their k accounts other
    than their devices' (the wallet's energy balances, summed)."""
    accounts = (Account.objects.filter(organisation__in=organisations_of(user), asset_id=ENERGY)
                .exclude(kind__in=["issuance", "device"]).values_list("pk", flat=True))
    return balance_by_day(list(accounts), first_day=first_day, last_day=last_day)
