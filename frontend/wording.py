"""What a resident reads about their accounts and transactions: accounts named as a person would
("Your coins", "Beach Road light"), one history row per transaction, and a device's meter
readings folded into one row per device per day. Ledger keys and chaincode names stay on the
explorer and in the pages' "technical details"."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, Exists, Max, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from ledger.keys import DEBT, ENERGY, account_key_parts
from ledger.models import Account, Organisation, Posting, Transaction, TxStatus
from ledger.selectors import organisations_of
from meters.models import Device
from wallet.selectors import wallet_transactions

from .formatting import format_kwh, format_money

EVENING_HOUR = 17  # a window starting this late on the day it was funded is "tonight"
# Meter readings: many a day per device, shown as one row per device per day.
READINGS = Q(chaincode="consumer", function="burn") | Q(chaincode="generator", function="mint")


class Namer:
    """Names of accounts, organisations and devices for one user (their own are "your")."""

    def __init__(self, user, orgs: list[Organisation] | None = None):
        self.orgs = orgs if orgs is not None else organisations_of(user)
        self.own_ids = {o.pk for o in self.orgs}
        self.own_msp = {o.msp_id for o in self.orgs}
        self._org_names: dict[str, str] = {o.msp_id: o.name for o in self.orgs}
        self._devices: dict[str, Device] = {}

    def load_devices(self, public_ids) -> None:
        wanted = set(public_ids) - set(self._devices)
        if wanted:
            for device in Device.objects.filter(public_id__in=wanted).select_related("organisation"):
                self._devices[device.public_id] = device

    def load_organisations(self, msp_ids) -> None:
        wanted = set(msp_ids) - set(self._org_names)
        if wanted:
            self._org_names.update(Organisation.objects.filter(msp_id__in=wanted).values_list("msp_id", "name"))

    def device(self, public_id: str) -> Device | None:
        self.load_devices([public_id])
        return self._devices.get(public_id)

    def device_name(self, public_id: str) -> str:
        device = self.device(public_id)
        return device.name if device else public_id

    def owns_device(self, public_id: str) -> bool:
        device = self.device(public_id)
        return device is not None and device.organisation_id in self.own_ids

    def organisation_name(self, msp_id: str) -> str:
        self.load_organisations([msp_id])
        return self._org_names.get(msp_id, msp_id)

    def account(self, key: str, asset: str = ENERGY) -> str:
        """``household:hh-alice`` → "Your coins"; ``device:SL-0001`` → "Beach Road light"."""
        role, names = account_key_parts(key)
        if role == "household":
            return _("Your coins") if names[0] in self.own_msp else self.organisation_name(names[0])
        if role == "device":
            return self.device_name(names[0])
        if role == "credit":
            payer, payee = names
            if payer in self.own_msp:
                return _("Your credit with %(name)s") % {"name": self.organisation_name(payee)}
            return _("Credit of %(name)s") % {"name": self.organisation_name(payer)}
        if role == "debt":
            debtor, creditor = names
            if debtor in self.own_msp:
                return _("What you owe %(name)s") % {"name": self.organisation_name(creditor)}
            return _("Owed by %(name)s") % {"name": self.organisation_name(debtor)}
        if role in ("utility", "producer"):
            return _("Your coins") if names[0] in self.own_msp else self.organisation_name(names[0])
        if role == "issuance":
            return _("New coins")
        return _("Another account")


def device_of_account(key: str) -> str | None:
    """The public id of a device's account key, None for any other account."""
    role, names = account_key_parts(key)
    return names[0] if role == "device" else None


def account_rows(accounts: list[Account], namer: Namer) -> list[tuple[str, Account]]:
    """(name a person would use, account) for a list of accounts."""
    devices = [names[0] for role, names in (account_key_parts(a.key) for a in accounts) if role == "device"]
    namer.load_devices(devices)
    return [(namer.account(a.key, a.asset_id), a) for a in accounts]


@dataclass
class NamedBalance:
    name: str
    asset: str
    balance: int

    @property
    def energy(self) -> bool:
        return self.asset in (ENERGY, DEBT)


def named_totals(accounts: list[Account], namer: Namer) -> list[NamedBalance]:
    """Accounts by the name a person would use, those sharing a name and asset added up (a
    utility's coins are spread over several ledger accounts but are one balance to a person)."""
    totals: dict[tuple[str, str], int] = {}
    for name, account in account_rows(accounts, namer):
        totals[(name, account.asset_id)] = totals.get((name, account.asset_id), 0) + account.balance
    return [NamedBalance(name, asset, balance) for (name, asset), balance in totals.items()]


# --- history -----------------------------------------------------------------------------------

@dataclass
class HistoryRow:
    title: str
    at: datetime
    tx: Transaction  # the transaction (for a day of readings: the day's latest reading)
    coins_wh: int | None = None  # change of the user's own coins (not on devices)
    device_wh: int | None = None  # change on one of the user's devices (readings, funded by others)
    debt_wh: int | None = None  # change of what the user owes (k-owed)
    fiat: list[tuple[str, int]] = field(default_factory=list)  # (currency, change in minor units)
    detail: str = ""
    day: date | None = None  # set for a day of meter readings
    readings: int = 0

    @property
    def is_day(self) -> bool:
        return self.day is not None

    @property
    def ok(self) -> bool:
        return self.tx.status == TxStatus.VALID

    @property
    def amount_wh(self) -> int | None:
        """The one energy figure the row leads with."""
        for value in (self.coins_wh, self.device_wh):
            if value:
                return value
        return self.coins_wh if self.coins_wh is not None else self.device_wh


def _window_text(window: dict | None, at: datetime) -> str:
    if not window:
        return ""
    zone = timezone.get_current_timezone()
    start = datetime.fromisoformat(window["start"]).astimezone(zone)
    end = datetime.fromisoformat(window["end"]).astimezone(zone)
    times = f"{start:%H:%M}–{end:%H:%M}"
    if start.date() == at.astimezone(zone).date():
        if start.hour >= EVENING_HOUR:
            return _("tonight %(times)s") % {"times": times}
        return _("today %(times)s") % {"times": times}
    return f"{date_format(start, 'D j M')} {times}"


def _moves(tx: Transaction, namer: Namer) -> dict:
    """The user's own changes in one transaction, by what moved."""
    coins = devices = debt = None
    fiat: dict[str, int] = defaultdict(int)
    others: list[str] = []
    for posting in tx.postings.all():
        account = posting.account
        if account.organisation_id in namer.own_ids and account.kind != "issuance":
            if posting.asset_id == ENERGY:
                if account.kind == "device":
                    devices = (devices or 0) + posting.amount
                else:
                    coins = (coins or 0) + posting.amount
            elif posting.asset_id == DEBT:
                debt = (debt or 0) + posting.amount
            else:
                fiat[posting.asset_id] += posting.amount
        elif account.kind != "issuance" and account.key not in others:
            others.append(account.key)
    return {"coins": coins, "devices": devices, "debt": debt, "fiat": [(c, a) for c, a in fiat.items() if a],
            "others": others}


def history_row(tx: Transaction, namer: Namer) -> HistoryRow:
    """One transaction as the resident would say it."""
    moves = _moves(tx, namer)
    args, result = tx.args or {}, tx.result or {}
    row = HistoryRow(title="", at=tx.proposed_at, tx=tx, coins_wh=moves["coins"], device_wh=moves["devices"],
                     debt_wh=moves["debt"], fiat=moves["fiat"])
    call = (tx.chaincode, tx.function)
    mine = tx.invoker.organisation_id in namer.own_ids
    if call == ("resident", "fund"):
        public_id = str(args.get("device", ""))
        name = namer.device_name(public_id)
        amount = int(args.get("amount", 0) or 0)
        when = _window_text(result.get("window") or (
            {"start": args["window_start"], "end": args["window_end"]} if args.get("window_start") else None),
            tx.proposed_at)
        if mine and namer.owns_device(public_id):
            row.title = _("Topped up your meter (%(device)s) with %(kwh)s kWh") % {
                "device": name, "kwh": format_kwh(amount)}
            row.device_wh = None  # the coins moved from your coins to your meter: one figure
        elif mine:
            row.title = _("Funded %(device)s") % {"device": name}
        else:
            row.title = _("%(device)s was funded by %(who)s") % {
                "device": name, "who": namer.organisation_name(tx.invoker.organisation.msp_id)}
        if when:
            row.detail = _("for %(when)s") % {"when": when}
    elif call == ("resident", "settle"):
        name = namer.device_name(str(args.get("device", result.get("device", ""))))
        row.title = _("Unused coins came back from %(device)s") % {"device": name}
    elif call in (("retail-seller", "sell"), ("wholesale-seller", "sell")):
        row.title = _("Coins you bought") if str(args.get("payer", "")) in namer.own_msp else _("Coins sold")
        details = []
        if result.get("currency") and result.get("price") is not None and result.get("charged") is not None:
            currency = str(result["currency"])
            details.append(_("paid %(paid)s at %(price)s per kWh") % {
                "paid": format_money(int(result["charged"]), currency),
                "price": format_money(int(result["price"]), currency)})
        if result.get("debt_repaid"):
            details.append(_("%(kwh)s kWh paid what you owed first") % {"kwh": format_kwh(int(result["debt_repaid"]))})
        row.detail = "; ".join(details)
    elif call in (("retail-seller", "reverse"), ("wholesale-seller", "reverse")):
        row.title = {"refund": _("Purchase refunded"), "dispute": _("Payment disputed"),
                     "return": _("Payment returned by the bank")}.get(str(result.get("kind", args.get("kind"))),
                                                                      _("Purchase reversed"))
        if result.get("owed"):
            row.detail = _("%(kwh)s kWh was already used: you owe it, and your next purchase pays it first") % {
                "kwh": format_kwh(int(result["owed"]))}
    elif call == ("token", "transfer"):
        received = (row.coins_wh or 0) + (row.device_wh or 0) > 0 or any(a > 0 for _c, a in row.fiat)
        other = namer.account(moves["others"][0]) if moves["others"] else _("another account")
        row.title = (_("Received from %(who)s") if received else _("Sent to %(who)s")) % {"who": other}
    elif call == ("token", "mint"):
        row.title = _("Coins added by %(who)s") % {"who": namer.organisation_name(tx.invoker.organisation.msp_id)}
    elif call == ("token", "burn"):
        row.title = _("Coins removed")
    elif call == ("pricing", "set"):
        row.title = _("Price changed")
    elif call == ("consumer", "burn"):
        row.title = _("%(device)s used electricity") % {"device": namer.device_name(tx.invoker.name)}
    elif call == ("generator", "mint"):
        row.title = _("%(device)s produced electricity") % {"device": namer.device_name(tx.invoker.name)}
    else:
        row.title = _("Other ledger entry")
    if tx.status != TxStatus.VALID:  # recorded with its reason, moved nothing
        row.title = _("%(what)s (refused)") % {"what": row.title}
    return row


def _day_bounds(day: date, zone) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)


def resident_history(user, *, before: int | None = None, limit: int = 20) -> tuple[list[HistoryRow], int | None]:
    """A page of the user's history, newest first, and the id to page back from (None on the last
    page). Meter readings fold into one row per device per local day, placed at the day's latest
    reading and totalling the whole day."""
    zone = timezone.get_current_timezone()
    namer = Namer(user)
    base = wallet_transactions(user)
    # Readings count for the user only where they moved the user's own accounts (a utility's
    # staff sign for every meter's identity but hold none of a household's coins).
    own_postings = Posting.objects.filter(transaction=OuterRef("pk"), account__organisation_id__in=namer.own_ids,
                                          asset_id=ENERGY).exclude(account__kind="issuance")
    heads = (base.filter(READINGS, Exists(own_postings), status=TxStatus.VALID).order_by().annotate(day=TruncDate("proposed_at", tzinfo=zone))
             .values("invoker_id", "day").annotate(last_id=Max("id")).values("last_id"))
    rows_qs = base.filter(~READINGS | Q(id__in=heads)).select_related("invoker__organisation")
    if before is not None:
        rows_qs = rows_qs.filter(id__lt=before)
    page = list(rows_qs.prefetch_related("postings__account", "postings__asset")[: limit + 1])
    older = page[limit - 1].pk if len(page) > limit else None
    page = page[:limit]
    namer.load_devices(str(tx.args.get("device")) for tx in page if isinstance((tx.args or {}).get("device"), str))
    namer.load_devices(tx.invoker.name for tx in page if tx.chaincode in ("consumer", "generator"))
    days = _reading_days(page, namer, zone)
    rows = []
    for tx in page:
        row = history_row(tx, namer)
        if tx.chaincode in ("consumer", "generator"):
            day = timezone.localtime(tx.proposed_at, zone).date()
            total, count = days.get((tx.invoker_id, day), (0, 0))
            row.day, row.readings, row.coins_wh, row.device_wh = day, count, None, total
            device = namer.device_name(tx.invoker.name)
            produced = tx.chaincode == "generator"
            row.title = (_("%(device)s produced %(kwh)s kWh") if produced else _("%(device)s used %(kwh)s kWh")) % {
                "device": device, "kwh": format_kwh(abs(total))}
        rows.append(row)
    return rows, older


def _reading_days(page: list[Transaction], namer: Namer, zone) -> dict[tuple[int, date], tuple[int, int]]:
    """(device identity, local day) → (the day's change of the user's accounts, readings counted)
    for the days of meter readings on a page: the whole day, not only the readings on the page."""
    wanted = {(tx.invoker_id, timezone.localtime(tx.proposed_at, zone).date())
              for tx in page if tx.chaincode in ("consumer", "generator")}
    if not wanted:
        return {}
    invokers = {i for i, _d in wanted}
    first, last = min(d for _i, d in wanted), max(d for _i, d in wanted)
    since, until = _day_bounds(first, zone)[0], _day_bounds(last, zone)[1]
    readings = Transaction.objects.filter(READINGS, invoker_id__in=invokers, status=TxStatus.VALID,
                                          proposed_at__gte=since, proposed_at__lt=until)
    counts = {(r["invoker_id"], r["day"]): r["n"] for r in readings.annotate(
        day=TruncDate("proposed_at", tzinfo=zone)).values("invoker_id", "day").annotate(n=Count("id"))}
    sums = (Posting.objects.filter(transaction__in=readings, asset_id=ENERGY, account__organisation_id__in=namer.own_ids)
            .exclude(account__kind="issuance")
            .annotate(day=TruncDate("transaction__proposed_at", tzinfo=zone))
            .values("transaction__invoker_id", "day").annotate(total=Sum("amount")))
    totals = {(s["transaction__invoker_id"], s["day"]): s["total"] for s in sums}
    return {key: (totals.get(key, 0) or 0, counts.get(key, 0)) for key in wanted}
