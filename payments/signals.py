"""What ``payments`` tells other apps. Both signals are sent inside the transaction that credits
a payment on the ledger (webhook or statement), through ``send_robust``: receivers write in a
savepoint of their own, and a receiver's failure never undoes a credit.

``payment_credited``: a sale (retail-seller, wholesale-seller) was credited, with ``payment``
(the Payment row's id), ``chaincode``, ``payer``, ``payee`` (msp ids), ``payer_organisation``
(the payer's ``ledger.selectors.OrganisationRow``), ``amount``, ``currency`` and ``result`` (the
seller chaincode's result).

``donation_credited``: a charity payment (charity-pool ``donate`` or ``contribute_paid``) was
credited, with ``payment`` (the Payment row's id), ``provider`` ("bank" | "stripe"),
``payment_id`` (the processor's id), ``donation_id`` (the id the ledger records the donation,
or the contribution, under: the payment id), ``campaign`` (slug, or "") and ``group`` (slug, or
""; exactly one is set), ``payer`` (household msp id, or "" for a donor without an account),
``payee`` (the utility's msp id), ``amount``, ``currency``, ``paid_at`` (aware datetime),
``tx_hash`` (the crediting ledger transaction), ``result`` (charity-pool's result) and the
donor's off-chain details from the payment's metadata: ``donor_name`` (str, "" if none),
``show_name`` (bool: consent to show the name) and ``donor_user`` (the signed-in user's id, or
None). These details are kept on the Payment row (``details``) and never go on the chain."""

from django.dispatch import Signal

payment_credited = Signal()
donation_credited = Signal()
