from django.core.management.base import BaseCommand, CommandError

from ledger import log, services
from ledger.models import IdentityKind, Organisation


class Command(BaseCommand):
    help = "Register an organisation's witness key (the identity <org>/witness, kind service)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="MSP id of a bank, charity or auditor organisation")
        parser.add_argument("--public-key", required=True, help="the witness's Ed25519 public key, hex")

    def handle(self, *args, org, public_key, **options):
        organisation = Organisation.objects.filter(msp_id=org).first()
        if organisation is None:
            raise CommandError(f"no organisation {org}")
        if organisation.org_type not in log.WITNESS_ORG_TYPES:
            raise CommandError(f"{org} is a {organisation.org_type}; witnesses are banks, charities or auditors")
        try:
            key = bytes.fromhex(public_key)
        except ValueError as exc:
            raise CommandError("the public key must be hex") from exc
        if len(key) != 32:
            raise CommandError("an Ed25519 public key is 32 bytes (64 hex digits)")
        if organisation.identities.filter(name=log.WITNESS_IDENTITY).exists():
            raise CommandError(f"{org}/witness is already registered")
        services.identity_register(organisation=organisation, name=log.WITNESS_IDENTITY, public_key=key,
                                   kind=IdentityKind.SERVICE)
        self.stdout.write(self.style.SUCCESS(f"registered {org}/witness"))
