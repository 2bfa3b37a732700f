"""``manage.py simulate_day``: a whole simulated day for N households, billed by the billing
tasks slot by slot, with a progress bar (also on ``/billing/simulate/``)."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from billing.models import SimulationStatus
from billing.simulation_runs import (
    DEFAULT_SEED,
    SimulationError,
    default_day,
    simulation_run_create,
    simulation_run_execute,
)

BAR = 30


class Command(BaseCommand):
    help = "Simulate a past day of frequencies and meter readings for N households and bill it."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--households", type=int, default=10)
        parser.add_argument("--date", type=date.fromisoformat, default=None,
                            help="YYYY-MM-DD, a day that has ended (default: yesterday in the billing time zone)")
        parser.add_argument("--seconds-per-slot", type=float, default=0.0)
        parser.add_argument("--seed", default=DEFAULT_SEED)

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        day = options["date"] or default_day()
        try:
            run = simulation_run_create(households=options["households"], day=day, seed=options["seed"],
                                        seconds_per_slot=options["seconds_per_slot"])
        except SimulationError as exc:
            raise CommandError(str(exc)) from exc
        interactive = self.stdout.isatty()
        shown = {"tenth": -1}

        def bar(done: int, total: int) -> None:
            filled = BAR * done // total if total else BAR
            line = f"[{'#' * filled}{'-' * (BAR - filled)}] {done}/{total} slots"
            if interactive:
                self.stdout.write(f"\r{line}", ending="")
                self.stdout.flush()
            elif done * 10 // max(total, 1) > shown["tenth"]:  # a log file gets a line every tenth
                shown["tenth"] = done * 10 // max(total, 1)
                self.stdout.write(line)

        run = simulation_run_execute(run_id=run.pk, progress=bar)
        if interactive:
            self.stdout.write("")
        if run is None or run.status != SimulationStatus.DONE:
            raise CommandError(f"the simulated day stopped: {run.error if run else 'the run is gone'}")
        self.stdout.write(self.style.SUCCESS(
            f"Simulated {run.day} for {run.households} households: {run.slots_done} slots recorded and billed "
            f"(run #{run.pk})."))
