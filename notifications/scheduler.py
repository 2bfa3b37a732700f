"""The embedded default's sweep of deliveries due again (Celery beat runs
``resend_due_deliveries`` in the full stack)."""

from __future__ import annotations

import threading

from gridcoin.background import start_periodic


def step() -> None:
    from .services import deliveries_resend_due

    deliveries_resend_due()


def start_background_sweep() -> threading.Event:
    return start_periodic("notifications", step)
