"""The ordering service: cut blocks of committed, unsealed transactions, off the hot path.

``seal_next_block`` is one step (claim, hash, sign, link); ``SealerLoop`` repeats it while it
holds the single sealer lease, claimed by compare-and-swap so only one sealer ever runs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone

from .canonical import sha256_hex
from .crypto import private_key_from_seed, public_bytes, unb64
from .db import pool_drop_dead_connections
from .documents import GENESIS_PREVIOUS_HASH, block_header_bytes
from .log import append_checkpoint
from .merkle import merkle_root
from .models import Block, SealerLease
from .selectors import as_utc

logger = logging.getLogger(__name__)

LEASE_NAME = "sealer"
LEASE_SECONDS = 10.0


def orderer_key():
    return private_key_from_seed(unb64(settings.GRIDCOIN_ORDERER_KEY))


def orderer_public_hex() -> str:
    return public_bytes(orderer_key()).hex()


def lease_acquire(*, holder: str, seconds: float = LEASE_SECONDS) -> bool:
    """Claim or renew the sealer lease; True if ``holder`` now holds it."""
    now = timezone.now()
    SealerLease.objects.get_or_create(name=LEASE_NAME)
    claimed = SealerLease.objects.filter(
        Q(holder=holder) | Q(holder="") | Q(expires_at__lt=now), name=LEASE_NAME
    ).update(holder=holder, expires_at=now + timedelta(seconds=seconds))
    return claimed == 1


def lease_release(*, holder: str) -> None:
    SealerLease.objects.filter(name=LEASE_NAME, holder=holder).update(holder="", expires_at=None)


@dataclass(frozen=True)
class SealedBlock:
    number: int
    header_hash: str
    tx_count: int


def seal_next_block(*, holder: str, max_tx: int | None = None, timeout: float | None = None,
                    force: bool = False) -> SealedBlock | None:
    """Seal one block if there is enough work (``max_tx`` waiting, or the oldest waiting longer
    than ``timeout`` seconds, or ``force``). Returns the block, or None if it did nothing.
    Fenced: only the lease holder can seal, checked inside the same database transaction."""
    max_tx = max_tx or settings.GRIDCOIN_BLOCK_MAX_TX
    timeout = settings.GRIDCOIN_BLOCK_TIMEOUT if timeout is None else timeout
    now = timezone.now()
    with transaction.atomic():
        lease = SealerLease.objects.select_for_update().filter(name=LEASE_NAME).first()
        if lease is None or lease.holder != holder or (lease.expires_at and lease.expires_at < now):
            return None
        with connection.cursor() as cur:
            cur.execute(
                "SELECT t.id, t.tx_hash FROM ledger_unsealedtransaction u "
                "JOIN ledger_transaction t ON t.id = u.transaction_id ORDER BY u.transaction_id LIMIT %s", [max_tx]
            )
            rows = cur.fetchall()
            if not rows:
                return None
            if len(rows) < max_tx and not force:
                cur.execute("SELECT min(t.proposed_at) FROM ledger_unsealedtransaction u "
                            "JOIN ledger_transaction t ON t.id = u.transaction_id")
                oldest = as_utc(cur.fetchone()[0])
                if (now - oldest).total_seconds() < timeout:
                    return None
        last = Block.objects.order_by("-number").values_list("number", "header_hash").first()
        number, previous = (last[0] + 1, last[1]) if last else (0, GENESIS_PREVIOUS_HASH)
        root = merkle_root([bytes.fromhex(r[1]) for r in rows]).hex()
        header = dict(number=number, previous_hash=previous, merkle_root=root, timestamp=now, tx_count=len(rows))
        header_bytes = block_header_bytes(**header)
        key = orderer_key()
        ids = [r[0] for r in rows]
        block = Block.objects.create(
            **header, header_hash=sha256_hex(header_bytes), signer_public_key=public_bytes(key).hex(),
            signature=key.sign(header_bytes).hex(), first_tx_id=ids[0], last_tx_id=ids[-1],
        )
        append_checkpoint(block, [r[1] for r in rows], key)
        with connection.cursor() as cur:
            if connection.vendor == "postgresql":
                cur.execute("UPDATE ledger_transaction SET block_id = %s WHERE block_id IS NULL AND id = ANY(%s)",
                            [block.pk, ids])
                sealed = cur.rowcount
                cur.execute("DELETE FROM ledger_unsealedtransaction WHERE transaction_id = ANY(%s)", [ids])
            else:
                marks = ",".join(["%s"] * len(ids))
                cur.execute(f"UPDATE ledger_transaction SET block_id = %s WHERE block_id IS NULL AND id IN ({marks})",
                            [block.pk, *ids])
                sealed = cur.rowcount
                cur.execute(f"DELETE FROM ledger_unsealedtransaction WHERE transaction_id IN ({marks})", ids)
            if sealed != len(ids) or cur.rowcount != len(ids):
                raise RuntimeError("transactions were sealed by someone else; lease fencing failed")
        sealed = SealedBlock(number=number, header_hash=block.header_hash, tx_count=len(rows))
        transaction.on_commit(lambda: _announce(sealed))
    return sealed


def _announce(block: SealedBlock) -> None:
    from .events import send_ledger_event

    send_ledger_event("block.sealed", {"number": block.number, "header_hash": block.header_hash,
                                       "tx_count": block.tx_count})


def new_holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SealerLoop:
    """Holds the lease and seals until stopped. ``step`` is one iteration, for tests."""

    def __init__(self, *, holder: str | None = None, poll: float = 0.05, lease_seconds: float = LEASE_SECONDS):
        self.holder = holder or new_holder_name()
        self.poll = poll
        self.lease_seconds = lease_seconds
        self.stopped = threading.Event()
        self._lease_until = 0.0

    def step(self) -> bool:
        """Renew the lease when due, then try to seal. True if a block was sealed."""
        mono = time.monotonic()
        if mono >= self._lease_until - self.lease_seconds / 2:
            if not lease_acquire(holder=self.holder, seconds=self.lease_seconds):
                self._lease_until = 0.0
                return False
            self._lease_until = mono + self.lease_seconds
        return seal_next_block(holder=self.holder) is not None

    def step_or_recover(self) -> bool:
        """``step``, surviving a failure (a database restarted, a connection cut): the error is
        logged, a connection it left broken is closed and the pool's dead ones are replaced, so
        the next step connects anew. A failure inside a transaction closes its connection on
        rollback anyway; one outside (the lease's renewal runs in autocommit) would otherwise
        fail every later step on the same closed connection."""
        try:
            return self.step()
        except Exception as exc:
            logger.exception("sealer step failed")
            close_old_connections()
            pool_drop_dead_connections(exc)
            return False

    def run(self) -> None:
        logger.info("sealer %s starting", self.holder)
        try:
            while not self.stopped.is_set():
                if not self.step_or_recover():
                    self.stopped.wait(self.poll)
        finally:
            lease_release(holder=self.holder)
            connection.close()
            logger.info("sealer %s stopped", self.holder)

    def stop(self) -> None:
        self.stopped.set()


_background: SealerLoop | None = None


def start_background_sealer() -> SealerLoop:
    """The embedded default's sealer: a daemon thread inside the web process."""
    global _background
    if _background is None:
        _background = SealerLoop()
        threading.Thread(target=_background.run, name="gridcoin-sealer", daemon=True).start()
    return _background
