"""The global log: every sealed transaction in sealing order, as one RFC 6962 Merkle tree.

After each block the sealer appends the block's transaction hashes (``append_checkpoint``, in
the sealing transaction), stores every perfect subtree the append completes (``LogChunk``) and
a checkpoint note signed by the orderer. Proofs of any size are folded from O(log n) stored
subtrees fetched in one query. Witnesses add cosignatures through ``cosignature_add``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from . import merkle, notes
from .models import Block, Checkpoint, Cosignature, Identity, LogChunk, OrgType, Transaction

LEVEL_SHIFT = 48
WITNESS_IDENTITY = "witness"
WITNESS_ORG_TYPES = (OrgType.BANK, OrgType.CHARITY, OrgType.AUDITOR)


def origin() -> str:
    return getattr(settings, "GRIDCOIN_LOG_ORIGIN", "gridcoin.example/ledger")


def quorum() -> int:
    return int(getattr(settings, "GRIDCOIN_WITNESS_QUORUM", 0))


CHUNK = 256  # hashes per LogChunk row
HASH = 32


def chunk_position(level: int, index: int) -> int:
    return (level << LEVEL_SHIFT) | (index // CHUNK)


class LogError(Exception):
    pass


def stored_nodes(keys) -> dict[tuple[int, int], bytes]:
    """The stored perfect subtrees among ``keys`` (level, index), in one query."""
    keys = set(keys)
    if not keys:
        return {}
    chunks = {p: bytes(h) for p, h in LogChunk.objects.filter(
        position__in={chunk_position(lv, i) for lv, i in keys}).values_list("position", "hashes")}
    found = {}
    for lv, i in keys:
        data = chunks.get(chunk_position(lv, i), b"")
        offset = (i % CHUNK) * HASH
        if len(data) >= offset + HASH:
            found[(lv, i)] = data[offset:offset + HASH]
    return found


def fetch_nodes(keys) -> dict[tuple[int, int], bytes]:
    found = stored_nodes(keys)
    if len(found) != len(set(keys)):
        raise LogError("the log's stored subtrees are incomplete")
    return found


def _write_nodes(created: list[tuple[tuple[int, int], bytes]]) -> None:
    """Append the new nodes to their chunks (each level's new nodes come in index order)."""
    appends: dict[int, tuple[int, bytearray]] = {}
    for (lv, i), h in created:
        position = chunk_position(lv, i)
        if position not in appends:
            appends[position] = (i % CHUNK, bytearray())
        appends[position][1].extend(h)
    if connection.vendor == "postgresql":
        # One pipelined round trip; the trigger of migration 0012 lets a row only grow at its end.
        with connection.cursor() as cur:
            cur.execute("INSERT INTO ledger_logchunk (position, hashes) SELECT * FROM unnest(%s::bigint[], %s::bytea[]) "
                        "ON CONFLICT (position) DO UPDATE SET hashes = ledger_logchunk.hashes || EXCLUDED.hashes",
                        [list(appends), [bytes(data) for _, data in appends.values()]])
        return
    existing = {p: bytes(h) for p, h in LogChunk.objects.filter(position__in=list(appends))
                .values_list("position", "hashes")}
    for position, (start, data) in appends.items():
        have = existing.get(position, b"")
        if len(have) != start * HASH:
            raise LogError("the log's stored subtrees do not end where this block starts")
        LogChunk.objects.update_or_create(position=position, defaults={"hashes": have + bytes(data)})


def append_checkpoint(block: Block, tx_hashes: list[str], key) -> Checkpoint:
    """Append ``block``'s transactions (hex hashes, id order) and sign the checkpoint. Called by
    the sealer inside the block's database transaction; fills in earlier blocks' checkpoints
    first if the chain predates the log."""
    previous = (Checkpoint.objects.filter(number__lt=block.number).order_by("-number")
                .values_list("number", "tree_size", "frontier").first())
    if block.number > 0 and (previous is None or previous[0] != block.number - 1):
        backfill_checkpoints(key, up_to=block.number - 1)
        previous = (Checkpoint.objects.filter(number=block.number - 1)
                    .values_list("number", "tree_size", "frontier").first())
    size = previous[1] if previous else 0
    frontier = unpack_frontier(size, bytes(previous[2]) if previous else b"")
    frontier, created = merkle.frontier_append(frontier, size, [merkle.leaf_hash(bytes.fromhex(h)) for h in tx_hashes])
    if created:
        _write_nodes(created)
    size += len(tx_hashes)
    root = merkle.frontier_root(frontier)
    body = notes.checkpoint_body(origin(), size, root, block.number, block.header_hash)
    return Checkpoint.objects.create(
        block=block, number=block.number, header_hash=block.header_hash, tree_size=size, root=root.hex(),
        body=body, signature_line=notes.sign_note(body, origin(), key), frontier=b"".join(h for _, h in frontier),
    )


def unpack_frontier(size: int, packed: bytes) -> list[tuple[int, bytes]]:
    """A checkpoint's stored frontier as (level, hash), largest subtree first."""
    pieces = merkle.perfect_pieces(0, size)
    if len(packed) != HASH * len(pieces):
        raise LogError(f"the checkpoint of size {size} stores a frontier of the wrong length")
    return [(lv, packed[n * HASH:(n + 1) * HASH]) for n, (lv, _) in enumerate(pieces)]


def backfill_checkpoints(key=None, *, up_to: int | None = None) -> int:
    """Checkpoints for sealed blocks that have none (a chain sealed before the log existed), in
    block order. Returns how many were written."""
    if key is None:
        from .sealing import orderer_key

        key = orderer_key()
    written = 0
    with transaction.atomic():
        blocks = Block.objects.filter(checkpoint__isnull=True).order_by("number")
        if up_to is not None:
            blocks = blocks.filter(number__lte=up_to)
        for block in blocks.iterator(chunk_size=500):
            hashes = list(Transaction.objects.in_block(block).order_by("id").values_list("tx_hash", flat=True))
            append_checkpoint(block, hashes, key)
            written += 1
    return written


# --- reads -------------------------------------------------------------------------------------

def latest_checkpoint() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-number").first()


def latest_size() -> int:
    return Checkpoint.objects.order_by("-number").values_list("tree_size", flat=True).first() or 0


class ProofError(ValueError):
    pass


def _stored_proof(ranges: list[tuple[int, int]], size: int) -> list[bytes]:
    """Hashes for a proof over the first ``size`` leaves. A proof's last range ends at ``size``,
    and a stored subtree ending there exists only if the log holds ``size`` leaves, so the one
    lookup also checks the size."""
    if not ranges and size > latest_size():
        raise ProofError(f"the log holds {latest_size()} transactions")
    try:
        return merkle.hashes_for_ranges(ranges, fetch_nodes)
    except LogError as exc:
        raise ProofError(f"the log holds {latest_size()} transactions") from exc


def consistency_proof(first: int, second: int) -> list[bytes]:
    if not 0 < first <= second:
        raise ProofError("sizes must satisfy 0 < first <= second")
    return _stored_proof(merkle.consistency_ranges(first, second), second)


def leaf_index(tx: Transaction) -> int | None:
    """Position of a sealed transaction in the global log."""
    if tx.block_id is None:
        return None
    row = (Checkpoint.objects.filter(block_id=tx.block_id)
           .values_list("tree_size", "block__tx_count", "block__first_tx_id", "block__last_tx_id").first())
    if row is None:
        return None
    end, count, first_id, last_id = row
    before = Transaction.objects.filter(block_id=tx.block_id, id__lt=tx.id)
    if first_id is not None:
        before = before.filter(id__gte=first_id, id__lte=last_id)
    return end - count + before.count()


def inclusion_proof(tx: Transaction, tree_size: int) -> tuple[int, list[bytes]]:
    index = leaf_index(tx)
    if index is None:
        raise ProofError("transaction is not in the log yet")
    if not index < tree_size:
        raise ProofError(f"tree_size must be above the leaf index {index}")
    return index, _stored_proof(merkle.inclusion_ranges(index, tree_size), tree_size)


def witnesses():
    return (Identity.objects.filter(name=WITNESS_IDENTITY, kind="service", revoked_at__isnull=True,
                                    organisation__org_type__in=WITNESS_ORG_TYPES)
            .select_related("organisation").order_by("organisation__msp_id"))


def witness_named(name: str) -> Identity | None:
    msp_id, _, rest = name.partition("/")
    if rest != WITNESS_IDENTITY:
        return None
    return witnesses().filter(organisation__msp_id=msp_id).first()


def checkpoint_document(checkpoint: Checkpoint) -> dict:
    cosignatures = list(checkpoint.cosignatures.select_related("witness__organisation").order_by("id"))
    return {
        "block": checkpoint.number,
        "header_hash": checkpoint.header_hash,
        "tree_size": checkpoint.tree_size,
        "root": checkpoint.root,
        "origin": origin(),
        "body": checkpoint.body,
        "note": notes.note_text(checkpoint.body, [checkpoint.signature_line] + [c.line for c in cosignatures]),
        "cosignatures": [{"witness": c.witness.qualified_name, "public_key": bytes(c.witness.public_key).hex(),
                          "timestamp": c.timestamp, "line": c.line} for c in cosignatures],
    }


# --- writes ------------------------------------------------------------------------------------

@dataclass
class CosignatureRefused(Exception):
    detail: str
    status: int = 400


def cosignature_add(checkpoint: Checkpoint, line: str) -> tuple[Cosignature, bool]:
    """Store a witness's cosignature of ``checkpoint``; (row, created). Authenticated by the
    signature itself: it must verify under the registered witness key over the stored body."""
    if not isinstance(line, str):
        raise CosignatureRefused("line must be a string")
    line = line.removesuffix("\n")
    try:
        name, _ = notes.parse_line(line)
    except notes.NoteError as exc:
        raise CosignatureRefused(f"not a cosignature line: {exc}", 403) from exc
    witness = witness_named(name)
    if witness is None:
        raise CosignatureRefused(f"{name} is not a registered witness", 403)
    timestamp = notes.verify_cosignature_line(checkpoint.body, line, name, bytes(witness.public_key))
    if timestamp is None:
        raise CosignatureRefused(f"not a valid cosignature by {name} of checkpoint {checkpoint.number}", 403)
    existing = Cosignature.objects.filter(checkpoint=checkpoint, witness=witness).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return Cosignature.objects.create(checkpoint=checkpoint, witness=witness, timestamp=timestamp,
                                              line=line), True
    except IntegrityError:  # the same witness's other request won the race
        return Cosignature.objects.get(checkpoint=checkpoint, witness=witness), False
