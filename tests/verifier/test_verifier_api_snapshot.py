"""The standalone verifier working from the live read API compares what it replays with the API's
``snapshot/``: every balance and the membership tables as of the snapshot's newest block plus its
unsealed transactions, so a superuser's edit of a balance or of an organisation's type is caught
from the API as from an export, and blocks sealed while it reads are not counted twice."""

from __future__ import annotations

import pytest

from ledger.export import ledger_snapshot, membership_snapshot
from ledger.models import Account, Block, Organisation, Transaction
from ledger.verify import trusted_orderer_keys
from tests.ledger.tampering import superuser
from tests.personas import LEDGER_API, World, build_world, seal_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings) -> World:
    return build_world(settings)


def _api(monkeypatch, client, after: dict | None = None):
    """``verifier.sources.Api.get`` answered by the Django test client; ``after[path]`` runs just
    after that path is served (something happening on the server while the verifier reads)."""
    from verifier import sources

    def get(self, path: str, *, missing_ok: bool = False):
        url = path if path.startswith("http") else LEDGER_API + path
        response = client.get(url.replace("http://testserver", ""))
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code != 200:
            raise sources.SourceError(f"GET {url}: HTTP {response.status_code}")
        if after and path in after:
            after.pop(path)()
        return response.json()

    monkeypatch.setattr(sources.Api, "get", get)


def _verify(**kwargs):
    import verifier

    return verifier.verify_api("http://testserver" + LEDGER_API, orderer_keys=sorted(trusted_orderer_keys()),
                               **kwargs)


def test_the_snapshot_is_served_to_overseers_only(world):
    served = world.client("uma").get(f"{LEDGER_API}snapshot/")
    assert served.status_code == 200, served.content
    body = served.json()
    assert body["block"] == Block.objects.order_by("-number").first().number
    assert body["membership"] == membership_snapshot()
    assert [r["tx_hash"] for r in body["pending"]] == [world.tx["unsealed"]]
    assert body["pending"][0]["queued"] is True and body["pending"][0]["claims_block"] is False
    assert body == ledger_snapshot()
    refused = world.client("alice").get(f"{LEDGER_API}snapshot/")
    assert refused.status_code == 403 and "utility and auditors" in refused.json()["detail"]


def test_balances_and_membership_are_compared_from_the_api(world, monkeypatch):
    _api(monkeypatch, world.client("uma"))
    report = _verify()
    assert report.ok, [str(p) for p in report.problems]
    assert report.pending == 1 and report.accounts == Account.objects.count() >= 3
    assert not any("balances" in note for note in report.notes), report.notes

    account = world.charlie_account
    with superuser():
        Account.objects.filter(pk=account.pk).update(balance=account.balance + 5)
    edited = _verify()
    assert [str(p) for p in edited.problems] == [
        f"k account {account.key!r} stores balance {account.balance + 5}, postings sum to {account.balance}"]
    with superuser():
        Account.objects.filter(pk=account.pk).update(balance=account.balance)
        Organisation.objects.filter(pk=world.alice.organisation.pk).update(org_type="bank")
    retyped = _verify(first_only=False)
    assert any(world.alice.organisation.msp_id in str(p) and "bank" in str(p) for p in retyped.problems), \
        [str(p) for p in retyped.problems]


def test_a_block_sealed_while_the_verifier_reads_is_not_counted_twice(world, monkeypatch):
    """The unsealed transaction is sealed just after the snapshot is served: the verifier stops
    at the snapshot's newest block and replays that transaction once, from the snapshot."""
    before = Block.objects.count()
    _api(monkeypatch, world.client("uma"), after={"snapshot/": seal_all})
    report = _verify()
    assert Block.objects.count() == before + 1
    assert report.ok, [str(p) for p in report.problems]
    assert (report.blocks, report.pending) == (before, 1)
    assert report.transactions == Transaction.objects.filter(block__number__lt=before).count() + 1


def test_a_token_that_sees_no_snapshot_is_told_so(world, monkeypatch):
    _api(monkeypatch, world.client("alice"))
    report = _verify(first_only=False)
    assert any("balances and membership not compared" in note for note in report.notes), report.notes
