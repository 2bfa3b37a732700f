"""RFC 9162 consistency proofs and the global log's proofs over stored subtree hashes, for every
pair of sizes up to 70, with every way a proof can be wrong.

One loop per property (not thousands of parametrised cases) keeps this under a few seconds. The
reference is the RFC's recursive SUBPROOF, written independently of ``ledger.merkle``.
"""

from __future__ import annotations

import hashlib

import pytest

from ledger.merkle import (
    consistency_proof,
    frontier_append,
    frontier_root,
    hashes_for_ranges,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    list_fetch,
    merkle_root,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 70


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_root(leaves):
    if len(leaves) == 1:
        return _sha(b"\x00" + leaves[0])
    k = _k(len(leaves))
    return _sha(b"\x01" + ref_root(leaves[:k]) + ref_root(leaves[k:]))


def ref_subproof(m, leaves, complete):
    """SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if complete else [ref_root(leaves)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, leaves[:k], complete) + [ref_root(leaves[k:])]
    return ref_subproof(m - k, leaves[k:], False) + [ref_root(leaves[:k])]


LEAVES = [_sha(b"tx-%d" % i) for i in range(MAX_SIZE)]
ROOTS = [None] + [merkle_root(LEAVES[:n]) for n in range(1, MAX_SIZE + 1)]


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[(bit // 8) % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def test_every_consistency_proof_matches_the_rfc_and_verifies():
    for n in range(1, MAX_SIZE + 1):
        assert ROOTS[n] == ref_root(LEAVES[:n])
        for m in range(1, n + 1):
            proof = consistency_proof(LEAVES, m, n)
            assert proof == (ref_subproof(m, LEAVES[:n], True) if m < n else []), (m, n)
            assert verify_consistency(m, n, proof, ROOTS[m], ROOTS[n]), (m, n)


def test_every_wrong_consistency_proof_is_rejected():
    other = _sha(b"elsewhere")
    for n in range(1, MAX_SIZE + 1):
        for m in range(1, n + 1):
            proof = consistency_proof(LEAVES, m, n)
            ok = ROOTS[m], ROOTS[n]
            where = (m, n)
            # Wrong roots: either one flipped, swapped, or the roots of a neighbouring size.
            assert not verify_consistency(m, n, proof, _flip(ok[0], m), ok[1]), where
            assert not verify_consistency(m, n, proof, ok[0], _flip(ok[1], n)), where
            if m != n:
                assert not verify_consistency(m, n, proof, ok[1], ok[0]), where
            if n < MAX_SIZE:
                assert not verify_consistency(m, n, proof, ok[0], ROOTS[n + 1]), where
            # Wrong sizes, each with the true roots of the claimed sizes (a root alone does not
            # commit to its size, so the claim is checked against the tree of that size), and
            # sizes no proof can have: zero, negative, first > second.
            for bad_m, bad_n in ((m - 1, n), (m + 1, n), (m, n - 1), (m, n + 1)):
                if 0 < bad_m <= bad_n <= MAX_SIZE and (bad_m, bad_n) != (m, n):
                    assert not verify_consistency(bad_m, bad_n, proof, ROOTS[bad_m], ROOTS[bad_n]), (where, bad_m, bad_n)
            for bad_m, bad_n in ((0, n), (-m, n), (0, 0)) + (((n, m),) if m < n else ()):
                assert not verify_consistency(bad_m, bad_n, proof, *ok), (where, bad_m, bad_n)
            # The proof itself: each hash flipped, truncated, extended, reordered, wrong lengths.
            for i, h in enumerate(proof):
                for bit in (0, 100 + i, 255):
                    bad = proof[:i] + [_flip(h, bit)] + proof[i + 1:]
                    assert not verify_consistency(m, n, bad, *ok), (where, i, bit)
                for bad_h in (h[:31], h + b"\0", b""):
                    assert not verify_consistency(m, n, proof[:i] + [bad_h] + proof[i + 1:], *ok), (where, i)
            if proof:
                assert not verify_consistency(m, n, proof[:-1], *ok), where
                assert not verify_consistency(m, n, proof[1:], *ok), where
                assert not verify_consistency(m, n, [], *ok), where
            for extra in (other, ok[0], ok[1]):
                assert not verify_consistency(m, n, proof + [extra], *ok), where
                assert not verify_consistency(m, n, [extra] + proof, *ok), where
            if len(proof) > 1 and len(set(proof)) > 1:
                assert not verify_consistency(m, n, list(reversed(proof)), *ok), where
                rotated = proof[1:] + proof[:1]
                assert not verify_consistency(m, n, rotated, *ok), where
            # A proof from another pair of sizes of the same log does not stand in for this one.
            if m > 1 and m < n:
                assert not verify_consistency(m, n, consistency_proof(LEAVES, m - 1, n), *ok), where


def test_a_rewritten_history_has_no_consistency_proof():
    """Changing, reordering or dropping any old leaf: no proof from the old root verifies,
    including the honest-looking proof computed over the rewritten log."""
    for m in range(1, 24):
        n = m + 5
        for forged in (
            LEAVES[:m - 1] + [_sha(b"rewritten")] + LEAVES[m:n],      # last old leaf changed
            [_sha(b"rewritten")] + LEAVES[1:n],                        # first old leaf changed
            LEAVES[1:n + 1],                                           # truncated at the front, shifted
            ([LEAVES[1], LEAVES[0]] + LEAVES[2:n]) if m > 1 else None,  # two old leaves swapped
        ):
            if forged is None:
                continue
            proof = consistency_proof(forged, m, n)
            assert not verify_consistency(m, n, proof, ROOTS[m], merkle_root(forged)), m


def test_sizes_the_generator_refuses():
    for first, second in ((0, 5), (-1, 5), (6, 5)):
        with pytest.raises(ValueError):
            consistency_proof(LEAVES, first, second)
    with pytest.raises(ValueError):
        consistency_proof(LEAVES[:3], 1, 4)


def test_global_log_proofs_from_stored_subtrees_match_for_every_size_and_index():
    """The log appends leaves through its frontier and stores every perfect subtree it completes;
    proofs built from those alone equal the in-memory ones, for every size, index and pair."""
    stored: dict[tuple[int, int], bytes] = {}
    frontier: list = []
    size = 0
    hashes = [leaf_hash(x) for x in LEAVES]
    # Appended in uneven batches, as blocks are sealed.
    batches, i, step = [], 0, 1
    while i < MAX_SIZE:
        batches.append((i, min(MAX_SIZE, i + step)))
        i, step = i + step, step % 5 + 1
    for lo, hi in batches:
        frontier, created = frontier_append(frontier, size, hashes[lo:hi])
        for key, h in created:
            assert key not in stored
            stored[key] = h
        size = hi
        assert frontier_root(frontier) == ROOTS[size]

    def fetch(keys):
        return {k: stored[k] for k in keys}

    for n in range(1, MAX_SIZE + 1):
        assert len([k for k in stored if (k[1] + 1) << k[0] <= n]) == sum(n >> lv for lv in range(8))
        for index in range(n):
            path = hashes_for_ranges(inclusion_ranges(index, n), fetch)
            assert path == inclusion_proof(LEAVES[:n], index), (index, n)
            assert verify_inclusion(LEAVES[index], index, n, path, ROOTS[n])
        for m in range(1, n + 1):
            from ledger.merkle import consistency_ranges

            proof = hashes_for_ranges(consistency_ranges(m, n), fetch)
            assert proof == consistency_proof(LEAVES, m, n), (m, n)
    # The in-memory fetch agrees as well.
    assert hashes_for_ranges(inclusion_ranges(3, 9), list_fetch(hashes[:9])) == inclusion_proof(LEAVES[:9], 3)
    for bad in ((-1, 5), (5, 5), (0, 0)):
        with pytest.raises(ValueError):
            inclusion_ranges(*bad)
