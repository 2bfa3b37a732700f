"""Home page, the ledger explorer and the resident's pages (wallet, devices, prices). Views
read through selectors and write through one service call each."""

from datetime import datetime
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from ledger import selectors as ledger
from ledger.keys import ENERGY
from ledger.models import Asset, Transaction
from meters import selectors as meter_selectors
from meters import services as meter_services
from meters.consumers import may_see_consumption
from meters.models import DeviceKind
from meters.services import FundingResult
from payments import selectors as payment_selectors
from payments.reconciliation.selectors import reconciliation_access
from wallet import selectors as wallet_selectors
from wallet import services as wallet_services

from . import charts, selectors, simulators, wording
from .device_views import device_page_url
from .forms import FundForm, PriceForm
from .refusals import plain_reason

BLOCKS_PER_PAGE = 20
RECENT_TRANSACTIONS = 10


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """The landing page; the demo logins, outside production, come from ``demo``'s context
    processor, so this app does not know the demo."""
    summaries = selectors.organisations_with_accounts(request.user)
    if summaries:
        namer = wording.Namer(request.user, [s.organisation for s in summaries])
        for summary in summaries:
            summary.named = wording.named_totals(summary.accounts, namer)
    return render(request, "frontend/home.html",
                  {"organisations": summaries,
                   "may_reconcile": reconciliation_access(request.user).allowed,
                   "utility_staff": selectors.utility_organisation_of(request.user) is not None})


@require_safe
@login_required
def explorer(request: HttpRequest) -> HttpResponse:
    """Latest blocks, newest first; ``?before=<number>`` pages back. An htmx request for the
    next page gets only the rows."""
    blocks = ledger.blocks_visible_to(request.user).order_by("-number")
    before = request.GET.get("before", "")
    if before:
        if not before.isdigit():
            raise Http404("bad page")
        blocks = blocks.filter(number__lt=int(before))
    page = list(blocks[: BLOCKS_PER_PAGE + 1])
    context = {
        "blocks": page[:BLOCKS_PER_PAGE],
        "older": page[BLOCKS_PER_PAGE - 1].number if len(page) > BLOCKS_PER_PAGE else None,
    }
    if request.htmx:
        return render(request, "frontend/explorer/_block_rows.html", context)
    context["recent"] = ledger.transactions_visible_to(request.user).order_by("-id")[:RECENT_TRANSACTIONS]
    context["unsealed"] = ledger.transactions_visible_to(request.user).unsealed().count()
    return render(request, "frontend/explorer/index.html", context)


@require_safe
@login_required
def block_detail(request: HttpRequest, number: int) -> HttpResponse:
    block = get_object_or_404(ledger.blocks_visible_to(request.user), number=number)
    transactions = ledger.transactions_visible_to(request.user).in_block(block)
    return render(
        request,
        "frontend/explorer/block.html",
        {
            "the_block": block,  # a context variable named "block" is shadowed inside {% block %}
            "transactions": transactions,
            "hidden": block.tx_count - len(transactions),
        },
    )


@require_safe
@login_required
def transaction_detail(request: HttpRequest, tx_hash: str) -> HttpResponse:
    tx: Transaction = get_object_or_404(ledger.transactions_visible_to(request.user), tx_hash=tx_hash)
    return render(
        request,
        "frontend/explorer/transaction.html",
        {
            "tx": tx,
            "postings": tx.postings.select_related("account", "asset").order_by("id"),
            "state_writes": tx.state_writes.order_by("id"),
            "proof": ledger.transaction_proof(tx),
        },
    )


# --- resident: wallet, funding, devices, prices -------------------------------------------------

HISTORY_PER_PAGE = 20


def _fund(request: HttpRequest, form: FundForm, device=None) -> tuple[FundForm, FundingResult | None, str | None]:
    """Run a bound fund form through ``meters.services.device_fund``. Returns the form to show
    next (fresh key once the ledger has recorded something), the result, and a ledger refusal."""
    if not form.is_valid():
        return form, None, None
    data = form.cleaned_data
    try:
        result = meter_services.device_fund(
            user=request.user, public_id=data["public_id"], amount_wh=form.amount_wh,
            window_start=data.get("window_start"), window_end=data.get("window_end"),
            idempotency_key=str(data["idempotency_key"]),
        )
    except meter_services.FundingRejected as exc:
        refusal = _("The ledger refused the funding: %(reason)s") % {"reason": plain_reason(exc.result.reason)}
        return FundForm.fresh(initial={"public_id": data["public_id"]}, device=device), None, refusal
    except meter_services.DeviceError as exc:
        form.add_error(None, str(exc))
        return form, None, None
    return FundForm.fresh(initial={"public_id": data["public_id"]}, device=device), result, None


def _fund_context(form: FundForm, result: FundingResult | None, refused: str | None, device=None) -> dict:
    window = None
    if result is not None and result.window:
        window = {"start": datetime.fromisoformat(result.window["start"]),
                  "end": datetime.fromisoformat(result.window["end"])}
    return {"fund_form": form, "fund_result": result, "fund_refused": refused, "fund_device": device,
            "fund_window": window,
            "result_state": meter_selectors.device_state(result.device) if result else None}


def _wallet_cards(user) -> list:
    """The user's wallets with each account named as a person would (``label``)."""
    wallets = wallet_selectors.wallet_balances(user)
    namer = wording.Namer(user, [w.organisation for w in wallets])
    for wallet in wallets:
        balances = wallet.devices + wallet.credit
        for (label, _account), balance in zip(wording.account_rows([b.account for b in balances], namer), balances,
                                              strict=True):
            balance.label = label
        for balance in wallet.devices:
            balance.public_id = wording.device_of_account(balance.account.key)
    return wallets


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def wallet(request: HttpRequest) -> HttpResponse:
    """Balances, buy coins, fund a device, history. htmx gets the fund panel or history rows."""
    before = request.GET.get("before", "")
    if before and not before.isdigit():
        raise Http404("bad page")
    entries, older = wording.resident_history(request.user, before=int(before) if before else None,
                                              limit=HISTORY_PER_PAGE)
    if request.htmx and request.method in ("GET", "HEAD") and before:
        return render(request, "frontend/wallet/_history_rows.html", {"entries": entries, "older": older})
    if request.method == "POST":
        form, result, refused = _fund(request, FundForm(request.POST))
    else:
        form, result, refused = FundForm.fresh(initial={"public_id": request.GET.get("device", "")}), None, None
    context = _fund_context(form, result, refused)
    context["wallets"] = _wallet_cards(request.user)
    context["energy_debts"] = payment_selectors.energy_debts_of_user(request.user)
    if request.htmx and request.method == "POST":
        return render(request, "frontend/wallet/_fund_panel.html", {**context, "oob_wallets": result is not None})
    context.update({"entries": entries, "older": older, "paged": bool(before)})
    if not before:
        context["balance_chart"] = charts.wallet_chart(request.user)
    return render(request, "frontend/wallet/index.html", context)


@require_safe
@login_required
def receipt(request: HttpRequest, tx_hash: str) -> HttpResponse:
    tx = get_object_or_404(wallet_selectors.wallet_transactions(request.user).prefetch_related(
        "postings__account", "postings__asset"), tx_hash=tx_hash)
    namer = wording.Namer(request.user)
    entry = wording.history_row(tx, namer)
    counterparties = [p.account.key for p in tx.postings.all()
                      if p.account.organisation_id not in namer.own_ids and p.account.kind != "issuance"]
    return render(request, "frontend/wallet/receipt.html", {
        "entry": entry, "tx": tx, "result": tx.result or {}, "counterparties": list(dict.fromkeys(counterparties)),
        "returned": [(namer.account(r["funder"]), r) for r in (tx.result or {}).get("returned") or []],
        "device": namer.device((tx.result or {}).get("device") or "") if (tx.result or {}).get("device") else None})


@require_safe
def device_list(request: HttpRequest) -> HttpResponse:
    states = meter_selectors.device_states(list(meter_selectors.public_devices()))
    return render(request, "frontend/devices/list.html", {
        "states": states, "markers": selectors.device_map(states), "map_points": selectors.map_points(states),
        "map_width": selectors.MAP_WIDTH, "map_height": selectors.MAP_HEIGHT,
    })


@require_http_methods(["GET", "HEAD", "POST"])
def device_page(request: HttpRequest, public_id: str) -> HttpResponse:
    """The page a device's QR code opens: state for anyone (kept live over
    ``/ws/devices/<id>/``), a fund form for signed-in users. Consumption history and who funded
    a window only for the owner organisation's members and the utility."""
    device = meter_selectors.device_by_public_id(public_id)
    if device is None:
        raise Http404("no such device")
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        post = request.POST.copy()
        post["public_id"] = device.public_id
        form, result, refused = _fund(request, FundForm(post, device=device), device=device)
    else:
        form, result, refused = FundForm.fresh(device=device), None, None
    context = _fund_context(form, result, refused, device=device)
    context["state"] = meter_selectors.device_state(device)
    context["private"] = may_see_consumption(request.user, device)
    if request.htmx and request.method == "POST":
        return render(request, "frontend/wallet/_fund_panel.html", {**context, "oob_state": result is not None})
    if context["private"]:
        context["readings"] = selectors.device_readings(device)
        context["charts"] = charts.device_charts(device)
    context["device_url"] = device_page_url(request, device.public_id)
    # Linked for the owner's members and the utility only, even where the demo lets anyone run it.
    context["may_run_simulator"] = (context["private"] and device.kind != DeviceKind.PRODUCER_METER
                                    and not device.is_retired and simulators.is_simulated(device)
                                    and simulators.may_simulate(request.user, device))
    return render(request, "frontend/devices/detail.html", context)


def _currencies() -> dict[str, int]:
    return dict(Asset.objects.exclude(code=ENERGY).order_by("code").values_list("code", "scale"))


@require_http_methods(["GET", "HEAD", "POST"])
def prices(request: HttpRequest) -> HttpResponse:
    """Everyone sees the price schedules; utility staff add prices (``pricing.set``)."""
    can_set = request.user.is_authenticated and wallet_services.user_sets_prices(request.user)
    form = None
    if can_set:
        if request.method == "POST":
            form = PriceForm(request.POST, currencies=_currencies())
            if form.is_valid():
                data = form.cleaned_data
                try:
                    wallet_services.price_set(user=request.user, kind=data["kind"], currency=data["currency"],
                                              price=data["price_minor"], effective_from=data["effective_from"],
                                              idempotency_key=str(data["idempotency_key"]))
                except wallet_services.PriceError as exc:
                    form.add_error(None, str(exc))
                else:
                    messages.success(request, (_("Retail price in %(currency)s added.") if data["kind"] == "retail"
                                              else _("Wholesale price in %(currency)s added."))
                                     % {"currency": data["currency"]})
                    return redirect("frontend:prices")
        else:
            form = PriceForm.fresh(initial={"effective_from": timezone.localtime().replace(second=0, microsecond=0)},
                                   currencies=_currencies())
    elif request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return HttpResponseForbidden(_("Only utility staff can set prices."))
    scales = _currencies()
    found = wallet_selectors.price_schedules()
    namer = wording.Namer(None, [])
    namer.load_organisations(s.utility for s in found)
    schedules = [(s, scales.get(s.currency, 2), namer.organisation_name(s.utility)) for s in found]
    return render(request, "frontend/prices.html", {"schedules": schedules, "price_form": form})


# Browsers ask for /favicon.ico on every site whatever the page links; a 404 there is an error in
# every page's console.
FAVICON = Path(__file__).resolve().parent / "static" / "frontend" / "icons" / "favicon-48.ico"


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(FAVICON.read_bytes(), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=604800"
    return response
