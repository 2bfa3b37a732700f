"""The global log's checkpoints and the witnesses that cosign them.

Witnesses talk to the operator only through the read API: here through the in-process test
client (a small transport adapter), and once over real HTTP against ``live_server``. Rewrites,
reorders, truncations and bad proofs are served by an operator that re-signs everything with the
orderer's own key; the witness must refuse each, keep the evidence and stop signing.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass

import pytest
from django.core.management import call_command
from django.test import Client

from ledger import log, merkle, notes
from ledger import services as ledger
from ledger.crypto import generate_private_key, public_bytes
from ledger.models import Checkpoint, Cosignature, LogChunk
from ledger.sealing import lease_acquire, orderer_key, orderer_public_hex, seal_next_block
from ledger.verify import verify_chain
from ledger.witness_client import ALARM_FILE, HttpTransport, TransportError, Witness, load_or_create_key, main, run
from tests.ledger_helpers import seal_setup

PREFIX = "/api/v1/ledger/"
WITNESS_ORGS = (("bank1", "bank"), ("charity1", "charity"), ("audit1", "auditor"))


class ClientTransport:
    """The witness's HTTP calls through Django's test client: reads signed in, posts anonymous
    with CSRF checks on (a cosignature needs neither session nor CSRF token)."""

    def __init__(self, reader: Client):
        self.reader = reader
        self.poster = Client(enforce_csrf_checks=True)

    def get(self, path, params=None):
        response = self.reader.get(PREFIX + path, params or {})
        return response.status_code, response.json()

    def post(self, path, body):
        response = self.poster.post(PREFIX + path, body, content_type="application/json")
        return response.status_code, response.json()


def seal() -> int:
    lease_acquire(holder="test")
    block = seal_next_block(holder="test", force=True)
    assert block is not None
    return block.number


@dataclass(frozen=True)
class Start:
    """Where the log stands once the setup's configuration transactions (organisations,
    identities, assets, accounts, witnesses) are sealed: a test's own blocks and transactions
    come after these."""

    block: int
    size: int
    checkpoints: list[tuple[int, int]]


def seal_the_setup() -> Start:
    seal_setup()
    checkpoints = list(Checkpoint.objects.order_by("number").values_list("number", "tree_size"))
    block, size = checkpoints[-1]
    assert size == len(network_hashes()) and not _pending()
    return Start(block=block, size=size, checkpoints=checkpoints)


def _pending() -> bool:
    from ledger.models import Transaction

    return Transaction.objects.unsealed().exists()


class Witnesses(list):
    """The witnesses, and where the log stood when they were registered."""

    start: Start


def mint(network, n: int) -> None:
    for i in range(n):
        network.mint("household:hh-alice", 10 + i)


@pytest.fixture
def reader(network, django_user_model):
    """Signed in as a utility member, who may read every transaction."""
    from accounts.models import Membership

    user = django_user_model.objects.create_user(username="witness-reader", password="x-password-1")
    Membership.objects.create(user=user, organisation=network.utility.organisation, identity=network.utility.identity)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def start(network) -> Start:
    """The network's configuration transactions, sealed as a block of their own."""
    return seal_the_setup()


@pytest.fixture
def witnesses(network, start, reader, tmp_path):
    """Three witnesses (bank, charity, auditor), registered with witness_register; their
    configuration transactions are sealed too (``witnesses.start``)."""
    out = Witnesses()
    for msp_id, org_type in WITNESS_ORGS:
        ledger.organisation_create(msp_id=msp_id, name=msp_id.title(), org_type=org_type)
        key = load_or_create_key(tmp_path / msp_id / "witness.key")
        call_command("witness_register", org=msp_id, public_key=public_bytes(key).hex())
        out.append(Witness(org=msp_id, transport=ClientTransport(reader), key=key, state_dir=tmp_path / msp_id))
    out.start = seal_the_setup()
    assert out.start.block == start.block + 1
    return out


def test_checkpoints_are_written_with_their_blocks_and_serve_proofs(network, start, reader):
    b, s = start.block, start.size  # the setup's configuration transactions come first
    assert s > 0
    mint(network, 5)
    assert seal() == b + 1
    mint(network, 8)
    assert seal() == b + 2
    hashes = [bytes.fromhex(h) for h in network_hashes()]
    assert len(hashes) == s + 13
    cps = list(Checkpoint.objects.order_by("number"))
    assert [(c.number, c.tree_size) for c in cps] == start.checkpoints + [(b + 1, s + 5), (b + 2, s + 13)]
    assert cps[-3].root == merkle.merkle_root(hashes[:s]).hex()
    assert cps[-2].root == merkle.merkle_root(hashes[:s + 5]).hex()
    assert cps[-1].root == merkle.merkle_root(hashes).hex()
    stored = b"".join(bytes(c.hashes) for c in LogChunk.objects.all())
    assert len(stored) == 32 * sum((s + 13) >> lv for lv in range((s + 13).bit_length()))
    doc = reader.get(PREFIX + "checkpoints/latest/").json()
    assert doc == reader.get(PREFIX + f"checkpoints/{b + 2}/").json()
    assert doc["body"] == (f"gridcoin.example/ledger\n{s + 13}\n"
                           f"{notes.base64.b64encode(merkle.merkle_root(hashes)).decode()}"
                           f"\nblock {b + 2} {cps[-1].header_hash}\n")
    orderer = reader.get(PREFIX + "orderer/").json()
    assert orderer == {"public_key": orderer_public_hex(), "origin": "gridcoin.example/ledger", "quorum": 0}
    assert notes.verify_note_line(doc["body"], doc["note"].split("\n\n", 1)[1].splitlines()[0],
                                  orderer["origin"], bytes.fromhex(orderer["public_key"]))
    proof = reader.get(PREFIX + "proofs/consistency/", {"first": s + 5, "second": s + 13}).json()
    assert proof["proof"] == [h.hex() for h in merkle.consistency_proof(hashes, s + 5, s + 13)]
    assert merkle.verify_consistency(s + 5, s + 13, [bytes.fromhex(h) for h in proof["proof"]],
                                     bytes.fromhex(cps[-2].root), bytes.fromhex(cps[-1].root))
    # ... and from the setup's checkpoint too.
    proof = reader.get(PREFIX + "proofs/consistency/", {"first": s, "second": s + 13}).json()
    assert merkle.verify_consistency(s, s + 13, [bytes.fromhex(h) for h in proof["proof"]],
                                     bytes.fromhex(cps[-3].root), bytes.fromhex(cps[-1].root))
    i = s + 6  # the seventh transaction of the test's own
    for size in (s + 7, s + 13):
        got = reader.get(PREFIX + "proofs/inclusion/", {"tx": hashes[i].hex(), "tree_size": size}).json()
        assert got["leaf_index"] == i and got["tree_size"] == size
        assert merkle.verify_inclusion(hashes[i], i, size, [bytes.fromhex(h) for h in got["proof"]],
                                       merkle.merkle_root(hashes[:size]))
    for params, status in (({"first": 0, "second": s + 5}, 400), ({"first": "x", "second": s + 5}, 400), ({}, 400),
                           ({"first": s + 6, "second": s + 5}, 404), ({"first": s + 5, "second": s + 14}, 404)):
        response = reader.get(PREFIX + "proofs/consistency/", params)
        assert response.status_code == status and response.json(), params
    for size, status in ((s + 6, 404), (s + 14, 404), (0, 400), ("x", 400)):
        response = reader.get(PREFIX + "proofs/inclusion/", {"tx": hashes[i].hex(), "tree_size": size})
        assert response.status_code == status, size
    assert reader.get(PREFIX + "proofs/inclusion/", {"tx": "00" * 32, "tree_size": s + 13}).status_code == 404
    assert reader.get(PREFIX + "proofs/inclusion/", {"tx": "zz", "tree_size": s + 13}).status_code == 400
    assert reader.get(PREFIX + f"checkpoints/{b + 9}/").status_code == 404
    assert Client().get(PREFIX + "checkpoints/latest/").status_code == 403
    assert verify_chain().ok


def network_hashes() -> list[str]:
    from ledger.models import Transaction

    return list(Transaction.objects.filter(block__isnull=False).order_by("id").values_list("tx_hash", flat=True))


def _forget_the_log() -> None:
    """A chain sealed before the log existed (on PostgreSQL the log's rows are immutable, so
    this takes a superuser)."""
    from tests.ledger.tampering import superuser

    with superuser():
        Cosignature.objects.all().delete()
        Checkpoint.objects.all().delete()
        LogChunk.objects.all().delete()


@pytest.mark.postgres
def test_the_log_is_immutable_in_the_database(network):
    from django.db import DatabaseError, transaction

    mint(network, 2)
    seal()
    for change in (lambda: Checkpoint.objects.update(tree_size=1), lambda: LogChunk.objects.all().delete(),
                   lambda: Checkpoint.objects.all().delete(), lambda: LogChunk.objects.update(hashes=b"\0" * 64)):
        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
            change()
    # ... but a chunk of subtree hashes may grow at its end, as the sealer appends.
    chunk = LogChunk.objects.get(position=0)
    with transaction.atomic():
        LogChunk.objects.filter(position=0).update(hashes=bytes(chunk.hashes) + b"\1" * 32)
        transaction.set_rollback(True)


def test_an_older_chain_gets_its_checkpoints_backfilled(network, start):
    s = start.size
    setup_sizes = [size for _, size in start.checkpoints]
    mint(network, 3)
    seal()
    mint(network, 4)
    seal()
    _forget_the_log()
    assert not verify_chain().ok
    mint(network, 2)
    seal()  # the sealer fills in the missing ones first
    assert list(Checkpoint.objects.order_by("number").values_list("tree_size", flat=True)) \
        == setup_sizes + [s + 3, s + 7, s + 9]
    _forget_the_log()
    call_command("ledger_checkpoints")
    assert list(Checkpoint.objects.order_by("number").values_list("tree_size", flat=True)) \
        == setup_sizes + [s + 3, s + 7, s + 9]
    assert verify_chain().ok


def test_three_witnesses_cosign_and_the_api_reports_them(network, reader, witnesses, settings):
    settings.GRIDCOIN_WITNESS_QUORUM = 3
    b, s = witnesses.start.block, witnesses.start.size
    mint(network, 4)
    seal()
    assert [w.step().action for w in witnesses] == ["cosigned"] * 3
    mint(network, 3)
    seal()
    mint(network, 2)
    seal()
    assert [w.step().action for w in witnesses] == ["cosigned"] * 3
    assert [w.step().action for w in witnesses] == ["up-to-date"] * 3
    doc = reader.get(PREFIX + "checkpoints/latest/").json()
    assert doc["block"] == b + 3 and doc["tree_size"] == s + 9
    assert sorted(c["witness"] for c in doc["cosignatures"]) == ["audit1/witness", "bank1/witness",
                                                                 "charity1/witness"]
    note_lines = doc["note"].split("\n\n", 1)[1].splitlines()
    assert len(note_lines) == 4 and note_lines[1:] == [c["line"] for c in doc["cosignatures"]]
    for c in doc["cosignatures"]:
        assert notes.verify_cosignature_line(doc["body"], c["line"], c["witness"], bytes.fromhex(c["public_key"])) \
            == c["timestamp"]
    assert reader.get(PREFIX + "orderer/").json()["quorum"] == 3
    listed = reader.get(PREFIX + "witnesses/").json()
    assert [(w["organisation"], w["org_type"]) for w in listed] == [("audit1", "auditor"), ("bank1", "bank"),
                                                                     ("charity1", "charity")]
    assert {w["public_key"] for w in listed} == {w.public_key_hex for w in witnesses}
    # The test's second block was never shown to them as latest; they cosigned it after the third.
    assert len(reader.get(PREFIX + f"checkpoints/{b + 2}/").json()["cosignatures"]) == 3
    assert len(reader.get(PREFIX + f"checkpoints/{b + 1}/").json()["cosignatures"]) == 3
    assert verify_chain().ok
    # The key file is the witness's own and private.
    key_file = witnesses[0].state_dir / "witness.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


def test_the_cosignature_endpoint_accepts_only_registered_witnesses_valid_lines(network, witnesses):
    mint(network, 2)
    seal()
    checkpoint = Checkpoint.objects.get(number=witnesses.start.block + 1)
    assert checkpoint == Checkpoint.objects.order_by("number").last()
    poster = Client(enforce_csrf_checks=True)
    url = PREFIX + f"checkpoints/{checkpoint.number}/cosignatures/"
    bank = witnesses[0]

    def post(line, target=url):
        return poster.post(target, {"line": line}, content_type="application/json")

    good = notes.cosign(checkpoint.body, "bank1/witness", bank.key, 1_800_000_000)
    stranger = generate_private_key()
    other_body = checkpoint.body.replace(f"block {checkpoint.number} ", f"block {checkpoint.number + 1} ")
    assert other_body != checkpoint.body
    refusals = {
        "not a line": ("hello", 400),
        "no signature": ("\u2014 bank1/witness", 400),
        "not base64": ("\u2014 bank1/witness ***", 400),
        "bad base64 padding": ("\u2014 bank1/witness abc", 403),
        "unknown witness": (notes.cosign(checkpoint.body, "hh-alice/witness", stranger, 1), 403),
        "not a witness identity": (notes.cosign(checkpoint.body, "bank1/operator", bank.key, 1), 403),
        "someone else's key": (notes.cosign(checkpoint.body, "bank1/witness", stranger, 1), 403),
        "another witness's name": (notes.cosign(checkpoint.body, "charity1/witness", bank.key, 1), 403),
        "wrong body": (notes.cosign(other_body, "bank1/witness", bank.key, 1), 403),
        "orderer-style signature": (notes.sign_note(checkpoint.body, "bank1/witness", bank.key), 403),
        "timestamp changed": (_with_timestamp(good, 1_800_000_001), 403),
    }
    for what, (line, status) in refusals.items():
        response = post(line)
        assert response.status_code == status, what
        assert response.json()["detail"], what
    assert post(None).status_code == 400
    assert poster.post(url, "[]", content_type="application/json").status_code == 400
    assert post(good, PREFIX + f"checkpoints/{checkpoint.number + 5}/cosignatures/").status_code == 404
    assert not Cosignature.objects.exists()
    assert post(good).status_code == 201
    assert post(good).status_code == 200  # idempotent
    later = notes.cosign(checkpoint.body, "bank1/witness", bank.key, 1_800_000_100)
    assert post(later).status_code == 200  # one per witness: the first stays
    assert list(Cosignature.objects.values_list("line", flat=True)) == [good]
    # A forged row put straight into the table is caught by ledger_verify.
    assert verify_chain().ok
    from tests.ledger.tampering import superuser

    with superuser():
        Cosignature.objects.update(line=later)
    assert "does not verify" in str(verify_chain().problems[0])


def _with_timestamp(line: str, timestamp: int) -> str:
    name, payload = notes.parse_line(line)
    payload = payload[:4] + timestamp.to_bytes(8, "big") + payload[12:]
    return f"\u2014 {name} {notes.base64.b64encode(payload).decode()}"


# --- a dishonest operator --------------------------------------------------------------------


class Operator:
    """An operator that serves its own log over the API's shapes and signs every checkpoint with
    the real orderer key: whatever history it chooses looks properly signed."""

    origin = "gridcoin.example/ledger"

    def __init__(self):
        self.key = orderer_key()
        self.blocks: list[list[bytes]] = []
        self.bad_proof = False
        self.posted: list[tuple[int, str]] = []

    def append(self, n: int, tag: str = "") -> None:
        start = sum(len(b) for b in self.blocks)
        self.blocks.append([merkle.hashlib.sha256(f"tx{tag}-{start + i}".encode()).digest() for i in range(n)])

    def leaves(self, upto_block: int) -> list[bytes]:
        return [h for b in self.blocks[:upto_block + 1] for h in b]

    def checkpoint(self, number: int) -> dict:
        leaves = self.leaves(number)
        root = merkle.merkle_root(leaves)
        header_hash = merkle.hashlib.sha256(b"header" + root + bytes([number])).hexdigest()
        body = notes.checkpoint_body(self.origin, len(leaves), root, number, header_hash)
        line = notes.sign_note(body, self.origin, self.key)
        return {"block": number, "header_hash": header_hash, "tree_size": len(leaves), "root": root.hex(),
                "origin": self.origin, "body": body, "note": notes.note_text(body, [line]),
                "cosignatures": [{"witness": notes.parse_line(cosigned)[0], "line": cosigned}
                                 for block, cosigned in self.posted if block == number]}

    def get(self, path, params=None):
        if path == "orderer/":
            return 200, {"public_key": orderer_public_hex(), "origin": self.origin, "quorum": 0}
        if path == "checkpoints/latest/":
            return 200, self.checkpoint(len(self.blocks) - 1)
        if path.startswith("checkpoints/"):
            return 200, self.checkpoint(int(path.split("/")[1]))
        if path == "proofs/consistency/":
            first, second = int(params["first"]), int(params["second"])
            proof = merkle.consistency_proof(self.leaves(len(self.blocks) - 1), first, second)
            if self.bad_proof and proof:
                proof[0] = bytes(32)
            return 200, {"first": first, "second": second, "proof": [h.hex() for h in proof]}
        raise AssertionError(path)

    def post(self, path, body):
        self.posted.append((int(path.split("/")[1]), body["line"]))
        return 201, {}


@pytest.fixture
def operated(db, tmp_path):
    operator = Operator()
    operator.append(5)
    operator.append(3)
    witness = Witness(org="bank1", transport=operator, key=generate_private_key(), state_dir=tmp_path / "w")
    assert witness.step().action == "cosigned"
    return operator, witness


def _assert_refused(witness: Witness, operator: Operator, reason: str, caplog) -> dict:
    with caplog.at_level("CRITICAL", logger="gridcoin.witness"):
        outcome = witness.step()
    assert outcome.action == "refused", outcome
    assert reason in outcome.detail
    assert any(r.levelname == "CRITICAL" and "WITNESS ALARM" in r.message for r in caplog.records)
    evidence_files = list(witness.state_dir.glob("evidence-*.json"))
    assert len(evidence_files) == 1
    evidence = json.loads(evidence_files[0].read_text())
    assert evidence["signed"]["block"] == 1 and evidence["signed"]["tree_size"] == 8
    assert evidence["presented"]["body"] and evidence["reason"] == outcome.detail
    # It stays refused, whatever the operator shows next, until a person clears the alarm.
    operator.append(4)
    assert witness.step().action == "refused"
    assert run(witness, once=True) == 2
    assert witness.state["signed"]["block"] == 1  # nothing of the forged history was signed
    return evidence


def test_the_witness_follows_an_honest_log(operated):
    operator, witness = operated
    for n in (1, 7, 2):
        operator.append(n)
        assert witness.step().action == "cosigned"
    assert witness.step().action == "up-to-date"
    assert witness.state["signed"]["tree_size"] == 18
    assert not (witness.state_dir / ALARM_FILE).exists()


def test_every_block_sealed_between_two_rounds_is_cosigned_latest_first(operated):
    operator, witness = operated
    for n in (2, 1, 4):
        operator.append(n)
    assert witness.step().action == "cosigned"
    assert [block for block, _ in operator.posted] == [1, 4, 2, 3]
    for block, line in operator.posted:
        assert notes.verify_cosignature_line(operator.checkpoint(block)["body"], line, witness.name,
                                             notes.raw_public(witness.key))
    assert "backfill" not in witness.state and witness.state["signed"]["block"] == 4
    assert witness.step().action == "up-to-date" and len(operator.posted) == 4


def test_a_lost_backfill_is_finished_next_round(operated):
    operator, witness = operated
    operator.append(2)
    operator.append(3)
    post = operator.post
    operator.post = lambda path, body: (503, {}) if path == "checkpoints/2/cosignatures/" else post(path, body)
    with pytest.raises(TransportError):
        witness.step()
    assert witness.state["backfill"]["next"] == 2
    operator.post = post
    assert [block for block, _ in operator.posted] == [1, 3]
    assert witness.step().action == "up-to-date"
    assert [block for block, _ in operator.posted] == [1, 3, 2]
    assert "backfill" not in witness.state


def test_refuses_a_block_between_rounds_that_is_not_a_prefix_of_the_latest(operated, caplog):
    operator, witness = operated
    operator.append(2)
    operator.append(3)
    honest = operator.checkpoint
    forked = Operator()
    forked.blocks = [list(b) for b in operator.blocks[:2]] + [[merkle.hashlib.sha256(b"other").digest()] * 2]
    operator.checkpoint = lambda n: forked.checkpoint(n) if n == 2 else honest(n)
    with caplog.at_level("CRITICAL", logger="gridcoin.witness"):
        outcome = witness.step()
    assert outcome.action == "refused" and outcome.block == 2
    assert "consistency proof fails" in outcome.detail
    assert (witness.state_dir / ALARM_FILE).exists()
    assert any("WITNESS ALARM" in r.message for r in caplog.records)
    assert 2 not in [block for block, _ in operator.posted]
    assert witness.step().action == "refused"


def test_refuses_a_rewritten_block_resigned_by_the_orderer(operated, caplog):
    operator, witness = operated
    operator.blocks[1][2] = merkle.hashlib.sha256(b"a different payment").digest()
    operator.append(2)
    _assert_refused(witness, operator, "no longer the one signed", caplog)


def test_refuses_a_rewritten_history_even_if_the_signed_checkpoint_is_still_served(operated, caplog):
    operator, witness = operated
    honest = operator.checkpoint
    signed_doc = honest(1)
    operator.blocks[0][0] = merkle.hashlib.sha256(b"rewritten").digest()
    operator.append(2)
    operator.checkpoint = lambda n: signed_doc if n == 1 else honest(n)
    evidence = _assert_refused(witness, operator, "consistency proof fails", caplog)
    assert evidence["consistency_proof"]


def test_refuses_reordered_transactions(operated, caplog):
    operator, witness = operated
    operator.blocks[0][1], operator.blocks[0][3] = operator.blocks[0][3], operator.blocks[0][1]
    operator.append(1)
    _assert_refused(witness, operator, "no longer the one signed", caplog)


def test_refuses_truncation(operated, caplog):
    operator, witness = operated
    operator.blocks.pop()
    _assert_refused(witness, operator, "went back from block 1 to block 0", caplog)


def test_refuses_truncation_hidden_by_new_blocks(operated, caplog):
    operator, witness = operated
    operator.blocks[1] = operator.blocks[1][:1]
    operator.append(9, tag="new")
    _assert_refused(witness, operator, "no longer the one signed", caplog)


def test_refuses_when_the_signed_checkpoint_or_the_proof_is_withheld(operated, caplog, tmp_path):
    operator, witness = operated
    operator.append(2)
    honest_get = operator.get
    operator.get = lambda path, params=None: (404, {"detail": "gone"}) if path == "checkpoints/1/" \
        else honest_get(path, params)
    _assert_refused(witness, operator, "signed before, is gone", caplog)
    operator2 = Operator()
    operator2.append(5)
    operator2.append(3)
    other = Witness(org="bank1", transport=operator2, key=generate_private_key(), state_dir=tmp_path / "w2")
    assert other.step().action == "cosigned"
    operator2.append(1)
    get2 = operator2.get
    operator2.get = lambda path, params=None: (404, {"detail": "no"}) if path == "proofs/consistency/" \
        else get2(path, params)
    caplog.clear()
    _assert_refused(other, operator2, "no consistency proof", caplog)


def test_a_server_error_is_retried_not_an_alarm(operated):
    operator, witness = operated
    operator.append(2)
    honest_get = operator.get
    operator.get = lambda path, params=None: (503, None) if path == "proofs/consistency/" else honest_get(path, params)
    assert run(witness, once=True) == 1
    assert not witness.alarmed
    operator.get = honest_get
    assert witness.step().action == "cosigned"


def test_refuses_a_wrong_consistency_proof(operated, caplog):
    operator, witness = operated
    operator.append(6)
    operator.bad_proof = True
    evidence = _assert_refused(witness, operator, "consistency proof fails", caplog)
    assert evidence["consistency_proof"][0] == "00" * 32


def test_refuses_a_checkpoint_not_signed_by_the_pinned_orderer(operated, caplog):
    operator, witness = operated
    operator.key = generate_private_key()
    operator.append(1)
    _assert_refused(witness, operator, "does not verify under the pinned key", caplog)


def test_the_command_exits_non_zero_on_refusal(operated, tmp_path, monkeypatch):
    operator, witness = operated
    operator.blocks.pop()
    monkeypatch.setattr("ledger.witness_client.HttpTransport", lambda api, token: operator)
    key_file = tmp_path / "k"
    key_file.write_text(witness.key.private_bytes_raw().hex())
    argv = ["--org", "bank1", "--api", "http://unused/", "--state-dir", str(witness.state_dir),
            "--key-file", str(key_file), "--once"]
    assert main(argv) == 2
    with pytest.raises(SystemExit) as exit_:
        call_command("run_witness", *argv)
    assert exit_.value.code == 2


# --- over real HTTP ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_witness_over_http_with_an_api_token(live_server, tmp_path, django_user_model):
    from accounts.models import Membership
    from accounts.services import api_token_create
    from tests.ledger_helpers import Network, make_member

    network = Network.create()
    teller = make_member("bank1", "bank", "teller")
    bank = teller.organisation
    user = django_user_model.objects.create_user(username="bank-witness", password="x-password-1")
    Membership.objects.create(user=user, organisation=bank, identity=teller.identity)
    _, token = api_token_create(user=user, organisation=bank, name="witness", scopes=["ledger:read"])
    key = load_or_create_key(tmp_path / "witness.key")
    call_command("witness_register", org="bank1", public_key=public_bytes(key).hex())
    mint(network, 3)
    seal()
    api = live_server.url + PREFIX
    witness = Witness(org="bank1", transport=HttpTransport(api, token), key=key, state_dir=tmp_path)
    assert witness.step().action == "cosigned"
    mint(network, 2)
    seal()
    assert main(["--org", "bank1", "--api", api, "--token", token, "--state-dir", str(tmp_path), "--once"]) == 0
    assert Cosignature.objects.filter(checkpoint__number=1, witness__organisation=bank).exists()
    assert main(["--org", "bank1", "--api", api, "--token", "gct_wrong", "--state-dir", str(tmp_path),
                 "--once"]) == 1  # an unreachable or refusing operator is retried, not an alarm
    assert not (tmp_path / ALARM_FILE).exists()


# --- a history rewritten in the operator's database, re-signed end to end ---------------------


def _rewrite_and_resign(tx_id: int, new_hash: str) -> None:
    """As a superuser would: replace one transaction's hash, then recompute every block's Merkle
    root, header, link and orderer signature and rebuild the log's checkpoints, all signed with
    the real orderer key, so the chain is consistent again."""
    from ledger.canonical import sha256_hex
    from ledger.documents import GENESIS_PREVIOUS_HASH, block_header_bytes
    from ledger.models import Block, Transaction
    from tests.ledger.tampering import superuser

    key = orderer_key()
    with superuser():
        Transaction.objects.filter(id=tx_id).update(tx_hash=new_hash)
        Cosignature.objects.all().delete()
        Checkpoint.objects.all().delete()
        LogChunk.objects.all().delete()
        previous = GENESIS_PREVIOUS_HASH
        for block in Block.objects.order_by("number"):
            hashes = Transaction.objects.in_block(block).order_by("id").values_list("tx_hash", flat=True)
            block.merkle_root = merkle.merkle_root([bytes.fromhex(h) for h in hashes]).hex()
            block.previous_hash = previous
            header = block_header_bytes(number=block.number, previous_hash=previous, merkle_root=block.merkle_root,
                                        timestamp=block.timestamp, tx_count=block.tx_count)
            block.header_hash, block.signature = sha256_hex(header), key.sign(header).hex()
            block.save()
            previous = block.header_hash
    log.backfill_checkpoints(key)


def test_witnesses_refuse_a_history_rewritten_in_the_database_and_resigned(network, reader, witnesses, caplog):
    from ledger.models import Transaction

    b, s = witnesses.start.block, witnesses.start.size
    mint(network, 4)
    seal()
    mint(network, 3)
    seal()
    assert [w.step().action for w in witnesses] == ["cosigned"] * 3
    victim = Transaction.objects.order_by("id")[s + 1]  # the test's second payment
    assert victim.tx_hash == network_hashes()[s + 1] and victim.block.number == b + 1
    _rewrite_and_resign(victim.id, merkle.hashlib.sha256(b"a payment that never happened").hexdigest())
    mint(network, 2)
    seal()
    # Everything the orderer signs checks out again; only the witnesses remember.
    doc = reader.get(PREFIX + "checkpoints/latest/").json()
    assert doc["tree_size"] == s + 9
    with caplog.at_level("CRITICAL", logger="gridcoin.witness"):
        outcomes = [w.step() for w in witnesses]
    assert [o.action for o in outcomes] == ["refused"] * 3
    assert all("no longer the one signed" in o.detail for o in outcomes)
    assert not reader.get(PREFIX + "checkpoints/latest/").json()["cosignatures"]
    for w in witnesses:
        evidence = json.loads((w.state_dir / ALARM_FILE).read_text())
        assert evidence["signed"]["block"] == b + 2 and evidence["presented"]["block"] == b + 3
        assert evidence["signed"]["root"] != reader.get(PREFIX + f"checkpoints/{b + 2}/").json()["root"]


def test_the_witness_client_runs_without_the_project():
    """It imports only the pure merkle and notes modules: it can run on another machine."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, ledger.witness_client; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'ledger', 'rest_framework')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2], env={"PATH": os.environ.get("PATH", "")})
    assert out.stdout.strip() == "['ledger', 'ledger.merkle', 'ledger.notes', 'ledger.witness_client']"


def test_a_note_signed_under_a_small_order_key_is_refused():
    """Under the neutral point as key, R = [a]B with S = a satisfies OpenSSL's equation for every
    message; the ledger's rule (libsodium's) refuses such a key for note and cosignature lines."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    order = 2**252 + 27742317777372353535851937790883648493
    seed = bytes(range(32))
    clamped = bytearray(hashlib.sha512(seed).digest()[:32])
    clamped[0] &= 248
    clamped[31] = (clamped[31] & 127) | 64
    forged = notes.raw_public(Ed25519PrivateKey.from_private_bytes(seed)) + (
        int.from_bytes(clamped, "little") % order).to_bytes(32, "little")
    neutral = bytes([1]) + bytes(31)
    body = "gridcoin.example/log\n5\n" + "A" * 43 + "=\nblock 4 " + "ab" * 32 + "\n"
    Ed25519PublicKey.from_public_bytes(neutral).verify(forged, body.encode())  # OpenSSL alone: accepted
    name = "bank1/witness"
    line = notes._line(name, notes.key_id(name, notes.ED25519, neutral) + forged)
    assert notes.verify_note_line(body, line, name, neutral) is False
    timestamp = 1_800_000_000
    Ed25519PublicKey.from_public_bytes(neutral).verify(forged, notes.cosignature_message(body, timestamp))
    cosigned = notes._line(name, notes.key_id(name, notes.COSIGNATURE_V1, neutral)
                           + timestamp.to_bytes(8, "big") + forged)
    assert notes.verify_cosignature_line(body, cosigned, name, neutral) is None
    genuine = Ed25519PrivateKey.generate()
    good = notes.cosign(body, name, genuine, timestamp)
    assert notes.verify_cosignature_line(body, good, name, notes.raw_public(genuine)) == timestamp
