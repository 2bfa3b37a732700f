"""Admin: campaigns, donations, disbursements and group fundings for the utility's staff to look
at (read-only: rows are mirrors of the ledger written by ``charity.services``), with actions
that run the same services as the scheduled tasks."""

from django.contrib import admin, messages

from ledger import admin as ledger_admin

from . import services
from .models import (
    Beneficiary,
    Campaign,
    CampaignUpdate,
    Contribution,
    Disbursement,
    Donation,
    GroupFunding,
    MatchPledge,
)


class ReadOnlyInline(ledger_admin.ReadOnlyInline):
    show_change_link = True


class BeneficiaryInline(ReadOnlyInline):
    model = Beneficiary
    fields = ["device", "label", "weight"]
    readonly_fields = fields


class DisbursementInline(ReadOnlyInline):
    model = Disbursement
    fields = ["disbursement_id", "total_wh", "households", "remainder_wh", "automatic", "tx_hash", "created_at"]
    readonly_fields = fields


@admin.register(Campaign)
class CampaignAdmin(ledger_admin.ReadOnlyAdmin):
    list_display = ["slug", "title", "charity", "status", "currency", "goal", "minimum", "starts_at", "ends_at",
                    "auto_disburse", "refunds_done_at"]
    list_filter = ["status", "rule", "leftover", "auto_disburse", "charity"]
    search_fields = ["slug", "title", "opened_tx", "closed_tx"]
    date_hierarchy = "starts_at"
    list_select_related = ["charity"]
    inlines = [BeneficiaryInline, DisbursementInline]
    actions = ["close_ended", "refund_now"]

    @admin.action(description="Close the selected campaigns that have ended")
    def close_ended(self, request, queryset):
        for campaign in queryset.filter(status="open"):
            try:
                services.campaign_close(campaign=campaign)
            except services.CharityError as exc:
                self.message_user(request, f"{campaign.slug}: {exc}", messages.WARNING)
            else:
                self.message_user(request, f"{campaign.slug}: {campaign.get_status_display()}")

    @admin.action(description="Refund the donors of the selected ended campaigns")
    def refund_now(self, request, queryset):
        for campaign in queryset:
            try:
                report = services.campaign_refund_all(campaign=campaign)
            except services.CharityError as exc:
                self.message_user(request, f"{campaign.slug}: {exc}", messages.WARNING)
            else:
                level = messages.SUCCESS if report.complete else messages.WARNING
                self.message_user(request, f"{campaign.slug}: {report.refunded}/{report.total} refunded, "
                                           f"{len(report.refused)} refused", level)


@admin.register(Donation)
class DonationAdmin(ledger_admin.ReadOnlyAdmin):
    list_display = ["receipt_number", "campaign", "kind", "amount", "currency", "wh", "matched_wh", "refunded_wh",
                    "refunded_amount", "show_name", "created_at"]
    list_filter = ["kind", "show_name", "campaign"]
    search_fields = ["receipt_number", "donation_id", "tx_hash", "refund_tx_hash", "donor_name"]
    date_hierarchy = "created_at"
    list_select_related = ["campaign"]


@admin.register(MatchPledge)
class MatchPledgeAdmin(ledger_admin.ReadOnlyAdmin):
    list_display = ["campaign", "sponsor_name", "cap_wh", "returned_wh", "tx_hash", "created_at"]
    list_select_related = ["campaign"]


@admin.register(Disbursement)
class DisbursementAdmin(ledger_admin.ReadOnlyAdmin):
    list_display = ["campaign", "disbursement_id", "total_wh", "households", "remainder_wh", "automatic",
                    "created_at"]
    list_filter = ["automatic", "campaign"]
    search_fields = ["disbursement_id", "tx_hash"]
    list_select_related = ["campaign"]


@admin.register(CampaignUpdate)
class CampaignUpdateAdmin(ledger_admin.ReadOnlyAdmin):
    list_display = ["campaign", "title", "author", "posted_at"]
    search_fields = ["title", "body"]
    list_select_related = ["campaign", "author"]


class ContributionInline(ReadOnlyInline):
    model = Contribution
    fields = ["contribution_id", "account", "wh", "refunded", "tx_hash", "created_at"]
    readonly_fields = fields


@admin.register(GroupFunding)
class GroupFundingAdmin(ledger_admin.ReadOnlyAdmin):
    list_display = ["slug", "title", "device", "organiser", "goal_wh", "deadline", "window_start", "window_end",
                    "status"]
    list_filter = ["status"]
    search_fields = ["slug", "title", "opened_tx", "settled_tx"]
    list_select_related = ["device", "organiser"]
    inlines = [ContributionInline]
