"""Device pages beyond the basic list and detail: QR codes, the utility's sticker sheet, the
in-app scanner and the meter simulators. Reads through selectors; a simulator tick is one
call into ``frontend.simulators``."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from ledger.units import kwh
from meters import qr
from meters import selectors as meter_selectors
from meters.models import Device, DeviceKind, EnrolmentState

from . import selectors, simulators

MAX_STICKERS = 200
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,32}")


def public_base_url(request: HttpRequest) -> str:
    """Where phones reach this site: GRIDCOIN_PUBLIC_URL when set (stickers printed behind a
    proxy must not carry an internal host name), else the host the request came to."""
    return getattr(settings, "GRIDCOIN_PUBLIC_URL", "") or request.build_absolute_uri("/")


def is_local_address(url: str) -> bool:
    """Whether ``url`` names a host only this machine or its own network can reach (loopback,
    private and link-local addresses, ``localhost``, mDNS ``.local`` names): a phone on mobile
    data scanning a sticker that carries one gets nowhere."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if not host or host == "localhost" or host.endswith((".localhost", ".local")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified


def device_page_url(request: HttpRequest, public_id: str) -> str:
    return qr.device_url(public_base_url(request), public_id)


def _device_or_404(public_id: str) -> Device:
    device = meter_selectors.device_by_public_id(public_id)
    if device is None:
        raise Http404("no such device")
    return device


@require_safe
def device_qr_png(request: HttpRequest, public_id: str) -> HttpResponse:
    device = _device_or_404(public_id)
    response = HttpResponse(qr.qr_png(device_page_url(request, device.public_id)), content_type="image/png")
    response["Cache-Control"] = "public, max-age=3600"
    return response


@require_safe
def device_qr_svg(request: HttpRequest, public_id: str) -> HttpResponse:
    device = _device_or_404(public_id)
    body = qr.qr_svg(device_page_url(request, device.public_id), title=f"{device.public_id} {device.name}")
    response = HttpResponse(body, content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=3600"
    return response


@require_safe
@login_required
def sticker_sheet(request: HttpRequest) -> HttpResponse:
    """A print-ready sheet of QR stickers for utility staff: ``?ids=SL-0001,SL-0002``, or
    ``?org=<msp id>`` for one organisation's devices, or every active device."""
    if selectors.utility_organisation_of(request.user) is None:
        return HttpResponseForbidden(_("Only utility staff print device stickers."))
    devices = Device.objects.select_related("organisation").exclude(state=EnrolmentState.RETIRED)
    missing: list[str] = []
    ids = [i.strip() for i in request.GET.get("ids", "").split(",") if i.strip()]
    if ids:
        found = {d.public_id: d for d in devices.filter(public_id__in=ids)}
        missing = [i for i in ids if i not in found]
        chosen = [found[i] for i in dict.fromkeys(ids) if i in found]
    elif request.GET.get("org"):
        chosen = list(devices.filter(organisation__msp_id=request.GET["org"]).order_by("public_id"))
    else:
        chosen = list(devices.order_by("public_id"))
    stickers = [
        {"device": d, "url": device_page_url(request, d.public_id),
         "svg": qr.qr_svg_inline(device_page_url(request, d.public_id), title=d.public_id)}
        for d in chosen[:MAX_STICKERS]
    ]
    base_url = public_base_url(request)
    return render(request, "frontend/devices/stickers.html",
                  {"stickers": stickers, "missing": missing, "truncated": len(chosen) > MAX_STICKERS,
                   "base_url": base_url, "local_address": is_local_address(base_url)})


@require_safe
def scanner(request: HttpRequest) -> HttpResponse:
    """The camera scanner; ``?id=SL-0001`` (the manual form without JavaScript) opens a device."""
    public_id = request.GET.get("id", "").strip()
    if public_id:
        if not SLUG.fullmatch(public_id):
            raise Http404("not a device id")
        return redirect("frontend:device", public_id=public_id)
    return render(request, "frontend/scan.html")


# --- simulators ---------------------------------------------------------------------------------

def _simulated_device_or_404(public_id: str, *, producer: bool) -> Device:
    device = _device_or_404(public_id)
    if (device.kind == DeviceKind.PRODUCER_METER) != producer or not simulators.is_simulated(device):
        raise Http404("no simulated meter of that kind")
    if device.is_retired:
        raise Http404("retired")
    return device


def _simulator_context(request: HttpRequest, device: Device) -> dict:
    state = meter_selectors.device_state(device)
    registers = simulators.last_registers(device)
    return {"device": device, "state": state, "registers": registers, "device_url": device_page_url(request, device.public_id),
            "tick_wh": simulators.DEFAULT_TICK_WH.get(device.kind, simulators.CONSUMER_TICK_WH)}


@require_safe
@login_required
def producer_simulator(request: HttpRequest) -> HttpResponse:
    meters = [d for d in Device.objects.select_related("organisation").filter(kind=DeviceKind.PRODUCER_METER)
              .exclude(state=EnrolmentState.RETIRED).order_by("public_id") if simulators.is_simulated(d)]
    wanted = request.GET.get("meter")
    if wanted:
        meters = [d for d in meters if d.public_id == wanted]
    if not meters:
        raise Http404("no simulated producer meter")
    allowed = [d for d in meters if simulators.may_simulate(request.user, d)]
    if not allowed:
        return HttpResponseForbidden(_("Only the producer's staff and the utility run this meter."))
    context = _simulator_context(request, allowed[0])
    context["consumer_meters"] = simulated_consumers_for(request.user)
    return render(request, "frontend/simulators/producer.html", context)


def simulated_consumers_for(user) -> list[Device]:
    """The simulated consumer meters ``user`` may run, for links to their simulators."""
    consumers = (Device.objects.select_related("organisation").exclude(kind=DeviceKind.PRODUCER_METER)
                 .exclude(state=EnrolmentState.RETIRED).filter(simulated_key__isnull=False).order_by("public_id"))
    return [d for d in consumers if simulators.may_simulate(user, d)]


@require_safe
@login_required
def consumer_simulator(request: HttpRequest, public_id: str) -> HttpResponse:
    device = _simulated_device_or_404(public_id, producer=False)
    if not simulators.may_simulate(request.user, device):
        return HttpResponseForbidden(_("Only the device's owner and the utility run this meter."))
    return render(request, "frontend/simulators/consumer.html", _simulator_context(request, device))


@require_POST
def simulator_tick(request: HttpRequest, public_id: str) -> JsonResponse:
    """The next signed reading of a simulated meter (JSON for the simulator pages)."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": _("Log in to run a simulated meter.")}, status=401)
    device = _device_or_404(public_id)
    if not simulators.is_simulated(device):
        raise Http404("not a simulated meter")
    if not simulators.may_simulate(request.user, device):
        return JsonResponse({"error": _("You may not run this meter.")}, status=403)
    wh = None
    if request.POST.get("wh"):
        if not request.POST["wh"].isdigit():
            return JsonResponse({"error": _("wh must be a whole number of Wh.")}, status=400)
        wh = int(request.POST["wh"])
    try:
        tick = simulators.meter_tick(device=device, wh=wh)
    except simulators.SimulatorError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    state = meter_selectors.device_state(device)
    return JsonResponse({**tick.as_json(), "relay": state.relay, "balance_wh": state.balance,
                         "spendable_wh": state.spendable,
                         "balance_kwh": kwh(state.balance)},
                        status=200 if tick.ok else 409)
