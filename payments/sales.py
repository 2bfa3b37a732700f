"""Applying a verified payment notice: the dispatch table from chaincode to who pays whom and
which accounts the sale needs, the bank's invoking identity, and the claim, the ledger
invocation and the audit row in one database transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction

from accounts.keys import custodial_signer
from accounts.services import service_identity
from ledger import services as ledger
from ledger.documents import body_digest
from ledger.keys import (
    ENERGY,
    UTILITY_SHARDS,
    credit_account,
    household_account,
    producer_account,
    utility_account,
)
from ledger.models import Asset, Identity, Organisation, OrgType
from ledger.selectors import (
    IdentityKey,
    OrganisationRow,
    existing_accounts,
    identity_key_and_organisations,
    identity_named,
)

from .claims import claim_event, redelivery, unclaimable
from .deliveries import Delivery, Settlement, WebhookOutcome, WebhookRefused, sale_summary
from .models import BankSecret, DeliveryStatus
from .notices import BILL_PURPOSE, BILLING_CHAINCODE, CHARITY_CHAINCODE, Donor, PaymentFacts, PaymentNotice
from .rows import loaded
from .secrets import WEBHOOK_IDENTITY, StaleSecret, bank_secrets, webhook_identity_of
from .signals import donation_credited, payment_credited

logger = logging.getLogger(__name__)

# --- the dispatch table: chaincode → who pays whom and which accounts the sale needs --------

AccountSpec = tuple[str, str, OrganisationRow]  # (key, asset, owner)


@dataclass(frozen=True)
class SaleRoute:
    chaincode: str
    function: str
    payer_type: str
    payee_type: str
    accounts: Callable[[PaymentNotice, OrganisationRow | None, OrganisationRow], list[AccountSpec]]
    payer_optional: bool = False  # a donor without an account pays as payer ""

    @property
    def name(self) -> str:
        return f"{self.chaincode}.{self.function}"


def _retail_accounts(notice: PaymentNotice, payer: OrganisationRow | None,
                     payee: OrganisationRow) -> list[AccountSpec]:
    assert payer is not None
    return [(credit_account(payer.msp_id, payee.msp_id), notice.currency, payer),
            (household_account(payer.msp_id), ENERGY, payer)]


def _wholesale_accounts(notice: PaymentNotice, payer: OrganisationRow | None,
                        payee: OrganisationRow) -> list[AccountSpec]:
    assert payer is not None
    return [(credit_account(payer.msp_id, payee.msp_id), notice.currency, payer),
            (producer_account(payee.msp_id), ENERGY, payee),
            *((utility_account(payer.msp_id, n), ENERGY, payer) for n in range(UTILITY_SHARDS))]


def _donation_accounts(notice: PaymentNotice, payer: OrganisationRow | None,
                       payee: OrganisationRow) -> list[AccountSpec]:
    # The pool (k and the campaign's currency, which keeps the sub-Wh remainder) is opened by
    # the charity app with the campaign; the coins come from the utility's shards.
    return []


def _contribution_accounts(notice: PaymentNotice, payer: OrganisationRow | None,
                           payee: OrganisationRow) -> list[AccountSpec]:
    # The escrow is opened with the group funding; the sub-Wh remainder stays the household's
    # credit with the utility, as a purchase's does.
    assert payer is not None
    return [(credit_account(payer.msp_id, payee.msp_id), notice.currency, payer)]


def _dues_accounts(notice: PaymentNotice, payer: OrganisationRow | None,
                   payee: OrganisationRow) -> list[AccountSpec]:
    # Dues are world state of energy-billing (the money itself is fiat): no account moves.
    return []


# Keyed by (chaincode, function): what a payment's chaincode and purpose route to.
SALE_ROUTES: dict[tuple[str, str], SaleRoute] = {
    ("retail-seller", "sell"): SaleRoute("retail-seller", "sell", OrgType.HOUSEHOLD, OrgType.UTILITY, _retail_accounts),
    ("wholesale-seller", "sell"): SaleRoute("wholesale-seller", "sell", OrgType.UTILITY, OrgType.PRODUCER,
                                            _wholesale_accounts),
    (CHARITY_CHAINCODE, "donate"): SaleRoute(CHARITY_CHAINCODE, "donate", OrgType.HOUSEHOLD, OrgType.UTILITY,
                                             _donation_accounts, payer_optional=True),
    (CHARITY_CHAINCODE, "contribute_paid"): SaleRoute(CHARITY_CHAINCODE, "contribute_paid", OrgType.HOUSEHOLD,
                                                      OrgType.UTILITY, _contribution_accounts),
    (BILLING_CHAINCODE, "payDues"): SaleRoute(BILLING_CHAINCODE, "payDues", OrgType.HOUSEHOLD, OrgType.UTILITY,
                                              _dues_accounts),
}


def check_parties(notice: PaymentNotice, route: SaleRoute,
                   orgs: dict[str, OrganisationRow]) -> tuple[OrganisationRow | None, OrganisationRow]:
    """The payer's and payee's rows, of the types the route needs (payer None: a donor
    without an account, where the route allows one)."""
    parties = [("payee", notice.payee, route.payee_type)]
    if notice.payer or not route.payer_optional:
        parties.insert(0, ("payer", notice.payer, route.payer_type))
    for role, msp_id, wanted in parties:
        org = orgs.get(msp_id)
        if org is None:
            raise WebhookRefused(400, f"unknown {role} {msp_id!r}")
        if org.org_type != wanted:
            raise WebhookRefused(400, f"{route.name} needs a {wanted} as {role}; {msp_id} is a {org.org_type}")
    return orgs.get(notice.payer) if notice.payer else None, orgs[notice.payee]


# Accounts known to exist, keyed with their owner's id and creation time: ledger accounts are
# never deleted while their organisation row lives, and a recreated organisation (a test
# database flushed) has another creation time, so a stale entry cannot match.
_known_accounts: set[tuple[str, str, int, str]] = set()


def open_accounts(specs: list[AccountSpec], currency: str) -> None:
    """Open the (zero-balance) accounts the sale touches; no query once they are known."""
    unknown = [(key, asset, owner) for key, asset, owner in specs
               if (key, asset, owner.pk, owner.created_at) not in _known_accounts]
    if not unknown:
        return
    found = existing_accounts([key for key, _, _ in unknown])
    missing = [(key, asset, owner) for key, asset, owner in unknown if (key, asset) not in found]
    if len(_known_accounts) > 200_000:
        _known_accounts.clear()
    _known_accounts.update((k, a, o.pk, o.created_at) for k, a, o in unknown if (k, a) in found)
    if not missing:
        return
    present = set(Asset.objects.filter(code__in={a for _, a, _ in missing}).values_list("code", flat=True))
    if currency not in present and any(a == currency for _, a, _ in missing):
        raise WebhookRefused(400, f"unknown currency {currency!r}: the ledger has no such asset")
    for key, asset, owner in missing:
        if asset in present:
            ledger.account_open(key=key, asset=asset, organisation=owner.organisation())
            # Known to others only once committed: until then they cannot see the row.
            entry = (key, asset, owner.pk, owner.created_at)
            transaction.on_commit(lambda entry=entry: _known_accounts.add(entry))


# --- the invoking identity --------------------------------------------------------------------

_signers: dict[tuple[int, bytes], Any] = {}


def _bank_identity(bank: Organisation) -> Identity:
    """The bank's webhook identity (read along with the bank's secrets, else read or created)."""
    identity = webhook_identity_of(bank) or identity_named(bank, WEBHOOK_IDENTITY)
    if identity is None:
        try:
            identity = service_identity(organisation=bank, name=WEBHOOK_IDENTITY)
        except IntegrityError:  # a concurrent first delivery created it (the service rolled back)
            identity = identity_named(bank, WEBHOOK_IDENTITY)
            if identity is None:
                raise
    return identity


def _signer_of(identity: Identity) -> Any:
    # Custodial keys never change for an identity; revocation is checked by the ledger.
    cache_key = (identity.pk, bytes(identity.public_key))
    signer = _signers.get(cache_key)
    if signer is None:
        signer = custodial_signer(identity)
        if len(_signers) > 1000:
            _signers.clear()
        _signers[cache_key] = signer
    return signer


def bank_invoker(bank: Organisation) -> tuple[Identity, Any]:
    """The identity that invokes the bank's sales, and its signer."""
    identity = _bank_identity(bank)
    return identity, _signer_of(identity)


def _current_identity(identity: Identity, key: IdentityKey | None) -> Identity:
    """The bank's webhook identity as just read from the database: a cached copy that names
    another row or key is stale; a changed revocation time is taken from the row."""
    if key is None or key.pk != identity.pk or key.public_key != bytes(identity.public_key):
        bank_secrets.clear()
        raise StaleSecret()
    if key.revoked_at == identity.revoked_at:
        return identity
    bank_secrets.clear()
    return loaded(Identity, id=identity.pk, organisation=identity.organisation, name=identity.name,
                  kind=identity.kind, public_key=bytes(identity.public_key), created_at=identity.created_at,
                  revoked_at=key.revoked_at)


# --- applying a verified notice ---------------------------------------------------------------

def apply_notice(d: Delivery, notice: PaymentNotice, bank: Organisation, *, scope: str,
                 secret: BankSecret | None = None) -> WebhookOutcome:
    """Claim the event id and, if it is new, the payment's credit; invoke the sale and write
    the audit row (which also records the credit on the payment), in one transaction: they
    commit or roll back together. An event reporting a payment credited before changes nothing
    and says so. ``secret`` (bank deliveries) is confirmed still active by the claiming
    statement and its bank's identity re-read; a retired secret or a changed identity raises
    StaleSecret."""
    route = SALE_ROUTES[notice.route]
    digest = body_digest(route.chaincode, route.function, notice.chaincode_args())
    claim = {"provider": d.provider, "scope": scope, "event_id": notice.event_id}
    facts = notice.facts(provider=d.provider, scope=scope)
    d.payment_key = facts.payment_id
    identity = _bank_identity(bank)
    with transaction.atomic():
        claimed = claim_event(claim, digest, payment=facts, secret=secret)
        if secret is not None and not claimed.secret_active:
            bank_secrets.clear()
            raise StaleSecret()  # rolls the claim back
        if not claimed.event:
            # Claimed before (or by a concurrent delivery that has now committed); the
            # transaction changed nothing.
            transaction.set_rollback(True)
        elif claimed.payment is None:
            return _reported_before(d, facts)
        else:
            # A refusal from here on rolls the claims back with everything else (the payment's
            # row too: the delivery's audit row names it only once it is sure to exist).
            key, orgs = identity_key_and_organisations(identity.pk if secret is not None else None,
                                                       [m for m in (notice.payer, notice.payee) if m])
            if secret is not None:
                identity = _current_identity(identity, key)
            payer, payee = check_parties(notice, route, orgs)
            open_accounts(route.accounts(notice, payer, payee), notice.currency)
            signer = _signer_of(identity)  # the identity is confirmed: its key may be looked up
            assert claimed.created is not None
            result = ledger.invoke(chaincode=route.chaincode, function=route.function,
                                   args=sale_args(facts, claimed.created), invoker=identity,
                                   idempotency_key=facts.idempotency_key, signer=signer)
            settlement = Settlement(claimed.payment, result.tx_hash, result.ok, result.reason or "")
            d.payment = claimed.payment
            if result.ok:
                credited(claimed.payment, facts, payer, result.result, tx_hash=result.tx_hash,
                         details=claimed.details)
            base = {"event_id": notice.event_id, "tx_hash": result.tx_hash, "tx_url": f"/explorer/tx/{result.tx_hash}/"}
            try:
                if result.ok:
                    return d.record(status=DeliveryStatus.APPLIED, http_status=200, tx_hash=result.tx_hash,
                                    result=result.result, settlement=settlement,
                                    body={"status": "applied", **base, **sale_summary(result.result)})
                return d.record(status=DeliveryStatus.REJECTED, http_status=422, tx_hash=result.tx_hash,
                                reason=result.reason, result={"reason": result.reason}, settlement=settlement,
                                body={"status": "rejected", **base, "error": result.reason, "retry": False})
            except Exception:
                d.payment = None  # rolled back with the sale: the 500's audit row cannot name it
                raise
    return redelivery(d, claim, digest)


def credited(payment: int, facts: PaymentFacts, payer: OrganisationRow | None, result: Any, *, tx_hash: str,
             details: dict[str, Any] | None = None) -> None:
    """Tell other apps, inside the crediting transaction, that ``payment`` was credited: a sale
    with ``payment_credited``, a charity payment with ``donation_credited`` (its donor's
    details as stored on the payment, from its first report)."""
    result = result if isinstance(result, dict) else {}
    if facts.chaincode == CHARITY_CHAINCODE:
        kind, _, slug = facts.purpose.partition(":")
        donor = Donor.from_details(facts.details if details is None else details)
        sent = donation_credited.send_robust(
            sender=PaymentFacts, payment=payment, provider=facts.provider, payment_id=facts.payment_id,
            donation_id=facts.payment_id, campaign=slug if kind == "campaign" else "",
            group=slug if kind == "group" else "", payer=facts.payer, payee=facts.payee, amount=facts.amount,
            currency=facts.currency, paid_at=facts.created, tx_hash=tx_hash, result=result, donor_name=donor.name,
            show_name=donor.show_name, donor_user=donor.user)
    else:
        assert payer is not None
        sent = payment_credited.send_robust(
            sender=PaymentFacts, payment=payment, chaincode=facts.chaincode, payer=facts.payer, payee=facts.payee,
            payer_organisation=payer, amount=facts.amount, currency=facts.currency, result=result)
    for receiver, outcome in sent:
        if isinstance(outcome, Exception):
            logger.warning("%s failed on the credit of payment %s", receiver, payment, exc_info=outcome)


def sale_args(facts: PaymentFacts, created: datetime) -> dict[str, Any]:
    """The chaincode's arguments for a payment: the same for every report of it (the ledger's
    idempotency key is the payment's), priced at the payment's stored time. A charity payment
    adds its campaign or group, a payment of dues its bill account; the donor's details never
    go on the chain."""
    args = {"event_id": facts.payment_id, "payer": facts.payer, "payee": facts.payee, "amount": facts.amount,
            "currency": facts.currency, "paid_at": created.astimezone(UTC).isoformat()}
    if facts.purpose.startswith(f"{BILL_PURPOSE}:"):
        args["account"] = facts.purpose
    elif facts.purpose:
        target, _, slug = facts.purpose.partition(":")
        args[target] = slug
    return args


def _reported_before(d: Delivery, facts: PaymentFacts) -> WebhookOutcome:
    """The event is new but its payment was credited before (a second event type, say), or was
    reported with other facts: the first is answered as a duplicate, the second refused."""
    pk, verdict, tx_hash = unclaimable(facts)
    d.payment = pk  # committed before this delivery: its audit row may name it whatever happens
    if verdict != "duplicate":
        raise WebhookRefused(409, verdict.removeprefix("conflict: "))  # rolls the event's claim back
    body: dict[str, Any] = {"status": "duplicate", "event_id": d.event_id, "reason": "payment already credited"}
    if tx_hash:
        body.update(tx_hash=tx_hash, tx_url=f"/explorer/tx/{tx_hash}/")
    return d.record(status=DeliveryStatus.DUPLICATE, http_status=200, reason="payment already credited",
                    tx_hash=tx_hash, body=body)
