"""Sign-up, login, logout, home and explorer pages (house style #7: Alice owns, Carol is a
member of Alice's household, Stranger sees nothing of theirs)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from accounts.keys import custodial_signer
from accounts.models import CustodialKey, Membership, Role
from accounts.services import user_signup
from demo import readings
from ledger import services as ledger
from ledger.crypto import public_bytes
from ledger.models import Account, Identity, Organisation, OrgType, Transaction
from ledger.sealing import lease_acquire, lease_release, seal_next_block
from ledger.units import format_amount

pytestmark = pytest.mark.django_db

VIEWPORT_META = '<meta name="viewport" content="width=device-width, initial-scale=1'
PASSWORD = "correct-horse-battery"



@pytest.fixture
def energy(db):
    """A utility and the energy asset, so a new household gets its k account."""
    utility = ledger.organisation_create(msp_id="gridco-utility", name="GridCo", org_type=OrgType.UTILITY)
    return ledger.asset_create(code="k", name="Energy coin", scale=3, display_unit="kWh", issuer=utility)


def counts() -> tuple[int, ...]:
    return (
        get_user_model().objects.count(),
        Organisation.objects.count(),
        Identity.objects.count(),
        Membership.objects.count(),
        CustodialKey.objects.count(),
        Account.objects.count(),
    )


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def seal_all() -> None:
    assert lease_acquire(holder="pages")
    while seal_next_block(holder="pages", force=True):
        pass
    lease_release(holder="pages")


def signed_in(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


# --- sign-up ----------------------------------------------------------------------------------


def test_signup_page_renders_for_phone(client):
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    html = response.content.decode()
    assert VIEWPORT_META in html
    for name in ("username", "email", "password1", "password2"):
        assert f'name="{name}"' in html


def test_signup_creates_user_household_identity_key_and_account_and_logs_in(client, energy):
    response = client.post(
        "/accounts/signup/",
        {"username": "dora", "email": "dora@example.org", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302 and response.url == "/"

    user = get_user_model().objects.get(username="dora")
    assert user.email == "dora@example.org" and user.check_password(PASSWORD)
    household = Organisation.objects.get(msp_id="hh-dora")
    assert household.org_type == OrgType.HOUSEHOLD
    membership = Membership.objects.get(user=user)
    assert membership.organisation == household and membership.role == Role.OWNER
    assert membership.identity.organisation == household
    # The sealed custodial key opens to the identity's registered public key.
    assert public_bytes(custodial_signer(membership.identity)) == bytes(membership.identity.public_key)
    account = Account.objects.get(key="household:hh-dora", asset_id="k")
    assert account.organisation == household and account.balance == 0

    home = client.get("/")
    assert home.wsgi_request.user == user
    html = home.content.decode()
    assert "dora&#x27;s household" in html and "0.000" in html and "kWh" in html


def test_signup_email_is_optional(client, energy):
    response = client.post("/accounts/signup/", {"username": "eve", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    assert get_user_model().objects.get(username="eve").email == ""


@pytest.mark.parametrize("taken", ["alice", "Alice"])
def test_duplicate_username_gives_clear_error_and_creates_nothing(client, energy, taken):
    user_signup(username="alice", password=PASSWORD)
    before = counts()
    response = client.post("/accounts/signup/", {"username": taken, "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 200
    assert "That username is already taken" in response.content.decode()
    assert counts() == before
    assert "_auth_user_id" not in client.session


def test_username_whose_household_exists_is_taken(client, energy):
    ledger.organisation_create(msp_id="hh-frank", name="Frank's", org_type=OrgType.HOUSEHOLD)
    before = counts()
    response = client.post("/accounts/signup/", {"username": "Frank", "password1": PASSWORD, "password2": PASSWORD})
    assert "That username is already taken" in response.content.decode()
    assert counts() == before


def test_lost_race_for_a_username_is_a_form_error_not_a_500(client, energy, monkeypatch):
    """If the check passes but another request creates the user first, the service's
    IntegrityError rolls everything back and the page explains."""
    from accounts import views

    def rival_signs_up_first(**kwargs):
        user_signup(username="alice", password="rival-password")
        snapshot.append(counts())
        return user_signup(**kwargs)

    snapshot: list[tuple[int, ...]] = []
    monkeypatch.setattr(views.services, "user_signup", rival_signs_up_first)
    response = client.post("/accounts/signup/", {"username": "alice", "password1": PASSWORD, "password2": PASSWORD})
    before = snapshot[0]
    assert response.status_code == 200
    assert "That username is already taken" in response.content.decode()
    assert counts() == before


@pytest.mark.parametrize(
    "data, message",
    [
        ({"username": "gina", "password1": PASSWORD, "password2": PASSWORD + "x"}, "The two password fields didn"),
        ({"username": "gina", "password1": "short", "password2": "short"}, "too short"),
        ({"username": "gina", "password1": "password123", "password2": "password123"}, "too common"),
        ({"username": "gi na@x", "password1": PASSWORD, "password2": PASSWORD}, "Use only letters, digits"),
        ({"username": "", "password1": PASSWORD, "password2": PASSWORD}, "This field is required"),
    ],
)
def test_signup_form_errors_are_shown_and_nothing_is_created(client, energy, data, message):
    before = counts()
    response = client.post("/accounts/signup/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert counts() == before


def test_signed_in_user_visiting_signup_goes_home(energy):
    user_signup(username="hana", password=PASSWORD)
    response = signed_in("hana").get("/accounts/signup/")
    assert response.status_code == 302 and response.url == "/"


def test_signup_ignores_an_offsite_next(client, energy):
    response = client.post(
        "/accounts/signup/?next=https://evil.example/",
        {"username": "ivan", "password1": PASSWORD, "password2": PASSWORD, "next": "https://evil.example/"},
    )
    assert response.status_code == 302 and response.url == "/"


# --- login / logout ---------------------------------------------------------------------------


def test_login_and_logout(client, energy):
    user_signup(username="judy", password=PASSWORD)
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and VIEWPORT_META in page.content.decode()

    response = client.post("/accounts/login/", {"username": "judy", "password": PASSWORD})
    assert response.status_code == 302 and response.url == "/"
    assert "Log out" in client.get("/").content.decode()

    assert client.get("/accounts/logout/").status_code == 405  # a link cannot sign anyone out
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response.url == "/"
    assert "_auth_user_id" not in client.session


def test_login_with_wrong_password_shows_an_error(client, energy):
    user_signup(username="judy", password=PASSWORD)
    response = client.post("/accounts/login/", {"username": "judy", "password": "wrong-password"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_follows_a_local_next(client, energy):
    user_signup(username="judy", password=PASSWORD)
    response = client.post(
        "/accounts/login/?next=/explorer/", {"username": "judy", "password": PASSWORD, "next": "/explorer/"}
    )
    assert response.status_code == 302 and response.url == "/explorer/"


# --- home -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/accounts/signup/", "/accounts/login/"])
def test_public_pages_carry_the_viewport_meta_and_local_assets_only(client, path):
    html = client.get(path).content.decode()
    assert VIEWPORT_META in html
    assert "/static/frontend/gridcoin.css" in html
    assert "http://" not in html and "https://" not in html  # no CDN: the machines are offline


def test_home_shows_each_users_organisations_and_balances():
    seed()
    alice = signed_in("alice").get("/").content.decode()
    # ₹40.00 of coins less 3.5 kWh given to the demo's campaign and group fundings (demo.charity)
    assert "Alice&#x27;s household" in alice and "household:hh-alice" in alice and "1.500" in alice
    assert "sunfarm" not in alice

    carol = signed_in("carol").get("/").content.decode()
    assert "Alice&#x27;s household" in carol and "You are a member" in carol and "1.500" in carol

    producer = signed_in("producer").get("/").content.decode()
    # 1,000 kWh generated, 400 kWh sold wholesale, and a week of the solar array's readings.
    produced = readings.DAYS * sum(readings.solar_watts(h) for h in range(24))
    assert "producer:sunfarm" in producer and format_amount(600_000 + produced, 3) in producer

    utility = signed_in("utility").get("/").content.decode()
    assert "utility:gridco-utility:0" in utility and "25.000" in utility
    assert "household:hh-alice" not in utility  # home shows your own accounts, not all you may audit


def test_home_shows_fiat_with_two_decimals():
    seed()
    utility_org = Organisation.objects.get(msp_id="gridco-utility")
    ledger.account_open(key="utility:gridco", asset="INR", organisation=utility_org)
    from accounts.services import invoke_as, membership_for

    identity = membership_for(get_user_model().objects.get(username="utility")).identity
    result = invoke_as(
        identity=identity,
        chaincode="token",
        function="mint",
        args={"to": "utility:gridco", "asset": "INR", "amount": 123456},
        idempotency_key="t-inr",
    )
    assert result.ok, result.reason
    html = signed_in("utility").get("/").content.decode()
    assert "1234.56" in html and "INR" in html


# --- explorer ---------------------------------------------------------------------------------


@pytest.fixture
def sealed_demo(db):
    """The demo network plus a stranger with an empty household, all sealed into block 0."""
    seed()
    user_signup(username="stranger", password=PASSWORD)
    seal_all()
    txs = {t.idempotency_key: t for t in Transaction.objects.all()}
    return txs


def test_explorer_pages_require_login(client, sealed_demo):
    tx = sealed_demo["payment:bank:demobank:seed-demo-retail-alice"]
    for path in ("/explorer/", "/explorer/blocks/0/", f"/explorer/tx/{tx.tx_hash}/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.url.startswith("/accounts/login/?next="), path


def test_explorer_lists_latest_blocks(sealed_demo):
    html = signed_in("alice").get("/explorer/").content.decode()
    assert VIEWPORT_META in html
    block_hash = sealed_demo["payment:bank:demobank:seed-demo-retail-alice"].block.header_hash
    assert block_hash[:10] in html and 'href="/explorer/blocks/0/"' in html


def test_block_page_shows_header_and_only_visible_transactions(sealed_demo):
    transfer = sealed_demo["payment:bank:demobank:seed-demo-retail-alice"]
    mint = sealed_demo["seed-demo-generate"]
    block = transfer.block

    alice = signed_in("alice").get("/explorer/blocks/0/")
    html = alice.content.decode()
    assert alice.status_code == 200
    assert block.header_hash in html and block.merkle_root in html and block.signature in html
    assert transfer.tx_hash[:12] in html
    assert mint.tx_hash[:12] not in html
    # The demo's other organisations' transactions: the mint, the wholesale sale, the prices,
    # Bob's purchases and funding and his meter's and the solar array's week of readings, and of
    # demo.charity: the campaign opened, GridCo's pledge, Bob's gift, the bank's donation, Bob's
    # group funding opened and his two contributions; of demo.billing: the distributor's station
    # and the utility's dues terms.
    # And the configuration transactions that made every member, key and account.
    hidden = 1 + 1 + 2 + 2 + 1 + 2 * readings.READINGS_PER_METER + 7 + 1 + 1
    hidden += Transaction.objects.filter(chaincode="config", block=block).count()
    # Alice's: 2 purchases, 1 funding, her meter's readings; her gift, the disbursement to her
    # meter, the group funding she opened and her two contributions.
    assert block.tx_count == hidden + 2 + 1 + readings.READINGS_PER_METER + 5
    assert f"{hidden} other transactions" in html

    stranger = signed_in("stranger").get("/explorer/blocks/0/").content.decode()
    assert block.header_hash in stranger  # headers are public to members: anyone may verify
    assert transfer.tx_hash[:12] not in stranger and mint.tx_hash[:12] not in stranger

    auditor = signed_in("auditor").get("/explorer/blocks/0/").content.decode()
    assert transfer.tx_hash[:12] in auditor and mint.tx_hash[:12] in auditor


def test_unknown_block_is_404(sealed_demo):
    assert signed_in("alice").get("/explorer/blocks/99/").status_code == 404


def test_transaction_page_shows_postings_and_proof_to_alice_and_404_to_stranger(sealed_demo):
    transfer = sealed_demo["payment:bank:demobank:seed-demo-retail-alice"]
    response = signed_in("alice").get(f"/explorer/tx/{transfer.tx_hash}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert transfer.tx_hash in html and "retail-seller.sell" in html
    assert "household:hh-alice" in html and "+5.000" in html
    assert "utility:gridco" in html and "-5.000" in html
    assert "Inclusion proof" in html and transfer.block.merkle_root in html
    from ledger.selectors import transaction_proof

    proof = transaction_proof(transfer)
    assert f"{proof['leaf_index']} of {proof['tree_size']}" in html
    for node in proof["audit_path"]:
        assert node in html

    carol = signed_in("carol").get(f"/explorer/tx/{transfer.tx_hash}/")
    assert carol.status_code == 200  # a member of Alice's household sees its transactions

    assert signed_in("stranger").get(f"/explorer/tx/{transfer.tx_hash}/").status_code == 404
    mint = sealed_demo["seed-demo-generate"]
    assert signed_in("alice").get(f"/explorer/tx/{mint.tx_hash}/").status_code == 404
    assert signed_in("producer").get(f"/explorer/tx/{mint.tx_hash}/").status_code == 200


def test_unsealed_transaction_has_no_proof_yet(sealed_demo):
    from accounts.services import invoke_as, membership_for

    identity = membership_for(get_user_model().objects.get(username="utility")).identity
    result = invoke_as(
        identity=identity,
        chaincode="token",
        function="transfer",
        args={"from": "utility:gridco-utility:0", "to": "household:hh-alice", "asset": "k", "amount": 1},
        idempotency_key="t-unsealed",
    )
    assert result.ok, result.reason
    client = signed_in("alice")
    html = client.get(f"/explorer/tx/{result.tx_hash}/").content.decode()
    assert "not sealed yet" in html and "Not sealed into a block yet" in html
    index = client.get("/explorer/").content.decode()
    assert "1 waiting to be sealed" in index and result.tx_hash[:12] in index


def test_explorer_pages_back_with_htmx_rows(sealed_demo, monkeypatch):
    from accounts.services import invoke_as, membership_for
    from frontend import views

    identity = membership_for(get_user_model().objects.get(username="utility")).identity
    for n in range(3):  # blocks 1..3, one transaction each
        invoke_as(
            identity=identity,
            chaincode="token",
            function="mint",
            args={"to": "utility:gridco-utility:0", "asset": "k", "amount": 1},
            idempotency_key=f"t-page-{n}",
        )
        seal_all()
    monkeypatch.setattr(views, "BLOCKS_PER_PAGE", 2)
    client = signed_in("alice")

    html = client.get("/explorer/").content.decode()
    assert 'href="/explorer/blocks/3/"' in html and 'href="/explorer/blocks/2/"' in html
    assert 'href="/explorer/blocks/1/"' not in html
    assert 'hx-get="/explorer/?before=2"' in html

    fragment = client.get("/explorer/?before=2", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "<tr>" in fragment
    assert 'href="/explorer/blocks/1/"' in fragment and 'href="/explorer/blocks/0/"' in fragment
    assert "Older blocks" not in fragment

    full = client.get("/explorer/?before=2").content.decode()  # without JavaScript: a full page
    assert "<html" in full and 'href="/explorer/blocks/1/"' in full
    assert client.get("/explorer/?before=x").status_code == 404


# --- admin ------------------------------------------------------------------------------------


def test_ledger_admin_is_read_only(sealed_demo):
    admin = get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
    client = Client()
    client.force_login(admin)
    tx = sealed_demo["payment:bank:demobank:seed-demo-retail-alice"]
    for model in ("transaction", "block", "account", "organisation", "identity", "asset", "stateentry"):
        assert client.get(f"/admin/ledger/{model}/").status_code == 200, model
        assert client.get(f"/admin/ledger/{model}/add/").status_code == 403, model
    page = client.get(f"/admin/ledger/transaction/{tx.pk}/change/")
    assert page.status_code == 200 and "household:hh-alice" in page.content.decode()
    response = client.post(f"/admin/ledger/transaction/{tx.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Transaction.objects.filter(pk=tx.pk).exists()
    assert client.get("/admin/accounts/membership/").status_code == 200
    assert client.get("/admin/accounts/membership/add/").status_code == 403
