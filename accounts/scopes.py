"""What an API token may be allowed to do. An API view names the scope each method needs
(``required_scopes``); a token reaches a view only with that scope, and a view naming none
refuses tokens. Views anyone may read (devices, prices) need no credentials at all, but a token
sent to them still needs their scope: a token reaches only what its scopes name."""

from django.utils.translation import gettext_lazy as _

SCOPES = {
    "ledger:read": _("Read blocks, transactions, inclusion proofs and accounts"),
    "wallet:read": _("Read the owner's wallet balances and history"),
    "devices:read": _("Read devices"),
    "devices:fund": _("Fund devices from the owner's household"),
    "payments:read": _("Read the webhook delivery audit"),
    "prices:read": _("Read price schedules"),
    "prices:write": _("Set the utility's prices"),
}


def required_scope(view, method: str) -> str | None:
    scopes = getattr(view, "required_scopes", None) or {}
    if method in ("HEAD", "OPTIONS"):
        method = "GET"
    return scopes.get(method)
