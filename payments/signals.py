"""What ``payments`` tells other apps: ``payment_credited`` is sent inside the transaction that
credits a payment on the ledger (webhook or statement), with ``payment`` (the Payment row's
id), ``chaincode``, ``payer``, ``payee`` (msp ids), ``payer_organisation`` (the payer's
``ledger.selectors.OrganisationRow``), ``amount``, ``currency`` and ``result`` (the seller
chaincode's result). Receivers write in a savepoint of their own: a receiver's
failure never undoes a credit."""

from django.dispatch import Signal

payment_credited = Signal()
