"""Charity campaigns and group funding: the off-chain side (texts, names shown with consent,
which Django user gave what, receipts). Every coin they move, and the campaign's books, live
on the ledger under the ``charity-pool`` chaincode (``ledger.chaincodes.charity``); rows here
are written only by ``charity.services`` after the ledger accepted the movement."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ledger.models import Organisation
from meters.models import Device


class SharingRule(models.TextChoices):
    EQUAL = "equal", _("Equal shares")
    CAP = "cap", _("Equal shares, capped per household")
    WEIGHTS = "weights", _("Need-based weights")


class LeftoverRule(models.TextChoices):
    REFUND = "refund", _("Refund donors pro rata")
    ROLL = "roll", _("Roll into the next campaign")


class CampaignStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Ended below its minimum")
    REFUNDING = "refunding", _("Ended: leftover refunded to donors")
    CLOSED = "closed", _("Closed")


class Campaign(models.Model):
    slug = models.SlugField(max_length=60, unique=True)
    charity = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="campaigns")
    utility = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+",
                                help_text="the utility whose retail price turns money into kWh")
    title = models.CharField(max_length=140)
    story = models.TextField()
    currency = models.CharField(max_length=3)
    goal = models.BigIntegerField(help_text="minor units")
    minimum = models.BigIntegerField(help_text="minor units; below it at the end, donors are refunded")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    trigger_starts_at = models.DateTimeField(null=True, blank=True, help_text="heat wave: disbursement only inside")
    trigger_ends_at = models.DateTimeField(null=True, blank=True)
    rule = models.CharField(max_length=10, choices=SharingRule.choices, default=SharingRule.EQUAL)
    cap_wh = models.BigIntegerField(null=True, blank=True, help_text="rule cap: most Wh one household receives")
    leftover = models.CharField(max_length=10, choices=LeftoverRule.choices, default=LeftoverRule.REFUND)
    next_campaign = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    auto_disburse = models.BooleanField(default=False, help_text="a Celery task disburses inside the window")
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.OPEN)
    opened_tx = models.CharField(max_length=64, blank=True, default="")
    closed_tx = models.CharField(max_length=64, blank=True, default="", help_text="the cancel or close transaction")
    refunds_done_at = models.DateTimeField(null=True, blank=True,
                                           help_text="every donation and the sponsor refunded on the ledger")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "slug"]

    def __str__(self) -> str:
        return self.title


class Beneficiary(models.Model):
    """A household device the campaign may fund, shown without personal data (its label)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="beneficiaries")
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="+")
    label = models.CharField(max_length=120, help_text='what the public sees, e.g. "household in ward 12"')
    weight = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["campaign_id", "id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "device"], name="beneficiary_once")]

    def __str__(self) -> str:
        return self.label


class CampaignUpdate(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="updates")
    title = models.CharField(max_length=140)
    body = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    posted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-posted_at", "-id"]

    def __str__(self) -> str:
        return self.title


class DonationKind(models.TextChoices):
    FIAT = "fiat", _("Money")
    COINS = "coins", _("Coins")
    ROLL = "roll", _("Rolled over from an earlier campaign")


class Donation(models.Model):
    """One donation as the ledger recorded it (``donation/<slug>/<donation_id>``)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="donations")
    donation_id = models.CharField(max_length=200, help_text="the ledger's id: the payment event id or the give id")
    kind = models.CharField(max_length=10, choices=DonationKind.choices)
    donor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="donations")
    donor_name = models.CharField(max_length=120, blank=True, default="")
    show_name = models.BooleanField(default=False, help_text="the donor consented to their name being shown")
    amount = models.BigIntegerField(help_text="minor units of the campaign's currency (coins: their value)")
    currency = models.CharField(max_length=3)
    wh = models.BigIntegerField()
    matched_wh = models.BigIntegerField(default=0)
    payment = models.ForeignKey("payments.Payment", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    tx_hash = models.CharField(max_length=64)
    refunded_wh = models.BigIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)
    refund_tx_hash = models.CharField(max_length=64, blank=True, default="")
    receipt_number = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "donation_id"], name="donation_once")]

    def __str__(self) -> str:
        return self.receipt_number


class MatchPledge(models.Model):
    campaign = models.OneToOneField(Campaign, on_delete=models.PROTECT, related_name="match")
    sponsor = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    sponsor_name = models.CharField(max_length=120)
    cap_wh = models.BigIntegerField(help_text="everything pledged (top-ups included)")
    tx_hash = models.CharField(max_length=64, help_text="the latest pledge")
    returned_wh = models.BigIntegerField(default=0, help_text="what refund_sponsor gave back")
    refund_tx_hash = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.sponsor_name} → {self.campaign_id}"


class Disbursement(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="disbursements")
    disbursement_id = models.CharField(max_length=200)
    total_wh = models.BigIntegerField()
    households = models.PositiveIntegerField()
    remainder_wh = models.BigIntegerField(help_text="what rounding left in the pool")
    automatic = models.BooleanField(default=False)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="+")
    tx_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "disbursement_id"], name="disbursement_once")]

    def __str__(self) -> str:
        return self.disbursement_id


class GroupStatus(models.TextChoices):
    OPEN = "open", _("Collecting")
    FUNDED = "funded", _("Funded")
    REFUNDED = "refunded", _("Missed its deadline: refunded")


class GroupFunding(models.Model):
    """Neighbours pool coins for a public device's window; held in escrow on the ledger."""

    slug = models.SlugField(max_length=60, unique=True)
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="group_fundings")
    organiser = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=140)
    goal_wh = models.BigIntegerField()
    deadline = models.DateTimeField()
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=GroupStatus.choices, default=GroupStatus.OPEN)
    opened_tx = models.CharField(max_length=64, blank=True, default="")
    settled_tx = models.CharField(max_length=64, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["deadline", "slug"]

    def __str__(self) -> str:
        return self.title


class Contribution(models.Model):
    group = models.ForeignKey(GroupFunding, on_delete=models.PROTECT, related_name="contributions")
    contribution_id = models.CharField(max_length=200)
    contributor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    account = models.CharField(max_length=120, help_text="the ledger account it came from and is refunded to")
    wh = models.BigIntegerField()
    tx_hash = models.CharField(max_length=64)
    refunded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["group", "contribution_id"], name="contribution_once")]

    def __str__(self) -> str:
        return self.contribution_id
