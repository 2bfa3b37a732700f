"""``manage.py api_token create|list|revoke``: API tokens for banks, auditors and scripts.

    api_token create --user auditor --organisation audit --scope ledger:read --name "nightly verify" [--days 90]
    api_token list [--user auditor]
    api_token revoke <prefix or id>

``create`` prints the token once; only its hash is stored.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts import services
from accounts.models import ApiToken
from accounts.scopes import SCOPES
from ledger.models import Organisation


class Command(BaseCommand):
    help = "Create, list or revoke scoped API tokens."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print it (once)")
        create.add_argument("--user", required=True, help="the owner's username")
        create.add_argument("--organisation", required=True, help="msp id of the organisation it acts for")
        create.add_argument("--scope", action="append", required=True, choices=sorted(SCOPES),
                            help="a scope; repeat for several")
        create.add_argument("--name", required=True)
        create.add_argument("--days", type=int, default=None, help="expires after this many days (default: never)")
        listing = sub.add_parser("list", help="list tokens (never the tokens themselves)")
        listing.add_argument("--user", default=None)
        revoke = sub.add_parser("revoke", help="revoke a token by its prefix (gct_...) or id")
        revoke.add_argument("token")

    def handle(self, *args, action: str, **options):
        getattr(self, f"_{action}")(**options)

    def _create(self, *, user: str, organisation: str, scope: list[str], name: str, days: int | None, **_):
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"no user {user!r}")
        org = Organisation.objects.filter(msp_id=organisation).first()
        if org is None:
            raise CommandError(f"no organisation {organisation!r}")
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        try:
            token, raw = services.api_token_create(user=owner, organisation=org, name=name, scopes=scope,
                                                   expires_at=expires_at)
        except services.TokenError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"token {token.pk} ({token.prefix}…) for {owner} in {org.msp_id}: {', '.join(token.scopes)}; "
                          "shown once, store it now:")
        self.stdout.write(raw)

    def _list(self, *, user: str | None, **_):
        tokens = ApiToken.objects.select_related("user", "organisation").order_by("id")
        if user:
            tokens = tokens.filter(user__username=user)
        now = timezone.now()
        for t in tokens:
            state = "revoked" if t.revoked_at else "expired" if t.expires_at and t.expires_at <= now else "active"
            expiry = f"expires {t.expires_at:%Y-%m-%d}" if t.expires_at else "no expiry"
            self.stdout.write("\t".join([str(t.pk), f"{t.prefix}…", str(t.user), t.organisation.msp_id,
                                         ",".join(t.scopes), state, expiry]))

    def _revoke(self, *, token: str, **_):
        qs = ApiToken.objects.filter(pk=int(token)) if token.isdigit() else ApiToken.objects.filter(
            prefix=token.rstrip("…")[:12])
        matches = list(qs[:2])
        if len(matches) != 1:
            raise CommandError(f"{token!r} names {'no' if not matches else 'more than one'} token")
        revoked = services.api_token_revoke(token=matches[0])
        self.stdout.write(f"revoked token {revoked.pk} ({revoked.prefix}…) at {revoked.revoked_at:%Y-%m-%d %H:%M:%S}")
