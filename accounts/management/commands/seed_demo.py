"""``manage.py seed_demo``: a small demo network, built only through services and chaincode.

Idempotent: every object is looked up before it is created and every coin movement carries a
fixed idempotency key, so a second run changes nothing and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services as accounts
from accounts.models import Membership, Role
from ledger import services as ledger
from ledger.documents import body_digest
from ledger.models import Account, Asset, Organisation, OrgType, Transaction, TxStatus

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
PRODUCER_ACCOUNT, UTILITY_ACCOUNT = "producer:sunfarm", "utility:gridco"


def _movements(alice_account: str) -> list[tuple[str, str, dict]]:
    """(idempotency key, function, args) of the token chaincode, all invoked by the utility."""
    return [
        ("seed-demo-mint-producer", "mint", {"to": PRODUCER_ACCOUNT, "asset": "k", "amount": 50_000}),
        ("seed-demo-mint-utility", "mint", {"to": UTILITY_ACCOUNT, "asset": "k", "amount": 20_000}),
        (
            "seed-demo-transfer-alice",
            "transfer",
            {"from": UTILITY_ACCOUNT, "to": alice_account, "asset": "k", "amount": 5_000},
        ),
    ]


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

    for key, msp_id in [(PRODUCER_ACCOUNT, PRODUCER), (UTILITY_ACCOUNT, UTILITY)]:
        if not Account.objects.filter(key=key, asset_id="k").exists():
            ledger.account_open(key=key, asset="k", organisation=orgs[msp_id])
            created.append(f"account {key}")

    utility_identity = memberships["utility"].identity
    for idempotency_key, function, args in _movements(accounts.household_account_key(households["alice"])):
        # Look first, like every step above: a rerun need not ask the ledger to replay.
        done = Transaction.objects.filter(invoker=utility_identity, idempotency_key=idempotency_key).first()
        if done is not None:
            if done.body_digest != body_digest("token", function, args) or done.status != TxStatus.VALID:
                raise CommandError(f"{idempotency_key} was already used for something else ({done.tx_hash})")
            continue
        result = accounts.invoke_as(
            identity=utility_identity, chaincode="token", function=function, args=args, idempotency_key=idempotency_key
        )
        if not result.ok:
            raise CommandError(f"token.{function} {args} was rejected: {result.reason}")
        if not result.replayed:
            created.append(f"token.{function} {idempotency_key}")
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
