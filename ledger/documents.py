"""The exact documents the ledger signs and hashes. Shared by the writer and the verifier."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .canonical import canonical_json, sha256_hex

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


def transaction_document_bytes(*, proposal: bytes, signature: str, checked: bool = False, **effects: Any) -> bytes:
    """The canonical ``transaction_document``. The signed proposal is already canonical bytes,
    so the document is assembled around them (keys in JCS order: effects, proposal, signature)
    instead of serialising the proposal twice."""
    return b"".join((
        b'{"effects":', canonical_json(effects_document(**effects), checked=checked),
        b',"proposal":', proposal,
        b',"signature":', canonical_json(signature, checked=True),
        b"}",
    ))


def transaction_hash(*, proposal: bytes, signature: str, checked: bool = False, **effects: Any) -> str:
    """SHA-256 of the canonical ``transaction_document``."""
    return sha256_hex(transaction_document_bytes(proposal=proposal, signature=signature, checked=checked, **effects))


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
