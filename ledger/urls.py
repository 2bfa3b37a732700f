from django.urls import path

from . import api

app_name = "ledger"
urlpatterns = [
    path("blocks/", api.BlockList.as_view(), name="block-list"),
    path("blocks/<int:number>/", api.BlockDetail.as_view(), name="block-detail"),
    path("blocks/<int:number>/transactions/", api.BlockTransactions.as_view(), name="block-transactions"),
    path("blocks/<int:number>/documents/", api.BlockDocuments.as_view(), name="block-documents"),
    path("transactions/<str:tx_hash>/", api.TransactionDetail.as_view(), name="transaction-detail"),
    path("transactions/<str:tx_hash>/proof/", api.TransactionProof.as_view(), name="transaction-proof"),
    path("transactions/<str:tx_hash>/document/", api.TransactionDocument.as_view(), name="transaction-document"),
    path("policies/", api.Policies.as_view(), name="policies"),
    path("membership/genesis/", api.GenesisMembership.as_view(), name="membership-genesis"),
    path("snapshot/", api.LedgerSnapshot.as_view(), name="snapshot"),
    path("accounts/", api.AccountList.as_view(), name="account-list"),
    path("accounts/<int:pk>/", api.AccountDetail.as_view(), name="account-detail"),
]

# The global log (docs/witnesses.md).
urlpatterns += [
    path("checkpoints/latest/", api.CheckpointLatest.as_view(), name="checkpoint-latest"),
    path("checkpoints/<int:number>/", api.CheckpointDetail.as_view(), name="checkpoint-detail"),
    path("checkpoints/<int:number>/cosignatures/", api.CheckpointCosignatures.as_view(), name="checkpoint-cosign"),
    path("proofs/consistency/", api.ConsistencyProof.as_view(), name="proof-consistency"),
    path("proofs/inclusion/", api.LogInclusionProof.as_view(), name="proof-inclusion"),
    path("witnesses/", api.WitnessList.as_view(), name="witness-list"),
    path("orderer/", api.Orderer.as_view(), name="orderer"),
]
