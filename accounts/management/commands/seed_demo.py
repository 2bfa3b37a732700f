"""``manage.py seed_demo``: a small demo network, built only through services and chaincode.

Idempotent: every object is looked up before it is created and every coin movement carries a
fixed idempotency key, so a second run changes nothing and says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services as accounts
from accounts.models import Membership, Role
from ledger import services as ledger
from ledger.documents import body_digest
from ledger.models import Account, Asset, Organisation, OrgType, Transaction
from meters.demo import seed_devices
from meters.models import Device
from meters.services import simulated_signer
from payments.demo import DEMO_BANK, seed_payments
from payments.models import BankSecret, ProcessedEvent
from payments.services import bank_notification_body, bank_secret_reveal, bank_webhook_receive
from payments.signing import signature_header

DEMO_PASSWORD = "gridcoin-demo"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str


# Read by the home page, which lists only the ones that exist.
DEMO_LOGINS: list[DemoLogin] = [
    DemoLogin("utility", "Utility operator (GridCo): mints and sells coins, sees the whole ledger"),
    DemoLogin("producer", "Producer (SunFarm solar array)"),
    DemoLogin("auditor", "Auditor: reads and verifies every block"),
    DemoLogin("alice", "Resident, owner of Alice's household"),
    DemoLogin("bob", "Resident, owner of Bob's household"),
    DemoLogin("carol", "Resident, member of Alice's household"),
]

UTILITY, PRODUCER, BANK, CHARITY, AUDITOR = "gridco-utility", "sunfarm", "demobank", "warmhomes", "audit"
ORGANISATIONS = [
    (UTILITY, "GridCo Utility", OrgType.UTILITY),
    (PRODUCER, "SunFarm Solar", OrgType.PRODUCER),
    (BANK, "Demo Bank", OrgType.BANK),
    (CHARITY, "Warm Homes", OrgType.CHARITY),
    (AUDITOR, "Independent Audit", OrgType.AUDITOR),
]
OPERATORS = [("utility", UTILITY), ("producer", PRODUCER), ("auditor", AUDITOR)]
RESIDENTS = ["alice", "bob"]
# The demo's coins move the way real ones do: the producer's meter mints, the bank reports
# the utility's wholesale purchase and a resident's retail purchase (prices from seed_payments).
GENERATED_WH = 1_000_000  # 1,000 kWh
WHOLESALE = ("seed-demo-wholesale", UTILITY, PRODUCER, "wholesale-seller", 200_000)  # ₹2,000.00 → 400 kWh
RETAIL = ("seed-demo-retail-alice", "hh-alice", UTILITY, "retail-seller", 4_000)  # ₹40.00 → 5 kWh


def _existing_membership(user, organisation: Organisation) -> Membership:
    """A demo username that exists without its demo role was claimed by someone else: granting
    it the role would hand a stranger the utility's keys, so refuse."""
    membership = Membership.objects.filter(user=user, organisation=organisation).first()
    if membership is None:
        raise CommandError(
            f"user {user.get_username()!r} exists but is not a member of {organisation.msp_id}; "
            "refusing to grant demo roles to an account the seed did not create"
        )
    return membership


@transaction.atomic
def demo_seed() -> list[str]:
    """Create whatever part of the demo is missing; return what was created (empty if nothing)."""
    User = get_user_model()
    created: list[str] = []

    orgs: dict[str, Organisation] = {}
    for msp_id, name, org_type in ORGANISATIONS:
        org = Organisation.objects.filter(msp_id=msp_id).first()
        if org is None:
            org = ledger.organisation_create(msp_id=msp_id, name=name, org_type=org_type)
            created.append(f"organisation {msp_id}")
        elif org.org_type != org_type:
            raise CommandError(f"organisation {msp_id} exists with type {org.org_type}, not {org_type}")
        orgs[msp_id] = org

    for code, name, scale, unit in [("k", "Energy coin", 3, "kWh"), ("INR", "Indian rupee credit", 2, "INR")]:
        if not Asset.objects.filter(code=code).exists():
            ledger.asset_create(code=code, name=name, scale=scale, display_unit=unit, issuer=orgs[UTILITY])
            created.append(f"asset {code}")

    memberships: dict[str, Membership] = {}
    for username, msp_id in OPERATORS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(username=username, password=DEMO_PASSWORD)
            memberships[username] = accounts.membership_create(user=user, organisation=orgs[msp_id], role=Role.OWNER)
            created.append(f"user {username}")
        else:
            memberships[username] = _existing_membership(user, orgs[msp_id])

    households: dict[str, Organisation] = {}
    for username in RESIDENTS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = accounts.user_signup(
                username=username, password=DEMO_PASSWORD, household_name=f"{username.title()}'s household"
            )
            created.append(f"user {username}")
        households[username] = accounts.membership_for(user).organisation
        key = accounts.household_account_key(households[username])
        if not Account.objects.filter(key=key, asset_id="k").exists():
            ledger.account_open(key=key, asset="k", organisation=households[username])
            created.append(f"account {key}")

    carol = User.objects.filter(username="carol").first()
    if carol is None:
        carol = User.objects.create_user(username="carol", password=DEMO_PASSWORD)
        accounts.membership_create(user=carol, organisation=households["alice"], role=Role.MEMBER)
        created.append("user carol")
    else:
        _existing_membership(carol, households["alice"])

    created += seed_payments()
    created += seed_devices()
    created += _seed_energy()
    return created


def _seed_energy() -> list[str]:
    """Mint through the producer's meter, then buy wholesale and retail through signed bank
    notifications (the same path as ``POST /webhooks/bank/``). Fixed idempotency keys and event
    ids make a rerun a no-op."""
    created: list[str] = []
    meter = Device.objects.select_related("identity").get(public_id="PM-0001")
    key = "seed-demo-generate"
    done = Transaction.objects.filter(invoker=meter.identity, idempotency_key=key).first()
    if done is not None and done.body_digest != body_digest("generator", "mint", {"amount": GENERATED_WH}):
        raise CommandError(f"{key} was already used for something else ({done.tx_hash})")
    if done is None:
        result = ledger.invoke(chaincode="generator", function="mint", args={"amount": GENERATED_WH},
                               invoker=meter.identity, idempotency_key=key, signer=simulated_signer(meter))
        if not result.ok:
            raise CommandError(f"generator.mint was rejected: {result.reason}")
        created.append(f"generator.mint {GENERATED_WH} Wh by PM-0001")
    bank = Organisation.objects.get(msp_id=DEMO_BANK)
    secret = BankSecret.objects.filter(organisation=bank, active=True).order_by("-id").first()
    for event_id, payer, payee, chaincode, amount in (WHOLESALE, RETAIL):
        if ProcessedEvent.objects.filter(provider="bank", scope=DEMO_BANK, event_id=event_id).exists():
            continue  # a redelivery would carry a new payment time, i.e. another body
        now = int(time.time())
        body = bank_notification_body(event_id=event_id, bank=DEMO_BANK, payer=payer, payee=payee,
                                      chaincode=chaincode, amount=amount, currency="INR", created=now)
        outcome = bank_webhook_receive(raw_body=body, now=now,
                                       signature_header=signature_header([bank_secret_reveal(secret)], now, body))
        if outcome.http_status != 200:
            raise CommandError(f"{chaincode} {event_id} was refused: {outcome.body}")
        if outcome.body.get("status") == "applied":
            created.append(f"{chaincode}.sell {event_id}")
    return created


class Command(BaseCommand):
    help = "Create the demo network (organisations, assets, users, accounts, coins). Safe to run twice."

    def handle(self, *args, **options):
        created = demo_seed()
        if not created:
            self.stdout.write("The demo data already exists; nothing changed.")
            return
        self.stdout.write(self.style.SUCCESS(f"Seeded the demo ({len(created)} objects):"))
        for item in created:
            self.stdout.write(f"  {item}")
        names = ", ".join(login.username for login in DEMO_LOGINS)
        self.stdout.write(f"Demo logins: {names} (password {DEMO_PASSWORD!r})")
