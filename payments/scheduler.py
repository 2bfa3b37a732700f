"""The embedded default's sweep of refunds still requested (Celery beat runs
``payment_refunds_sweep`` in the full stack): a daemon thread, one step a minute."""

from __future__ import annotations

import logging
import threading

from django.db import connection

logger = logging.getLogger(__name__)

INTERVAL_SECONDS = 60.0
_started: threading.Event | None = None


def _run(stopped: threading.Event) -> None:
    from .refunds import refunds_send_due

    while not stopped.wait(INTERVAL_SECONDS):
        try:
            refunds_send_due()
        except Exception:  # keep sweeping after a transient database error
            logger.exception("refund sweep failed")
        finally:
            connection.close()


def start_background_sweep() -> threading.Event:
    global _started
    if _started is None:
        _started = threading.Event()
        threading.Thread(target=_run, args=[_started], name="gridcoin-refunds", daemon=True).start()
    return _started
