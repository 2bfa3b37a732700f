"""The demo's one door into the pages: templates see ``demo_logins`` and ``demo_password``
without any app importing ``demo``. The list is lazy, so only a page that shows it (the home
page) pays for its query."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .organisations import DEMO_PASSWORD
from .second_factor import demo_codes_shown
from .selectors import demo_logins_shown


def demo_logins(request: HttpRequest) -> dict[str, object]:
    return {"demo_logins": SimpleLazyObject(demo_logins_shown), "demo_password": DEMO_PASSWORD,
            "demo_codes": SimpleLazyObject(demo_codes_shown)}
