"""The demo organisations' witnesses as one process (the Procfile's ``witnesses``): each one that
``seed_demo`` registered cosigns the operator's checkpoints through the read API, as
``run_witness`` would at its own organisation (docs/witnesses.md). Until the demo is seeded it
waits and looks again, so that honcho, which stops every process when one exits, keeps running."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from demo.witnesses import WITNESS_ORGS, start_seeded_witnesses

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the demo's bank, charity and auditor witnesses against the read API (idle until seed_demo)."

    def add_arguments(self, parser):
        parser.add_argument("--api", default=settings.GRIDCOIN_WITNESS_API,
                            help="the operator's ledger API (default GRIDCOIN_WITNESS_API)")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between a witness's rounds")
        parser.add_argument("--rescan", type=float, default=10.0, help="seconds between looks for seeded witnesses")

    def handle(self, *args, api: str, interval: float, rescan: float, **options):
        stopped = threading.Event()
        running: set[str] = set()
        waiting_said = False
        while not stopped.is_set():
            for msp_id in start_seeded_witnesses(api, running, interval=interval, stopped=stopped):
                self.stdout.write(f"witness {msp_id}/witness cosigning through {api}")
            if len(running) == len(WITNESS_ORGS):
                stopped.wait()  # the threads run until the process is stopped
            if not running and not waiting_said:
                self.stdout.write("no demo witness is seeded yet (manage.py seed_demo); looking again every "
                                  f"{rescan:g}s")
                waiting_said = True
            stopped.wait(rescan)
