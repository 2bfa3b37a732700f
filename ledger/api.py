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


class Policies(APIView):
    """Endorsement policy of every function: ``{"<chaincode>.<function>": [organisation types]
    or null (any type)}``."""

    required_scopes = READ_SCOPE

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return Response(selectors.policies())
