"""The global log: every sealed transaction in sealing order, as one RFC 6962 Merkle tree.

After each block the sealer appends the block's transaction hashes (``append_checkpoint``, in
the sealing transaction), stores every perfect subtree the append completes (``LogNode``) and
a checkpoint note signed by the orderer. Proofs of any size are folded from O(log n) stored
subtrees fetched in one query. Witnesses add cosignatures through ``cosignature_add``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from . import merkle, notes
from .models import Block, Checkpoint, Cosignature, Identity, LogNode, OrgType, Transaction

LEVEL_SHIFT = 48
WITNESS_IDENTITY = "witness"
WITNESS_ORG_TYPES = (OrgType.BANK, OrgType.CHARITY, OrgType.AUDITOR)


def origin() -> str:
    return getattr(settings, "GRIDCOIN_LOG_ORIGIN", "gridcoin.example/ledger")


def quorum() -> int:
    return int(getattr(settings, "GRIDCOIN_WITNESS_QUORUM", 0))


def position(level: int, index: int) -> int:
    return (level << LEVEL_SHIFT) | index


def fetch_nodes(keys) -> dict[tuple[int, int], bytes]:
    """Stored perfect subtrees by (level, index), in one query."""
    keys = set(keys)
    if not keys:
        return {}
    rows = LogNode.objects.filter(position__in=[position(lv, i) for lv, i in keys]).values_list("position", "hash")
    mask = (1 << LEVEL_SHIFT) - 1
    found = {(p >> LEVEL_SHIFT, p & mask): bytes(h) for p, h in rows}
    if len(found) != len(keys):
        raise LogError("the log's stored subtrees are incomplete")
    return found


class LogError(Exception):
    pass


def _write_nodes(created: list[tuple[tuple[int, int], bytes]]) -> None:
    positions = [position(lv, i) for (lv, i), _ in created]
    hashes = [h for _, h in created]
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("INSERT INTO ledger_lognode (position, hash) SELECT * FROM unnest(%s::bigint[], %s::bytea[])",
                        [positions, hashes])
    else:
        LogNode.objects.bulk_create([LogNode(position=p, hash=h) for p, h in zip(positions, hashes, strict=True)],
                                    batch_size=500)


def append_checkpoint(block: Block, tx_hashes: list[str], key) -> Checkpoint:
    """Append ``block``'s transactions (hex hashes, id order) and sign the checkpoint. Called by
    the sealer inside the block's database transaction; fills in earlier blocks' checkpoints
    first if the chain predates the log."""
    previous = (Checkpoint.objects.filter(number__lt=block.number).order_by("-number")
                .values_list("number", "tree_size").first())
    if block.number > 0 and (previous is None or previous[0] != block.number - 1):
        backfill_checkpoints(key, up_to=block.number - 1)
        previous = Checkpoint.objects.filter(number=block.number - 1).values_list("number", "tree_size").first()
    size = previous[1] if previous else 0
    pieces = merkle.perfect_pieces(0, size)
    known = fetch_nodes(pieces)
    frontier = [(lv, known[(lv, i)]) for lv, i in pieces]
    frontier, created = merkle.frontier_append(frontier, size, [merkle.leaf_hash(bytes.fromhex(h)) for h in tx_hashes])
    if created:
        _write_nodes(created)
    size += len(tx_hashes)
    root = merkle.frontier_root(frontier)
    body = notes.checkpoint_body(origin(), size, root, block.number, block.header_hash)
    return Checkpoint.objects.create(
        block=block, number=block.number, header_hash=block.header_hash, tree_size=size, root=root.hex(),
        body=body, signature_line=notes.sign_note(body, origin(), key),
    )


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


def consistency_proof(first: int, second: int) -> list[bytes]:
    latest = latest_size()
    if not 0 < first <= second:
        raise ProofError("sizes must satisfy 0 < first <= second")
    if second > latest:
        raise ProofError(f"the log holds {latest} transactions")
    return merkle.hashes_for_ranges(merkle.consistency_ranges(first, second), fetch_nodes)


def leaf_index(tx: Transaction) -> int | None:
    """Position of a sealed transaction in the global log."""
    if tx.block_id is None:
        return None
    block = tx.block
    end = Checkpoint.objects.filter(block=block).values_list("tree_size", flat=True).first()
    if end is None:
        return None
    return end - block.tx_count + Transaction.objects.in_block(block).filter(id__lt=tx.id).count()


def inclusion_proof(tx: Transaction, tree_size: int) -> tuple[int, list[bytes]]:
    index = leaf_index(tx)
    if index is None:
        raise ProofError("transaction is not in the log yet")
    if not index < tree_size <= latest_size():
        raise ProofError(f"tree_size must be above the leaf index {index} and at most the log's size")
    return index, merkle.hashes_for_ranges(merkle.inclusion_ranges(index, tree_size), fetch_nodes)


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
        raise CosignatureRefused(str(exc)) from exc
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
