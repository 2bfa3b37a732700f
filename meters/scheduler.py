"""The embedded default's scheduler: without Celery beat, a daemon thread settles ended
windows every minute (as the sealer thread cuts blocks). ``step`` is one pass, for tests."""

from __future__ import annotations

import logging
import threading

from django.db import connection

logger = logging.getLogger(__name__)

INTERVAL_SECONDS = 60.0


class SchedulerLoop:
    def __init__(self, *, interval: float = INTERVAL_SECONDS):
        self.interval = interval
        self.stopped = threading.Event()

    def step(self) -> int:
        from .services import windows_settle_due

        return sum(1 for r in windows_settle_due() if r.ok and not r.replayed)

    def run(self) -> None:
        logger.info("window settlement scheduler starting")
        try:
            while not self.stopped.wait(self.interval):
                try:
                    self.step()
                except Exception:  # keep running after a transient database error
                    logger.exception("window settlement pass failed")
                finally:
                    connection.close()
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()


_background: SchedulerLoop | None = None


def start_background_scheduler() -> SchedulerLoop:
    global _background
    if _background is None:
        _background = SchedulerLoop()
        threading.Thread(target=_background.run, name="gridcoin-scheduler", daemon=True).start()
    return _background
