"""The embedded default runs the billing tasks in-process (as beat does in the full stack): the
app starts the periodic thread when GRIDCOIN_BACKGROUND_SCHEDULER is on, one pass runs units
before bills, and one sweep's failure does not stop the next."""

from __future__ import annotations

import logging

from django.apps import apps

from billing import scheduler, tasks
from gridcoin.celery import app as celery_app


def test_the_app_starts_the_billing_thread_only_when_asked(settings, monkeypatch):
    started = []
    monkeypatch.setattr(scheduler, "start_periodic", lambda name, step: started.append((name, step)))
    config = apps.get_app_config("billing")
    settings.GRIDCOIN_BACKGROUND_SCHEDULER = False
    config.ready()
    assert started == []
    settings.GRIDCOIN_BACKGROUND_SCHEDULER = True
    config.ready()
    assert started == [("billing", scheduler.step)]


def test_beat_runs_the_same_tasks():
    scheduled = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}
    assert {f"billing.tasks.{name}" for name in scheduler.STEPS} <= scheduled


def test_a_pass_runs_every_step_in_order_even_after_a_failure(monkeypatch, caplog):
    ran = []

    def failing(now=None):
        ran.append(("record_units", now))
        raise RuntimeError("database gone")

    monkeypatch.setattr(tasks.record_units, "run", failing)
    monkeypatch.setattr(tasks.bill_closed_slots, "run", lambda now=None: ran.append(("bill_closed_slots", now)))
    with caplog.at_level(logging.ERROR, logger="billing.scheduler"):
        scheduler.step(now="2026-06-01T03:00:00+00:00")
    assert ran == [("record_units", "2026-06-01T03:00:00+00:00"), ("bill_closed_slots", "2026-06-01T03:00:00+00:00")]
    assert "billing.tasks.record_units failed" in caplog.text
