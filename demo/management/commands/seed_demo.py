"""``manage.py seed_demo``: the demo network, built only through services and chaincode.
Safe to run twice: a rerun changes nothing and says so."""

from django.core.management.base import BaseCommand, CommandError

from demo.errors import DemoSeedError
from demo.organisations import DEMO_LOGINS, DEMO_PASSWORD
from demo.seed import demo_seed


class Command(BaseCommand):
    help = "Create the demo network (organisations, users, bank, prices, devices, coins). Safe to run twice."

    def handle(self, *args, **options):
        try:
            created = demo_seed()
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
