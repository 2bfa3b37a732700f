"""The second factor: checking it at login (a code or a passkey), and setting it up
(authenticator app with a QR code, backup codes, passkeys). Passkey ceremonies are JSON
endpoints driven by ``accounts/passkeys.js``."""

from __future__ import annotations

import json

import segno
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import second_factor, selectors
from .forms import CodeForm
from .views import complete_login, given_next, next_url, pending_user

REGISTER_CHALLENGE = "gridcoin_passkey_register"
LOGIN_CHALLENGE = "gridcoin_passkey_login"
WRONG_CODE = _("That code is not right (or too many tries: wait a moment).")


def _may_change_factors(request: HttpRequest) -> bool:
    """Adding a factor needs a verified session, or an account with none yet (its first)."""
    return request.user.is_verified() or not selectors.has_second_factor(request.user)


@require_http_methods(["GET", "HEAD", "POST"])
def login_verify(request: HttpRequest) -> HttpResponse:
    """Second step of the login: a code (authenticator or backup) or a passkey."""
    user = pending_user(request)
    if user is None:
        login_url = reverse("accounts:login")
        return redirect(f"{login_url}?{urlencode({'next': given_next(request)})}" if given_next(request) else login_url)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(user, form.cleaned_data["code"])
        if device is not None:
            complete_login(request, user, device)
            return redirect(next_url(request))
        form.add_error("code", WRONG_CODE)
    return render(request, "accounts/login_verify.html", {
        "form": form, "next": given_next(request), "pending": user,
        "has_passkey": selectors.passkeys_of(user).exists(),
    })


def _qr_svg(device: TOTPDevice) -> str:
    return segno.make(device.config_url, error="m").svg_inline(scale=5, border=2, dark="#14532d", omitsize=True, title="QR code for your authenticator app")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def two_factor(request: HttpRequest) -> HttpResponse:
    """Set up or check the second factor. Staff are sent here until their session has one."""
    user = request.user
    verified = user.is_verified()
    has_factor = selectors.has_second_factor(user)
    form = CodeForm(request.POST or None)
    action = request.POST.get("action", "")
    backup_codes: list[str] = []
    if request.method == "POST" and action == "verify" and form.is_valid():
        device = match_token(user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            return redirect(next_url(request))
        form.add_error("code", WRONG_CODE)
    elif request.method == "POST" and action == "confirm-totp" and _may_change_factors(request) and form.is_valid():
        device = second_factor.totp_device_start(user=user)
        if second_factor.totp_device_confirm(device=device, code=form.cleaned_data["code"]):
            otp_login(request, device)
            backup_codes = second_factor.backup_codes_regenerate(user=user)
            verified, has_factor = True, True
            form = CodeForm()
        else:
            form.add_error("code", WRONG_CODE)
    elif request.method == "POST" and action == "backup-codes" and verified:
        backup_codes = second_factor.backup_codes_regenerate(user=user)
    context = {
        "form": form, "next": given_next(request), "verified": verified, "has_factor": has_factor,
        "staff": selectors.is_staff(user), "backup_codes": backup_codes,
        "passkeys": selectors.passkeys_of(user),
        "has_totp": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
    }
    if has_factor and not verified:
        return render(request, "accounts/two_factor_verify.html", context)
    if not context["has_totp"] and not backup_codes:
        device = second_factor.totp_device_start(user=user)
        context.update(totp_qr=_qr_svg(device), totp_secret=second_factor.totp_secret(device))
    return render(request, "accounts/two_factor.html", context)


def _json_body(request: HttpRequest) -> dict | None:
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


@login_required
@require_POST
def passkey_register_options(request: HttpRequest) -> JsonResponse:
    if not _may_change_factors(request):
        return JsonResponse({"detail": _("Sign in with your second factor first.")}, status=403)
    options, challenge = second_factor.passkey_registration_options(user=request.user,
                                                                     rp=second_factor.relying_party(request))
    request.session[REGISTER_CHALLENGE] = challenge
    return JsonResponse(json.loads(options))


@login_required
@require_POST
def passkey_register(request: HttpRequest) -> JsonResponse:
    challenge = request.session.pop(REGISTER_CHALLENGE, None)
    body = _json_body(request)
    if not _may_change_factors(request):
        return JsonResponse({"detail": _("Sign in with your second factor first.")}, status=403)
    if challenge is None or body is None:
        return JsonResponse({"detail": _("Start the passkey registration again.")}, status=400)
    try:
        credential = second_factor.passkey_register(user=request.user, rp=second_factor.relying_party(request),
                                                    challenge=challenge, response=body.get("credential") or {},
                                                    name=str(body.get("name") or ""))
    except second_factor.PasskeyError as exc:
        return JsonResponse({"detail": str(exc)}, status=400)
    otp_login(request, credential)
    return JsonResponse({"redirect": next_url(request) if given_next(request) else reverse("accounts:two-factor")})


@require_POST
def passkey_login_options(request: HttpRequest) -> JsonResponse:
    user = pending_user(request)
    if user is None:
        return JsonResponse({"detail": _("Enter your username and password first.")}, status=400)
    options, challenge = second_factor.passkey_authentication_options(user=user,
                                                                       rp=second_factor.relying_party(request))
    request.session[LOGIN_CHALLENGE] = challenge
    return JsonResponse(json.loads(options))


@require_POST
def passkey_login(request: HttpRequest) -> JsonResponse:
    user = pending_user(request)
    challenge = request.session.pop(LOGIN_CHALLENGE, None)
    body = _json_body(request)
    if user is None or challenge is None or body is None:
        return JsonResponse({"detail": _("Enter your username and password first.")}, status=400)
    try:
        credential = second_factor.passkey_authenticate(user=user, rp=second_factor.relying_party(request),
                                                        challenge=challenge, response=body.get("credential") or {})
    except second_factor.PasskeyError as exc:
        return JsonResponse({"detail": str(exc)}, status=400)
    complete_login(request, user, credential)
    return JsonResponse({"redirect": next_url(request)})
