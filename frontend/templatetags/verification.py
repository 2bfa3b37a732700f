from django import template

from frontend.verification import api_base, verify_texts

register = template.Library()


@register.inclusion_tag("frontend/explorer/_verify.html")
def verify_panel(tx) -> dict:
    """The "Verify" button and its results for one transaction (sealed or not)."""
    return {"tx": tx, "api": api_base(), "texts": verify_texts()}
