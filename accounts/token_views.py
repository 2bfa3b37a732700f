"""/accounts/tokens/: staff create and revoke their API tokens. A new token is shown once."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from . import selectors, services
from .forms import ApiTokenForm


def _staff_only(request: HttpRequest) -> None:
    # Staff sessions reach this page only with their second factor (the middleware sees to it).
    if not selectors.is_staff(request.user):
        raise PermissionDenied("API tokens are for utility, bank, charity and auditor staff")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    _staff_only(request)
    form = ApiTokenForm(request.POST or None, organisations=selectors.staff_organisations(request.user))
    new_token = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        days = data.get("expires_in_days")
        try:
            _, new_token = services.api_token_create(
                user=request.user, organisation=data["organisation"], name=data["name"], scopes=data["scopes"],
                expires_at=timezone.now() + timedelta(days=int(days)) if days else None)
        except services.TokenError as exc:
            form.add_error(None, str(exc))
        else:
            form = ApiTokenForm(organisations=selectors.staff_organisations(request.user))
    return render(request, "accounts/tokens.html", {"form": form, "tokens": selectors.api_tokens_of(request.user),
                                                    "new_token": new_token, "now": timezone.now()},
                  status=201 if new_token else 200)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    _staff_only(request)
    token = get_object_or_404(selectors.api_tokens_of(request.user), pk=token_id)
    services.api_token_revoke(token=token)
    return redirect("accounts:tokens")
