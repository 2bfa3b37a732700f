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


values = st.recursive(st.one_of(texts, ints, st.booleans(), st.none()),
                      lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
                      max_leaves=8)


@given(writes=st.lists(st.tuples(texts, texts, st.one_of(st.none(), st.dictionaries(texts, values, max_size=4)),
                                 st.integers(min_value=1, max_value=2**53 - 1)), max_size=4),
       result=st.one_of(st.none(), values), reason=texts)
def test_hash_assembled_around_state_texts_equals_hash_of_canonical_document(writes, result, reason):
    """put_state's canonical bytes of each value (any keys, those outside the BMP included), put
    into the document as they are, hash as the whole document does; a delete's value is null."""
    from ledger.canonical import canonical_json

    state_writes = [[ns, key, value, value is None, version] for ns, key, value, version in writes]
    texts_of = [None if value is None else canonical_json(value) for _, _, value, _ in writes]
    effects = dict(status="valid", reason=reason, result=result, events=[{"name": "e", "payload": {"k": 1}}],
                   postings=[], state_writes=state_writes)
    document = transaction_document(proposal={"p": 1}, signature="c2ln", **effects)
    assert transaction_hash(proposal=b'{"p":1}', signature="c2ln", state_texts=texts_of, **effects) == sha256_hex(
        rfc8785.dumps(document))
