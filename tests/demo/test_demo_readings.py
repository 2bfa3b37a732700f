"""``seed_demo`` gives every chart something real to show: the demo meters' readings went
through the gateway, so the device pages, the wallet and the utility's dashboard have figures."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from demo import readings
from frontend import charts
from iot_gateway.models import MeterReading
from iot_gateway.selectors import meters_presence
from meters.models import Device

pytestmark = pytest.mark.django_db


def test_the_seeded_demo_has_a_figure_for_every_chart():
    call_command("seed_demo", stdout=None)
    assert MeterReading.objects.filter(status="applied").count() == 3 * readings.READINGS_PER_METER
    for public_id in (*readings.HOUSEHOLDS, readings.SOLAR):
        hourly, daily = charts.device_charts(Device.objects.get(public_id=public_id))
        # Every one of the last 24 hours has a reading; the week spans 7 or 8 local days.
        assert sum(1 for v in hourly.series[0].values if v) >= 23 if public_id != readings.SOLAR else hourly.has_data
        assert 7 <= sum(1 for v in daily.series[0].values if v) <= 8
    alice = get_user_model().objects.get(username="alice")
    assert charts.wallet_chart(alice).has_data
    assert charts.issuance_chart().has_data
    (sales,) = charts.sales_charts("gridco-utility")
    assert sales.unit == "INR" and sum(sales.series[0].values) == 4_000 + 8_000 + 24_000 + 24_000
    assert {p.device.public_id for p in meters_presence().online} == {*readings.HOUSEHOLDS, readings.SOLAR}


def test_a_rerun_adds_no_readings():
    call_command("seed_demo", stdout=None)
    before = MeterReading.objects.count()
    call_command("seed_demo", stdout=None)
    assert MeterReading.objects.count() == before
