"""Postings and state writes refer to their transaction through a check per INSERT statement
instead of a foreign key per row.

A deferred foreign key runs one lookup per row at commit and locks the transaction row (a WAL
record) to keep it from being deleted or re-keyed. Transaction rows can be neither (the
``ledger_transaction_no_delete`` and frozen-column triggers), so the lock guarded nothing; and a
meter reading paid for three lookups. The statement-level trigger looks up all of a
statement's transactions in one index scan, one query per statement. It runs at the end of
the statement rather than at commit: every writer inserts the transaction first. The function
plans with sequential scans off: PL/pgSQL keeps a session's first plan, and one made while the
table was nearly empty scanned it whole on every statement as it grew. SQLite gets a row
trigger with the same effect.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLES = ("ledger_posting", "ledger_statewrite")

POSTGRES_FORWARD = [r"""
CREATE FUNCTION ledger_transactions_exist() RETURNS trigger LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE missing bigint;
BEGIN
  IF EXISTS (SELECT 1 FROM (SELECT array_agg(DISTINCT transaction_id) AS wanted FROM new_rows) AS s
              WHERE (SELECT count(*) FROM ledger_transaction WHERE id = ANY (s.wanted)) <> cardinality(s.wanted)) THEN
    SELECT n.transaction_id INTO missing FROM new_rows AS n
     WHERE NOT EXISTS (SELECT 1 FROM ledger_transaction AS t WHERE t.id = n.transaction_id) LIMIT 1;
    RAISE EXCEPTION '% rows refer to transaction %, which does not exist', TG_TABLE_NAME, missing
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END $$;
""" + "".join(f"""
CREATE TRIGGER {table}_transaction_exists AFTER INSERT ON {table}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_transactions_exist();
""" for table in TABLES)]

POSTGRES_BACKWARD = ["".join(f"DROP TRIGGER IF EXISTS {table}_transaction_exists ON {table};\n" for table in TABLES)
                     + "DROP FUNCTION IF EXISTS ledger_transactions_exist();\n"]

SQLITE_FORWARD = [f"""
CREATE TRIGGER {table}_transaction_exists BEFORE INSERT ON {table}
WHEN NOT EXISTS (SELECT 1 FROM ledger_transaction WHERE id = NEW.transaction_id)
BEGIN SELECT RAISE(ABORT, '{table} rows must refer to an existing transaction'); END
""" for table in TABLES]

SQLITE_BACKWARD = [f"DROP TRIGGER IF EXISTS {table}_transaction_exists" for table in TABLES]


def _statements(by_vendor: dict[str, list[str]]):
    def run(apps, schema_editor):
        for statement in by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)
    return run


forward = _statements({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD})
backward = _statements({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD})


class Migration(migrations.Migration):
    dependencies = [("ledger", "0009_room_for_hot_updates")]
    operations = [
        migrations.AlterField(
            model_name="posting",
            name="transaction",
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="postings", to="ledger.transaction"),
        ),
        migrations.AlterField(
            model_name="statewrite",
            name="transaction",
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="state_writes", to="ledger.transaction"),
        ),
        migrations.RunPython(forward, backward),
    ]
