"""The transaction hash is SHA-256 of the RFC 8785 form of envelope + effects."""

from datetime import UTC, datetime

import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import sha256_hex
from ledger.documents import proposal_bytes, proposal_document, transaction_document, transaction_hash

texts = st.text(max_size=20)
ints = st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)


@given(args=st.dictionaries(texts, st.one_of(texts, ints, st.booleans(), st.none()), max_size=5),
       key=st.one_of(st.none(), texts.filter(bool)), reason=texts, amount=ints,
       result=st.one_of(st.none(), st.dictionaries(texts, ints, max_size=3)))
def test_assembled_hash_equals_hash_of_canonical_document(args, key, reason, amount, result):
    fields = dict(chaincode="token", function="transfer", args=args, invoker="org/op", idempotency_key=key,
                  proposed_at=datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=UTC))
    effects = dict(status="valid", reason=reason, result=result, events=[{"name": "x", "payload": {"a": amount}}],
                   postings=[["a", "k", -amount], ["b", "k", amount]], state_writes=[["ns", "key", {"v": 1}, False, 1]])
    document = transaction_document(proposal=proposal_document(**fields), signature="c2ln", **effects)
    assert transaction_hash(proposal=proposal_bytes(**fields), signature="c2ln", **effects) == sha256_hex(
        rfc8785.dumps(document)
    )
