"""Daily reconciliation of bank and processor statements against the payments on the ledger.

``statements`` (the line every parser yields), ``camt053`` and ``stripe_report`` are pure: no
ORM, so they are tested without a database and stream any size of file. ``loading`` puts a
statement's lines into ``payments_reconciliationline`` (COPY on PostgreSQL), ``matching`` sorts
them with set-based SQL against ``payments_payment``, ``services`` is the write path (runs,
applying what the notification never brought), ``selectors`` the reads for the pages.
"""
