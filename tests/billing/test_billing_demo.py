"""The demo's billing side: the grid operator and the distributor with their logins and service
identities, and station st-ward1 serving Alice's and Bob's households; a rerun changes nothing."""

from __future__ import annotations

import pytest

from accounts.models import Membership
from billing import chain
from demo import billing as demo_billing
from demo.seed import demo_seed
from ledger.keys import BILLING_NAMESPACE, station_key
from ledger.models import Identity, StateWrite

pytestmark = pytest.mark.django_db


def test_the_demo_has_a_grid_a_distributor_and_a_station():
    demo_seed()
    assert chain.station_state("st-ward1") == {"distributor": "discom", "societies": ["hh-alice", "hh-bob"]}
    logins = set(Membership.objects.filter(organisation__msp_id__in=["gridop", "discom"]).values_list(
        "user__username", "organisation__msp_id", "organisation__org_type"))
    assert logins == {("grid", "gridop", "grid"), ("distributor", "discom", "distributor")}
    services = set(Identity.objects.filter(name=chain.SERVICE_IDENTITY).values_list("organisation__msp_id", "kind"))
    assert services == {("gridop", "service"), ("discom", "service"), ("gridco-utility", "service")}

    assert demo_seed() == [] and demo_billing.billing_seed() == []
    assert StateWrite.objects.filter(namespace=BILLING_NAMESPACE, key=station_key("st-ward1")).count() == 1
