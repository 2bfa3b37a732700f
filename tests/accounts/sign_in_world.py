"""People for the sign-in tests: a resident (household) and utility staff, made through the
real services."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from accounts.models import Role
from accounts.services import membership_create, user_signup
from ledger import services as ledger
from ledger.models import OrgType

PASSWORD = "correct-horse-battery"


def resident(username: str = "rita", email: str = ""):
    return user_signup(username=username, password=PASSWORD, email=email)


def utility_staff(username: str = "uma"):
    from ledger.models import Organisation

    utility = (Organisation.objects.filter(msp_id="gridco-utility").first()
               or ledger.organisation_create(msp_id="gridco-utility", name="GridCo", org_type=OrgType.UTILITY))
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    membership_create(user=user, organisation=utility, role=Role.OWNER)
    return user


def login_post(client, username: str, password: str = PASSWORD, next_url: str = "", **extra):
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post("/accounts/login/", data, **extra)
