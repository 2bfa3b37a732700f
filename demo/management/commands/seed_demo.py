"""``manage.py seed_demo``: the demo network, built only through services and chaincode, and
with ``--billing-days`` (``make run``) two billed days (``demo.billing_day``). Safe to run
twice: a rerun changes nothing and says so."""

from django.core.management.base import BaseCommand, CommandError

from demo.billing_day import billing_days_seed
from demo.errors import DemoSeedError
from demo.organisations import DEMO_LOGINS, DEMO_PASSWORD
from demo.seed import demo_seed


class Command(BaseCommand):
    help = "Create the demo network (organisations, users, bank, prices, devices, coins). Safe to run twice."

    def add_arguments(self, parser):
        parser.add_argument("--billing-days", action="store_true",
                            help="also bill the last two days for Alice's and Bob's households (make run does)")

    def handle(self, *args, **options):
        try:
            created = demo_seed()
            if options["billing_days"]:
                # After the network is committed: each billing invocation is its own
                # transaction, as the tasks run them (a day's locks do not pile up in one).
                created += billing_days_seed()
        except DemoSeedError as exc:
            raise CommandError(str(exc)) from exc
        if not created:
            self.stdout.write("The demo data already exists; nothing changed.")
            return
        self.stdout.write(self.style.SUCCESS(f"Seeded the demo ({len(created)} objects):"))
        for item in created:
            self.stdout.write(f"  {item}")
        names = ", ".join(login.username for login in DEMO_LOGINS)
        self.stdout.write(f"Demo logins: {names} (password {DEMO_PASSWORD!r})")
