"""Pages of ``notifications``: the list (and marking read), the settings (preferences and the
button that turns on push), and the endpoints a browser's push subscription is kept with."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from . import push, selectors, services
from .models import Channel, Kind

MAX_SUBSCRIPTION_BYTES = 4096


@require_http_methods(["GET", "HEAD"])
@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    return render(request, "notifications/list.html", {"notifications": selectors.notifications_for(request.user),
                                                       "unread": selectors.unread_count(request.user)})


@require_POST
@login_required
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    if not services.notification_mark_read(user=request.user, notification_id=pk):
        return HttpResponse(status=404)
    return redirect("notifications:list")


@require_POST
@login_required
def notifications_read_all(request: HttpRequest) -> HttpResponse:
    services.notifications_mark_all_read(user=request.user)
    return redirect("notifications:list")


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def notification_settings(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        enabled = set()
        for value in request.POST.getlist("on"):
            kind, _sep, channel = value.partition(":")
            enabled.add((kind, channel))
        try:
            services.preferences_set(user=request.user, enabled=enabled)
        except services.NotificationError as exc:
            messages.error(request, str(exc))
            return redirect("notifications:settings")
        messages.success(request, _("Your notification choices are saved."))
        return redirect("notifications:settings")
    chosen = selectors.preferences_for(request.user)
    rows = [{"kind": kind, "label": label,
             "channels": [{"value": f"{kind}:{channel}", "label": channel_label, "on": chosen[(kind, channel)]}
                          for channel, channel_label in Channel.choices]}
            for kind, label in Kind.choices]
    return render(request, "notifications/settings.html", {
        "rows": rows, "push_config": {"publicKey": push.application_server_key(),
                                      "subscribeUrl": reverse("notifications:push-subscribe"),
                                      "unsubscribeUrl": reverse("notifications:push-unsubscribe")},
        "push_texts": _push_texts(), "has_email": bool(request.user.email)})


def _push_texts() -> dict[str, str]:
    """What push-settings.js says, translated here (the script has no catalogue of its own)."""
    return {
        "unsupported": _("This browser cannot show notifications."),
        "unconfigured": _("Notifications on phones are not set up on this server."),
        "denied": _("Notifications are blocked for this site. Allow them in your browser's site settings."),
        "on": _("Notifications are on for this phone."),
        "off": _("Notifications are off for this phone."),
        "failed": _("Could not change notifications on this phone. Try again."),
        "working": _("One moment…"),
    }


def _json_body(request: HttpRequest) -> dict | None:
    if len(request.body) > MAX_SUBSCRIPTION_BYTES:
        return None
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


@require_POST
def push_subscribe(request: HttpRequest) -> JsonResponse:
    """Keep a ``PushSubscription.toJSON()`` from the browser: {endpoint, keys: {p256dh, auth}}."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": _("Log in to turn on notifications.")}, status=401)
    data = _json_body(request)
    keys = data.get("keys") if data else None
    if data is None or not isinstance(keys, dict):
        return JsonResponse({"error": _("Send the subscription as JSON.")}, status=400)
    try:
        services.push_subscription_save(user=request.user, endpoint=data.get("endpoint"), p256dh=keys.get("p256dh"),
                                        auth=keys.get("auth"))
    except services.NotificationError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"status": "subscribed"}, status=201)


@require_POST
def push_unsubscribe(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"error": _("Log in to turn off notifications.")}, status=401)
    data = _json_body(request)
    if data is None:
        return JsonResponse({"error": _("Send the subscription as JSON.")}, status=400)
    removed = services.push_subscription_delete(user=request.user, endpoint=data.get("endpoint"))
    return JsonResponse({"status": "unsubscribed" if removed else "unknown"})
