"""A ledger that already has members adopts on-chain membership: the bootstrap configuration
transaction lists them (its ``genesis``), so ``ledger_verify`` can replay them from then on."""

from django.db import migrations


def bootstrap_existing(apps, schema_editor):
    Organisation = apps.get_model("ledger", "Organisation")
    if not Organisation.objects.exists():
        return  # a new ledger bootstraps on its first configuration change
    from ledger import services

    services.config_admin()


class Migration(migrations.Migration):
    dependencies = [("ledger", "0013_membership_operator_type")]

    operations = [migrations.RunPython(bootstrap_existing, migrations.RunPython.noop)]
