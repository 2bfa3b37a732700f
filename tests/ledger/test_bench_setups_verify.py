"""The benchmarks' setups make their members through configuration transactions, so a bench's
ledger verifies clean (small sizes here; the benches run them at full size)."""

from __future__ import annotations

import pytest

from ledger.verify import verify_chain

pytestmark = pytest.mark.django_db


def assert_verifies() -> None:
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems[:3]]


def test_the_gateway_bench_fleet_verifies():
    from bench import gateway_bench
    from meters.models import Device

    utility, org, keys = gateway_bench.build_fleet(6, "T")
    gateway_bench.build_fleet(3, "TR")  # the relay fleet: the utility already exists
    gateway_bench.fund_all(utility, list(keys), 1000)
    assert Device.objects.filter(organisation=org).count() == 9
    assert all(d.identity.name == d.public_id for d in Device.objects.select_related("identity"))
    assert_verifies()


def test_the_charity_bench_world_verifies(monkeypatch):
    from bench import charity_bench

    monkeypatch.setattr(charity_bench, "BENEFICIARIES", 12)
    monkeypatch.setattr(charity_bench, "OWNERS", 3)
    world = charity_bench.build()
    opened, seconds, _ = charity_bench.bench_disbursement(world)
    assert_verifies()
