"""``simulate_day`` on PostgreSQL: households and meters created once, a rerun sends nothing
again, the command's progress bar and refusals, and ``/billing/simulate/``: utility staff only,
a run started from the form, its progress fragment."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Membership
from billing import chain
from billing.models import SimulationRun, SimulationStatus
from billing.simulation_runs import (
    SimulationError,
    day_simulate,
    households_ensure,
    simulation_run_create,
    simulation_run_execute,
)
from demo.billing import STATION, billing_seed
from demo.organisations import DISTRIBUTOR, organisations_seed
from iot_gateway.models import MeterReading
from ledger.keys import BILLING_NAMESPACE
from ledger.models import Organisation, StateWrite, Transaction
from meters.models import Device

pytestmark = pytest.mark.postgres

DAY = date(2026, 6, 1)


@pytest.fixture
def demo_grid(db):
    organisations_seed()
    billing_seed()


def _user(username: str):
    return Membership.objects.select_related("user").get(user__username=username).user


def test_households_and_meters_are_created_once_and_served_by_the_station(demo_grid):
    distributor = chain.service_identity(Organisation.objects.get(msp_id=DISTRIBUTOR))
    first = households_ensure(count=3, seed="s", station=STATION, distributor=distributor)
    again = households_ensure(count=3, seed="s", station=STATION, distributor=distributor)
    assert [h.organisation.pk for h in first] == [h.organisation.pk for h in again]
    assert [h.meter.public_id for h in again] == ["SIM-HH-0001", "SIM-HH-0002", "SIM-HH-0003"]
    assert Device.objects.filter(public_id__startswith="SIM-HH-").count() == 3
    assert chain.station_state(STATION)["societies"] == ["hh-alice", "hh-bob", "sim-hh-0001", "sim-hh-0002",
                                                         "sim-hh-0003"]


def test_a_rerun_of_the_same_day_sends_and_records_nothing_again(demo_grid):
    assert day_simulate(households=2, day=DAY, seed="s") == 96
    readings, txs = MeterReading.objects.count(), Transaction.objects.count()
    writes = StateWrite.objects.filter(namespace=BILLING_NAMESPACE).count()
    assert readings == 2 * 97

    day_simulate(households=2, day=DAY, seed="s")
    assert MeterReading.objects.count() == readings
    assert StateWrite.objects.filter(namespace=BILLING_NAMESPACE).count() == writes
    assert Transaction.objects.count() == txs


def test_a_day_that_has_not_ended_is_refused_and_nothing_is_created(demo_grid):
    today = timezone.now().date() + timedelta(days=1)
    with pytest.raises(SimulationError, match="ended"):
        simulation_run_create(households=2, day=today)
    with pytest.raises(SimulationError, match="households"):
        simulation_run_create(households=0, day=DAY)
    assert not SimulationRun.objects.exists() and not Device.objects.filter(public_id__startswith="SIM-HH-").exists()


def test_the_command_draws_a_progress_bar_and_records_the_run(demo_grid):
    out = io.StringIO()
    call_command("simulate_day", households=1, date=DAY, seconds_per_slot=0, seed="cmd", stdout=out)
    text = out.getvalue()
    assert "[" + "#" * 30 + "] 96/96 slots" in text
    assert text.count("slots") == 12  # 0%, every tenth, then the summary's
    assert "Simulated 2026-06-01 for 1 households: 96 slots recorded and billed" in text
    run = SimulationRun.objects.get()
    assert (run.status, run.slots_done, run.slots_total, run.percent) == (SimulationStatus.DONE, 96, 96, 100)


def test_the_command_refuses_a_bad_request():
    with pytest.raises(CommandError, match="Seconds per slot"):
        call_command("simulate_day", households=1, date=DAY, seconds_per_slot=-1, stdout=io.StringIO())


def test_a_run_is_claimed_once(demo_grid):
    run = simulation_run_create(households=1, day=DAY, seed="once")
    SimulationRun.objects.filter(pk=run.pk).update(status=SimulationStatus.RUNNING)
    assert simulation_run_execute(run_id=run.pk).slots_done == 0  # someone else runs it
    assert not MeterReading.objects.exists()


# --- the page ------------------------------------------------------------------------------------

URL = "/billing/simulate/"


@pytest.mark.parametrize(("username", "status"), [("utility", 200), ("alice", 403), ("distributor", 403),
                                                  ("grid", 403)])
def test_only_utility_staff_may_open_the_page(demo_grid, client, username, status):
    client.force_login(_user(username))
    assert client.get(URL).status_code == status
    assert client.head(URL).status_code == status


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_run_started_from_the_page_shows_its_progress(demo_grid, client, django_capture_on_commit_callbacks,
                                                        settings, celery_eager):
    settings.GRIDCOIN_BACKGROUND_SCHEDULER = False  # the task runs here, as the worker would
    client.force_login(_user("utility"))
    page = client.get(URL).content.decode()
    assert 'name="households"' in page and "data-money-action" in page and "<script>" not in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"households": 1, "day": DAY.isoformat(), "seconds_per_slot": "0", "seed": "page"})
    run = SimulationRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/billing/simulate/{run.pk}/"
    assert run.status == SimulationStatus.DONE and run.created_by.username == "utility"
    fragment = client.get(f"/billing/simulate/{run.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert 'value="100"' in fragment and "hx-get" not in fragment and "<html" not in fragment
    assert "96 of 96 slots" in fragment
    assert client.get(URL).content.decode().count(f"/billing/simulate/{run.pk}/") == 1


def test_a_run_in_flight_polls_and_offers_a_reload_link(demo_grid, client):
    run = simulation_run_create(households=4, day=DAY, seed="poll")
    SimulationRun.objects.filter(pk=run.pk).update(status=SimulationStatus.RUNNING, slots_done=24)
    client.force_login(_user("utility"))
    page = client.get(f"/billing/simulate/{run.pk}/").content.decode()
    assert f'hx-get="/billing/simulate/{run.pk}/"' in page and 'hx-trigger="every 1s"' in page
    assert 'value="25"' in page and "24 of 96 slots" in page
    assert f'<a class="button" href="/billing/simulate/{run.pk}/">' in page  # without JavaScript
    client.force_login(_user("alice"))
    assert client.get(f"/billing/simulate/{run.pk}/").status_code == 403


def test_a_bad_form_is_refused_and_starts_nothing(demo_grid, client):
    client.force_login(_user("utility"))
    response = client.post(URL, {"households": 0, "day": DAY.isoformat(), "seconds_per_slot": "0", "seed": "x"})
    assert response.status_code == 400 and not SimulationRun.objects.exists()
    future = (timezone.now() + timedelta(days=2)).date().isoformat()
    response = client.post(URL, {"households": 1, "day": future, "seconds_per_slot": "0", "seed": "x"})
    assert response.status_code == 400 and "ended" in response.content.decode()


def test_without_a_grid_or_a_station_nothing_is_simulated(db):
    with pytest.raises(SimulationError, match="seed_demo"):
        day_simulate(households=1, day=DAY)
    assert not Device.objects.filter(public_id__startswith="SIM-HH-").exists() and not MeterReading.objects.exists()


def test_a_recorded_frequency_stands_and_the_slot_before_the_day_is_left_alone(demo_grid):
    from datetime import timedelta as td

    from ledger.chaincodes import billing_math as bm
    from ledger.keys import bill_key, units_key
    from ledger.selectors import world_state

    day_simulate(households=1, day=DAY, seed="first")
    slots = [bm.slot_id(start) for start, _ in bm.day_slots(DAY, chain.billing_timezone())]
    recorded = chain.frequencies(slots)
    assert len(recorded) == 96
    day_simulate(households=2, day=DAY, seed="second")  # a second household, another seed
    assert chain.frequencies(slots) == recorded
    before = bm.slot_id(bm.day_slots(DAY, chain.billing_timezone())[0][0] - td(minutes=15))
    keys = [units_key(STATION, s, before) for s in ("sim-hh-0001", "sim-hh-0002")]
    assert world_state(BILLING_NAMESPACE, keys) == {}  # the opening reading is inside the day
    bills = {key for key in world_state(BILLING_NAMESPACE, prefix=f"bill/{STATION}/") if key.endswith("/sim-hh-0002")}
    assert sorted(bills) == sorted(bill_key(STATION, "sim-hh-0002", s) for s in slots)
