"""Reads of charity campaigns and group fundings for the pages: lists and search, a campaign's
progress from its ledger world state, donors shown with consent, beneficiaries by their public
label, transparency rows (every donation, refund and disbursement with its ledger transaction),
energy burned at beneficiaries from a campaign's coins per day, and a user's donations.

The ledger is the truth for every figure that counts money or coins (``campaign/<slug>`` and
``group/<slug>`` in the ``devices`` namespace, the pool's balances); rows of this app supply
texts, names shown with consent and which Django user gave what."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import BigIntegerField, Q, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Membership
from ledger import selectors as ledger
from ledger.keys import (
    DEVICES_NAMESPACE,
    ENERGY,
    beneficiaries_key,
    campaign_key,
    group_key,
    match_account,
    pool_account,
)
from ledger.models import Account, AccountKind, Block, OrgType, Transaction, TxStatus
from meters.models import Device

from .models import (
    Beneficiary,
    Campaign,
    CampaignStatus,
    CampaignUpdate,
    Contribution,
    Donation,
    GroupFunding,
    GroupStatus,
    MatchPledge,
)

BURN_DAYS = 30  # the transparency chart's days, today last
BURNED_CACHE_SECONDS = 120
SEARCH_MAX = 100


# --- who may do what -----------------------------------------------------------------------

def charities_of(user) -> QuerySet:
    """The charity organisations the user works for (may create campaigns for)."""
    from ledger.models import Organisation

    if not user.is_authenticated or not user.is_active:
        return Organisation.objects.none()
    return Organisation.objects.filter(org_type=OrgType.CHARITY, memberships__user=user).distinct().order_by("name")


def is_charity_staff(user) -> bool:
    return charities_of(user).exists()


def may_manage(user, campaign: Campaign) -> bool:
    """Staff of the campaign's own charity edit it, post updates, disburse and cancel."""
    if not user.is_authenticated or not user.is_active:
        return False
    return Membership.objects.filter(user_id=user.pk, organisation_id=campaign.charity_id).exists()


# --- campaign lists --------------------------------------------------------------------------

def campaign_list(*, query: str = "", include_ended: bool = True) -> QuerySet[Campaign]:
    """Campaigns, open ones first then by start (newest first), optionally filtered by words
    found in the title, the story or a beneficiary's public label (the "place" people search
    for: "ward 12"). Every word must match somewhere."""
    campaigns = Campaign.objects.select_related("charity")
    for word in query.split()[:8]:
        campaigns = campaigns.filter(Q(title__icontains=word) | Q(story__icontains=word)
                                     | Q(beneficiaries__label__icontains=word))
    if not include_ended:
        campaigns = campaigns.filter(status=CampaignStatus.OPEN)
    return campaigns.distinct().order_by("-starts_at", "slug")


def campaigns_search(query: str) -> list[Campaign]:
    """``campaign_list`` with open campaigns first (those a donor can still give to), at most
    ``SEARCH_MAX``."""
    found = list(campaign_list(query=query)[:SEARCH_MAX])
    found.sort(key=lambda c: c.status != CampaignStatus.OPEN)  # stable: keeps newest first inside
    return found


def campaign_by_slug(slug: str) -> Campaign | None:
    return Campaign.objects.select_related("charity", "utility", "next_campaign").filter(slug=slug).first()


# --- progress --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Progress:
    slug: str
    status: str
    currency: str
    raised: int  # minor units of ``currency``
    goal: int
    minimum: int
    donations: int
    donors: int
    pool_wh: int  # coins in the pool now
    remainder: int  # sub-Wh remainder of fiat donations, minor units, waiting for the next one
    donated_wh: int
    matched_wh: int
    disbursed_wh: int
    refunded_wh: int

    @property
    def percent(self) -> int:
        """0..100 of the goal, floored (a bar never shows the goal reached before it is)."""
        if self.goal <= 0:
            return 100 if self.raised > 0 else 0
        return max(0, min(100, self.raised * 100 // self.goal))

    @property
    def minimum_reached(self) -> bool:
        return self.raised >= self.minimum

    def as_json(self) -> dict[str, Any]:
        return {"slug": self.slug, "status": self.status, "currency": self.currency, "raised": self.raised,
                "goal": self.goal, "minimum": self.minimum, "percent": self.percent,
                "donations": self.donations, "donors": self.donors, "pool_wh": self.pool_wh,
                "remainder": self.remainder, "donated_wh": self.donated_wh, "matched_wh": self.matched_wh,
                "disbursed_wh": self.disbursed_wh, "refunded_wh": self.refunded_wh}


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def campaign_state(slug: str) -> dict[str, Any]:
    """The ledger's ``campaign/<slug>`` ({} before the campaign is opened on the ledger)."""
    return ledger.world_state(DEVICES_NAMESPACE, [campaign_key(slug)]).get(campaign_key(slug)) or {}


def donors_count(campaign: Campaign) -> int:
    """People who gave: each signed-in donor once, each donation without an account (a card
    payment by a stranger) as one; rolled-over money counts no donor."""
    donations = campaign.donations.exclude(kind="roll")
    signed = donations.filter(donor__isnull=False).values("donor").distinct().count()
    return signed + donations.filter(donor__isnull=True).count()


def campaign_progress(campaign: Campaign) -> Progress:
    state = campaign_state(campaign.slug)
    currency = state.get("currency") or campaign.currency
    pool = pool_account(campaign.slug)
    coins = ledger.balances([pool]).get(pool, 0)
    remainder = ledger.balances([pool], asset=currency).get(pool, 0) if currency != ENERGY else 0
    donations = state.get("donations")
    return Progress(
        slug=campaign.slug, status=state.get("status") or campaign.status, currency=currency,
        raised=_int(state.get("raised")), goal=_int(state.get("goal", campaign.goal)),
        minimum=_int(state.get("minimum", campaign.minimum)),
        donations=len(donations) if isinstance(donations, list | dict) else _int(donations),
        donors=donors_count(campaign), pool_wh=coins, remainder=remainder,
        donated_wh=_int(state.get("donated_wh")), matched_wh=_int(state.get("matched_wh")),
        disbursed_wh=_int(state.get("disbursed_wh")), refunded_wh=_int(state.get("refunded_wh")))


def campaigns_progress(campaigns: list[Campaign]) -> dict[int, Progress]:
    """``campaign_progress`` of a list's campaigns in a few queries (no donor counts: 0)."""
    keys = {c.pk: campaign_key(c.slug) for c in campaigns}
    states = ledger.world_state(DEVICES_NAMESPACE, list(keys.values()))
    pools = ledger.balances([pool_account(c.slug) for c in campaigns])
    found = {}
    for c in campaigns:
        state = states.get(keys[c.pk]) or {}
        found[c.pk] = Progress(
            slug=c.slug, status=state.get("status") or c.status, currency=state.get("currency") or c.currency,
            raised=_int(state.get("raised")), goal=_int(state.get("goal", c.goal)),
            minimum=_int(state.get("minimum", c.minimum)), donations=0, donors=0,
            pool_wh=pools.get(pool_account(c.slug), 0), remainder=0, donated_wh=_int(state.get("donated_wh")),
            matched_wh=_int(state.get("matched_wh")), disbursed_wh=_int(state.get("disbursed_wh")),
            refunded_wh=_int(state.get("refunded_wh")))
    return found


def progress_for_slug(slug: str) -> dict[str, Any] | None:
    campaign = campaign_by_slug(slug)
    return None if campaign is None else campaign_progress(campaign).as_json()


# --- matching ------------------------------------------------------------------------------

@dataclass(frozen=True)
class MatchRow:
    """A campaign's sponsor match: the pledge (top-ups included), what matched donations used,
    what is left in the reserve ``match:<slug>`` and what went back to the sponsor."""

    sponsor_name: str
    sponsor_id: int
    account: str  # the account the pledge came from (a top-up must come from it too)
    cap_wh: int
    used_wh: int
    left_wh: int
    returned_wh: int


def campaign_match(campaign: Campaign, state: dict[str, Any] | None = None) -> MatchRow | None:
    """The campaign's match, figures from the ledger (the reserve's balance, ``pledged_wh`` and
    ``matched_wh`` of ``campaign/<slug>``); None without a sponsor."""
    pledge = MatchPledge.objects.filter(campaign=campaign).first()
    if pledge is None:
        return None
    state = campaign_state(campaign.slug) if state is None else state
    reserve = match_account(campaign.slug)
    returned = max(pledge.returned_wh, _int(state.get("match_returned_wh")))
    return MatchRow(sponsor_name=pledge.sponsor_name, sponsor_id=pledge.sponsor_id,
                    account=str(state.get("sponsor") or ""), cap_wh=_int(state.get("pledged_wh")) or pledge.cap_wh,
                    used_wh=_int(state.get("matched_wh")), left_wh=ledger.balances([reserve]).get(reserve, 0),
                    returned_wh=returned)


def sponsor_accounts(user, *, only: str = "") -> list[Account]:
    """The energy accounts the user may pledge matching coins from: their organisations' holder
    accounts (a household's even when empty, so a resident is told what they hold; another
    organisation's only when it holds coins: a utility has many shards). ``only``: just that
    account (a top-up comes from the account that pledged)."""
    if not user.is_authenticated or not user.is_active:
        return []
    organisations = Membership.objects.filter(user_id=user.pk).values("organisation_id")
    accounts = (Account.objects.filter(organisation_id__in=organisations, asset_id=ENERGY, kind=AccountKind.HOLDER)
                .filter(Q(balance__gt=0) | Q(organisation__org_type=OrgType.HOUSEHOLD))
                .select_related("organisation"))
    if only:
        accounts = accounts.filter(key=only)
    return list(accounts.order_by("organisation__name", "-balance", "key")[:50])


# --- people: donors with consent, beneficiaries by label ------------------------------------

@dataclass(frozen=True)
class DonorRow:
    name: str  # the name the donor consented to show, else "Anonymous"
    named: bool
    amount: int
    currency: str
    kind: str
    at: datetime


def shown_name(donation: Donation) -> str:
    if donation.show_name and donation.donor_name.strip():
        return donation.donor_name.strip()
    return _("Anonymous")


def campaign_donors(campaign: Campaign, limit: int = 50) -> list[DonorRow]:
    rows = campaign.donations.exclude(kind="roll").order_by("-created_at", "-id")[:limit]
    return [DonorRow(name=shown_name(d), named=bool(d.show_name and d.donor_name.strip()), amount=d.amount,
                     currency=d.currency, kind=d.kind, at=d.created_at) for d in rows]


@dataclass(frozen=True)
class BeneficiaryRow:
    label: str
    weight: int
    received_wh: int


def campaign_beneficiaries(campaign: Campaign) -> list[BeneficiaryRow]:
    """The public labels, the weights and what each received, never the device or household."""
    state = ledger.world_state(DEVICES_NAMESPACE, [beneficiaries_key(campaign.slug)]).get(
        beneficiaries_key(campaign.slug)) or {}
    rows = []
    for beneficiary in campaign.beneficiaries.select_related("device").order_by("id"):
        entry = state.get(beneficiary.device.public_id) or {}
        rows.append(BeneficiaryRow(label=beneficiary.label, weight=beneficiary.weight,
                                   received_wh=_int(entry.get("received") if isinstance(entry, dict) else 0)))
    return rows


def campaign_updates(campaign: Campaign) -> QuerySet[CampaignUpdate]:
    return campaign.updates.order_by("-posted_at", "-id")


# --- transparency ----------------------------------------------------------------------------

@dataclass
class LedgerRow:
    """One movement of the campaign as the ledger recorded it."""

    kind: str  # "donation", "refund", "disbursement", "match"
    what: str  # a sentence for people
    at: datetime
    tx_hash: str
    wh: int
    amount: int | None = None
    currency: str = ""
    block: int | None = None  # the block holding the transaction, None while unsealed
    extra: dict[str, Any] = field(default_factory=dict)


def _ledger_facts(hashes: list[str]) -> dict[str, tuple[int | None, datetime]]:
    """(block number or None while unsealed, the time the transaction was proposed) per hash:
    a row is dated by the ledger, not by when this app mirrored it."""
    hashes = [h for h in hashes if h]
    if not hashes:
        return {}
    found = {h: (block_id, at) for h, block_id, at in
             Transaction.objects.filter(tx_hash__in=set(hashes)).values_list("tx_hash", "block_id", "proposed_at")}
    numbers = dict(Block.objects.filter(id__in={b for b, _ in found.values() if b is not None})
                   .values_list("id", "number"))
    return {h: (numbers.get(block_id) if block_id is not None else None, at) for h, (block_id, at) in found.items()}


def campaign_tx_hashes(campaign: Campaign) -> set[str]:
    """Every ledger transaction of the campaign this app recorded (what its public proofs cover)."""
    hashes = {campaign.opened_tx}
    hashes.update(campaign.donations.values_list("tx_hash", flat=True))
    hashes.update(campaign.donations.exclude(refund_tx_hash="").values_list("refund_tx_hash", flat=True))
    hashes.update(campaign.disbursements.values_list("tx_hash", flat=True))
    if hasattr(campaign, "match"):
        try:
            hashes.add(campaign.match.tx_hash)
        except Campaign.match.RelatedObjectDoesNotExist:
            pass
    hashes.discard("")
    return hashes


def transparency_rows(campaign: Campaign, limit: int = 200) -> list[LedgerRow]:
    """Donations (with their refunds) and disbursements, newest first, each with its ledger
    transaction hash and block (for the explorer's page and the inclusion proof)."""
    rows: list[LedgerRow] = []
    for d in campaign.donations.order_by("-created_at", "-id")[:limit]:
        if d.kind == "roll":
            what = _("Rolled over from an earlier campaign")
        elif d.kind == "coins":
            what = _("Coin donation from %(name)s") % {"name": shown_name(d)}
        else:
            what = _("Donation from %(name)s") % {"name": shown_name(d)}
        rows.append(LedgerRow(kind="donation", what=what, at=d.created_at, tx_hash=d.tx_hash, wh=d.wh,
                              amount=d.amount, currency=d.currency, extra={"matched_wh": d.matched_wh}))
        if d.refund_tx_hash:
            rows.append(LedgerRow(kind="refund", what=_("Refund to %(name)s") % {"name": shown_name(d)},
                                  at=d.created_at, tx_hash=d.refund_tx_hash, wh=d.refunded_wh,
                                  amount=d.refunded_amount, currency=d.currency))
    for b in campaign.disbursements.order_by("-created_at", "-id")[:limit]:
        if b.automatic:
            what = ngettext("Disbursed automatically to %(count)s household",
                            "Disbursed automatically to %(count)s households", b.households)
        else:
            what = ngettext("Disbursed to %(count)s household", "Disbursed to %(count)s households", b.households)
        what = what % {"count": b.households}
        rows.append(LedgerRow(kind="disbursement", what=what, at=b.created_at, tx_hash=b.tx_hash, wh=b.total_wh,
                              extra={"households": b.households, "remainder_wh": b.remainder_wh}))
    match = MatchPledge.objects.filter(campaign=campaign).first()
    if match is not None and match.tx_hash:
        rows.append(LedgerRow(kind="match", what=_("Matching pledge from %(name)s") % {"name": match.sponsor_name},
                              at=match.created_at, tx_hash=match.tx_hash, wh=match.cap_wh))
    facts = _ledger_facts([r.tx_hash for r in rows])
    for row in rows:
        if row.tx_hash in facts:
            row.block, row.at = facts[row.tx_hash]
    rows.sort(key=lambda r: r.at, reverse=True)
    return rows[:limit]


# --- a transaction's proof, checked here ------------------------------------------------------

@dataclass
class ProofCheck:
    """One of the campaign's transactions with its inclusion proof, and the server's own check
    of it: recomputed from the stored hashes and header with the ledger's Merkle and signature
    functions (a stored flag proves nothing)."""

    tx: Transaction
    what: str  # what the transaction did, for people
    block: Block | None = None  # None while the transaction waits to be sealed
    leaf_index: int = 0
    tree_size: int = 0
    audit_path: list[str] = field(default_factory=list)
    included: bool = False  # the hash and the audit path give the block's Merkle root
    header_ok: bool = False  # the header hash is the hash of the header's fields
    signed_ok: bool = False  # the orderer's signature on the header verifies
    signer_trusted: bool = False  # ... and it is a key this server trusts as the orderer

    @property
    def sealed(self) -> bool:
        return self.block is not None

    @property
    def verified(self) -> bool:
        return self.sealed and self.included and self.header_ok and self.signed_ok and self.signer_trusted


def _money_kwh(amount: int, currency: str, wh: int) -> str:
    from frontend.formatting import format_kwh, format_money

    kwh = _("%(kwh)s kWh") % {"kwh": format_kwh(wh)}
    if amount and currency:
        return _("%(money)s (%(kwh)s)") % {"money": format_money(amount, currency), "kwh": kwh}
    return kwh


def transaction_what(campaign: Campaign, tx: Transaction) -> str:
    """What one of the campaign's transactions did, in a sentence (from the rows this app wrote
    after the ledger accepted, the ledger's result for a pledge's own amount)."""
    from frontend.formatting import format_kwh

    donation = campaign.donations.filter(tx_hash=tx.tx_hash).first()
    if donation is not None:
        if donation.kind == "roll":
            return _("%(kwh)s kWh rolled over from an earlier campaign") % {"kwh": format_kwh(donation.wh)}
        return _("Donation of %(what)s from %(name)s") % {
            "what": _money_kwh(donation.amount if donation.kind == "fiat" else 0, donation.currency, donation.wh),
            "name": shown_name(donation)}
    refunded = campaign.donations.filter(refund_tx_hash=tx.tx_hash).first()
    if refunded is not None:
        return _("Refund of %(what)s to %(name)s") % {
            "what": _money_kwh(refunded.refunded_amount, refunded.currency, refunded.refunded_wh),
            "name": shown_name(refunded)}
    disbursement = campaign.disbursements.filter(tx_hash=tx.tx_hash).first()
    if disbursement is not None:
        return ngettext("Disbursement of %(kwh)s kWh to %(count)s household",
                        "Disbursement of %(kwh)s kWh to %(count)s households", disbursement.households) % {
            "kwh": format_kwh(disbursement.total_wh), "count": disbursement.households}
    pledge = MatchPledge.objects.filter(campaign=campaign, tx_hash=tx.tx_hash).first()
    if pledge is not None:
        result = tx.result if isinstance(tx.result, dict) else {}
        return _("Matching pledge of %(kwh)s kWh from %(name)s") % {
            "kwh": format_kwh(_int(result.get("amount")) or pledge.cap_wh), "name": pledge.sponsor_name}
    if tx.tx_hash == campaign.opened_tx:
        return _("The campaign was opened on the ledger")
    return _("A transaction of this campaign")


def _unhex(text: str) -> bytes | None:
    try:
        return bytes.fromhex(text or "")
    except ValueError:
        return None


def proof_check(campaign: Campaign, tx_hash: str) -> ProofCheck | None:
    """The inclusion proof of one of the campaign's own transactions and its check; None when
    the hash is not one of the campaign's (or no such transaction exists)."""
    from ledger.canonical import sha256_hex
    from ledger.crypto import verify_signature
    from ledger.documents import block_header_bytes
    from ledger.merkle import verify_inclusion
    from ledger.verify import trusted_orderer_keys

    if tx_hash not in campaign_tx_hashes(campaign):
        return None
    tx = Transaction.objects.select_related("block").filter(tx_hash=tx_hash).first()
    if tx is None:
        return None
    check = ProofCheck(tx=tx, what=transaction_what(campaign, tx))
    proof = ledger.transaction_proof(tx)
    if proof is None:
        return check
    block = proof["block"]
    check.block = block
    check.leaf_index, check.tree_size, check.audit_path = proof["leaf_index"], proof["tree_size"], proof["audit_path"]
    leaf, root = _unhex(tx.tx_hash), _unhex(block.merkle_root)
    path = [node for node in map(_unhex, check.audit_path) if node is not None]
    check.included = (leaf is not None and root is not None and len(path) == len(check.audit_path)
                      and verify_inclusion(leaf, check.leaf_index, check.tree_size, path, root))
    header = block_header_bytes(number=block.number, previous_hash=block.previous_hash, merkle_root=block.merkle_root,
                                timestamp=ledger.as_utc(block.timestamp), tx_count=block.tx_count)
    check.header_ok = sha256_hex(header) == block.header_hash
    signer, signature = _unhex(block.signer_public_key), _unhex(block.signature)
    check.signed_ok = signer is not None and signature is not None and verify_signature(signer, signature, header)
    check.signer_trusted = block.signer_public_key in trusted_orderer_keys()
    return check


def _beneficiary_identities(campaign: Campaign) -> list[int]:
    """Meter identities of every device that may hold the campaign's coins: today's
    beneficiaries and any the ledger still lists (a removed one keeps what it received)."""
    state = ledger.world_state(DEVICES_NAMESPACE, [beneficiaries_key(campaign.slug)]).get(
        beneficiaries_key(campaign.slug)) or {}
    public_ids = set(state) if isinstance(state, dict) else set()
    devices = Device.objects.filter(Q(pk__in=Beneficiary.objects.filter(campaign=campaign).values("device_id"))
                                    | Q(public_id__in=public_ids))
    return [i for i in devices.values_list("identity_id", flat=True) if i is not None]


def burned_by_day(campaign: Campaign, *, first_day: date, last_day: date) -> list[tuple[date, int]]:
    """Wh burned at the campaign's beneficiaries from the campaign's coins on each local day
    (the utility's time zone) from ``first_day`` to ``last_day``: the ``campaigns`` share of
    their meters' ``consumer.burn`` results (``{slug: Wh}``, set when a burn drew on a window
    the campaign funded). Days without such a burn are 0."""
    if first_day > last_day:
        return []
    zone = timezone.get_current_timezone()
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=zone)
    until = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    identities = _beneficiary_identities(campaign)
    sums: dict[date, int] = {}
    if identities:
        # The slug is one JSON key whatever characters it holds (KT("a__b") would split it);
        # ``result ? 'campaigns'`` matches the ledger's partial index of such burns (by time).
        share = KeyTextTransform(campaign.slug, KeyTransform("campaigns", "result"))
        rows = (Transaction.objects
                .filter(invoker_id__in=identities, chaincode="consumer", function="burn", status=TxStatus.VALID,
                        proposed_at__gte=since, proposed_at__lt=until, result__has_key="campaigns",
                        result__campaigns__has_key=campaign.slug)
                .annotate(day=TruncDate("proposed_at", tzinfo=zone)).values("day")
                .annotate(total=Sum(Cast(share, BigIntegerField()))).order_by("day"))
        sums = {row["day"]: int(row["total"] or 0) for row in rows}
    return [(first_day + timedelta(days=n), sums.get(first_day + timedelta(days=n), 0))
            for n in range((last_day - first_day).days + 1)]


def burned_chart(campaign: Campaign, now: datetime | None = None):
    """The transparency chart: kWh burned at beneficiaries from the campaign's coins per day,
    the last ``BURN_DAYS`` days (never before the campaign started)."""
    from frontend import charts

    days = charts.day_list(now or timezone.now(), BURN_DAYS)
    start = timezone.localdate(campaign.starts_at)
    days = [d for d in days if d >= start] or days[-1:]
    # A public page: the sums scan every beneficiary meter's burns, so many visitors share one
    # reading for a short while (a chart by day need not be fresher than this).
    cache_key = f"charity:burned:{campaign.pk}:{days[0].isoformat()}:{days[-1].isoformat()}"
    series = cache.get(cache_key)
    if series is None:
        series = burned_by_day(campaign, first_day=days[0], last_day=days[-1])
        cache.set(cache_key, series, BURNED_CACHE_SECONDS)
    return charts.Chart(name="campaign-burned", kind="bars", unit=charts.KWH, scale=charts.ENERGY_SCALE,
                        period=_("Day"), title=_("Energy burned at beneficiaries from this campaign, per day"),
                        labels=[charts._day_label(d) for d, _wh in series],
                        series=[charts.Series(_("Burned"), [wh for _d, wh in series])])


# --- a donor ---------------------------------------------------------------------------------

def donations_of(user) -> QuerySet[Donation]:
    if not user.is_authenticated:
        return Donation.objects.none()
    return Donation.objects.filter(donor=user).select_related("campaign", "campaign__charity").order_by(
        "-created_at", "-id")


def receipt_for(user, receipt_number: str) -> Donation | None:
    """The donation with this receipt number if ``user`` may fetch its receipt: its donor, or
    staff of the campaign's charity."""
    donation = (Donation.objects.select_related("campaign", "campaign__charity", "campaign__utility")
                .filter(receipt_number=receipt_number).first())
    if donation is None or not user.is_authenticated:
        return None
    if donation.donor_id == user.pk or may_manage(user, donation.campaign):
        return donation
    return None


# --- group funding ---------------------------------------------------------------------------

@dataclass(frozen=True)
class GroupProgress:
    slug: str
    status: str
    goal_wh: int
    raised_wh: int
    contributors: int

    @property
    def percent(self) -> int:
        if self.goal_wh <= 0:
            return 100
        return max(0, min(100, self.raised_wh * 100 // self.goal_wh))

    def as_json(self) -> dict[str, Any]:
        return {"slug": self.slug, "status": self.status, "goal_wh": self.goal_wh, "raised_wh": self.raised_wh,
                "contributors": self.contributors, "percent": self.percent}


def group_by_slug(slug: str) -> GroupFunding | None:
    return GroupFunding.objects.select_related("device", "organiser").filter(slug=slug).first()


def group_progress(group: GroupFunding) -> GroupProgress:
    state = ledger.world_state(DEVICES_NAMESPACE, [group_key(group.slug)]).get(group_key(group.slug)) or {}
    contributors = state.get("contributors")
    if isinstance(contributors, dict):
        count = len(contributors)
    else:  # before the ledger knows it: from the rows
        count = group.contributions.values("account").distinct().count()
    raised = state.get("raised")
    if raised is None:
        raised = group.contributions.filter(refunded=False).aggregate(total=Sum("wh"))["total"] or 0
    return GroupProgress(slug=group.slug, status=state.get("status") or group.status,
                         goal_wh=_int(state.get("goal", group.goal_wh)), raised_wh=_int(raised), contributors=count)


def open_groups_for_device(device: Device) -> list[GroupFunding]:
    return list(GroupFunding.objects.filter(device=device, status=GroupStatus.OPEN,
                                            deadline__gt=timezone.now()).order_by("deadline"))


def group_contributions(group: GroupFunding, limit: int = 50) -> QuerySet[Contribution]:
    return group.contributions.order_by("-created_at", "-id")[:limit]


def device_choices_for_beneficiaries() -> QuerySet[Device]:
    """Household devices a campaign may fund (household meters that are not retired)."""
    from meters.models import DeviceKind, EnrolmentState

    return (Device.objects.filter(kind=DeviceKind.HOUSEHOLD_METER).exclude(state=EnrolmentState.RETIRED)
            .select_related("organisation").order_by("public_id"))
