"""Persona tests for /api/v1/ledger/accounts/ (list and detail)."""

from __future__ import annotations

import pytest

from tests.personas import LEDGER_API, WRITE_METHODS, World, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings) -> World:
    return build_world(settings)


def _detail(pk: int) -> str:
    return f"{LEDGER_API}accounts/{pk}/"


def _urls(world: World) -> list[str]:
    return [f"{LEDGER_API}accounts/", _detail(world.alice_account.pk)]


def test_anonymous_is_refused_on_every_account_endpoint(world):
    # Session authentication is tried first and has no WWW-Authenticate challenge, so DRF
    # answers 403 (not 401) to an anonymous caller, the same on every endpoint.
    client = world.client("anonymous")
    statuses = {url: client.get(url).status_code for url in _urls(world)}
    assert set(statuses.values()) == {403}, statuses


@pytest.mark.parametrize(
    ("persona", "visible"),
    [
        ("alice", {"household:hh-alice"}),
        ("bob", {"household:hh-alice"}),
        ("charlie", {"household:hh-charlie"}),
        ("uma", {"issuance", "household:hh-alice", "household:hh-charlie"}),
    ],
)
def test_account_list_shows_only_the_callers_accounts(world, persona, visible):
    response = world.client(persona).get(f"{LEDGER_API}accounts/")
    assert response.status_code == 200
    body = response.json()
    assert {row["key"] for row in body["results"]} == visible
    assert body["count"] == len(visible)


@pytest.mark.parametrize(
    ("persona", "account", "status"),
    [
        ("alice", "alice_account", 200),
        ("bob", "alice_account", 200),
        ("charlie", "alice_account", 404),
        ("uma", "alice_account", 200),
        ("alice", "charlie_account", 404),
        ("bob", "charlie_account", 404),
        ("charlie", "charlie_account", 200),
        ("uma", "charlie_account", 200),
        ("alice", "issuance", 404),
        ("charlie", "issuance", 404),
        ("uma", "issuance", 200),
    ],
)
def test_account_detail_by_persona(world, persona, account, status):
    target = getattr(world, account)
    response = world.client(persona).get(_detail(target.pk))
    assert response.status_code == status, response.content
    if status == 200:
        body = response.json()
        assert body["id"] == target.pk and body["key"] == target.key


def test_account_detail_shows_balance_and_display_balance(world):
    # 5000 minted, 1200 to Charlie (sealed), then 1 more to Charlie (committed, not yet sealed):
    # balances move at commit, sealing only follows.
    body = world.client("bob").get(_detail(world.alice_account.pk)).json()
    assert body == {
        "id": world.alice_account.pk,
        "key": "household:hh-alice",
        "asset": "k",
        "kind": "holder",
        "organisation": "hh-alice",
        "balance": 3799,
        "display_balance": "3.799",
    }
    issuance = world.client("uma").get(_detail(world.issuance.pk)).json()
    assert issuance["balance"] == -5700 and issuance["kind"] == "issuance"


def test_unknown_account_is_404(world):
    response = world.client("uma").get(_detail(999_999))
    assert response.status_code == 404


@pytest.mark.parametrize("method", WRITE_METHODS)
@pytest.mark.parametrize("which", ["list", "detail"])
def test_writes_are_not_allowed(world, method, which):
    url = _urls(world)[0 if which == "list" else 1]
    response = getattr(world.client("alice"), method)(url, {}, format="json")
    assert response.status_code == 405, response.content
    # nothing changed
    world.alice_account.refresh_from_db()
    assert world.alice_account.balance == 3799
