"""Webhook endpoints and the payment simulator. Thin: parse, call one service, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from gridcoin.lean_path import lean_request
from ledger.models import Organisation, OrgType
from ledger.units import format_amount

from . import selectors, services
from .forms import SimulatorForm


@lean_request
@csrf_exempt
@require_POST
def bank_webhook(request: HttpRequest) -> JsonResponse:
    # META, not request.headers: the same value without building the whole header mapping.
    outcome = services.bank_webhook_receive(raw_body=request.body,
                                            signature_header=request.META.get("HTTP_GRIDCOIN_SIGNATURE"))
    return JsonResponse(outcome.body, status=outcome.http_status)


@lean_request
@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    outcome = services.stripe_webhook_receive(raw_body=request.body,
                                              signature_header=request.META.get("HTTP_STRIPE_SIGNATURE"))
    return JsonResponse(outcome.body, status=outcome.http_status)


PREFILL = ("payer", "payee", "chaincode", "bank", "currency", "amount", "campaign", "bill_account")
RESIDENT_CHAINCODES = ("retail-seller", "charity-pool", "energy-billing")


def _metadata(data: dict, user) -> dict | None:
    """A donation's or a payment of dues' metadata, as a bank or Stripe would carry it: the
    bill account; or the campaign, and off the chain the donor's name, their consent to show it,
    and the signed-in tester as the donor."""
    if data["chaincode"] == "energy-billing":
        return {"bill_account": data["bill_account"]}
    if data["chaincode"] != "charity-pool":
        return None
    return {"campaign": data["campaign"], "donor_name": data.get("donor_name", ""),
            "show_name": bool(data.get("show_name")), "donor_user": user.pk}


def _prefill_dues(initial: dict, user) -> None:
    """A payment of a bill account's dues: energy-billing, to the utility that collects dues,
    from the household, in INR, for what it owes (when the user may see that)."""
    account = initial["bill_account"]
    initial["chaincode"] = "energy-billing"
    initial.setdefault("payer", account.removeprefix("bill:"))
    initial.setdefault("currency", "INR")
    utility = selectors.dues_utility()
    if utility:
        initial.setdefault("payee", utility)
    outstanding = selectors.outstanding_dues(user, account)
    if outstanding and "amount" not in initial:
        initial["amount"] = format_amount(outstanding, 2)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def simulator(request: HttpRequest) -> HttpResponse:
    access = selectors.simulator_access(request.user)
    if not access.allowed:
        raise PermissionDenied("the payment simulator is for utility, bank and household members")
    outcome = None
    if request.method == "POST":
        if access.mode == "resident":
            own = {o.msp_id for o in access.households}
            if request.POST.get("payer") not in own or request.POST.get("chaincode") not in RESIDENT_CHAINCODES:
                raise PermissionDenied("residents may only buy coins for, or donate from, their own household")
            if request.POST.get("bill_account") and request.POST["bill_account"] not in {f"bill:{m}" for m in own}:
                raise PermissionDenied("residents may only pay their own household's dues")
        form = SimulatorForm(request.POST, access=access)
        if form.is_valid():
            data = form.cleaned_data
            bank = Organisation.objects.get(msp_id=data["bank"], org_type=OrgType.BANK)
            try:
                outcome = services.simulated_payment_send(bank=bank, payer=data["payer"], payee=data["payee"],
                                                          chaincode=data["chaincode"], amount=data["amount_minor"],
                                                          currency=data["currency"],
                                                          metadata=_metadata(data, request.user))
            except services.WebhookRefused as exc:
                form.add_error(None, exc.message)
    else:
        initial = {name: request.GET[name] for name in PREFILL if request.GET.get(name)}
        if initial.get("campaign"):  # ?campaign=<slug>: a donation to it, paid to its utility
            initial["chaincode"] = "charity-pool"
            utility = selectors.campaign_utility(initial["campaign"])
            if utility and "payee" not in initial:
                initial["payee"] = utility
        if initial.get("bill_account"):  # ?bill_account=bill:<msp>: its dues, paid to the utility
            _prefill_dues(initial, request.user)
        if access.mode == "resident" and access.households:
            initial.setdefault("payer", access.households[0].msp_id)
            if initial.get("chaincode") not in RESIDENT_CHAINCODES:
                initial["chaincode"] = "retail-seller"
        form = SimulatorForm(initial=initial, access=access)
    result = None
    if outcome is not None:
        wh = outcome.body.get("wh")
        result = {"outcome": outcome, "body": outcome.body, "ok": outcome.http_status == 200,
                  "kwh": None if wh is None else format_amount(wh, 3),  # kWh, 3 decimals
                  "campaign": form.cleaned_data.get("campaign", ""),
                  "bill_account": form.cleaned_data.get("bill_account", "")}
    context = {"form": form, "access": access, "result": result}
    template = "payments/_simulator_result.html" if request.htmx and request.method == "POST" else "payments/simulator.html"
    return render(request, template, context, status=200)
