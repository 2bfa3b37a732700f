"""The demo's organisations, assets and users: who the demo is, and the logins the home page
lists. Everything is looked up before it is created, so a rerun makes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from accounts import services as accounts
from accounts.models import Membership, Role
from ledger import services as ledger
from ledger.models import Account, Asset, Organisation, OrgType

from .errors import DemoSeedError

DEMO_PASSWORD = "gridcoin-demo"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str


DEMO_LOGINS: list[DemoLogin] = [
    DemoLogin("utility", "Utility operator (GridCo): mints and sells coins, sees the whole ledger"),
    DemoLogin("producer", "Producer (SunFarm solar array)"),
    DemoLogin("auditor", "Auditor: reads and verifies every block"),
    DemoLogin("charity", "Charity staff (Warm Homes): runs the heat-wave campaign, posts updates, disburses"),
    DemoLogin("grid", "Grid operator (State Grid): records each 15-minute slot's average frequency"),
    DemoLogin("distributor", "Distributor (Ward Power): runs station st-ward1, records its households' units and bills"),
    DemoLogin("alice", "Resident, owner of Alice's household"),
    DemoLogin("bob", "Resident, owner of Bob's household"),
    DemoLogin("carol", "Resident, member of Alice's household"),
]

UTILITY, PRODUCER, BANK, CHARITY, AUDITOR = "gridco-utility", "sunfarm", "demobank", "warmhomes", "audit"
GRID, DISTRIBUTOR = "gridop", "discom"
ORGANISATIONS = [
    (UTILITY, "GridCo Utility", OrgType.UTILITY),
    (PRODUCER, "SunFarm Solar", OrgType.PRODUCER),
    (BANK, "Demo Bank", OrgType.BANK),
    (CHARITY, "Warm Homes", OrgType.CHARITY),
    (AUDITOR, "Independent Audit", OrgType.AUDITOR),
    (GRID, "State Grid", OrgType.GRID),
    (DISTRIBUTOR, "Ward Power", OrgType.DISTRIBUTOR),
]
ASSETS = [("k", "Energy coin", 3, "kWh"), ("INR", "Indian rupee credit", 2, "INR")]
OPERATORS = [("utility", UTILITY), ("producer", PRODUCER), ("auditor", AUDITOR), ("charity", CHARITY),
             ("grid", GRID), ("distributor", DISTRIBUTOR)]
RESIDENTS = ["alice", "bob"]
HOUSEHOLD_MEMBERS = [("carol", "alice")]  # (member, the resident whose household they join)


def demo_organisation(msp_id: str, name: str, org_type: str, created: list[str]) -> Organisation:
    """The demo organisation ``msp_id``, created if missing; one of another type is refused."""
    org = Organisation.objects.filter(msp_id=msp_id).first()
    if org is None:
        created.append(f"organisation {msp_id}")
        return ledger.organisation_create(msp_id=msp_id, name=name, org_type=org_type)
    if org.org_type != org_type:
        raise DemoSeedError(f"organisation {msp_id} exists with type {org.org_type}, not {org_type}")
    return org


def _demo_member(username: str, organisation: Organisation, role: str, created: list[str]) -> Membership:
    """A demo username that exists without its demo role was claimed by someone else: granting
    it the role would hand a stranger the organisation's keys, so refuse."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User.objects.create_user(username=username, password=DEMO_PASSWORD)
        created.append(f"user {username}")
        return accounts.membership_create(user=user, organisation=organisation, role=role)
    membership = Membership.objects.filter(user=user, organisation=organisation).first()
    if membership is None:
        raise DemoSeedError(
            f"user {username!r} exists but is not a member of {organisation.msp_id}; "
            "refusing to grant demo roles to an account the seed did not create"
        )
    return membership


def _demo_resident(username: str, created: list[str]) -> Organisation:
    """A resident signs up as anyone would (user, household, identity, k account)."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        user = accounts.user_signup(username=username, password=DEMO_PASSWORD,
                                    household_name=f"{username.title()}'s household")
        created.append(f"user {username}")
    household = accounts.membership_for(user).organisation
    key = accounts.household_account_key(household)
    if not Account.objects.filter(key=key, asset_id="k").exists():
        ledger.account_open(key=key, asset="k", organisation=household)
        created.append(f"account {key}")
    return household


def organisations_seed() -> list[str]:
    """Create the demo's organisations, assets, operators, residents and household members
    that are missing; return what was created. The caller holds the transaction."""
    created: list[str] = []
    orgs = {msp_id: demo_organisation(msp_id, name, org_type, created) for msp_id, name, org_type in ORGANISATIONS}
    for code, name, scale, unit in ASSETS:
        if not Asset.objects.filter(code=code).exists():
            ledger.asset_create(code=code, name=name, scale=scale, display_unit=unit, issuer=orgs[UTILITY])
            created.append(f"asset {code}")
    for username, msp_id in OPERATORS:
        _demo_member(username, orgs[msp_id], Role.OWNER, created)
    households = {username: _demo_resident(username, created) for username in RESIDENTS}
    for username, resident in HOUSEHOLD_MEMBERS:
        _demo_member(username, households[resident], Role.MEMBER, created)
    return created
