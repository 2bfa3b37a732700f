"""The portable export (``manage.py ledger_export``): what a stranger needs to check the ledger
with the standalone verifier (``verifier/``), in the format of docs/ledger-format.md.

Read-only and streaming: blocks are read a block at a time and written as they are read, so
memory stays flat however long the chain; the whole export reads one database snapshot."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from django.db import connection, transaction

from .canonical import loads_ledger_json
from .crypto import b64
from .documents import block_header, proposal_bytes, timestamp_text, transaction_document_bytes
from .selectors import CONFIG_NAMESPACE, as_utc, identity_config_key, policies

FORMAT = "gridcoin-ledger-export/1"
CHUNK = 2000


@dataclass
class ExportSummary:
    blocks: int = 0
    transactions: int = 0
    pending: int = 0
    files: list[str] = field(default_factory=list)


class _Hashed:
    """A file written line by line with its SHA-256 kept as it goes."""

    def __init__(self, path: Path):
        self.path = path
        self.digest = hashlib.sha256()
        self.handle: IO[bytes] = path.open("wb")

    def write(self, record: Any) -> None:
        line = orjson.dumps(record) + b"\n"
        self.digest.update(line)
        self.handle.write(line)

    def close(self) -> str:
        self.handle.close()
        return self.digest.hexdigest()


class InvokerKeys:
    """The invoker's key in force at a transaction: its latest ``config`` identity write before
    it (key rotation on chain); before its first write, the key that write names (the bootstrap
    signs with the key it registers, and members older than on-chain membership used the key the
    bootstrap lists for them); with no write at all, the registered key. ``identities``: only
    these (qualified names), else every identity."""

    def __init__(self, identities: list[str] | None = None) -> None:
        self.by_identity: dict[str, tuple[list[int], list[str]]] = {}
        if identities is None:
            which, params = "key LIKE %s", [identity_config_key("%")]
        elif not identities:
            return
        else:
            which, params = "key IN (" + ",".join(["%s"] * len(identities)) + ")", [
                identity_config_key(name) for name in identities]
        with connection.cursor() as cur:
            cur.execute("SELECT key, transaction_id, value, is_delete FROM ledger_statewrite WHERE namespace = %s "
                        f"AND {which} ORDER BY transaction_id, id", [CONFIG_NAMESPACE, *params])
            for key, tx_id, raw, is_delete in cur.fetchall():
                value = loads_ledger_json(raw)[0] if raw is not None else None
                if is_delete or not isinstance(value, dict) or not isinstance(value.get("public_key"), str):
                    continue
                ids, keys = self.by_identity.setdefault(key, ([], []))
                ids.append(tx_id)
                keys.append(value["public_key"])

    def at(self, name: str, tx_id: int, registered: bytes) -> str:
        found = self.by_identity.get(identity_config_key(name))
        if found:
            i = bisect.bisect_left(found[0], tx_id)
            return found[1][i - 1] if i else found[1][0]
        return bytes(registered).hex()


_TX_COLUMNS = ("SELECT t.id, t.chaincode, t.function, t.args, t.idempotency_key, t.body_digest, t.proposed_at, "
               "t.signature, t.status, t.reason, t.result, t.events, t.tx_hash, t.block_id, o.msp_id, i.name, "
               "i.public_key FROM ledger_transaction t JOIN ledger_identity i ON i.id = t.invoker_id "
               "JOIN ledger_organisation o ON o.id = i.organisation_id ")


@dataclass
class Rebuilt:
    """A transaction's canonical proposal and document bytes, rebuilt from its rows."""

    tx_id: int
    block_id: int | None
    tx_hash: str
    body_digest: str
    invoker: str
    proposal: bytes
    signature: str
    document: bytes
    invoker_public_key: str


def rebuilt_transactions(where: str, params: list, keys: InvokerKeys, limit: int | None = None) -> list[Rebuilt]:
    """The transactions matching ``where``, in id order, three queries for all of them."""
    with connection.cursor() as cur:
        cur.execute(_TX_COLUMNS + f"WHERE {where} ORDER BY t.id" + (f" LIMIT {int(limit)}" if limit else ""), params)
        txs = cur.fetchall()
        if not txs:
            return []
        lo, hi = txs[0][0], txs[-1][0]
        cur.execute("SELECT p.transaction_id, a.key, p.asset_id, p.amount, a.asset_id FROM ledger_posting p "
                    "JOIN ledger_account a ON a.id = p.account_id WHERE p.transaction_id BETWEEN %s AND %s "
                    "ORDER BY p.id", [lo, hi])
        postings: dict[int, list] = {}
        for tx_id, key, asset, amount, account_asset in cur.fetchall():
            if asset != account_asset:
                # A row that moves one asset on another asset's account is no posting the ledger
                # ever hashed; exported as it stands, the transaction's hash betrays it.
                asset = f"{asset} (account holds {account_asset})"
            postings.setdefault(tx_id, []).append([key, asset, amount])
        cur.execute("SELECT transaction_id, namespace, key, value, is_delete, version FROM ledger_statewrite "
                    "WHERE transaction_id BETWEEN %s AND %s ORDER BY id", [lo, hi])
        writes: dict[int, list] = {}
        for tx_id, ns, key, raw, is_delete, version in cur.fetchall():
            writes.setdefault(tx_id, []).append([ns, key, loads_ledger_json(raw)[0], bool(is_delete), version])
    out = []
    for (tx_id, chaincode, function, args, idem, digest, proposed_at, signature, status, reason, result, events,
         tx_hash, block_id, msp_id, name, public_key) in txs:
        invoker = f"{msp_id}/{name}"
        proposal = proposal_bytes(chaincode=chaincode, function=function, args=loads_ledger_json(args)[0],
                                  invoker=invoker, idempotency_key=idem, proposed_at=as_utc(proposed_at))
        document = transaction_document_bytes(
            proposal=proposal, signature=signature, status=status, reason=reason,
            result=loads_ledger_json(result)[0], events=loads_ledger_json(events)[0],
            postings=postings.get(tx_id, []), state_writes=writes.get(tx_id, []))
        out.append(Rebuilt(tx_id, block_id, tx_hash, digest, invoker, proposal, signature, document,
                           keys.at(invoker, tx_id, public_key)))
    return out


def _transactions(where: str, params: list, keys: InvokerKeys, limit: int | None = None,
                  ) -> list[tuple[int, int | None, dict]]:
    """(id, block id, export record) of the transactions matching ``where``, in id order."""
    return [(tx.tx_id, tx.block_id, {"tx_hash": tx.tx_hash, "bytes": b64(tx.document), "body_digest": tx.body_digest,
                                     "invoker_public_key": tx.invoker_public_key})
            for tx in rebuilt_transactions(where, params, keys, limit)]


def _blocks() -> Iterator[tuple]:
    last = -1
    while True:
        with connection.cursor() as cur:
            cur.execute("SELECT id, number, previous_hash, merkle_root, timestamp, tx_count, header_hash, "
                        "signer_public_key, signature, first_tx_id, last_tx_id FROM ledger_block WHERE number > %s "
                        "ORDER BY number LIMIT %s", [last, CHUNK])
            rows = cur.fetchall()
        if not rows:
            return
        yield from rows
        last = rows[-1][1]


def _strays() -> dict[int, list[int]]:
    """Transactions claiming a block whose id range does not cover them, by block id: the export
    lists each under the block it claims, where the block's root and count betray it."""
    strays: dict[int, list[int]] = {}
    with connection.cursor() as cur:
        cur.execute("SELECT t.block_id, t.id FROM ledger_transaction t JOIN ledger_block b ON b.id = t.block_id "
                    "WHERE t.id NOT BETWEEN b.first_tx_id AND b.last_tx_id OR b.first_tx_id IS NULL ORDER BY t.id")
        for block_id, tx_id in cur.fetchall():
            strays.setdefault(block_id, []).append(tx_id)
    return strays


def _block_record(block: tuple, keys: InvokerKeys, strays: list[int]) -> dict:
    block_id, number, previous_hash, root, timestamp, tx_count, header_hash, signer, signature, first, last = block
    rows = _transactions("t.id BETWEEN %s AND %s AND t.block_id = %s", [first or 0, last or 0, block_id], keys)
    if strays:
        marks = ",".join(["%s"] * len(strays))
        rows = sorted(rows + _transactions(f"t.id IN ({marks})", strays, keys), key=lambda r: r[0])
    header = block_header(number=number, previous_hash=previous_hash, merkle_root=root,
                          timestamp=as_utc(timestamp), tx_count=tx_count)
    return {"header": header, "header_hash": header_hash, "signature": signature, "signer_public_key": signer,
            "transactions": [record for _, _, record in rows], "checkpoint": _checkpoint(block_id)}


def _checkpoint(block_id: int) -> dict | None:
    """The block's checkpoint in the global log: size, root, body, the orderer's note line and
    the witnesses' cosignature lines with the keys they were made with."""
    with connection.cursor() as cur:
        cur.execute("SELECT id, number, header_hash, tree_size, root, body, signature_line FROM ledger_checkpoint "
                    "WHERE block_id = %s", [block_id])
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute("SELECT o.msp_id, i.name, i.public_key, s.timestamp, s.line FROM ledger_cosignature s "
                    "JOIN ledger_identity i ON i.id = s.witness_id JOIN ledger_organisation o "
                    "ON o.id = i.organisation_id WHERE s.checkpoint_id = %s ORDER BY s.id", [row[0]])
        cosignatures = [{"witness": f"{m}/{n}", "public_key": bytes(k).hex(), "timestamp": t, "line": line}
                        for m, n, k, t, line in cur.fetchall()]
    _, number, header_hash, tree_size, root, body, line = row
    return {"block": number, "header_hash": header_hash, "tree_size": tree_size, "root": root, "body": body,
            "signature_line": line, "cosignatures": cosignatures}


def pending_records(keys: InvokerKeys) -> Iterator[dict]:
    """Transactions in no block of the chain: not sealed yet, or claiming a block that is gone."""
    last = 0
    while True:
        rows = _transactions("t.id > %s AND (t.block_id IS NULL OR NOT EXISTS (SELECT 1 FROM ledger_block b "
                             "WHERE b.id = t.block_id))", [last], keys, limit=CHUNK)
        if not rows:
            return
        ids = [r[0] for r in rows]
        marks = ",".join(["%s"] * len(ids))
        with connection.cursor() as cur:
            cur.execute(f"SELECT transaction_id FROM ledger_unsealedtransaction WHERE transaction_id IN ({marks})", ids)
            queued = {r[0] for r in cur.fetchall()}
        for tx_id, block_id, record in rows:
            yield {**record, "queued": tx_id in queued, "claims_block": block_id is not None}
        last = ids[-1]


def _pending(out: _Hashed, keys: InvokerKeys) -> int:
    count = 0
    for record in pending_records(keys):
        out.write(record)
        count += 1
    return count


def ledger_snapshot() -> dict:
    """What the read API's ``snapshot/`` serves (docs/ledger-format.md §8): the newest block, the
    membership tables with every balance, and the transactions in no block, all as of one
    moment, so that a verifier replaying the blocks up to that one and then those transactions
    must arrive at exactly those balances and that membership."""
    with _snapshot():
        with connection.cursor() as cur:
            cur.execute("SELECT max(number) FROM ledger_block")
            newest = cur.fetchone()[0]
        return {"block": newest, "membership": membership_snapshot(), "pending": list(pending_records(InvokerKeys()))}


def membership_snapshot() -> dict[str, list[dict]]:
    """Organisations, identities and accounts (with their balances) as the tables hold them."""
    with connection.cursor() as cur:
        cur.execute("SELECT msp_id, name, org_type FROM ledger_organisation ORDER BY msp_id")
        organisations = [{"msp_id": m, "name": n, "org_type": t} for m, n, t in cur.fetchall()]
        cur.execute("SELECT o.msp_id, i.name, i.kind, i.public_key, i.revoked_at FROM ledger_identity i "
                    "JOIN ledger_organisation o ON o.id = i.organisation_id ORDER BY o.msp_id, i.name")
        identities = [{"identity": f"{m}/{n}", "kind": k, "public_key": bytes(p).hex(),
                       "revoked": timestamp_text(as_utc(r)) if r is not None else None}
                      for m, n, k, p, r in cur.fetchall()]
        cur.execute("SELECT a.key, a.asset_id, a.kind, o.msp_id, a.balance FROM ledger_account a "
                    "JOIN ledger_organisation o ON o.id = a.organisation_id ORDER BY a.asset_id, a.key")
        accounts = [{"key": k, "asset": a, "kind": kind, "organisation": m, "balance": b}
                    for k, a, kind, m, b in cur.fetchall()]
    return {"organisations": organisations, "identities": identities, "accounts": accounts}


def genesis_membership() -> dict | None:
    """The configuration bootstrap's hash and its ``config`` writes: the membership in force for
    the transactions before it (a ledger that adopted on-chain membership late has some)."""
    with connection.cursor() as cur:
        cur.execute("SELECT id, tx_hash FROM ledger_transaction WHERE chaincode = %s AND function = 'bootstrap' "
                    "AND status = 'valid' ORDER BY id LIMIT 1", [CONFIG_NAMESPACE])
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute("SELECT key, value FROM ledger_statewrite WHERE transaction_id = %s AND namespace = %s "
                    "AND NOT is_delete ORDER BY id", [row[0], CONFIG_NAMESPACE])
        members = [[key, loads_ledger_json(raw)[0]] for key, raw in cur.fetchall()]
    return {"tx_hash": row[1], "members": members}


def _state(out: _Hashed) -> None:
    last = ("", "")
    while True:
        with connection.cursor() as cur:
            cur.execute("SELECT namespace, key, value, is_deleted, version FROM ledger_stateentry "
                        "WHERE (namespace, key) > (%s, %s) ORDER BY namespace, key LIMIT %s", [*last, CHUNK * 5])
            rows = cur.fetchall()
        if not rows:
            return
        for ns, key, raw, is_deleted, version in rows:
            value = loads_ledger_json(raw)[0] if raw is not None else None
            out.write({"namespace": ns, "key": key, "value": value, "is_deleted": bool(is_deleted),
                       "version": version})
        last = (rows[-1][0], rows[-1][1])


def witnesses_and_checkpoint() -> tuple[list[dict], int, dict | None]:
    """The registered witnesses, the cosignatures required and the latest checkpoint, as the API
    serves them (docs/witnesses.md)."""
    from . import log

    witnesses = [{"name": w.qualified_name, "organisation": w.organisation.msp_id,
                  "org_type": w.organisation.org_type, "public_key": bytes(w.public_key).hex()}
                 for w in log.witnesses()]
    latest = log.latest_checkpoint()
    return witnesses, log.quorum(), (log.checkpoint_document(latest) if latest is not None else None)


@contextmanager
def _snapshot():
    """One consistent, read-only view of the database for the whole export."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def export_ledger(out_dir: str | Path, *, blocks_per_file: int = 1000) -> ExportSummary:
    from .log import origin as log_origin
    from .verify import trusted_orderer_keys

    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary()
    with _snapshot():
        keys = InvokerKeys()
        strays = _strays()
        files: list[dict] = []
        current: _Hashed | None = None
        first = last = 0

        def close() -> None:
            assert current is not None
            name = f"blocks-{first:08d}-{last:08d}.jsonl"
            digest = current.close()
            current.path.rename(directory / name)
            files.append({"name": name, "first_block": first, "last_block": last, "sha256": digest})
            summary.files.append(name)

        for block in _blocks():
            number = block[1]
            if current is None:
                current, first = _Hashed(directory / "blocks.partial"), number
            record = _block_record(block, keys, strays.get(block[0], []))
            current.write(record)
            last = number
            summary.blocks += 1
            summary.transactions += len(record["transactions"])
            if number - first + 1 >= blocks_per_file:
                close()
                current = None
        if current is not None:
            close()
        pending = _Hashed(directory / "pending.jsonl")
        summary.pending = _pending(pending, keys)
        state = _Hashed(directory / "state.jsonl")
        _state(state)
        membership = orjson.dumps(membership_snapshot())
        (directory / "membership.json").write_bytes(membership)
        witnesses, quorum, checkpoint = witnesses_and_checkpoint()
        manifest = {
            "format": FORMAT,
            "origin": log_origin(),
            "orderer_public_keys": sorted(trusted_orderer_keys()),
            "policies": policies(),
            "genesis": genesis_membership(),
            "witnesses": witnesses,
            "quorum": quorum,
            "checkpoint": checkpoint,
            "files": files,
            "pending": {"name": "pending.jsonl", "sha256": pending.close()},
            "state": {"name": "state.jsonl", "sha256": state.close()},
            "membership": {"name": "membership.json", "sha256": hashlib.sha256(membership).hexdigest()},
        }
    (directory / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    summary.files[:0] = ["manifest.json"]
    return summary
