import gc
import os

from celery import Celery
from celery.signals import beat_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridcoin.settings")

app = Celery("gridcoin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Return the unspent coins of ended funded windows; idempotent, so overlap is harmless.
    "settle-due-windows": {"task": "meters.tasks.settle_due_windows", "schedule": 60.0},
    # Notifications whose delivery task was lost or failed for now are queued again.
    "resend-due-deliveries": {"task": "notifications.tasks.resend_due_deliveries", "schedule": 60.0},
    # Campaigns: automatic disbursement (at most once per CHARITY_AUTO_DISBURSE_SECONDS per
    # campaign), closing ended campaigns and refunding, expiring group fundings. Idempotent.
    "disburse-due-campaigns": {"task": "charity.tasks.disburse_due_campaigns", "schedule": 300.0},
    "close-ended-campaigns": {"task": "charity.tasks.close_ended_campaigns", "schedule": 60.0},
    "expire-group-fundings": {"task": "charity.tasks.expire_group_fundings", "schedule": 60.0},
    # Frequency billing: each closed slot's units from the meters' readings, then its bill
    # (late readings re-record and re-bill only the slots they change), then each billed local
    # day's statements and dues (a re-billed day closed again). Idempotent.
    "billing-record-units": {"task": "billing.tasks.record_units", "schedule": 60.0},
    "billing-bill-closed-slots": {"task": "billing.tasks.bill_closed_slots", "schedule": 60.0},
    "billing-close-days": {"task": "billing.tasks.close_days", "schedule": 60.0},
    # Refunds left requested (a lost task, a crash between sending and saving, a retry due).
    "send-due-refunds": {"task": "payments.tasks.payment_refunds_sweep", "schedule": 60.0},
}


@beat_init.connect
def add_reconciliation_schedule(sender=None, **kwargs) -> None:
    """Daily reconciliation per bank and processor: one entry per statements inbox present
    when beat starts (read then, so no other process touches the inbox folders)."""
    from django.conf import settings

    from payments.reconciliation.schedule import reconciliation_beat_schedule

    app.conf.beat_schedule.update(
        reconciliation_beat_schedule(settings.GRIDCOIN_STATEMENTS_DIR, settings.GRIDCOIN_RECONCILE_AT))


# Python's cyclic garbage collector, left at its defaults, took about a fifth of a billing task's
# CPU: a station's slot allocates tens of thousands of short-lived dicts and tuples (freed by
# reference counting, never in cycles), and the collector walked the young ones every 700
# allocations and, every few invocations, the whole heap (Django and every app, some 120,000
# objects, a quarter of a second each time).
WORKER_GC_THRESHOLD = (20_000, 10, 10)


def worker_gc_settle() -> None:
    """Put what a worker process has loaded (Django, the apps: it lives as long as the process)
    out of the collector's reach, and collect young objects less often."""
    gc.freeze()
    gc.set_threshold(*WORKER_GC_THRESHOLD)


@worker_process_init.connect
def settle_worker_gc(sender=None, **kwargs) -> None:
    """Each prefork pool process, once started."""
    worker_gc_settle()
