"""Sign-up, login (with the second factor when the user has one), logout, the lockout page and
password reset. Writes go through ``accounts.services`` and ``accounts.second_factor``."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from . import selectors, services, throttle
from .client_ip import client_ip
from .forms import USERNAME_TAKEN, SignupForm

# The user who gave the right password and still owes their second factor, kept in the session
# (not signed in) for a few minutes.
PENDING = "gridcoin_2fa_pending"
PENDING_SECONDS = 300
WELCOME = "gridcoin_welcome"


def next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def given_next(request: HttpRequest) -> str:
    """The ``next`` to carry through the page's forms and links (checked when it is used)."""
    return request.POST.get("next") or request.GET.get("next") or ""


def _try_again_in(action: str, seconds: int) -> str:
    """What a limit says when it refuses, with the minutes left (literal strings, so that
    makemessages finds them)."""
    minutes = throttle.minutes(seconds)
    if action == "signup":
        text = ngettext("Too many sign-ups from this network. Try again in %(minutes)d minute.",
                        "Too many sign-ups from this network. Try again in %(minutes)d minutes.", minutes)
    elif action == "password-reset":
        text = ngettext("Too many password-reset requests from this network. Try again in %(minutes)d minute.",
                        "Too many password-reset requests from this network. Try again in %(minutes)d minutes.",
                        minutes)
    else:
        text = ngettext("Too many failed attempts. Try again in %(minutes)d minute.",
                        "Too many failed attempts. Try again in %(minutes)d minutes.", minutes)
    return text % {"minutes": minutes}


def _refused(request: HttpRequest, action: str, template: str, context: dict, seconds: int) -> HttpResponse:
    context = {**context, "too_many": _try_again_in(action, seconds), "next": given_next(request)}
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(seconds)
    return response


@sensitive_post_parameters("password1", "password2")
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(next_url(request))
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        limit, address = throttle.signup_limit(), client_ip(request)
        wait = throttle.retry_after(limit, address)
        if wait:
            return _refused(request, "signup", "accounts/signup.html", {"form": SignupForm()}, wait)
        throttle.record(limit, address)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_signup(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                email=form.cleaned_data.get("email") or "",
            )
        except IntegrityError:  # lost a race for the same username; the service rolled back
            form.add_error("username", USERNAME_TAKEN)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            if not given_next(request):
                # A new resident's first screen offers what they came for: coins and a device.
                request.session[WELCOME] = True
            return redirect(next_url(request))
    return render(request, "accounts/signup.html", {"form": form, "next": given_next(request)})


class LoginView(auth_views.LoginView):
    """The password first (django-axes counts failures per username and per address); a user
    with a second factor then proves it on the next page before they are signed in."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        if selectors.has_second_factor(user):
            self.request.session[PENDING] = {"user": user.pk, "backend": user.backend, "at": time.time()}
            return redirect(f"{reverse('accounts:login-verify')}?{urlencode({'next': self.get_success_url()})}")
        return super().form_valid(form)


def pending_user(request: HttpRequest):
    """The user who passed the password and owes the second factor, or None (none, or stale)."""
    pending = request.session.get(PENDING)
    if not pending or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    return get_user_model().objects.filter(pk=pending["user"], is_active=True).first()


def complete_login(request: HttpRequest, user, device) -> None:
    """Sign the user in and mark the session verified by ``device``."""
    from django_otp import login as otp_login

    backend = request.session.get(PENDING, {}).get("backend") or "django.contrib.auth.backends.ModelBackend"
    request.session.pop(PENDING, None)
    login(request, user, backend=backend)
    otp_login(request, device)


def locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' lockout answer: the login page, saying for how long, as a 429. The right
    password gets this too until the cool-off ends."""
    seconds = settings.GRIDCOIN_LOGIN_COOLOFF_MINUTES * 60
    return _refused(request, "login", "accounts/login.html", {"form": AuthenticationForm(request)}, seconds)


class LogoutView(auth_views.LogoutView):
    """POST only (Django's default): a link or prefetch cannot sign anyone out."""


class PasswordResetView(auth_views.PasswordResetView):
    """Asks for the e-mail address; at most GRIDCOIN_PASSWORD_RESET_LIMIT requests per address
    in a window. The answer is the same whether an account has that e-mail or not."""

    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password-reset-done")

    def post(self, request, *args, **kwargs):
        limit, address = throttle.password_reset_limit(), client_ip(request)
        wait = throttle.retry_after(limit, address)
        if wait:
            return _refused(request, "password-reset", self.template_name, {"form": self.get_form_class()()}, wait)
        throttle.record(limit, address)
        return super().post(request, *args, **kwargs)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password-reset-complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's ``set_language`` (the cookie, then back to ``next``), and for a signed-in user
    the choice is also stored on their profile, to follow them to other devices."""
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        # Django would take any language it has a catalogue of; this site speaks only its own.
        post = request.POST.copy()
        post.pop("language", None)
        request.POST = post
    response = django_set_language(request)
    if request.user.is_authenticated and settings.LANGUAGE_COOKIE_NAME in response.cookies:
        services.profile_language_set(user=request.user, language=language)
    return response
