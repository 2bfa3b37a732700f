"""Database-level guards on PostgreSQL: balanced postings and immutable history.

Balances below zero (except issuance) are refused by the CHECK constraint of 0001 on every
database. Here PostgreSQL also refuses a transaction whose postings do not sum to zero per
asset, and any update or delete of postings, state writes and blocks; a transaction row may
change only once, from unsealed to sealed.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION ledger_postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER ledger_postings_balanced AFTER INSERT ON ledger_posting
  REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_balanced();

CREATE FUNCTION ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are immutable (%)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER ledger_posting_immutable BEFORE UPDATE OR DELETE ON ledger_posting
  FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
CREATE TRIGGER ledger_statewrite_immutable BEFORE UPDATE OR DELETE ON ledger_statewrite
  FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
CREATE TRIGGER ledger_block_immutable BEFORE UPDATE OR DELETE ON ledger_block
  FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
CREATE TRIGGER ledger_transaction_no_delete BEFORE DELETE ON ledger_transaction
  FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
CREATE TRIGGER ledger_transaction_seal_only BEFORE UPDATE ON ledger_transaction
  FOR EACH ROW WHEN (
    OLD.block_id IS NOT NULL OR NEW.block_id IS NULL
    OR (OLD.id, OLD.chaincode, OLD.function, OLD.args, OLD.invoker_id, OLD.idempotency_key, OLD.body_digest,
        OLD.proposed_at, OLD.signature, OLD.status, OLD.reason, OLD.result, OLD.events, OLD.tx_hash)
       IS DISTINCT FROM
       (NEW.id, NEW.chaincode, NEW.function, NEW.args, NEW.invoker_id, NEW.idempotency_key, NEW.body_digest,
        NEW.proposed_at, NEW.signature, NEW.status, NEW.reason, NEW.result, NEW.events, NEW.tx_hash)
  ) EXECUTE FUNCTION ledger_immutable();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS ledger_transaction_seal_only ON ledger_transaction;
DROP TRIGGER IF EXISTS ledger_transaction_no_delete ON ledger_transaction;
DROP TRIGGER IF EXISTS ledger_block_immutable ON ledger_block;
DROP TRIGGER IF EXISTS ledger_statewrite_immutable ON ledger_statewrite;
DROP TRIGGER IF EXISTS ledger_posting_immutable ON ledger_posting;
DROP FUNCTION IF EXISTS ledger_immutable();
DROP TRIGGER IF EXISTS ledger_postings_balanced ON ledger_posting;
DROP FUNCTION IF EXISTS ledger_postings_balanced();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
