"""A device that runs low or switches off tells its owners and the residents funding it in a
window, once per drop, however often the change is observed or the reading delivered."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from meters import live
from meters.signals import DeviceObservation
from notifications import services
from notifications.models import DeviceLevel, DeviceWatch, Kind, Notification


def told(kind: str | None = None) -> list[tuple[str, str]]:
    rows = Notification.objects.order_by("id")
    if kind:
        rows = rows.filter(kind=kind)
    return [(n.user.username, n.event_key) for n in rows]


def test_a_household_meter_running_low_then_off_tells_its_household_once_each(world, fund, play, mailoutbox):
    meter = world.meter  # HM-ALICE, Alice's and Bob's household
    fund(world.alice, meter, 1_000)  # first observation: recorded, nothing told
    assert DeviceWatch.objects.get(device=meter).level == DeviceLevel.OK and told() == []
    player = play(meter)

    player.consume(300)  # 700 Wh left: still above the 500 Wh mark
    assert told() == []
    player.consume(300)  # 400 Wh left: low
    assert told() == [("alice", "device-low:HM-ALICE:1"), ("bob", "device-low:HM-ALICE:1")]
    player.consume(100)  # lower still: the same drop, told once
    assert len(told()) == 2
    outcome = player.consume(500)  # 300 Wh left, 500 asked: off
    assert outcome.result["relay"] == "off"
    assert told(Kind.DEVICE_OFF) == [("alice", "device-off:HM-ALICE:1"), ("bob", "device-off:HM-ALICE:1")]
    assert Notification.objects.get(user=world.alice.user, kind=Kind.DEVICE_OFF).data["device_name"] == "Alice's meter"
    # Charlie (another household) and Uma (the utility) are not told about Alice's meter.
    assert {user for user, _ in told()} == {"alice", "bob"}
    assert sorted(m.to[0] for m in mailoutbox) == ["alice@example.org"] * 2 + ["bob@example.org"] * 2


def test_the_same_reading_or_state_seen_twice_tells_nothing_more(world, fund, play):
    meter = world.meter
    fund(world.alice, meter, 600)
    player = play(meter)
    message = player.message(600)
    assert player.send(message).status == "applied"
    assert len(told(Kind.DEVICE_OFF)) == 2
    assert player.send(message).status == "replayed"  # the gateway got it again
    live.device_state_changed(meter.public_id)  # and the state is announced again
    services.devices_observe(observations=[DeviceObservation(meter.public_id, 0, "off")])
    assert len(told()) == 2
    assert DeviceWatch.objects.get(device=meter).off_seq == 1


def test_two_observers_of_one_drop_tell_it_once(world, fund, run_after_commit):
    meter = world.meter
    fund(world.alice, meter, 2_000)
    watch = DeviceWatch.objects.get(device=meter)
    off = DeviceObservation(meter.public_id, 0, "off")
    first = run_after_commit(services.devices_observe, observations=[off])
    # A second observer that read the watch before the first one changed it loses the swap.
    DeviceWatch.objects.filter(pk=watch.pk).update(level=DeviceLevel.OK, off_seq=0)
    assert Notification.objects.filter(event_key=f"device-off:{meter.public_id}:1").count() == 2
    second = run_after_commit(services.devices_observe, observations=[off])
    assert len(first) == 2 and second == []  # the same event key: each user already has it
    assert Notification.objects.count() == 2


def test_funded_back_above_the_mark_rearms_low(world, fund, play):
    meter = world.meter
    fund(world.alice, meter, 1_000)
    player = play(meter)
    player.consume(600)
    assert [key for _, key in told()] == ["device-low:HM-ALICE:1"] * 2
    fund(world.alice, meter, 1_000)  # 1,400 Wh: no longer low
    assert DeviceWatch.objects.get(device=meter).level == DeviceLevel.OK
    player.consume(1_000)
    assert [key for _, key in told()][-2:] == ["device-low:HM-ALICE:2"] * 2


def test_low_means_less_than_an_hour_at_the_recent_rate(world, fund, play, settings):
    settings.GRIDCOIN_NOTIFY_LOW_WH = 100
    meter = world.meter
    fund(world.alice, meter, 3_500)
    player = play(meter, start=timezone.now() - timedelta(hours=2))
    player.consume(0)  # the register's first sample
    player.consume(1_000, minutes=20)  # 3 kWh an hour; 2.5 kWh left is less than an hour
    watch = DeviceWatch.objects.get(device=meter)
    assert watch.rate_wh_per_hour == 3_000 and watch.level == DeviceLevel.LOW
    assert told(Kind.DEVICE_LOW) == [("alice", "device-low:HM-ALICE:1"), ("bob", "device-low:HM-ALICE:1")]


def test_without_a_rate_the_fixed_mark_decides(world, fund, play, settings):
    settings.GRIDCOIN_NOTIFY_LOW_WH = 100
    meter = world.meter
    fund(world.alice, meter, 3_500)
    player = play(meter)
    player.consume(1_000, minutes=2)  # no sample long enough for a rate yet
    assert DeviceWatch.objects.get(device=meter).level == DeviceLevel.OK
    assert told() == []


def test_a_street_light_tells_the_residents_funding_its_window_not_the_utility(world, fund, play):
    light = world.light  # the utility's
    now = timezone.now()
    fund(world.charlie, light, 700, window_start=now - timedelta(minutes=1), window_end=now + timedelta(hours=2))
    player = play(light, start=now)
    player.consume(700, minutes=0.2)
    assert told() == [("charlie", f"device-off:{light.public_id}:1")]
    notification = Notification.objects.get()
    assert notification.url == f"/d/{light.public_id}"


@pytest.mark.parametrize("relay,spendable,current,low_from,expected", [
    ("off", 0, DeviceLevel.OK, 0, DeviceLevel.OFF),
    ("on", 499, DeviceLevel.OK, 0, DeviceLevel.LOW),
    ("on", 500, DeviceLevel.OK, 0, DeviceLevel.OK),
    ("on", 900, DeviceLevel.LOW, 950, DeviceLevel.LOW),  # still draining from where it went low
    ("on", 1_000, DeviceLevel.LOW, 950, DeviceLevel.OK),  # funded back above it
])
def test_levels(settings, relay, spendable, current, low_from, expected):
    settings.GRIDCOIN_NOTIFY_LOW_WH = 500
    assert services.level_of(spendable_wh=spendable, relay=relay, rate_wh_per_hour=0, current=current,
                             low_from_wh=low_from) == expected


def test_a_window_ending_switches_the_device_off_and_tells_its_owners(world, fund, run_after_commit):
    from meters.services import windows_settle_due

    meter = world.meter
    now = timezone.now()
    fund(world.alice, meter, 1_000, window_start=now - timedelta(minutes=1), window_end=now + timedelta(hours=1))
    assert DeviceWatch.objects.get(device=meter).level == DeviceLevel.OK
    [settled] = run_after_commit(windows_settle_due, now + timedelta(hours=2))
    assert settled.ok and settled.result["relay"] == "off"
    assert told() == [("alice", "device-off:HM-ALICE:1"), ("bob", "device-off:HM-ALICE:1")]
    run_after_commit(windows_settle_due, now + timedelta(hours=2))  # the scheduler's next pass
    assert len(told()) == 2


def test_a_batch_that_only_moves_rate_samples_writes_them_in_one_statement(world):
    """A gateway batch can roll over every device's rate sample at once: the writes must not
    grow with the batch (one UPDATE for all), and no one is told anything."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from meters.models import Device

    devices = list(Device.objects.order_by("id"))
    assert len(devices) >= 2
    start = timezone.now() - timedelta(hours=1)
    services.devices_observe(observations=[DeviceObservation(d.public_id, 5_000, "on", 1_000, start)
                                           for d in devices])

    def roll_over(count: int, minutes: int) -> int:
        later = start + timedelta(minutes=minutes)
        with CaptureQueriesContext(connection) as queries:
            services.devices_observe(observations=[DeviceObservation(d.public_id, 5_000, "on", 1_000 + minutes * 10, later)
                                                   for d in devices[:count]])
        return len([q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")])

    assert roll_over(1, 20) == 1
    assert roll_over(len(devices), 40) == 1
    watches = DeviceWatch.objects.filter(device__in=devices)
    assert {w.rate_wh_per_hour for w in watches} == {600} and {w.level for w in watches} == {DeviceLevel.OK}
    assert told() == []
