"""The whole demo in one transaction, each part in the order its dependencies need:
organisations and users, then the bank and prices, then devices, then the coins."""

from __future__ import annotations

from django.db import transaction

from .devices import devices_seed
from .energy import energy_seed
from .fiat import fiat_seed
from .organisations import organisations_seed


@transaction.atomic
def demo_seed() -> list[str]:
    """Create whatever part of the demo is missing; return what was created (empty on a rerun).
    A refusal (``DemoSeedError``) leaves nothing of the demo behind."""
    return organisations_seed() + fiat_seed() + devices_seed() + energy_seed()
