"""RFC 6962 / RFC 9162 Merkle trees: roots, inclusion proofs, and every way a proof can be wrong.

The reference implementation below is the RFC's recursive definition, written independently of
``ledger.merkle`` (which builds the tree bottom-up), so a shape mistake in either shows up.
"""

from __future__ import annotations

import hashlib

import pytest

from ledger.merkle import EMPTY_ROOT, inclusion_proof, leaf_hash, merkle_root, node_hash, verify_inclusion

MAX_SIZE = 70
SIZES = range(1, MAX_SIZE + 1)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """Largest power of two strictly smaller than n, by counting up (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1."""
    if not leaves:
        return _sha256(b"")
    if len(leaves) == 1:
        return _sha256(b"\x00" + leaves[0])
    k = _k(len(leaves))
    return _sha256(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:]))


def reference_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 §2.1.1, leaf-to-root order."""
    if len(leaves) == 1:
        return []
    k = _k(len(leaves))
    if index < k:
        return reference_path(index, leaves[:k]) + [reference_root(leaves[k:])]
    return reference_path(index - k, leaves[k:]) + [reference_root(leaves[:k])]


def path_shape(index: int, size: int) -> list[str]:
    """Which side each sibling of ``index`` sits on in a tree of ``size`` leaves (leaf to root)."""
    if size == 1:
        return []
    k = _k(size)
    if index < k:
        return path_shape(index, k) + ["right"]
    return path_shape(index - k, size - k) + ["left"]


def make_leaves(n: int) -> list[bytes]:
    # Transaction hashes in the ledger are 32 raw bytes; distinct per leaf.
    return [_sha256(b"tx-%d" % i) for i in range(n)]


def flip_bit(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- known vectors -----------------------------------------------------------------------------

def test_empty_root_is_sha256_of_nothing():
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_single_leaf_root_is_prefixed_leaf_hash():
    leaf = bytes(range(32))
    assert merkle_root([leaf]) == hashlib.sha256(b"\x00" + leaf).digest()
    assert leaf_hash(leaf) == hashlib.sha256(b"\x00" + leaf).digest()


def test_node_hash_is_prefixed_concatenation():
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert merkle_root([left, right]) == node_hash(leaf_hash(left), leaf_hash(right))


# The Certificate Transparency reference test data (RFC 6962 implementations share it):
# eight leaves of varying length and the root of every prefix of them.
CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@pytest.mark.parametrize("size", range(1, 9))
def test_certificate_transparency_vectors(size):
    leaves = [bytes.fromhex(x) for x in CT_LEAVES[:size]]
    assert merkle_root(leaves).hex() == CT_ROOTS[size - 1]
    assert reference_root(leaves).hex() == CT_ROOTS[size - 1]


def test_inclusion_proof_index_out_of_range():
    leaves = make_leaves(5)
    for bad in (-1, 5, 6):
        with pytest.raises(IndexError):
            inclusion_proof(leaves, bad)
    with pytest.raises(IndexError):
        inclusion_proof([], 0)


# --- every size, every index -------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
def test_root_and_proofs_match_the_rfc_definition(size):
    leaves = make_leaves(size)
    root = merkle_root(leaves)
    assert root == reference_root(leaves)
    for index in range(size):
        path = inclusion_proof(leaves, index)
        assert path == reference_path(index, leaves), f"size {size} index {index}"
        assert len(path) == len(path_shape(index, size))
        assert verify_inclusion(leaves[index], index, size, path, root), f"size {size} index {index}"


@pytest.mark.parametrize("size", SIZES)
def test_tampered_proofs_are_rejected(size):
    leaves = make_leaves(size)
    root = merkle_root(leaves)
    other = _sha256(b"not in the tree")
    for index in range(size):
        leaf = leaves[index]
        path = inclusion_proof(leaves, index)
        where = f"size {size} index {index}"

        # A flipped bit anywhere: each path element (at a few bit positions), the leaf, the root.
        for i, element in enumerate(path):
            for bit in (0, 7, 128 + index, 255):
                bad = path[:i] + [flip_bit(element, bit)] + path[i + 1:]
                assert not verify_inclusion(leaf, index, size, bad, root), f"{where}: path[{i}] bit {bit}"
        for bit in (0, 9 + index, 255):
            assert not verify_inclusion(flip_bit(leaf, bit), index, size, path, root), f"{where}: leaf bit {bit}"
            assert not verify_inclusion(leaf, index, size, path, flip_bit(root, bit)), f"{where}: root bit {bit}"
        assert not verify_inclusion(other, index, size, path, root), f"{where}: other leaf"

        # Extra hashes: appended (any value, including the root itself and a copy of the last
        # element) or prepended.
        for extra in (other, root, path[-1] if path else leaf_hash(leaf)):
            assert not verify_inclusion(leaf, index, size, path + [extra], root), f"{where}: extra appended"
            assert not verify_inclusion(leaf, index, size, [extra] + path, root), f"{where}: extra prepended"

        # Missing hashes.
        if path:
            assert not verify_inclusion(leaf, index, size, path[:-1], root), f"{where}: last dropped"
            assert not verify_inclusion(leaf, index, size, path[1:], root), f"{where}: first dropped"
            assert not verify_inclusion(leaf, index, size, [], root), f"{where}: empty path"

        # Path elements of the wrong length (the right prefix/suffix of a real hash, or padded).
        for i, element in enumerate(path):
            for bad_element in (element[:31], element + b"\x00", element[1:], b"", element * 2):
                bad = path[:i] + [bad_element] + path[i + 1:]
                assert not verify_inclusion(leaf, index, size, bad, root), f"{where}: path[{i}] length"

        # Wrong index.
        for bad_index in (index - 1, index + 1, size, size + 1, -1, -size):
            if bad_index == index:
                continue
            assert not verify_inclusion(leaf, bad_index, size, path, root), f"{where}: index {bad_index}"
        # The leaf at the neighbouring index with this proof is also wrong.
        for neighbour in (index - 1, index + 1):
            if 0 <= neighbour < size:
                assert not verify_inclusion(leaves[neighbour], index, size, path, root), f"{where}: leaf {neighbour}"
                assert not verify_inclusion(leaves[neighbour], neighbour, size, path, root), (
                    f"{where}: leaf and index {neighbour}"
                )

        # Wrong size: zero and negative always fail.
        for bad_size in (0, -1, -size):
            assert not verify_inclusion(leaf, index, bad_size, path, root), f"{where}: size {bad_size}"


def _wrong_size_outcomes(size: int) -> list[tuple[int, int, bool, bool]]:
    """(index, claimed size, verifies, same shape) for claimed sizes size-1 and size+1."""
    leaves = make_leaves(size)
    root = merkle_root(leaves)
    outcomes = []
    for index in range(size):
        path = inclusion_proof(leaves, index)
        for claimed in (size - 1, size + 1):
            verifies = verify_inclusion(leaves[index], index, claimed, path, root)
            same_shape = index < claimed and path_shape(index, claimed) == path_shape(index, size)
            outcomes.append((index, claimed, verifies, same_shape))
    return outcomes


@pytest.mark.parametrize("size", SIZES)
def test_wrong_size_is_rejected_unless_the_path_has_the_same_shape(size):
    """RFC 9162's verifier derives, from (index, size) alone, which side each sibling is on and
    how many siblings there are (``sn`` must reach exactly 0). A wrong size is therefore
    rejected whenever it changes that shape. When it does not -- e.g. leaf 0 of a 3-leaf and
    of a 4-leaf tree both have two right-hand siblings -- the verifier performs exactly the
    same hash computation, so with the same root it must (and does) accept: the size is bound
    to the tree only through the root. The ledger signs ``merkle_root`` and ``tx_count``
    together in the block header, and against the real root of a tree of the claimed size the
    proof fails (checked below), so this is not a hole."""
    for index, claimed, verifies, same_shape in _wrong_size_outcomes(size):
        assert verifies == same_shape, f"size {size} index {index} claimed size {claimed}"

    # Against the true root of a tree that really has the claimed size, the proof never verifies.
    leaves = make_leaves(size + 1)
    for claimed in (size - 1, size + 1):
        if claimed < 1:
            continue
        claimed_root = merkle_root(leaves[:claimed])
        for index in range(min(size, claimed)):
            path = inclusion_proof(leaves[:size], index)
            assert not verify_inclusion(leaves[index], index, claimed, path, claimed_root), (
                f"size {size} index {index} against the root of size {claimed}"
            )


def test_wrong_size_coincidences_are_exactly_the_known_ones():
    """Pins the shape-equal cases so a change in the verifier is noticed: leaf 0 of size 3 vs 4
    is the classic one. The last leaf never coincides: with one leaf more it gains a right-hand
    sibling, with one leaf less it is out of range."""
    coincidences = {
        (size, index, claimed)
        for size in SIZES
        for index, claimed, verifies, _ in _wrong_size_outcomes(size)
        if verifies
    }
    assert (3, 0, 4) in coincidences and (4, 0, 3) in coincidences
    assert (2, 0, 1) not in coincidences and (1, 0, 2) not in coincidences
    for size, index, claimed in coincidences:
        assert path_shape(index, size) == path_shape(index, claimed)
        assert index != size - 1
