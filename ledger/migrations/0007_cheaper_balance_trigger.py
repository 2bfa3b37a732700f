"""Check balanced postings on the inserted rows alone.

Each INSERT statement into ledger_posting must itself sum to zero per (transaction, asset).
That keeps every transaction balanced however its postings arrive (balanced parts add up to a
balanced whole, an unbalanced part is refused) and reads only the statement's transition
table, not the postings table: a third of the cost of a transfer went to the old lookup.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION ledger_postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  SELECT transaction_id, asset_id, sum(amount) AS total INTO bad
    FROM new_postings
   GROUP BY transaction_id, asset_id
  HAVING sum(amount) <> 0
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'postings of transaction % do not sum to zero in asset % (sum %)',
      bad.transaction_id, bad.asset_id, bad.total USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
"""

BACKWARD = r"""
CREATE OR REPLACE FUNCTION ledger_postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  SELECT p.transaction_id, p.asset_id, sum(p.amount) AS total INTO bad
    FROM ledger_posting p
   WHERE p.transaction_id IN (SELECT DISTINCT transaction_id FROM new_postings)
   GROUP BY p.transaction_id, p.asset_id
  HAVING sum(p.amount) <> 0
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'postings of transaction % do not sum to zero in asset % (sum %)',
      bad.transaction_id, bad.asset_id, bad.total USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0006_sealing_queue")]
    operations = [migrations.RunPython(forward, backward)]
