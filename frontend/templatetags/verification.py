from django import template

from frontend.verification import api_base, verify_texts, verify_trust

register = template.Library()


@register.inclusion_tag("frontend/explorer/_verify.html")
def verify_panel(tx) -> dict:
    """The "Verify" button and its results for one transaction (sealed or not)."""
    if not tx.block_id:
        return {"tx": tx}
    return {"tx": tx, "api": api_base(), "texts": verify_texts(), "trust": verify_trust()}
