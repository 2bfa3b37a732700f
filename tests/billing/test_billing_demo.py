"""The demo's billing side: the grid operator and the distributor with their logins and service
identities, and station st-ward1 serving Alice's and Bob's households; a rerun changes nothing."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Membership
from billing import chain, tasks
from billing.models import StationProgress
from demo import billing as demo_billing
from demo.seed import demo_seed
from ledger.keys import BILLING_CONFIG_KEY, BILLING_NAMESPACE, station_key
from ledger.models import Identity, StateWrite
from ledger.selectors import world_state

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
    config = chain.billing_config()  # the utility's dues terms: bills can be paid to it
    assert config["utility"] == "gridco-utility" and config["fine"] == demo_billing.DUES_TERMS["fine"]
    assert StateWrite.objects.filter(namespace=BILLING_NAMESPACE, key=BILLING_CONFIG_KEY).count() == 1


def test_the_demo_meters_week_becomes_a_chain_of_slot_units():
    """The billing tasks on the demo: Alice's and Bob's slots over the last two days follow each
    other reading to reading, so their units add up to what the meters' registers moved."""
    demo_seed()
    now = timezone.now().isoformat()  # fixed: a slot closing between the two passes must not count
    result = tasks.record_units(now=now)
    assert result["recorded"] > 90 and result["failed"] == 0
    progress = StationProgress.objects.get(station="st-ward1")
    for society in demo_billing.SOCIETIES:
        found = world_state(BILLING_NAMESPACE, prefix="units/st-ward1/")
        records = [found[key] for key in sorted(found) if key.endswith(f"/{society}")]
        assert len(records) == result["recorded"] and records[-1]["endTime"] <= progress.units_through.isoformat()
        for before, after in zip(records, records[1:], strict=False):
            assert after["from"] == before["to"]
        moved = records[-1]["to"]["import_wh"] - records[0]["from"]["import_wh"]
        assert sum(r["unit"] for r in records) == moved > 0
    assert tasks.record_units(now=now)["recorded"] == 0
