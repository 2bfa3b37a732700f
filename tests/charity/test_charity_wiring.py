"""The automation's wiring: beat entries for the tasks, the embedded scheduler running the same
tasks in-process, and live progress sent to a campaign's listeners after a donation commits."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from charity import scheduler, services, tasks
from charity.live import campaign_group
from gridcoin.celery import app
from tests.charity.world import COINS, worth

pytestmark = [pytest.mark.postgres]


def test_beat_runs_the_campaign_tasks():
    schedule = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"charity.tasks.disburse_due_campaigns", "charity.tasks.close_ended_campaigns",
            "charity.tasks.expire_group_fundings"} <= schedule
    assert tasks.close_ended_campaigns.name == "charity.tasks.close_ended_campaigns"


def test_the_embedded_scheduler_runs_the_same_tasks_in_process(world):
    campaign = world.campaign("heatwave")
    world.give(world.alice, campaign, 1_000)
    services.campaign_cancel(user=world.staff, campaign=campaign, reason="Called off.")
    scheduler.step()
    campaign.refresh_from_db()
    assert campaign.refunds_done_at is not None and world.coins(world.alice) == COINS


def test_a_donation_tells_the_campaign_page_after_commit(world, django_capture_on_commit_callbacks):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(campaign_group("heatwave"), channel)
    campaign = world.campaign("heatwave")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        world.give(world.alice, campaign, 1_000)
    assert callbacks
    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == "campaign.event" and message["event"] == "campaign.progress"
    assert message["payload"]["slug"] == "heatwave" and message["payload"]["raised"] == worth(1_000)
