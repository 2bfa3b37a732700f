"""The language switcher: one button per language, each named in that language."""

from django import template
from django.conf import settings

register = template.Library()


@register.inclusion_tag("frontend/_language_switcher.html", takes_context=True)
def language_switcher(context) -> dict:
    request = context.get("request")
    current = (getattr(request, "LANGUAGE_CODE", "") or settings.LANGUAGE_CODE).lower()
    names = dict(settings.LANGUAGES)
    languages = []
    for code in settings.GRIDCOIN_SWITCHER_LANGUAGES:
        # English in India stays en-IN (Indian digit grouping) when English is chosen again.
        active = current == code or current.split("-")[0] == code
        value = current if active else code
        languages.append({"code": value, "lang": code, "name": names[code], "active": active})
    return {
        "languages": languages,
        "next": request.get_full_path() if request is not None else "/",
        "csrf_token": context.get("csrf_token"),
    }


@register.filter
def plain_reason(reason: str | None) -> str:
    """A ledger refusal's recorded reason, in the reader's language where it is a known one."""
    from frontend.refusals import plain_reason as say

    return say(reason)
