"""The embedded default's sweep of refunds still requested (Celery beat runs
``payment_refunds_sweep`` in the full stack)."""

from __future__ import annotations

import threading

from gridcoin.background import start_periodic


def step() -> None:
    from . import refunds

    refunds.refunds_send_due()


def start_background_sweep() -> threading.Event:
    return start_periodic("refunds", step)
