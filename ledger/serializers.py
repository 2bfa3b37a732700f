from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import Account, Block, Transaction


class SignedHeaderSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    previous_hash = serializers.CharField()
    merkle_root = serializers.CharField()
    timestamp = serializers.CharField()
    tx_count = serializers.IntegerField()


class BlockSerializer(serializers.ModelSerializer):
    # As signed (``+00:00``, microseconds): a stranger rebuilds the header from these fields
    # byte for byte; ``header`` is that dict itself.
    timestamp = serializers.SerializerMethodField()
    header = serializers.SerializerMethodField()

    class Meta:
        model = Block
        fields = ["number", "previous_hash", "merkle_root", "timestamp", "tx_count", "header_hash",
                  "signer_public_key", "signature", "header"]

    def get_timestamp(self, block: Block) -> str:
        from .documents import timestamp_text
        from .selectors import as_utc

        return timestamp_text(as_utc(block.timestamp))

    @extend_schema_field(SignedHeaderSerializer)
    def get_header(self, block: Block) -> dict:
        from .selectors import signed_block_header

        return signed_block_header(block)


class PostingSerializer(serializers.Serializer):
    account = serializers.CharField(source="account.key")
    asset = serializers.CharField(source="asset_id")
    amount = serializers.IntegerField()


class StateWriteSerializer(serializers.Serializer):
    namespace = serializers.CharField()
    key = serializers.CharField()
    value = serializers.JSONField(allow_null=True)
    is_delete = serializers.BooleanField()
    version = serializers.IntegerField()


class TransactionSerializer(serializers.ModelSerializer):
    invoker = serializers.CharField(source="invoker.qualified_name")
    block = serializers.IntegerField(source="block.number", allow_null=True, default=None)
    postings = PostingSerializer(many=True, read_only=True)
    state_writes = StateWriteSerializer(many=True, read_only=True)

    class Meta:
        model = Transaction
        fields = ["tx_hash", "chaincode", "function", "args", "invoker", "idempotency_key", "proposed_at",
                  "signature", "status", "reason", "result", "events", "block", "postings", "state_writes"]


class TransactionSummarySerializer(serializers.ModelSerializer):
    invoker = serializers.CharField(source="invoker.qualified_name")
    block = serializers.IntegerField(source="block.number", allow_null=True, default=None)

    class Meta:
        model = Transaction
        fields = ["tx_hash", "chaincode", "function", "invoker", "proposed_at", "status", "reason", "block"]


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class ProofSerializer(serializers.Serializer):
    tx_hash = serializers.CharField()
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    audit_path = serializers.ListField(child=serializers.CharField())
    block = BlockSerializer()


class AccountSerializer(serializers.ModelSerializer):
    asset = serializers.CharField(source="asset_id")
    organisation = serializers.CharField(source="organisation.msp_id")
    display_balance = serializers.SerializerMethodField()

    class Meta:
        model = Account
        fields = ["id", "key", "asset", "kind", "organisation", "balance", "display_balance"]

    def get_display_balance(self, account: Account) -> str:
        from .units import format_amount

        return format_amount(account.balance, account.asset.scale)


# --- documents a stranger can check (issue 16)

class TransactionDocumentSerializer(serializers.Serializer):
    tx_hash = serializers.CharField()
    bytes = serializers.SerializerMethodField(help_text="base64 of the canonical transaction document; "
                                                        "its SHA-256 is tx_hash")
    proposal_bytes = serializers.SerializerMethodField(help_text="base64 of the canonical proposal the invoker signed")
    signature = serializers.CharField(help_text="Ed25519 signature of proposal_bytes, base64")
    invoker = serializers.CharField()
    invoker_public_key = serializers.CharField(help_text="the invoker's Ed25519 key in force at this transaction, hex")
    block = serializers.IntegerField(allow_null=True)
    leaf_index = serializers.IntegerField(allow_null=True, help_text="position inside its block")

    def get_bytes(self, document: dict) -> str:
        from .crypto import b64

        return b64(document["bytes"])

    def get_proposal_bytes(self, document: dict) -> str:
        from .crypto import b64

        return b64(document["proposal_bytes"])


# --- the global log: checkpoints, proofs, witnesses (docs/witnesses.md) ------------------------


class CosignatureSerializer(serializers.Serializer):
    witness = serializers.CharField(help_text="<msp_id>/witness")
    public_key = serializers.CharField(help_text="Ed25519 public key, hex")
    timestamp = serializers.IntegerField(help_text="unix seconds, as signed")
    line = serializers.CharField(help_text="the cosignature/v1 signed-note line")


class CheckpointSerializer(serializers.Serializer):
    block = serializers.IntegerField()
    header_hash = serializers.CharField()
    tree_size = serializers.IntegerField()
    # (``root`` is also a Field attribute, the serializer tree's root: harmless on a plain field)
    root = serializers.CharField(help_text="RFC 6962 root of the first tree_size transactions, hex")  # type: ignore[assignment]
    origin = serializers.CharField()
    body = serializers.CharField(help_text="the checkpoint note's body, as signed")
    note = serializers.CharField(help_text="body, a blank line, the orderer's line, then cosignature lines")
    cosignatures = CosignatureSerializer(many=True)


class CosignatureInSerializer(serializers.Serializer):
    line = serializers.RegexField(r"^\u2014 [^ \n]+ [A-Za-z0-9+/]+={0,2}\n?$", max_length=500, trim_whitespace=False,
                                  help_text="'\u2014 <msp_id>/witness <base64(key id, timestamp, signature)>'")


class ConsistencyQuerySerializer(serializers.Serializer):
    first = serializers.IntegerField(min_value=1, max_value=2**62)
    second = serializers.IntegerField(min_value=1, max_value=2**62)


class InclusionQuerySerializer(serializers.Serializer):
    tx = serializers.RegexField(r"^[0-9a-f]{64}$", help_text="the transaction's hash")
    tree_size = serializers.IntegerField(min_value=1, max_value=2**62)


class ConsistencyProofSerializer(serializers.Serializer):
    first = serializers.IntegerField()
    second = serializers.IntegerField()
    proof = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 §2.1.4 hashes, hex")


class LogInclusionProofSerializer(serializers.Serializer):
    tx_hash = serializers.CharField()
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    proof = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 §2.1.3 audit path, hex")


class WitnessSerializer(serializers.Serializer):
    name = serializers.CharField()
    organisation = serializers.CharField()
    org_type = serializers.CharField()
    public_key = serializers.CharField()


class OrdererSerializer(serializers.Serializer):
    public_key = serializers.CharField()
    origin = serializers.CharField()
    quorum = serializers.IntegerField()
