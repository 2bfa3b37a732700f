"""The whole demo in one transaction, each part in the order its dependencies need:
organisations and users, then the bank and prices, then devices, then the coins, then the bank's statement of them,
then the charity's campaign and the neighbours' group fundings (whose disbursement the readings burn), then a week
of the meters' readings, then the grid's and the distributor's billing identities and station."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from .billing import billing_seed
from .charity import charity_seed
from .devices import devices_seed
from .energy import energy_seed
from .errors import DemoSeedError
from .fiat import fiat_seed
from .organisations import DEMO_PASSWORD, organisations_seed
from .readings import readings_seed
from .second_factor import second_factors_seed
from .statements import statements_seed
from .witnesses import witnesses_seed


@transaction.atomic
def demo_seed() -> list[str]:
    """Create whatever part of the demo is missing; return what was created (empty on a rerun).
    A refusal (``DemoSeedError``) leaves nothing of the demo behind."""
    if settings.PRODUCTION:
        # Every demo user's password is published (the home page shows it), and the utility's
        # demo login holds the utility's keys.
        raise DemoSeedError(f"refusing to seed the demo in production: its users share the password {DEMO_PASSWORD!r}")
    return (organisations_seed() + second_factors_seed() + fiat_seed() + devices_seed() + energy_seed()
            + statements_seed() + charity_seed() + readings_seed() + billing_seed() + witnesses_seed())
