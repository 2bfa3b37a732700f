"""Campaign pages under /campaigns/ and group-funding pages under /group/ (included at the
site root, so both keep the one ``charity`` namespace)."""

from django.urls import path

from . import views

app_name = "charity"
urlpatterns = [
    path("campaigns/", views.campaign_list, name="campaigns"),
    path("campaigns/new/", views.campaign_new, name="campaign-new"),
    path("campaigns/mine/", views.my_donations, name="my-donations"),
    path("campaigns/receipts/<str:receipt_number>.pdf", views.receipt_pdf, name="receipt"),
    path("campaigns/<slug:slug>/", views.campaign_detail, name="campaign"),
    path("campaigns/<slug:slug>/edit/", views.campaign_edit, name="campaign-edit"),
    path("campaigns/<slug:slug>/progress.json", views.campaign_progress, name="progress"),
    path("campaigns/<slug:slug>/proofs/<str:tx_hash>.json", views.campaign_proof, name="proof"),
    path("campaigns/<slug:slug>/proofs/<str:tx_hash>/", views.campaign_proof_page, name="proof-page"),
    path("campaigns/<slug:slug>/match/", views.campaign_match, name="match"),
    path("campaigns/<slug:slug>/donate/", views.campaign_donate, name="donate"),
    path("campaigns/<slug:slug>/updates/", views.campaign_post_update, name="post-update"),
    path("campaigns/<slug:slug>/disburse/", views.campaign_disburse, name="disburse"),
    path("campaigns/<slug:slug>/cancel/", views.campaign_cancel, name="cancel"),
    path("group/<slug:slug>/", views.group_detail, name="group"),
    path("group/new/<slug:public_id>/", views.group_new, name="group-new"),
]
