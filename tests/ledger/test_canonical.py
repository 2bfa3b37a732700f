"""Canonical JSON: the fast path must produce RFC 8785 bytes exactly, and the ledger domain is
enforced (no floats, no unsafe integers, string keys only)."""

from __future__ import annotations

import hashlib
import json
import random
from unittest import mock

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import canonical
from ledger.canonical import MAX_SAFE_INTEGER, CanonicalError, canonical_json, digest, sha256_hex

CONTROL = "".join(chr(c) for c in range(0x20)) + "\x7f\u2028\u2029\ufeff"

# Any Unicode scalar value (lone surrogates are tested separately below), with control
# characters, quotes, backslashes and astral-plane characters drawn often.
NO_SURROGATES = ("Cs",)
characters = st.one_of(
    st.characters(exclude_categories=NO_SURROGATES),
    st.sampled_from(CONTROL + '"\\/'),
    st.characters(min_codepoint=0x10000, exclude_categories=NO_SURROGATES),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF, exclude_categories=NO_SURROGATES),
)
texts = st.text(characters, max_size=12)
keys = st.text(characters, max_size=6)
bmp_keys = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=NO_SURROGATES), max_size=6)
safe_ints = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
scalars = st.one_of(st.none(), st.booleans(), safe_ints, texts,
                    st.sampled_from([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0, -1]))


def json_values(key_strategy=keys):
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=5) | st.dictionaries(key_strategy, children, max_size=5),
        max_leaves=25,
    )


def has_astral_key(value) -> bool:
    if isinstance(value, dict):
        return any(any(ord(c) > 0xFFFF for c in k) for k in value) or any(has_astral_key(v) for v in value.values())
    if isinstance(value, list):
        return any(has_astral_key(v) for v in value)
    return False


def reorder(value, rng: random.Random):
    """The same document with every object's keys inserted in a shuffled order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: reorder(v, rng) for k, v in items}
    if isinstance(value, list):
        return [reorder(v, rng) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(json_values())
def test_canonical_json_equals_rfc8785(value):
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=150, deadline=None)
@given(json_values())
def test_astral_keys_take_the_rfc8785_path_and_others_the_fast_path(value):
    real_dumps = rfc8785.dumps
    with mock.patch.object(canonical.rfc8785, "dumps", side_effect=real_dumps) as spy:
        out = canonical_json(value)
    assert out == real_dumps(value)
    assert spy.called == has_astral_key(value)


@settings(max_examples=100, deadline=None)
@given(json_values(bmp_keys))
def test_fast_path_is_used_for_bmp_keys(value):
    with mock.patch.object(canonical.rfc8785, "dumps", side_effect=AssertionError("fallback used")):
        out = canonical_json(value)
    assert out == rfc8785.dumps(value)


def test_astral_keys_sort_by_utf16_code_units_not_code_points():
    # U+1F600 is 0xD83D 0xDE00 in UTF-16, which sorts before U+FFFF; by code point it is after.
    value = {"\uffff": 1, "\U0001f600": 2, "a": {"\U00010000": 3, "\ue000": 4}}
    expected = '{"a":{"\U00010000":3,"\ue000":4},"\U0001f600":2,"\uffff":1}'.encode()
    assert canonical_json(value) == expected == rfc8785.dumps(value)
    # The naive sorted dump would disagree: this is why the fallback exists.
    assert json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() != expected


def test_known_canonical_form():
    value = {"b": [1, True, None, "é\n\u2028"], "a": {"z": -0, "y": "\U0001f600"}, "": "\x00\x1f"}
    assert canonical_json(value) == (
        '{"":"\\u0000\\u001f","a":{"y":"\U0001f600","z":0},"b":[1,true,null,"é\\n\u2028"]}'.encode()
    )


@settings(max_examples=100, deadline=None)
@given(json_values(), st.randoms(use_true_random=False))
def test_key_order_does_not_matter(value, rng):
    shuffled = reorder(value, rng)
    assert shuffled == value
    assert canonical_json(shuffled) == canonical_json(value)
    assert digest(shuffled) == digest(value)


@settings(max_examples=100, deadline=None)
@given(json_values())
def test_digest_is_sha256_hex_of_canonical_bytes(value):
    expected = hashlib.sha256(rfc8785.dumps(value)).hexdigest()
    assert digest(value) == expected == sha256_hex(canonical_json(value))
    assert len(expected) == 64 and expected == expected.lower()


def test_digest_known_value():
    assert digest({"b": 1, "a": "x"}) == hashlib.sha256(b'{"a":"x","b":1}').hexdigest()
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_safe_integer_bounds_are_accepted():
    assert canonical_json([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]) == b"[9007199254740991,-9007199254740991]"


class Opaque:
    pass


REJECTED = {
    "float": 1.5,
    "integral float": 1.0,
    "zero float": 0.0,
    "nan": float("nan"),
    "infinity": float("inf"),
    "float in list": [1, 2.0],
    "float in dict": {"amount": 0.1},
    "float deep under astral key": {"\U0001f600": [{"x": 2.5}]},
    "2**53": 2**53,
    "-(2**53)": -(2**53),
    "huge int": 10**30,
    "unsafe int nested": {"a": [MAX_SAFE_INTEGER + 1]},
    "unsafe int under astral key": {"\U0001f600": -(2**53)},
    "int key": {1: "a"},
    "none key": {None: "a"},
    "bool key": {True: "a"},
    "tuple key": {("a",): 1},
    "bytes key": {b"a": 1},
    "non-string key nested": {"a": {2: 3}},
    "set": {1, 2},
    "frozenset": frozenset(["a"]),
    "set in dict": {"a": {"b"}},
    "bytes": b"raw",
    "object": Opaque(),
}


@pytest.mark.parametrize("value", list(REJECTED.values()), ids=list(REJECTED))
def test_outside_the_ledger_domain_is_rejected(value):
    with pytest.raises(CanonicalError):
        canonical_json(value)
    with pytest.raises(CanonicalError):
        digest(value)


@settings(max_examples=50, deadline=None)
@given(st.one_of(st.integers(min_value=MAX_SAFE_INTEGER + 1), st.integers(max_value=-MAX_SAFE_INTEGER - 1)))
def test_every_unsafe_integer_is_rejected(n):
    with pytest.raises(CanonicalError):
        canonical_json({"amount": n})


@settings(max_examples=50, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), json_values())
def test_every_float_is_rejected_wherever_it_hides(x, value):
    with pytest.raises(CanonicalError):
        canonical_json([value, {"x": x}])


LONE_SURROGATES = {
    "in a value": {"memo": "\ud800"},
    "in a key": {"\udfff": 1},
    "in a value under an astral key": {"\U0001f600": "\udc00"},
}


@pytest.mark.parametrize("value", list(LONE_SURROGATES.values()), ids=list(LONE_SURROGATES))
def test_lone_surrogates_are_rejected_as_canonical_errors(value):
    """``json.loads('"\\ud800"')`` yields a lone surrogate, so untrusted request bodies can
    carry one. It has no UTF-8 encoding and no RFC 8785 form; it must be refused as outside the
    ledger domain (CanonicalError, which ``invoke`` turns into LedgerError), not escape as a
    bare UnicodeEncodeError."""
    with pytest.raises(CanonicalError):
        canonical_json(value)
