"""The notification tests' world: the personas' meter world (Alice and Bob share a household
with a meter HM-ALICE; Charlie is another resident; Uma works for the utility that owns the
street light SL-0001), every persona with an e-mail address, and after-commit work run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from iot_gateway.fleet import simulated_meter
from iot_gateway.services import readings_ingest
from meters.services import device_fund
from tests.meters_world import build_meter_world


@pytest.fixture(autouse=True)
def eager_tasks(settings):
    """Deliveries run in-process, as in the embedded default (the suite may have REDIS_URL set)."""
    from gridcoin.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=True)  # the app reads Django's CELERY_ settings
    yield
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=before[0], CELERY_TASK_EAGER_PROPAGATES=before[1])


@pytest.fixture
def worker_retries():
    """Retries as a worker makes them (Celery's eager mode retries only when errors do not
    propagate; the embedded default propagates, and leaves a failed delivery to the sweep)."""
    from gridcoin.celery import app

    app.conf.update(CELERY_TASK_EAGER_PROPAGATES=False)


@pytest.fixture
def world(db, settings):
    world = build_meter_world(settings)
    for persona in (world.alice, world.bob, world.charlie, world.uma):
        persona.user.email = f"{persona.user.username}@example.org"
        persona.user.save(update_fields=["email"])
    return world


@pytest.fixture
def run_after_commit(django_capture_on_commit_callbacks):
    """Run ``fn`` and then every on-commit callback it (and they) registered, as a commit would."""
    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)
    return run


class MeterPlayer:
    """Plays a device's meter: each ``consume`` sends the next signed cumulative reading."""

    def __init__(self, device, run, start: datetime | None = None):
        self.meter = simulated_meter(device)
        self.run = run
        self.counter = 0
        self.import_wh = 0
        self.at = start or timezone.now().astimezone(UTC) - timedelta(minutes=30)

    def message(self, wh: int, *, minutes: float = 1.0) -> dict:
        self.counter += 1
        self.import_wh += wh
        self.at += timedelta(minutes=minutes)
        return self.meter.reading(counter=self.counter, import_wh=self.import_wh, export_wh=0, timestamp=self.at)

    def consume(self, wh: int, *, minutes: float = 1.0):
        return self.send(self.message(wh, minutes=minutes))

    def send(self, message: dict):
        [outcome] = self.run(readings_ingest, [message], received_via="http")
        return outcome


@pytest.fixture
def play(run_after_commit):
    def player(device, start: datetime | None = None) -> MeterPlayer:
        return MeterPlayer(device, run_after_commit, start)
    return player


@pytest.fixture
def fund(run_after_commit):
    counter = iter(range(1, 10_000))

    def fund(persona, device, wh: int, **window):
        return run_after_commit(device_fund, user=persona.user, public_id=device.public_id, amount_wh=wh,
                                idempotency_key=f"notify-test-{next(counter)}", **window)
    return fund
