"""The welcome panel a new resident sees once, on the first page after signing up."""

from django import template
from django.template.loader import render_to_string

from accounts.views import WELCOME

register = template.Library()


@register.simple_tag(takes_context=True)
def welcome_panel(context) -> str:
    request = context.get("request")
    if request is None or not request.user.is_authenticated or not request.session.pop(WELCOME, False):
        return ""
    return render_to_string("accounts/_welcome.html", request=request)


@register.filter
def lookup(mapping, key):
    """``mapping[key]``, or None (templates cannot index a dict by a variable)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
