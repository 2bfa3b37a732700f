import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridcoin.settings")

app = Celery("gridcoin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Return the unspent coins of ended funded windows; idempotent, so overlap is harmless.
    "settle-due-windows": {"task": "meters.tasks.settle_due_windows", "schedule": 60.0},
}
