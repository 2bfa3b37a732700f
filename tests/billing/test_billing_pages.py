"""The billing pages: who sees what, the figures they show, the CSV and the PDF statement."""

from __future__ import annotations

import pytest

from tests.billing.pages_world import DAY, build_pages_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def pw():
    return build_pages_world()


def test_household_day_shows_its_slots_and_bill(pw):
    response = pw.client("alice").get(f"/billing/household/?date={DAY}")
    assert response.status_code == 200, response.content[:500]
    html = response.content.decode()
    print(html[html.find("<main"):][:6000])
