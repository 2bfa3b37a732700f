"""Read API under /api/v1/ledger/: blocks, transactions, inclusion proofs, accounts."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors
from .serializers import (
    AccountSerializer,
    BlockSerializer,
    DetailSerializer,
    ProofSerializer,
    TransactionDocumentSerializer,
    TransactionSerializer,
    TransactionSummarySerializer,
)

# What an API token needs to read here (the project's token permission checks it).
READ_SCOPE = {"GET": "ledger:read"}


class BlockList(generics.ListAPIView):
    required_scopes = READ_SCOPE
    serializer_class = BlockSerializer

    def get_queryset(self):
        return selectors.blocks_visible_to(self.request.user)


class BlockDetail(generics.RetrieveAPIView):
    required_scopes = READ_SCOPE
    serializer_class = BlockSerializer
    lookup_field = "number"

    def get_queryset(self):
        return selectors.blocks_visible_to(self.request.user)


class BlockTransactions(generics.ListAPIView):
    """The block's transactions the caller may see (leaf hashes of all are in the proofs)."""

    required_scopes = READ_SCOPE
    serializer_class = TransactionSummarySerializer

    def get_queryset(self):
        block = get_object_or_404(selectors.blocks_visible_to(self.request.user), number=self.kwargs["number"])
        return selectors.transactions_visible_to(self.request.user).in_block(block)


class BlockDocuments(generics.ListAPIView):
    """The documents (as ``transactions/<hash>/document/``) of the block's transactions the caller
    may see, in block order: a verifier reads a block in one request, not one per transaction."""

    required_scopes = READ_SCOPE
    serializer_class = TransactionDocumentSerializer

    def get_queryset(self):
        self.block = get_object_or_404(selectors.blocks_visible_to(self.request.user), number=self.kwargs["number"])
        return selectors.transactions_visible_to(self.request.user).in_block(self.block).select_related(
            "invoker__organisation").order_by("id")

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return None if page is None else selectors.transaction_documents(list(page), self.block)


class TransactionDetail(generics.RetrieveAPIView):
    required_scopes = READ_SCOPE
    serializer_class = TransactionSerializer
    lookup_field = "tx_hash"

    def get_queryset(self):
        return selectors.transactions_visible_to(self.request.user).prefetch_related(
            "postings__account", "state_writes"
        )


class TransactionProof(APIView):
    """Leaf index, audit path and signed block header: enough to check inclusion offline."""

    required_scopes = READ_SCOPE

    @extend_schema(responses={200: ProofSerializer,
                              409: OpenApiResponse(DetailSerializer, description="not sealed into a block yet")})
    def get(self, request, tx_hash: str):
        tx = get_object_or_404(selectors.transactions_visible_to(request.user), tx_hash=tx_hash)
        proof = selectors.transaction_proof(tx)
        if proof is None:
            return Response({"detail": "transaction is not sealed into a block yet"}, status=409)
        return Response(ProofSerializer(proof).data)


class AccountList(generics.ListAPIView):
    required_scopes = READ_SCOPE
    serializer_class = AccountSerializer

    def get_queryset(self):
        return selectors.accounts_visible_to(self.request.user)


class AccountDetail(generics.RetrieveAPIView):
    required_scopes = READ_SCOPE
    serializer_class = AccountSerializer

    def get_queryset(self):
        return selectors.accounts_visible_to(self.request.user)


# --- documents a stranger can check (issue 16) --------------------------------------------------


class TransactionDocument(APIView):
    """The exact canonical bytes whose SHA-256 is the transaction's hash, the proposal bytes the
    invoker signed and the invoker's key in force then (docs/ledger-format.md)."""

    required_scopes = READ_SCOPE

    @extend_schema(responses={200: TransactionDocumentSerializer})
    def get(self, request, tx_hash: str):
        tx = get_object_or_404(selectors.transactions_visible_to(request.user), tx_hash=tx_hash)
        return Response(TransactionDocumentSerializer(selectors.transaction_document(tx)).data)


class GenesisMembership(APIView):
    """The configuration bootstrap's hash and its ``config`` writes: the membership in force for
    the transactions made before it (docs/ledger-format.md §7), for the utility and auditors."""

    required_scopes = READ_SCOPE

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 403: DetailSerializer, 404: DetailSerializer})
    def get(self, request):
        try:
            genesis = selectors.genesis_membership_visible_to(request.user)
        except PermissionError as exc:
            return Response({"detail": str(exc)}, status=403)
        if genesis is None:
            return Response({"detail": "the ledger has no configuration bootstrap yet"}, status=404)
        return Response(genesis)


class LedgerSnapshot(APIView):
    """The newest block, the membership tables with every account's balance, and the
    transactions in no block, read at one moment (docs/ledger-format.md §8): a verifier working
    from the API replays the blocks up to ``block`` and those transactions, and compares. For the
    utility and auditors."""

    required_scopes = READ_SCOPE

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 403: DetailSerializer})
    def get(self, request):
        try:
            return Response(selectors.ledger_snapshot_visible_to(request.user))
        except PermissionError as exc:
            return Response({"detail": str(exc)}, status=403)


class Policies(APIView):
    """Endorsement policy of every function: ``{"<chaincode>.<function>": [organisation types]
    or null (any type)}``."""

    required_scopes = READ_SCOPE

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return Response(selectors.policies())


# --- the global log: checkpoints, proofs and witnesses (docs/witnesses.md) ---------------------

from rest_framework.permissions import AllowAny  # noqa: E402

from . import log  # noqa: E402
from .serializers import (  # noqa: E402
    CheckpointSerializer,
    ConsistencyProofSerializer,
    ConsistencyQuerySerializer,
    CosignatureInSerializer,
    InclusionQuerySerializer,
    LogInclusionProofSerializer,
    OrdererSerializer,
    WitnessSerializer,
)

NO_PROOF = OpenApiResponse(DetailSerializer, description="the log has no trees of these sizes (yet), or the "
                          "transaction is not in it")


class CheckpointLatest(APIView):
    """The latest checkpoint of the global log, with the cosignatures received so far."""

    required_scopes = READ_SCOPE

    @extend_schema(responses={200: CheckpointSerializer})
    def get(self, request):
        checkpoint = log.latest_checkpoint()
        if checkpoint is None:
            return Response({"detail": "no block has been sealed yet"}, status=404)
        return Response(log.checkpoint_document(checkpoint))


class CheckpointDetail(APIView):
    required_scopes = READ_SCOPE

    @extend_schema(responses={200: CheckpointSerializer})
    def get(self, request, number: int):
        checkpoint = get_object_or_404(log.Checkpoint, number=number)
        return Response(log.checkpoint_document(checkpoint))


class CheckpointCosignatures(APIView):
    """A witness posts its cosignature/v1 line. The signature is the credential: it must verify
    under the registered witness key over the stored checkpoint body, so no session is needed."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=CosignatureInSerializer,
                   responses={201: CheckpointSerializer, 200: CheckpointSerializer,
                              403: OpenApiResponse(DetailSerializer, description="not a registered witness's "
                                                   "valid cosignature of this checkpoint")})
    def post(self, request, number: int):
        checkpoint = get_object_or_404(log.Checkpoint, number=number)
        given = CosignatureInSerializer(data=request.data)
        if not given.is_valid():
            return Response({"detail": "give {\"line\": \"\u2014 <msp_id>/witness <base64>\"}"}, status=400)
        try:
            _, created = log.cosignature_add(checkpoint, given.validated_data["line"])
        except log.CosignatureRefused as refused:
            return Response({"detail": refused.detail}, status=refused.status)
        return Response(log.checkpoint_document(checkpoint), status=201 if created else 200)


class ConsistencyProof(APIView):
    """RFC 9162 §2.1.4 proof that the log of size ``second`` extends the log of size ``first``."""

    required_scopes = READ_SCOPE

    @extend_schema(parameters=[ConsistencyQuerySerializer], responses={200: ConsistencyProofSerializer, 404: NO_PROOF})
    def get(self, request):
        query = ConsistencyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        first, second = query.validated_data["first"], query.validated_data["second"]
        try:
            proof = log.consistency_proof(first, second)
        except log.ProofError as exc:
            return Response({"detail": str(exc)}, status=404)
        return Response({"first": first, "second": second, "proof": [h.hex() for h in proof]})


class LogInclusionProof(APIView):
    """RFC 9162 §2.1.3 audit path of a transaction in the global log of ``tree_size`` leaves."""

    required_scopes = READ_SCOPE

    @extend_schema(parameters=[InclusionQuerySerializer], responses={200: LogInclusionProofSerializer, 404: NO_PROOF})
    def get(self, request):
        query = InclusionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        size = query.validated_data["tree_size"]
        tx = get_object_or_404(selectors.transactions_visible_to(request.user), tx_hash=query.validated_data["tx"])
        try:
            index, proof = log.inclusion_proof(tx, size)
        except log.ProofError as exc:
            return Response({"detail": str(exc)}, status=404)
        return Response({"tx_hash": tx.tx_hash, "leaf_index": index, "tree_size": size,
                         "proof": [h.hex() for h in proof]})


class WitnessList(APIView):
    required_scopes = READ_SCOPE

    @extend_schema(responses={200: WitnessSerializer(many=True)})
    def get(self, request):
        return Response([{"name": w.qualified_name, "organisation": w.organisation.msp_id,
                          "org_type": w.organisation.org_type, "public_key": bytes(w.public_key).hex()}
                         for w in log.witnesses()])


class Orderer(APIView):
    required_scopes = READ_SCOPE

    @extend_schema(responses={200: OrdererSerializer})
    def get(self, request):
        from .sealing import orderer_public_hex

        return Response({"public_key": orderer_public_hex(), "origin": log.origin(), "quorum": log.quorum()})
