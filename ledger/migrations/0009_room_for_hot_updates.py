"""Leave room on the pages of the two tables updated in place on every transaction.

Every burn and mint rewrites its accounts' balances (``ledger_account``) and the meter's
registers (``ledger_stateentry``). PostgreSQL writes an update as a new row version; when the
page has room and no indexed column changed, the new version stays on the page and no index
is touched (a heap-only tuple). With full pages (the default fillfactor of 100) fewer than one
update in ten was heap-only, so nearly every balance change also inserted into the account
table's six indexes. At 50 the pages keep half their space for new versions, which page pruning
reclaims as it goes. It applies to pages written from now on (``VACUUM FULL`` repacks old ones).
"""

from django.db import migrations

TABLES = {"ledger_account": 50, "ledger_stateentry": 50}


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table, fillfactor in TABLES.items():
            schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {fillfactor})", params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)", params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0008_posting_composite_key")]
    operations = [migrations.RunPython(forward, backward)]
