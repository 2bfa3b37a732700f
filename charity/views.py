"""Campaign and group-funding pages: read through ``charity.selectors``, write through one
``charity.services`` call each (which invokes ``charity-pool`` on the ledger)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from frontend.refusals import plain_reason
from ledger.models import Organisation, Transaction
from payments import selectors as payment_selectors

from . import receipts, selectors
from .forms import (
    BeneficiaryFormSet,
    CampaignForm,
    CancelForm,
    ContributeForm,
    DisburseForm,
    DonateCoinsForm,
    GroupForm,
    MatchForm,
    UpdateForm,
    auto_disburse_seconds,
    beneficiaries_of,
    wh_of,
)
from .models import Campaign, CampaignStatus, GroupStatus


def _services():
    # Imported when a write happens: reading a page needs none of the write path.
    from . import services

    return services


def _refusal(exc: Exception) -> str:
    """A service refusal as a sentence (a ledger rejection carries the chaincode's reason)."""
    result = getattr(exc, "result", None)
    reason = getattr(result, "reason", None)
    if reason:
        return _("The ledger refused: %(reason)s") % {"reason": plain_reason(reason)}
    return str(exc) or _("That could not be done.")


def _refused(form_class, request: HttpRequest, exc: Exception, **form_kwargs):
    """The form as submitted, with the refusal and a new idempotency key: what the ledger
    recorded under the old key (a refusal) would be replayed, not tried again."""
    from frontend.forms import new_idempotency_key

    form = form_class({**request.POST.dict(), "idempotency_key": new_idempotency_key()}, **form_kwargs)
    form.is_valid()
    form.add_error(None, _refusal(exc))
    return form


def _service_errors() -> tuple[type[Exception], ...]:
    """What a service raises to refuse (shown to the user; nothing was recorded off-chain)."""
    from .chain import CharityError

    return (CharityError,)


# --- campaigns -------------------------------------------------------------------------------

@require_safe
def campaign_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    campaigns = selectors.campaigns_search(query)
    progress = selectors.campaigns_progress(campaigns)
    context = {"rows": [(c, progress[c.pk]) for c in campaigns], "query": query,
               "may_create": selectors.is_charity_staff(request.user)}
    if request.htmx and not request.htmx.history_restore_request:  # a restore needs the whole page
        return render(request, "charity/_campaign_rows.html", context)
    return render(request, "charity/campaign_list.html", context)


def _sponsor_accounts(request: HttpRequest, campaign: Campaign, match) -> list:
    """Accounts the signed-in user may pledge from: any they hold coins in while the campaign
    has no sponsor; the sponsor's own account for a top-up; none for anyone else."""
    if not request.user.is_authenticated:
        return []
    if match is None:
        return selectors.sponsor_accounts(request.user)
    return selectors.sponsor_accounts(request.user, only=match.account) if match.account else []


def _campaign_context(request: HttpRequest, campaign: Campaign) -> dict:
    staff = selectors.may_manage(request.user, campaign)
    progress = selectors.campaign_progress(campaign)
    match = selectors.campaign_match(campaign)
    context = {
        "campaign": campaign, "progress": progress, "staff": staff,
        "donors": selectors.campaign_donors(campaign),
        "beneficiaries": selectors.campaign_beneficiaries(campaign),
        "updates": selectors.campaign_updates(campaign),
        "ledger_rows": selectors.transparency_rows(campaign),
        "burned_chart": selectors.burned_chart(campaign),
        "is_open": progress.status == CampaignStatus.OPEN,
        "card_url": reverse("payments:simulator") + f"?campaign={campaign.slug}",
        "currency_scale": _currencies().get(progress.currency, 2),
        "match": match, "auto_minutes": max(1, auto_disburse_seconds() // 60),
    }
    if request.user.is_authenticated and context["is_open"]:
        context.setdefault("donate_form", DonateCoinsForm.fresh(initial={"donor_name": _display_name(request.user)}))
        accounts = _sponsor_accounts(request, campaign, match)
        if accounts:
            name = match.sponsor_name if match else accounts[0].organisation.name
            context.setdefault("match_form", MatchForm.fresh(accounts=accounts, initial={"sponsor_name": name}))
    if staff:
        context.setdefault("update_form", UpdateForm.fresh())
        context.setdefault("disburse_form", DisburseForm.fresh())
        context.setdefault("cancel_form", CancelForm.fresh())
    return context


def _display_name(user) -> str:
    return (user.get_full_name() or user.get_username()).strip()


def _campaign_or_404(slug: str) -> Campaign:
    campaign = selectors.campaign_by_slug(slug)
    if campaign is None:
        raise Http404("no such campaign")
    return campaign


@require_safe
def campaign_detail(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = _campaign_or_404(slug)
    return render(request, "charity/campaign_detail.html", _campaign_context(request, campaign))


@require_safe
def campaign_progress(request: HttpRequest, slug: str) -> JsonResponse:
    """The figures the page's bar shows, for the script's polling when the websocket is away."""
    campaign = _campaign_or_404(slug)
    response = JsonResponse(selectors.campaign_progress(campaign).as_json())
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def campaign_proof_page(request: HttpRequest, slug: str, tx_hash: str) -> HttpResponse:
    """One of the campaign's transactions and its inclusion proof in plain words, checked by
    the server with the ledger's own Merkle and signature functions, for a donor on a phone."""
    campaign = _campaign_or_404(slug)
    check = selectors.proof_check(campaign, tx_hash)
    if check is None:
        raise Http404("not a transaction of this campaign")
    return render(request, "charity/proof.html", {"campaign": campaign, "check": check})


@require_safe
def campaign_proof(request: HttpRequest, slug: str, tx_hash: str) -> JsonResponse:
    """The inclusion proof of one of the campaign's own transactions, for anyone: what a donor
    needs to check the campaign's books against a block header without an account. Only the
    campaign's transactions (hashes only: it names no account)."""
    from ledger.selectors import block_header_dict, transaction_proof

    campaign = _campaign_or_404(slug)
    if tx_hash not in selectors.campaign_tx_hashes(campaign):
        raise Http404("not a transaction of this campaign")
    tx = Transaction.objects.select_related("block").filter(tx_hash=tx_hash).first()
    if tx is None:
        raise Http404("no such transaction")
    proof = transaction_proof(tx)
    if proof is None:
        return JsonResponse({"detail": "transaction is not sealed into a block yet"}, status=409)
    return JsonResponse({**proof, "block": block_header_dict(proof["block"])})


@require_http_methods(["POST"])
def campaign_donate(request: HttpRequest, slug: str) -> HttpResponse:
    """Coins from the signed-in donor's wallet into the pool."""
    campaign = _campaign_or_404(slug)
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("charity:campaign", args=[slug]))
    form = DonateCoinsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            donation = _services().donation_give(
                user=request.user, campaign=campaign, amount_wh=form.amount_wh, show_name=data["show_name"],
                donor_name=data["donor_name"].strip() if data["show_name"] else "",
                idempotency_key=str(data["idempotency_key"]))
        except _service_errors() as exc:
            form = _refused(DonateCoinsForm, request, exc)
        else:
            messages.success(request, _("Thank you! Your donation is on the ledger. Receipt %(number)s.")
                             % {"number": donation.receipt_number})
            return redirect("charity:campaign", slug=slug)
    context = _campaign_context(request, campaign)
    context["donate_form"] = form
    return render(request, "charity/campaign_detail.html", context, status=200 if form.is_valid() else 400)


@require_http_methods(["POST"])
def campaign_match(request: HttpRequest, slug: str) -> HttpResponse:
    """A sponsor pledges coins that match later donations 1:1 until they are used up."""
    campaign = _campaign_or_404(slug)
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("charity:campaign", args=[slug]))
    accounts = _sponsor_accounts(request, campaign, selectors.campaign_match(campaign))
    form = MatchForm(request.POST, accounts=accounts)
    if form.is_valid():
        data = form.cleaned_data
        account = form.account
        try:
            _services().match_pledge(
                user=request.user, campaign=campaign, amount_wh=form.amount_wh,
                idempotency_key=str(data["idempotency_key"]), sponsor_name=data["sponsor_name"].strip(),
                from_account=account.key, organisation=account.organisation)
        except _service_errors() as exc:
            form = _refused(MatchForm, request, exc, accounts=accounts)
        else:
            messages.success(request, _("Thank you! Your match is on the ledger: every donation from now on is "
                                        "matched until it is used up."))
            return redirect("charity:campaign", slug=slug)
    elif not accounts:
        form.add_error(None, _("You hold no coins to match donations with."))
    context = _campaign_context(request, campaign)
    context["match_form"] = form
    return render(request, "charity/campaign_detail.html", context, status=400)


def _staff_only(request: HttpRequest, campaign: Campaign) -> HttpResponse | None:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not selectors.may_manage(request.user, campaign):
        return HttpResponseForbidden(_("Only the campaign's charity can do this."))
    return None


def _staff_action(request: HttpRequest, slug: str, form_class, context_name: str, act, done: str) -> HttpResponse:
    campaign = _campaign_or_404(slug)
    refused = _staff_only(request, campaign)
    if refused is not None:
        return refused
    form = form_class(request.POST)
    if form.is_valid():
        try:
            act(campaign, form.cleaned_data)
        except _service_errors() as exc:
            form = _refused(form_class, request, exc)
        else:
            messages.success(request, done)
            return redirect("charity:campaign", slug=slug)
    context = _campaign_context(request, campaign)
    context[context_name] = form
    return render(request, "charity/campaign_detail.html", context, status=400)


@require_http_methods(["POST"])
def campaign_post_update(request: HttpRequest, slug: str) -> HttpResponse:
    def act(campaign, data):
        _services().campaign_update_post(user=request.user, campaign=campaign, title=data["title"], body=data["body"])

    return _staff_action(request, slug, UpdateForm, "update_form", act, _("Update posted."))


@require_http_methods(["POST"])
def campaign_disburse(request: HttpRequest, slug: str) -> HttpResponse:
    def act(campaign, data):
        _services().disbursement_make(user=request.user, campaign=campaign, amount_wh=wh_of(data.get("amount_kwh")),
                                      idempotency_key=str(data["idempotency_key"]))

    return _staff_action(request, slug, DisburseForm, "disburse_form", act,
                         _("Disbursed: the households' meters can draw on it now."))


@require_http_methods(["POST"])
def campaign_cancel(request: HttpRequest, slug: str) -> HttpResponse:
    def act(campaign, data):
        _services().campaign_cancel(user=request.user, campaign=campaign, reason=data["reason"],
                                    idempotency_key=str(data["idempotency_key"]))

    return _staff_action(request, slug, CancelForm, "cancel_form", act,
                         _("Campaign cancelled: donors will be refunded."))


def _currencies() -> dict[str, int]:
    return dict(payment_selectors.fiat_assets().values_list("code", "scale"))


def _campaign_forms(request: HttpRequest, *, editing: Campaign | None, charities):
    next_choices = Campaign.objects.filter(status=CampaignStatus.OPEN, charity__in=charities)
    if editing is not None:
        next_choices = next_choices.exclude(pk=editing.pk)
    devices = list(selectors.device_choices_for_beneficiaries())
    kwargs = {"charities": charities, "currencies": _currencies(), "next_choices": next_choices, "editing": editing}
    initial, rows = {}, []
    if editing is not None:
        scale = kwargs["currencies"].get(editing.currency, 2)
        initial = {
            "charity": str(editing.charity_id), "title": editing.title, "story": editing.story,
            "currency": editing.currency, "goal": _major(editing.goal, scale), "minimum": _major(editing.minimum, scale),
            "starts_at": _local(editing.starts_at), "ends_at": _local(editing.ends_at),
            "trigger_starts_at": _local(editing.trigger_starts_at), "trigger_ends_at": _local(editing.trigger_ends_at),
            "rule": editing.rule, "cap_kwh": None if editing.cap_wh is None else _major(editing.cap_wh, 3),
            "leftover": editing.leftover, "next_campaign": editing.next_campaign.slug if editing.next_campaign else "",
            "auto_disburse": editing.auto_disburse,
        }
        rows = [{"device": b.device.public_id, "label": b.label, "weight": b.weight}
                for b in editing.beneficiaries.select_related("device").order_by("id")]
    # Bound forms keep the initial values too: what changed is told from them, and disabled
    # fields (what the ledger fixed) take them.
    if request.method == "POST":
        return (CampaignForm(request.POST, initial=initial, **kwargs),
                BeneficiaryFormSet(request.POST, initial=rows, prefix="b", form_kwargs={"devices": devices}))
    return (CampaignForm(initial=initial, **kwargs),
            BeneficiaryFormSet(initial=rows, prefix="b", form_kwargs={"devices": devices}))


def _major(minor: int, scale: int):
    from decimal import Decimal

    return Decimal(int(minor)).scaleb(-int(scale))


def _local(moment):
    from django.utils import timezone

    return None if moment is None else timezone.localtime(moment).replace(second=0, microsecond=0, tzinfo=None)


def _campaign_fields(data: dict) -> dict:
    return {"title": data["title"], "story": data["story"], "goal": data["goal_minor"],
            "minimum": data["minimum_minor"], "starts_at": data["starts_at"], "ends_at": data["ends_at"],
            "trigger_starts_at": data.get("trigger_starts_at"), "trigger_ends_at": data.get("trigger_ends_at"),
            "rule": data["rule"], "cap_wh": data.get("cap_wh"), "leftover": data["leftover"],
            "next_campaign": selectors.campaign_by_slug(data["next_campaign"]) if data.get("next_campaign") else None,
            "auto_disburse": bool(data.get("auto_disburse"))}


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_new(request: HttpRequest) -> HttpResponse:
    charities = list(selectors.charities_of(request.user))
    if not charities:
        return HttpResponseForbidden(_("Only charity staff can start a campaign."))
    form, formset = _campaign_forms(request, editing=None, charities=charities)
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        data = form.cleaned_data
        try:
            campaign = _services().campaign_create(
                user=request.user, charity=Organisation.objects.get(pk=int(data["charity"])),
                currency=data["currency"], beneficiaries=beneficiaries_of(formset), **_campaign_fields(data))
        except _service_errors() as exc:
            form.add_error(None, _refusal(exc))
        else:
            messages.success(request, _("Campaign opened on the ledger."))
            return redirect("charity:campaign", slug=campaign.slug)
    return render(request, "charity/campaign_form.html", {"form": form, "formset": formset, "campaign": None},
                  status=400 if request.method == "POST" else 200)


# Form fields that carry the terms the ledger holds, by the service argument each becomes.
TERM_FIELDS = {"goal": "goal", "minimum": "minimum", "starts_at": "starts_at", "ends_at": "ends_at",
               "trigger_starts_at": "trigger_starts_at", "trigger_ends_at": "trigger_ends_at", "rule": "rule",
               "cap_kwh": "cap_wh", "leftover": "leftover", "next_campaign": "next_campaign"}


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_edit(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = _campaign_or_404(slug)
    refused = _staff_only(request, campaign)
    if refused is not None:
        return refused
    form, formset = _campaign_forms(request, editing=campaign, charities=[campaign.charity])
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        data = form.cleaned_data
        try:
            services = _services()
            # Terms the ledger holds are passed only when the form changed them (the service
            # refuses that: donors gave under them); a value typed to the minute is no change.
            fields = _campaign_fields(data)
            terms = {TERM_FIELDS[name]: fields[TERM_FIELDS[name]] for name in form.changed_data if name in TERM_FIELDS}
            services.campaign_edit(user=request.user, campaign=campaign, title=fields["title"], story=fields["story"],
                                   auto_disburse=fields["auto_disburse"], **terms)
            services.beneficiaries_set(user=request.user, campaign=campaign, beneficiaries=beneficiaries_of(formset))
        except _service_errors() as exc:
            form.add_error(None, _refusal(exc))
        else:
            messages.success(request, _("Campaign saved."))
            return redirect("charity:campaign", slug=campaign.slug)
    return render(request, "charity/campaign_form.html", {"form": form, "formset": formset, "campaign": campaign},
                  status=400 if request.method == "POST" else 200)


@require_safe
@login_required
def my_donations(request: HttpRequest) -> HttpResponse:
    return render(request, "charity/my_donations.html", {"donations": selectors.donations_of(request.user)})


@require_safe
@login_required
def receipt_pdf(request: HttpRequest, receipt_number: str) -> HttpResponse:
    donation = selectors.receipt_for(request.user, receipt_number)
    if donation is None:
        # Neither the donor nor the charity's staff: as if there were no such receipt.
        raise Http404("no such receipt")
    # The public proof page: the explorer shows a transaction only to those it involves.
    verify_url = request.build_absolute_uri(reverse("charity:proof-page", args=[donation.campaign.slug,
                                                                                donation.tx_hash]))
    proof_url = request.build_absolute_uri(reverse("charity:proof", args=[donation.campaign.slug, donation.tx_hash]))
    response = HttpResponse(receipts.donation_receipt_pdf(donation, verify_url=verify_url, proof_url=proof_url),
                            content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="receipt-{donation.receipt_number}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


# --- group funding ---------------------------------------------------------------------------

def _group_or_404(slug: str):
    group = selectors.group_by_slug(slug)
    if group is None:
        raise Http404("no such group funding")
    return group


@require_http_methods(["GET", "HEAD", "POST"])
def group_detail(request: HttpRequest, slug: str) -> HttpResponse:
    group = _group_or_404(slug)
    form = None
    if request.user.is_authenticated and group.status == GroupStatus.OPEN:
        form = ContributeForm.fresh()
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        form = ContributeForm(request.POST)
        if form.is_valid():
            try:
                _services().group_contribute(user=request.user, group=group, amount_wh=form.amount_wh,
                                             idempotency_key=str(form.cleaned_data["idempotency_key"]))
            except _service_errors() as exc:
                form = _refused(ContributeForm, request, exc)
            else:
                messages.success(request, _("Thank you! Your coins are in escrow for this light."))
                return redirect("charity:group", slug=slug)
    return render(request, "charity/group_detail.html", {
        "group": group, "progress": selectors.group_progress(group), "contribute_form": form,
        "contributions": selectors.group_contributions(group)},
        status=400 if request.method == "POST" else 200)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def group_new(request: HttpRequest, public_id: str) -> HttpResponse:
    from meters.selectors import device_by_public_id

    device = device_by_public_id(public_id)
    if device is None or not device.is_public or device.is_retired:
        raise Http404("no such public device")
    form = GroupForm(request.POST) if request.method == "POST" else GroupForm.fresh()
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            group = _services().group_create(
                user=request.user, device=device, title=data["title"], goal_wh=wh_of(data["goal_kwh"]),
                deadline=data["deadline"], window_start=data["window_start"], window_end=data["window_end"],
                idempotency_key=str(data["idempotency_key"]))
        except _service_errors() as exc:
            form = _refused(GroupForm, request, exc)
        else:
            messages.success(request, _("Group funding started: share this page with your neighbours."))
            return redirect("charity:group", slug=group.slug)
    return render(request, "charity/group_form.html", {"form": form, "device": device},
                  status=400 if request.method == "POST" else 200)

