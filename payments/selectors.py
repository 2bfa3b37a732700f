"""Reads for payments: who may see the audit, who may use the simulator, dropdown choices."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Membership
from ledger.keys import (
    BILLING_CONFIG_KEY,
    BILLING_NAMESPACE,
    DEBT,
    DEVICES_NAMESPACE,
    ENERGY,
    campaign_key,
    dues_key,
    society_of_bill_account,
)
from ledger.models import Account, Asset, Organisation, OrgType
from ledger.selectors import world_state
from ledger.units import format_amount

from .models import Payment, PaymentState, WebhookEvent


def _member_organisations(user) -> list[Organisation]:
    if not getattr(user, "is_authenticated", False):
        return []
    return [m.organisation for m in Membership.objects.select_related("organisation").filter(user=user)]


def can_view_webhook_events(user) -> bool:
    return any(o.org_type in (OrgType.UTILITY, OrgType.BANK) for o in _member_organisations(user))


def webhook_events_visible_to(user) -> QuerySet[WebhookEvent]:
    """The utility runs the platform and sees every delivery; a bank sees the deliveries its
    secrets signed (or its Stripe metadata named); everybody else sees none."""
    orgs = _member_organisations(user)
    qs = WebhookEvent.objects.select_related("organisation").order_by("-id")
    if any(o.org_type == OrgType.UTILITY for o in orgs):
        return qs
    banks = [o.pk for o in orgs if o.org_type == OrgType.BANK]
    return qs.filter(organisation_id__in=banks) if banks else qs.none()


@dataclass(frozen=True)
class SimulatorAccess:
    """``operator``: utility or bank staff, any payer; ``resident``: pays only from own household."""

    mode: str  # "operator" | "resident" | ""
    households: list[Organisation]
    banks: list[Organisation]  # banks the user may sign as

    @property
    def allowed(self) -> bool:
        return bool(self.mode)


def simulator_access(user) -> SimulatorAccess:
    orgs = _member_organisations(user)
    types = {o.org_type for o in orgs}
    households = [o for o in orgs if o.org_type == OrgType.HOUSEHOLD]
    signing_banks = Organisation.objects.filter(org_type=OrgType.BANK, webhook_secrets__active=True).distinct()
    if OrgType.UTILITY in types:
        return SimulatorAccess("operator", households, list(signing_banks.order_by("msp_id")))
    if OrgType.BANK in types:
        own = [o.pk for o in orgs if o.org_type == OrgType.BANK]
        return SimulatorAccess("operator", households, list(signing_banks.filter(pk__in=own).order_by("msp_id")))
    if households:
        return SimulatorAccess("resident", households, list(signing_banks.order_by("msp_id")))
    return SimulatorAccess("", [], [])


def campaign_utility(slug: str) -> str:
    """The msp id of the utility a campaign's donations pay (from its ledger record), or ""."""
    state = world_state(DEVICES_NAMESPACE, [campaign_key(slug)]).get(campaign_key(slug))
    utility = state.get("utility") if isinstance(state, dict) else None
    return utility if isinstance(utility, str) else ""


def dues_utility() -> str:
    """The msp id of the utility dues are paid to (``billing-config``), or ""."""
    config = world_state(BILLING_NAMESPACE, [BILLING_CONFIG_KEY]).get(BILLING_CONFIG_KEY)
    utility = config.get("utility") if isinstance(config, dict) else None
    return utility if isinstance(utility, str) else ""


def outstanding_dues(user, account: str) -> int | None:
    """What the household of a bill account owes (paise), if ``user`` may see it (a member of
    that household, the utility, an auditor, as ``readDues`` allows); else None."""
    society = society_of_bill_account(account)
    if society is None:
        return None
    orgs = _member_organisations(user)
    if not any(o.msp_id == society or o.org_type in (OrgType.UTILITY, OrgType.AUDITOR) for o in orgs):
        return None
    dues = world_state(BILLING_NAMESPACE, [dues_key(society)]).get(dues_key(society))
    outstanding = dues.get("outstanding") if isinstance(dues, dict) else None
    return outstanding if isinstance(outstanding, int) else None


def organisations_of_types(*types: str) -> QuerySet[Organisation]:
    return Organisation.objects.filter(org_type__in=types).order_by("org_type", "name")


def fiat_assets() -> QuerySet[Asset]:
    return Asset.objects.exclude(code=ENERGY).order_by("code")


def payments_credited(*, provider: str, scope: str, since: datetime, until: datetime) -> QuerySet[Payment]:
    """Payments of one processor (and bank, ``scope``) credited in [since, until)."""
    return Payment.objects.filter(provider=provider, scope=scope, state=PaymentState.CREDITED,
                                  credited_at__gte=since, credited_at__lt=until).order_by("id")


def payments_by_id(*, provider: str, scope: str, payment_ids: Iterable[str]) -> dict[str, Payment]:
    """The payments known under these processor ids (any state), by id."""
    ids = list(payment_ids)
    return {p.payment_id: p for p in Payment.objects.filter(provider=provider, scope=scope, payment_id__in=ids)}


def energy_debt_of(msp_id: str) -> int:
    """Wh the organisation owes after reversals (refunds, lost disputes, returns) took back
    energy it had already spent; paid first out of its next purchase."""
    owed = (Account.objects.filter(key__startswith=f"debt:{msp_id}@", asset_id=DEBT)
            .aggregate(total=Sum("balance"))["total"])
    return owed or 0


@dataclass(frozen=True)
class EnergyDebt:
    debtor: Organisation
    creditor: str  # msp id
    wh: int

    @property
    def kwh(self) -> str:
        return format_amount(self.wh, 3)


def energy_debts_of_user(user) -> list[EnergyDebt]:
    """What the user's organisations owe (non-zero), one line per creditor."""
    orgs = {o.pk: o for o in _member_organisations(user)}
    rows = (Account.objects.filter(organisation_id__in=orgs, asset_id=DEBT, balance__gt=0)
            .order_by("organisation_id", "key").values_list("organisation_id", "key", "balance"))
    return [EnergyDebt(orgs[org_id], key.partition("@")[2], wh) for org_id, key, wh in rows]


# --- sales per day, for the utility's dashboard

RETAIL_CHAINCODE = "retail-seller"


def retail_sales_by_day(*, payee: str, since: datetime, until: datetime) -> dict[tuple[date, str], int]:
    """Minor units of the retail payments to ``payee`` (a utility's msp id) credited in
    ``[since, until)``, by (day of the current time zone, currency): the sales the ledger
    settled, whatever reversals came later. Days without a sale are absent."""
    rows = (Payment.objects.filter(chaincode=RETAIL_CHAINCODE, payee=payee, state=PaymentState.CREDITED,
                                   credited_at__gte=since, credited_at__lt=until)
            .annotate(day=TruncDate("credited_at", tzinfo=timezone.get_current_timezone()))
            .values("day", "currency").annotate(total=Sum("amount")).order_by("day", "currency"))
    return {(row["day"], row["currency"]): int(row["total"]) for row in rows}
