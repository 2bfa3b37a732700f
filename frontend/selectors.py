"""Reads for the pages: what the signed-in user holds and which demo logins exist."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model

from accounts.models import Membership
from ledger.models import Account, Organisation


@dataclass
class OrganisationSummary:
    organisation: Organisation
    role: str
    accounts: list[Account] = field(default_factory=list)


def organisations_with_accounts(user) -> list[OrganisationSummary]:
    """The user's organisations (with their role) and each organisation's own accounts."""
    if not user.is_authenticated:
        return []
    memberships = Membership.objects.filter(user=user).select_related("organisation").order_by("id")
    summaries = {m.organisation_id: OrganisationSummary(m.organisation, m.role) for m in memberships}
    accounts = (
        Account.objects.filter(organisation_id__in=summaries)
        .exclude(kind="issuance")
        .select_related("asset")
        .order_by("asset_id", "key")
    )
    for account in accounts:
        summaries[account.organisation_id].accounts.append(account)
    return list(summaries.values())


def demo_logins_present():
    """The seed's demo logins whose users exist (none on a network that was not seeded)."""
    from accounts.management.commands.seed_demo import DEMO_LOGINS, DEMO_PASSWORD

    existing = set(
        get_user_model()
        .objects.filter(username__in=[d.username for d in DEMO_LOGINS])
        .values_list("username", flat=True)
    )
    return [d for d in DEMO_LOGINS if d.username in existing], DEMO_PASSWORD
