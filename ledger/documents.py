"""The exact documents the ledger signs and hashes. Shared by the writer and the verifier."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .canonical import MAX_SAFE_INTEGER, canonical_json, sha256_hex

GENESIS_PREVIOUS_HASH = "0" * 64
SIGNATURE_REJECTION = "invalid signature: the proposal is not signed by the invoker's key"


def timestamp_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def proposal_document(*, chaincode: str, function: str, args: dict[str, Any], invoker: str,
                      idempotency_key: str | None, proposed_at: datetime) -> dict[str, Any]:
    return {
        "chaincode": chaincode,
        "function": function,
        "args": args,
        "invoker": invoker,
        "idempotency_key": idempotency_key,
        "proposed_at": timestamp_text(proposed_at),
    }


def proposal_bytes(*, checked: bool = False, **fields: Any) -> bytes:
    """The bytes an invoker signs."""
    return canonical_json(proposal_document(**fields), checked=checked)


def body_digest(chaincode: str, function: str, args: dict[str, Any], *, checked: bool = False) -> str:
    """What idempotency compares: the same key must come with the same body."""
    return sha256_hex(canonical_json({"chaincode": chaincode, "function": function, "args": args}, checked=checked))


def transaction_document(*, proposal: dict[str, Any], signature: str, status: str, reason: str, result: Any,
                         events: list, postings: list[list], state_writes: list[list]) -> dict[str, Any]:
    """Envelope and effects: postings are [account key, asset, amount]; state writes are
    [namespace, key, value, is_delete, version]."""
    return {
        "proposal": proposal,
        "signature": signature,
        "effects": effects_document(status=status, reason=reason, result=result, events=events,
                                    postings=postings, state_writes=state_writes),
    }


def effects_document(*, status: str, reason: str, result: Any, events: list, postings: list[list],
                     state_writes: list[list]) -> dict[str, Any]:
    return {
        "status": status,
        "reason": reason,
        "result": result,
        "events": events,
        "postings": postings,
        "state_writes": state_writes,
    }


def transaction_document_bytes(*, proposal: bytes, signature: str, checked: bool = False,
                               state_texts: list[bytes | None] | None = None, **effects: Any) -> bytes:
    """The canonical ``transaction_document``. The signed proposal is already canonical bytes,
    so the document is assembled around them (keys in JCS order: effects, proposal, signature)
    instead of serialising the proposal twice. ``state_texts``, one per state write, are the
    canonical bytes of their values (None for a delete) as ``put_state`` made them: the writes
    are assembled around them too instead of walking every value again."""
    return b"".join((
        b'{"effects":', effects_bytes(checked=checked, state_texts=state_texts, **effects),
        b',"proposal":', proposal,
        b',"signature":', canonical_json(signature, checked=True),
        b"}",
    ))


def transaction_hash(*, proposal: bytes, signature: str, checked: bool = False,
                     state_texts: list[bytes | None] | None = None, **effects: Any) -> str:
    """SHA-256 of the canonical ``transaction_document``."""
    return sha256_hex(transaction_document_bytes(proposal=proposal, signature=signature, checked=checked,
                                                 state_texts=state_texts, **effects))


def effects_bytes(*, status: str, reason: str, result: Any, events: list, postings: list[list],
                  state_writes: list[list], checked: bool = False,
                  state_texts: list[bytes | None] | None = None) -> bytes:
    """The canonical ``effects_document``. JCS is compositional (an object is its sorted keys
    around its members' canonical forms), so it can be built from canonical parts."""
    if state_texts is None or len(state_texts) != len(state_writes):
        return canonical_json(effects_document(status=status, reason=reason, result=result, events=events,
                                               postings=postings, state_writes=state_writes), checked=checked)
    names: dict[str, bytes] = {}
    writes = []
    for (namespace, key, _, is_delete, version), text in zip(state_writes, state_texts, strict=True):
        prefix = names.get(namespace)
        if prefix is None:
            prefix = names[namespace] = b"[" + canonical_json(namespace, checked=True) + b","
        if not isinstance(key, str) or type(is_delete) is not bool or type(version) is not int or version < 0:
            raise TypeError("a state write is [namespace, key (text), value, is_delete (boolean), version (integer)]")
        # A key is text and a version a non-negative integer: their canonical forms are orjson's
        # (canonical_json would say so after a walk each, for every write).
        writes.append(b"".join((prefix, canonical_json(key, checked=True), b",",
                                b"null" if text is None else text, b",true," if is_delete else b",false,",
                                str(version).encode() if version <= MAX_SAFE_INTEGER else canonical_json(version),
                                b"]")))
    return b"".join((
        b'{"events":', canonical_json(events, checked=checked),
        b',"postings":', canonical_json(postings, checked=checked),
        b',"reason":', canonical_json(reason, checked=checked),
        b',"result":', canonical_json(result, checked=checked),
        b',"state_writes":[', b",".join(writes),
        b'],"status":', canonical_json(status, checked=checked),
        b"}",
    ))


def block_header(*, number: int, previous_hash: str, merkle_root: str, timestamp: datetime,
                 tx_count: int) -> dict[str, Any]:
    return {
        "number": number,
        "previous_hash": previous_hash,
        "merkle_root": merkle_root,
        "timestamp": timestamp_text(timestamp),
        "tx_count": tx_count,
    }


def block_header_bytes(**fields: Any) -> bytes:
    return canonical_json(block_header(**fields))
