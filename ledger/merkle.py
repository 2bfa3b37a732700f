"""RFC 6962 / RFC 9162 Merkle trees: roots, inclusion proofs and their verification.

Pure functions over raw bytes. Leaves are the ledger's transaction hashes (32 raw bytes).
"""

from __future__ import annotations

import hashlib

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: list[bytes]) -> bytes:
    """Root of a tree whose leaf hashes are given; bottom-up, same shape as RFC 6962's split."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    # Pairing adjacent nodes level by level and carrying an odd last node up unchanged
    # builds exactly the RFC 6962 tree (left subtrees are always perfect).
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_root(leaves: list[bytes]) -> bytes:
    return root_from_leaf_hashes([leaf_hash(d) for d in leaves])


def inclusion_proof(leaves: list[bytes], index: int) -> list[bytes]:
    """Audit path for leaf ``index`` (RFC 6962 §2.1.1 PATH), leaf-to-root order."""
    n = len(leaves)
    if not 0 <= index < n:
        raise IndexError(f"leaf index {index} out of range for tree of size {n}")
    hashes = [leaf_hash(d) for d in leaves]
    path: list[bytes] = []

    def walk(lo: int, hi: int, m: int) -> None:
        size = hi - lo
        if size == 1:
            return
        k = _split(size)
        if m < k:
            walk(lo, lo + k, m)
            path.append(root_from_leaf_hashes(hashes[lo + k : hi]))
        else:
            walk(lo + k, hi, m - k)
            path.append(root_from_leaf_hashes(hashes[lo : lo + k]))

    walk(0, n, index)
    return path


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2 verification; rejects a wrong index, size or path length."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in path:
        if len(p) != 32 or sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# --- the global log: proofs over stored subtree hashes (RFC 9162 §2.1.3, §2.1.4) ----------
# A proof is a list of subtree hashes MTH(D[lo:hi]). Every such subtree of an RFC 6962 tree is
# either perfect (a power-of-two size at an aligned position) or on the tree's right edge, and
# then it folds from the perfect subtrees of its binary decomposition. So a log that stores
# every perfect subtree hash, keyed by (level, index), serves any proof with O(log n) lookups.


def perfect_pieces(lo: int, hi: int) -> list[tuple[int, int]]:
    """The perfect subtrees (level, index) whose right-to-left fold is MTH(D[lo:hi]); ``lo`` is
    aligned as in every subtree of an RFC 6962 tree."""
    pieces = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        while lo % (1 << level):
            level -= 1
        pieces.append((level, lo >> level))
        lo += 1 << level
    return pieces


def fold_pieces(hashes: list[bytes]) -> bytes:
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = node_hash(h, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees [lo, hi) whose hashes form the audit path of leaf ``index`` (leaf to root)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} out of range for tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The subtrees [lo, hi) whose hashes form PROOF(first, D[second]) (RFC 9162 §2.1.4.1);
    empty when first == second."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    ranges: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, second, first, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                ranges.append((lo, hi))
            break
        k = _split(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    ranges.reverse()
    return ranges


def hashes_for_ranges(ranges: list[tuple[int, int]], fetch) -> list[bytes]:
    """Subtree hashes for ``ranges``; ``fetch(set of (level, index))`` returns {key: hash}, so a
    store answers every proof in one lookup."""
    pieces = [perfect_pieces(lo, hi) for lo, hi in ranges]
    known = fetch({p for ps in pieces for p in ps})
    return [fold_pieces([known[p] for p in ps]) for ps in pieces]


def list_fetch(leaf_hashes: list[bytes]):
    """A ``fetch`` over an in-memory list of leaf hashes (tests, small trees)."""
    def fetch(keys):
        return {(lv, i): root_from_leaf_hashes(leaf_hashes[i << lv:(i + 1) << lv]) for lv, i in keys}
    return fetch


def consistency_proof(leaves: list[bytes], first: int, second: int | None = None) -> list[bytes]:
    """PROOF(first, D[second]) over the first ``second`` of ``leaves`` (raw leaf data)."""
    second = len(leaves) if second is None else second
    if second > len(leaves):
        raise ValueError(f"tree has only {len(leaves)} leaves")
    return hashes_for_ranges(consistency_ranges(first, second), list_fetch([leaf_hash(d) for d in leaves[:second]]))


def verify_consistency(first: int, second: int, proof: list[bytes], first_root: bytes, second_root: bytes) -> bool:
    """RFC 9162 §2.1.4.2. Sizes must satisfy 0 < first <= second; equal sizes need an empty
    proof and equal roots."""
    if not 0 < first <= second or any(len(p) != 32 for p in proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if (first & (first - 1)) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def frontier_append(frontier: list[tuple[int, bytes]], size: int, leaf_hashes: list[bytes]):
    """Append leaves to a log given its frontier (the perfect subtrees of ``size``'s binary
    decomposition, largest first, as (level, hash)). Returns the new frontier and every perfect
    subtree completed, as ((level, index), hash), in completion order."""
    frontier = list(frontier)
    created: list[tuple[tuple[int, int], bytes]] = []
    for h in leaf_hashes:
        level, node = 0, h
        created.append(((0, size), h))
        size += 1
        while frontier and frontier[-1][0] == level:
            node = node_hash(frontier.pop()[1], node)
            level += 1
            created.append(((level, (size >> level) - 1), node))
        frontier.append((level, node))
    return frontier, created


def frontier_root(frontier: list[tuple[int, bytes]]) -> bytes:
    return fold_pieces([h for _, h in frontier]) if frontier else EMPTY_ROOT
