"""Where ``notifications`` listens: ``meters`` announcing devices' states after commit and
``payments`` crediting a payment (inside its transaction; the service's own atomic block is a
savepoint there, so a failure here rolls back only what this wrote)."""

from __future__ import annotations

from django.dispatch import receiver

from meters.signals import devices_observed
from payments.signals import payment_credited

from . import services


@receiver(devices_observed, dispatch_uid="notifications.devices_observed")
def on_devices_observed(sender, *, observations, **kwargs) -> None:
    services.devices_observe(observations=observations)


@receiver(payment_credited, dispatch_uid="notifications.payment_credited")
def on_payment_credited(sender, *, payment, chaincode, payer_organisation, amount, currency, result,
                        **kwargs) -> None:
    services.notify_payment_credited(payment=payment, chaincode=chaincode, payer_organisation=payer_organisation.pk,
                                     payer_type=payer_organisation.org_type, amount=amount, currency=currency,
                                     result=result)
