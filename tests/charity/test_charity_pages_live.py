"""Live progress of a campaign over ``/ws/campaigns/<slug>/`` on the real ASGI application
(``charity.live.progress_broadcast`` after a change commits), and the transparency chart's
energy burned at beneficiaries from the campaign's coins per local day."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import override_settings

from charity import live, selectors
from gridcoin.asgi import application
from tests.charity.pages_world import SLUG, PagesWorld, build_pages_world, burn_row, campaign_state, write_state
from tests.ledger.test_ledger_websocket import HEADERS, IN_MEMORY

TIMEOUT = 5
KOLKATA = ZoneInfo("Asia/Kolkata")


@pytest.fixture(autouse=True)
def fresh_in_memory_layer():
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):
        yield


def run(coroutine_function):
    return async_to_sync(coroutine_function)()


# --- websocket ------------------------------------------------------------------------------

@pytest.fixture
def live_pw(transactional_db, settings) -> PagesWorld:
    return build_pages_world(settings)


def test_listeners_get_the_figures_on_connect_and_after_each_broadcast(live_pw):
    async def scenario():
        communicator = WebsocketCommunicator(application, f"/ws/campaigns/{SLUG}/", headers=HEADERS)
        assert (await communicator.connect(timeout=TIMEOUT))[0]
        first = await communicator.receive_json_from(timeout=TIMEOUT)
        assert first["event"] == "campaign.progress"
        assert (first["payload"]["raised"], first["payload"]["percent"]) == (1_250_000, 25)

        await sync_to_async(write_state)(f"campaign/{SLUG}", campaign_state(raised=2_500_000))
        sent = await sync_to_async(live.progress_broadcast)(SLUG)
        message = await communicator.receive_json_from(timeout=TIMEOUT)
        assert message == {"event": "campaign.progress", "payload": sent}
        assert (message["payload"]["raised"], message["payload"]["percent"]) == (2_500_000, 50)
        await communicator.disconnect()

    run(scenario)


def test_a_broadcast_queued_in_a_transaction_goes_out_only_after_commit(live_pw):
    async def scenario():
        communicator = WebsocketCommunicator(application, f"/ws/campaigns/{SLUG}/", headers=HEADERS)
        assert (await communicator.connect(timeout=TIMEOUT))[0]
        await communicator.receive_json_from(timeout=TIMEOUT)

        def rolled_back():
            try:
                with transaction.atomic():
                    write_state(f"campaign/{SLUG}", campaign_state(raised=9_999_999))
                    live.progress_broadcast_on_commit(SLUG)
                    raise RuntimeError("undo")
            except RuntimeError:
                pass

        await sync_to_async(rolled_back)()
        assert await communicator.receive_nothing(timeout=0.3)

        def committed():
            with transaction.atomic():
                write_state(f"campaign/{SLUG}", campaign_state(raised=3_750_000))
                live.progress_broadcast_on_commit(SLUG)

        await sync_to_async(committed)()
        message = await communicator.receive_json_from(timeout=TIMEOUT)
        assert message["payload"]["percent"] == 75
        await communicator.disconnect()

    run(scenario)


def test_listeners_of_another_campaign_hear_nothing_and_unknown_campaigns_are_refused(live_pw):
    async def scenario():
        unknown = WebsocketCommunicator(application, "/ws/campaigns/no-such/", headers=HEADERS)
        connected, code = await unknown.connect(timeout=TIMEOUT)
        assert not connected and code == 4404

        communicator = WebsocketCommunicator(application, f"/ws/campaigns/{SLUG}/", headers=HEADERS)
        assert (await communicator.connect(timeout=TIMEOUT))[0]
        await communicator.receive_json_from(timeout=TIMEOUT)
        assert await sync_to_async(live.progress_broadcast)("no-such") is None
        # a foreign event type on the group is not passed on
        from channels.layers import get_channel_layer

        await get_channel_layer().group_send(live.campaign_group(SLUG),
                                             {"type": "campaign.event", "event": "device.state", "payload": {}})
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

    run(scenario)


# --- burned per day -------------------------------------------------------------------------

@pytest.fixture
def pw(db, settings) -> PagesWorld:
    return build_pages_world(settings)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=KOLKATA)


def test_burns_from_the_campaigns_coins_are_summed_per_local_day(pw, settings):
    assert settings.TIME_ZONE == "Asia/Kolkata"
    day = date(2026, 12, 1)
    meter = pw.meter
    burn_row(meter, at=local(day, 0, 10), campaigns={SLUG: 300})
    burn_row(meter, at=local(day, 23, 50), campaigns={SLUG: 200, "other-campaign": 999})
    # 00:20 IST on the 2nd is still the 1st in UTC: it counts on the 2nd, the utility's day
    burn_row(meter, at=local(day + timedelta(days=1), 0, 20), campaigns={SLUG: 50})
    burn_row(meter, at=local(day + timedelta(days=1), 12), campaigns={"other-campaign": 700})
    # a device that is not the campaign's beneficiary (its share is somebody else's story)
    burn_row(pw.light, at=local(day, 12), campaigns={SLUG: 5_000})
    series = selectors.burned_by_day(pw.campaign, first_day=day - timedelta(days=1), last_day=day + timedelta(days=2))
    assert series == [(day - timedelta(days=1), 0), (day, 500), (day + timedelta(days=1), 50),
                      (day + timedelta(days=2), 0)]


def test_a_slug_with_double_underscores_is_one_json_key(pw):
    pw.campaign.slug = "heat__wave"
    pw.campaign.save()
    burn_row(pw.meter, at=local(date(2026, 12, 1), 9), campaigns={"heat__wave": 40, "heat": 1})
    assert selectors.burned_by_day(pw.campaign, first_day=date(2026, 12, 1), last_day=date(2026, 12, 1)) == [
        (date(2026, 12, 1), 40)]


def test_the_chart_and_its_table_show_the_days_burns(pw):
    from django.test import Client
    from django.utils import timezone

    now = timezone.now()
    burn_row(pw.meter, at=now - timedelta(minutes=5), campaigns={SLUG: 1_234})
    chart = selectors.burned_chart(pw.campaign, now=now)
    assert chart.series[0].values[-1] == 1_234 and chart.has_data
    assert len(chart.labels) == 4  # the campaign started three days ago: no empty days before it
    html = Client().get(f"/campaigns/{SLUG}/").content.decode()
    assert 'data-chart="chart-campaign-burned-data"' in html and "<td>1.234</td>" in html
