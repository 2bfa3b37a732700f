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
