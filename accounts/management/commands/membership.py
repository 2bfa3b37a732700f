"""Membership administration: each change is one configuration transaction on the ledger.

    manage.py membership show
    manage.py membership set-org-type hh-alice charity
    manage.py membership rotate-key hh-alice/alice --public-key <hex>     (or --custodial)
    manage.py membership revoke hh-alice/alice
    manage.py membership transfer-account household:hh-alice --asset k --to hh-bob
    manage.py membership set-policy --rule majority --member utility --member bank-1 --member charity-1
    manage.py membership propose p1 setOrganisationType --args '{"msp_id": "hh-alice", "org_type": "bank"}' \\
        --as utility/operator [--key-file seed.hex]
    manage.py membership approve p1 --as bank-1/operator [--key-file seed.hex]

Under the admin policy the configuration admin's key (settings) signs the change; under the
majority policy changes go through propose/approve, signed by a member organisation's identity
(its custodial key, or the hex Ed25519 seed in --key-file). Bad input is refused before anything
is written; a change the ledger refuses is rolled back with its transaction.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import services as accounts
from accounts.keys import custodial_signer
from accounts.models import CustodialKey
from ledger import services as ledger
from ledger.chaincodes.config import CHANGES, CONFIG, ORG_TYPES, POLICY_KEY
from ledger.crypto import private_key_from_seed, public_bytes
from ledger.models import Account, Asset, Identity, Organisation
from ledger.selectors import world_state


class Command(BaseCommand):
    help = "Change membership on the ledger: organisation types, keys, revocation, account owners, the policy."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, parser_class=type(parser),
                                    metavar="{show,set-org-type,rotate-key,revoke,transfer-account,set-policy,"
                                            "propose,approve}")
        sub.add_parser("show", help="organisations, identities, the policy and pending proposals",
                       called_from_command_line=parser.called_from_command_line)

        p = sub.add_parser("set-org-type", help="change an organisation's type",
                           called_from_command_line=parser.called_from_command_line)
        p.add_argument("msp_id")
        p.add_argument("org_type", help=", ".join(sorted(ORG_TYPES)))

        p = sub.add_parser("rotate-key", help="replace an identity's public key",
                           called_from_command_line=parser.called_from_command_line)
        p.add_argument("identity", help="<msp_id>/<name>")
        how = p.add_mutually_exclusive_group(required=True)
        how.add_argument("--public-key", help="the new Ed25519 public key, 64 hex digits")
        how.add_argument("--custodial", action="store_true",
                         help="generate a new custodial key and seal it in place of the old one")

        p = sub.add_parser("revoke", help="revoke an identity: its later proposals are refused",
                           called_from_command_line=parser.called_from_command_line)
        p.add_argument("identity", help="<msp_id>/<name>")

        p = sub.add_parser("transfer-account", help="give an account (and its balance) to another organisation",
                           called_from_command_line=parser.called_from_command_line)
        p.add_argument("key", help="the account key, e.g. household:hh-alice")
        p.add_argument("--asset", default="k", help="the account's asset (default k)")
        p.add_argument("--to", required=True, help="MSP id of the new owner")

        p = sub.add_parser("set-policy", help="the configuration policy: admin rule or majority of members",
                           called_from_command_line=parser.called_from_command_line)
        p.add_argument("--rule", required=True, choices=["admin", "majority"])
        p.add_argument("--admin", action="append", default=[], help="<msp_id>/<name> (repeat)")
        p.add_argument("--member", action="append", default=[], help="member organisation MSP id (repeat)")

        for name, text in (("propose", "propose a change under the majority policy"),
                           ("approve", "approve a pending proposal under the majority policy")):
            p = sub.add_parser(name, help=text, called_from_command_line=parser.called_from_command_line)
            p.add_argument("id", help="the proposal's id")
            if name == "propose":
                p.add_argument("function", help=", ".join(CHANGES))
                p.add_argument("--args", dest="change", required=True, help="the change's arguments, a JSON object")
            p.add_argument("--as", dest="as_identity", required=True,
                           help="<msp_id>/<name> of a member organisation's identity that signs")
            p.add_argument("--key-file", help="that identity's Ed25519 seed, hex (default: its custodial key)")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        handler = getattr(self, "_" + action.replace("-", "_"))
        try:
            message = handler(**options)
        except ledger.LedgerError as exc:
            raise CommandError(f"refused, nothing changed: {exc}") from exc
        if message:
            self.stdout.write(self.style.SUCCESS(message))

    # --- actions --------------------------------------------------------------------------------
    def _show(self, **options: Any) -> str:
        policy = world_state(CONFIG, [POLICY_KEY]).get(POLICY_KEY)
        out = self.stdout
        out.write(f"policy: {json.dumps(policy) if policy else 'none (not bootstrapped)'}")
        for org in Organisation.objects.order_by("msp_id"):
            out.write(f"{org.msp_id}  {org.org_type}  {org.name}")
            for identity in org.identities.order_by("name"):
                revoked = f"  revoked {identity.revoked_at:%Y-%m-%d %H:%M}" if identity.revoked_at else ""
                out.write(f"    {identity.name}  {identity.kind}  {bytes(identity.public_key).hex()}{revoked}")
        for key, proposal in world_state(CONFIG, prefix="proposal/").items():
            out.write(f"{key}: {proposal.get('function')} {json.dumps(proposal.get('args'))} "
                      f"approved by {', '.join(proposal.get('approvals', []))}")
        return ""

    def _set_org_type(self, *, msp_id: str, org_type: str, **options: Any) -> str:
        organisation = _organisation(msp_id)
        if org_type not in ORG_TYPES:
            raise CommandError(f"unknown organisation type {org_type!r}; one of {', '.join(sorted(ORG_TYPES))}")
        if organisation.org_type == org_type:
            raise CommandError(f"{msp_id} is already a {org_type}")
        ledger.organisation_set_type(organisation=organisation, org_type=org_type)
        return f"{msp_id} is now a {org_type}"

    def _rotate_key(self, *, identity: str, public_key: str | None, custodial: bool, **options: Any) -> str:
        found = _live_identity(identity)
        has_custodial = CustodialKey.objects.filter(identity=found).exists()
        if custodial:
            if not has_custodial:
                raise CommandError(f"{identity} has no custodial key; give its new key with --public-key")
            rotated = accounts.identity_rotate_custodial_key(identity=found)
        else:
            if has_custodial:
                raise CommandError(f"{identity} signs with a custodial key, which would no longer match; "
                                   "use --custodial to replace both")
            key = _public_key(public_key or "")
            if key == bytes(found.public_key):
                raise CommandError(f"that is already {identity}'s key")
            rotated = ledger.identity_rotate_key(identity=found, public_key=key)
        return f"{identity} now signs with {bytes(rotated.public_key).hex()}"

    def _revoke(self, *, identity: str, **options: Any) -> str:
        ledger.identity_revoke(identity=_live_identity(identity))
        return f"{identity} is revoked"

    def _transfer_account(self, *, key: str, asset: str, to: str, **options: Any) -> str:
        if not Asset.objects.filter(code=asset).exists():
            raise CommandError(f"no asset {asset}")
        account = Account.objects.select_related("organisation").filter(key=key, asset_id=asset).first()
        if account is None:
            raise CommandError(f"no {asset} account {key!r}")
        if account.kind == "issuance":
            raise CommandError("an issuance account belongs to its asset's issuer")
        organisation = _organisation(to)
        if account.organisation_id == organisation.pk:
            raise CommandError(f"{asset} account {key!r} already belongs to {to}")
        ledger.account_transfer(account=account, organisation=organisation)
        return f"{asset} account {key!r} now belongs to {to} (was {account.organisation.msp_id})"

    def _set_policy(self, *, rule: str, admin: list[str], member: list[str], **options: Any) -> str:
        if rule == "admin" and (not admin or member):
            raise CommandError("the admin rule takes one or more --admin <msp_id>/<name> and no --member")
        if rule == "majority" and (not member or admin):
            raise CommandError("the majority rule takes one or more --member <msp_id> and no --admin")
        for name in admin:
            _live_identity(name)
        for msp_id in member:
            _organisation(msp_id)
        ledger.config_change("setPolicy", {"rule": rule, "admins": admin, "members": member})
        return f"policy: {rule} ({', '.join(admin or member)})"

    def _propose(self, *, id: str, function: str, change: str, as_identity: str, key_file: str | None,
                 **options: Any) -> str:
        if function not in CHANGES:
            raise CommandError(f"unknown change {function!r}; one of {', '.join(CHANGES)}")
        try:
            arguments = json.loads(change)
        except ValueError as exc:
            raise CommandError(f"--args is not JSON: {exc}") from exc
        if not isinstance(arguments, dict):
            raise CommandError("--args must be a JSON object")
        invoker, signer = self._member_signer(as_identity, key_file)
        if world_state(CONFIG, [f"proposal/{id}"]):
            raise CommandError(f"proposal {id} already exists")
        result = ledger.config_propose(invoker=invoker, signer=signer, proposal_id=id, function=function,
                                       args=arguments)
        return _decided(id, result)

    def _approve(self, *, id: str, as_identity: str, key_file: str | None, **options: Any) -> str:
        invoker, signer = self._member_signer(as_identity, key_file)
        if not world_state(CONFIG, [f"proposal/{id}"]):
            raise CommandError(f"no pending proposal {id}")
        return _decided(id, ledger.config_approve(invoker=invoker, signer=signer, proposal_id=id))

    def _member_signer(self, qualified: str, key_file: str | None) -> tuple[Identity, Ed25519PrivateKey]:
        policy = world_state(CONFIG, [POLICY_KEY]).get(POLICY_KEY) or {}
        if policy.get("rule") != "majority":
            raise CommandError(f"the policy in force is {policy.get('rule') or 'not set'}: proposals are for the "
                               "majority rule (changes are made directly under the admin rule)")
        identity = _live_identity(qualified)
        if identity.organisation.msp_id not in policy.get("members", []):
            raise CommandError(f"{identity.organisation.msp_id} is not a member organisation of the policy "
                               f"({', '.join(policy.get('members', []))})")
        if key_file:
            try:
                seed = bytes.fromhex(Path(key_file).read_text().strip())
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read a hex seed from {key_file}: {exc}") from exc
            if len(seed) != 32:
                raise CommandError(f"{key_file} does not hold a 32-byte Ed25519 seed")
            key = private_key_from_seed(seed)
        elif CustodialKey.objects.filter(identity=identity).exists():
            key = custodial_signer(identity)
        else:
            raise CommandError(f"{qualified} has no custodial key: give its seed with --key-file")
        if public_bytes(key) != bytes(identity.public_key):
            raise CommandError(f"that key is not {qualified}'s registered key")
        return identity, key


def _decided(proposal_id: str, result: dict[str, Any]) -> str:
    if result.get("pending"):
        return f"proposal {proposal_id} is pending, approved by {', '.join(result['approvals'])}"
    return f"proposal {proposal_id} is applied, approved by {', '.join(result['approvals'])}"


def _organisation(msp_id: str) -> Organisation:
    organisation = Organisation.objects.filter(msp_id=msp_id).first()
    if organisation is None:
        raise CommandError(f"no organisation {msp_id}")
    return organisation


def _live_identity(qualified: str) -> Identity:
    msp_id, _, name = qualified.partition("/")
    if not msp_id or not name:
        raise CommandError(f"an identity is named <msp_id>/<name>, not {qualified!r}")
    identity = (Identity.objects.select_related("organisation")
                .filter(organisation__msp_id=msp_id, name=name).first())
    if identity is None:
        raise CommandError(f"no identity {qualified}")
    if identity.revoked_at is not None:
        raise CommandError(f"{qualified} is revoked")
    return identity


def _public_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise CommandError("the public key must be hex") from None
    if len(key) != 32:
        raise CommandError("an Ed25519 public key is 32 bytes (64 hex digits)")
    return key
