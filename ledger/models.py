"""The ledger's tables. Rows here are written only by ``ledger.services`` and the sealer."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class OrgType(models.TextChoices):
    UTILITY = "utility", _("Utility")
    GRID = "grid", _("Grid")
    DISTRIBUTOR = "distributor", _("Distributor")
    PRODUCER = "producer", _("Producer")
    BANK = "bank", _("Bank")
    CHARITY = "charity", _("Charity")
    AGENT = "agent", _("Agent")
    HOUSEHOLD = "household", _("Household")
    AUDITOR = "auditor", _("Auditor")
    # The network's configuration administrator (``ledger.chaincodes.config``): signs membership
    # changes, holds no accounts and invokes nothing else.
    OPERATOR = "operator", _("Network operator")


class Organisation(models.Model):
    """An MSP-like member organisation of the network."""

    msp_id = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    org_type = models.CharField(max_length=20, choices=OrgType.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.org_type})"


class IdentityKind(models.TextChoices):
    USER = "user"
    DEVICE = "device"
    SERVICE = "service"


class Identity(models.Model):
    """A key holder that signs proposals; named ``<msp_id>/<name>``."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="identities")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=IdentityKind.choices, default=IdentityKind.USER)
    public_key = models.BinaryField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "name"], name="identity_unique_name")]
        verbose_name_plural = "identities"

    def __str__(self) -> str:
        return self.qualified_name

    @property
    def qualified_name(self) -> str:
        return f"{self.organisation.msp_id}/{self.name}"


class Asset(models.Model):
    """``k`` counts Wh (scale 3 shows kWh); fiat assets count minor units (scale 2)."""

    code = models.CharField(max_length=10, primary_key=True)
    name = models.CharField(max_length=100)
    scale = models.PositiveSmallIntegerField(help_text="decimal places between the stored unit and the display unit")
    display_unit = models.CharField(max_length=10)

    def __str__(self) -> str:
        return self.code


class AccountKind(models.TextChoices):
    ISSUANCE = "issuance"
    HOLDER = "holder"
    DEVICE = "device"
    POOL = "pool"
    ESCROW = "escrow"


class Account(models.Model):
    """One per (key, asset). Only issuance accounts may go below zero (database CHECK)."""

    key = models.CharField(max_length=120, help_text="ledger address, e.g. household:alice or issuance")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="accounts")
    kind = models.CharField(max_length=10, choices=AccountKind.choices, default=AccountKind.HOLDER)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="accounts")
    balance = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "asset"], name="account_unique_key_asset"),
            models.CheckConstraint(
                condition=Q(balance__gte=0) | Q(kind="issuance"), name="account_balance_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} [{self.asset_id}]"


class Block(models.Model):
    number = models.BigIntegerField(unique=True)
    # The id range of the block's transactions (not part of the signed header): transactions
    # carry no index on block_id, so a block's members are found by primary-key range.
    first_tx_id = models.BigIntegerField(null=True)
    last_tx_id = models.BigIntegerField(null=True)
    previous_hash = models.CharField(max_length=64)
    merkle_root = models.CharField(max_length=64)
    timestamp = models.DateTimeField()
    tx_count = models.IntegerField()
    header_hash = models.CharField(max_length=64, unique=True)
    signer_public_key = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"block {self.number}"


class TxStatus(models.TextChoices):
    VALID = "valid"
    REJECTED = "rejected"


class TransactionQuerySet(models.QuerySet["Transaction"]):
    def in_block(self, block: Block) -> TransactionQuerySet:
        qs = self.filter(block=block)
        if block.first_tx_id is not None:
            qs = qs.filter(id__gte=block.first_tx_id, id__lte=block.last_tx_id)
        return qs

    def unsealed(self) -> TransactionQuerySet:
        return self.filter(unsealed__isnull=False)


TransactionManager = models.Manager.from_queryset(TransactionQuerySet)


class Transaction(models.Model):
    """An invocation, committed with its effects; rejected ones are kept with their reason."""

    chaincode = models.CharField(max_length=50)
    function = models.CharField(max_length=50)
    args = models.JSONField()
    # No separate index: the (invoker, idempotency_key) unique index serves invoker lookups.
    invoker = models.ForeignKey(Identity, on_delete=models.PROTECT, related_name="transactions", db_index=False)
    # NULL, not "", for "no key": the unique constraint must ignore keyless rows.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    body_digest = models.CharField(max_length=64, help_text="sha256 of canonical {chaincode, function, args}")
    proposed_at = models.DateTimeField()
    signature = models.CharField(max_length=128)
    status = models.CharField(max_length=10, choices=TxStatus.choices)
    reason = models.TextField(blank=True, default="")
    result = models.JSONField(null=True)
    events = models.JSONField(default=list)
    # Unique through Meta.constraints, not unique=True, which on PostgreSQL also builds a
    # LIKE-pattern index that every insert and seal would pay for and no query uses.
    tx_hash = models.CharField(max_length=64)
    # Set once by the sealer (a trigger refuses any other change). No index and no database
    # foreign key: sealing then updates rows in place (HOT) without touching any index, which
    # made it several times faster; members of a block are found by id range (Block), pending
    # ones through UnsealedTransaction, and ledger_verify reports any transaction whose block
    # is missing from the chain or does not cover it.
    block = models.ForeignKey(Block, null=True, blank=True, on_delete=models.PROTECT, related_name="transactions",
                              db_constraint=False, db_index=False)

    objects = TransactionManager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["tx_hash"], name="tx_unique_hash"),
            models.UniqueConstraint(
                fields=["invoker", "idempotency_key"], name="tx_unique_idempotency_key",
                condition=Q(idempotency_key__isnull=False),
            ),
        ]
        indexes = [
            # Burns that drew on a charity's funded windows (``result.campaigns``), by time: a
            # campaign's page charts them. Partial, so the gateway's other burns pay nothing.
            models.Index(fields=["proposed_at"], name="tx_campaign_burns",
                         condition=Q(chaincode="consumer", function="burn", result__has_key="campaigns")),
        ]

    def __str__(self) -> str:
        return f"{self.chaincode}.{self.function} {self.tx_hash[:12]}"


class UnsealedTransaction(models.Model):
    """The sealer's queue: one row per committed transaction not yet in a block, written in the
    same database transaction as it and deleted when it is sealed."""

    transaction = models.OneToOneField(Transaction, primary_key=True, on_delete=models.DO_NOTHING,
                                       related_name="unsealed", db_constraint=False)

    def __str__(self) -> str:
        return f"transaction {self.transaction_id} waiting for a block"


class Posting(models.Model):
    """Signed amount: positive credits the account, negative debits it."""

    # The database checks that the transaction exists once per INSERT statement, not once per
    # row (migration 0010): transactions are never deleted, so the foreign key's per-row lookup
    # and row lock guarded nothing the trigger does not.
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="postings",
                                    db_constraint=False)
    # On PostgreSQL one composite foreign key (account_id, asset_id) → account (id, asset_id)
    # replaces the two single ones (migration 0008): one check per posting instead of two, and
    # the database itself keeps a posting's asset equal to its account's.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings", db_constraint=False)
    # Denormalised from the account for the per-asset zero-sum trigger; a handful of assets
    # make an index on it useless, so it has none.
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+", db_index=False,
                              db_constraint=False)
    amount = models.BigIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="posting_amount_not_zero")]

    def __str__(self) -> str:
        return f"{self.amount:+d} {self.asset_id} → account {self.account_id}"


class StateWrite(models.Model):
    """History of world-state writes; a delete is a write with ``is_delete``."""

    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="state_writes",
                                    db_constraint=False)  # checked per statement, as for postings
    namespace = models.CharField(max_length=50)
    key = models.CharField(max_length=200)
    value = models.JSONField(null=True)
    is_delete = models.BooleanField(default=False)
    version = models.BigIntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.key} v{self.version}{' (deleted)' if self.is_delete else ''}"


class StateEntry(models.Model):
    """Current world state per chaincode namespace (the latest StateWrite of each key)."""

    namespace = models.CharField(max_length=50)
    key = models.CharField(max_length=200)
    value = models.JSONField(null=True)
    is_deleted = models.BooleanField(default=False)
    version = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "key"], name="state_unique_key")]
        verbose_name_plural = "state entries"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.key} v{self.version}"


class SealerLease(models.Model):
    """Claimed by compare-and-swap so exactly one sealer runs at a time."""

    name = models.CharField(max_length=20, unique=True)
    holder = models.CharField(max_length=100, blank=True, default="")
    expires_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or 'nobody'}"


# --- the global log (every sealed transaction, in sealing order) and its witnesses ----------


class LogChunk(models.Model):
    """Up to 256 consecutive perfect-subtree hashes of one level of the global log's Merkle tree:
    ``position`` = level << 48 | (index >> 8), ``hashes`` = the 32-byte hashes of indexes
    (index >> 8) << 8, … in order (the node at (level, index) covers leaves
    [index << level, (index + 1) << level)). Only ever appended to: a block of 500 transactions
    adds about a thousand hashes in a dozen rows, not a thousand rows."""

    position = models.BigIntegerField(primary_key=True)
    hashes = models.BinaryField()

    def __str__(self) -> str:
        return f"log level {self.position >> 48}, nodes from {(self.position & ((1 << 48) - 1)) << 8}"


class Checkpoint(models.Model):
    """The log after a block: its size and root, in a note the orderer signed (C2SP
    tlog-checkpoint / signed-note). Written in the same database transaction as its block."""

    block = models.OneToOneField(Block, on_delete=models.PROTECT, related_name="checkpoint")
    number = models.BigIntegerField(unique=True, help_text="the block's number")
    header_hash = models.CharField(max_length=64)
    tree_size = models.BigIntegerField()
    root = models.CharField(max_length=64, help_text="RFC 6962 root of the first tree_size leaves, hex")
    body = models.TextField(help_text="the checkpoint note's body, as signed")
    signature_line = models.TextField(help_text="the orderer's signed-note line over the body")
    # The perfect subtrees of tree_size's binary decomposition, largest first, 32 bytes each:
    # the next block appends to them without reading the log.
    frontier = models.BinaryField(default=b"")

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"checkpoint {self.number} (size {self.tree_size})"


class Cosignature(models.Model):
    """A witness's cosignature/v1 line over a checkpoint's body."""

    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, related_name="cosignatures")
    witness = models.ForeignKey(Identity, on_delete=models.PROTECT, related_name="cosignatures")
    timestamp = models.BigIntegerField(help_text="unix seconds the witness signed at")
    line = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["checkpoint", "witness"], name="cosignature_once_per_witness")]

    def __str__(self) -> str:
        return f"cosignature of checkpoint {self.checkpoint_id} by {self.witness_id}"
