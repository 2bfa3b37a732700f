"""Where ``charity`` listens: ``payments`` crediting a charity payment (inside its transaction;
the services' own atomic blocks are savepoints there, so a failure here rolls back only what
this wrote, never the credit). The donation is read back from the ledger's world state, which
the crediting transaction has just written."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.dispatch import receiver

from ledger.keys import household_account
from payments.signals import donation_credited

from . import services


@receiver(donation_credited, dispatch_uid="charity.donation_credited")
def on_donation_credited(sender, *, payment, donation_id, campaign, group, payer, tx_hash, result, donor_name="",
                         show_name=False, donor_user=None, **kwargs) -> None:
    donor = get_user_model().objects.filter(pk=donor_user).first() if donor_user is not None else None
    if campaign:
        services.donation_record_paid(campaign=campaign, donation_id=donation_id, tx_hash=tx_hash, payment=payment,
                                      donor=donor, donor_name=donor_name or "", show_name=bool(show_name))
    elif group:
        services.contribution_record_paid(group=group, contribution_id=donation_id, account=household_account(payer),
                                          wh=int((result or {}).get("wh") or 0), tx_hash=tx_hash, contributor=donor)
