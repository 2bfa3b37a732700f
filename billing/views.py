"""Billing pages (docs/billing.md, "Pages"): read through ``billing.selectors``; the utility's
tariff and dues settings write through one ``billing.tariffs`` call each."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from frontend.refusals import plain_reason

from . import charts, selectors
from .forms import DuesForm, TariffForm


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "billing/forbidden.html", {"message": message}, status=403)


def _day(request: HttpRequest) -> date:
    day = selectors.parse_day(request.GET.get("date"))
    if day is None:
        raise Http404(_("No such day: pick a date up to today."))
    return day


def _day_nav(request: HttpRequest, day: date, url_name: str) -> dict:
    url = reverse(url_name)
    following = selectors.next_day(day)
    return {"day": day, "today": selectors.today(), "nav_url": url,
            "previous_url": f"{url}?date={selectors.past_days(day)[0].isoformat()}",
            "next_url": None if following is None else f"{url}?date={following.isoformat()}",
            "past": [(d, f"{url}?date={d.isoformat()}") for d in selectors.past_days(day)],
            "billing_timezone": selectors.billing_timezone()}


@require_safe
@login_required
def index(request: HttpRequest) -> HttpResponse:
    name = selectors.home_for(request.user)
    if name is None:
        return _forbidden(request, _("Billing pages are for households, distributors, the grid and the utility."))
    return redirect(name)


@require_safe
@login_required
def grid(request: HttpRequest) -> HttpResponse:
    if not selectors.sees_frequencies(request.user):
        return _forbidden(request, _("Only the grid operator, the utility and auditors see every slot's frequency."))
    day = _day(request)
    rows = selectors.day_frequencies(day)
    known = [r.avg_freq for r in rows if r.avg_freq is not None]
    return render(request, "billing/grid.html", {
        **_day_nav(request, day, "billing:grid"), "rows": rows, "chart": charts.frequency_chart(rows),
        "recorded": len(known), "low": min(known, default=None), "high": max(known, default=None),
        "may_set_tariffs": selectors.sets_tariffs(request.user)})


@require_safe
@login_required
def distributor(request: HttpRequest) -> HttpResponse:
    stations = selectors.stations_visible_to(request.user)
    if not stations and not selectors.organisations_of(request.user, "distributor", "utility", "auditor"):
        return _forbidden(request, _("Only distributor staff see their stations' households."))
    day = _day(request)
    rows = selectors.station_households_day(stations, day)
    return render(request, "billing/distributor.html", {
        **_day_nav(request, day, "billing:distributor"), "rows": rows, "stations": sorted(stations),
        "total": sum(r.totals.amount for r in rows), "outstanding": sum(r.dues.outstanding for r in rows)})


def _household(request: HttpRequest):
    return selectors.household_of(request.user)


@require_safe
@login_required
def household(request: HttpRequest) -> HttpResponse:
    org = _household(request)
    if org is None:
        return _forbidden(request, _("This page shows a household's own bills; you are not a member of one."))
    day = _day(request)
    rows = selectors.household_day(org.msp_id, day)
    dues = selectors.dues_of(org.msp_id)
    pay_url = reverse("payments:simulator") + f"?bill_account={dues.account}"
    if dues.outstanding > 0:
        pay_url += f"&amount={dues.outstanding // 100}.{dues.outstanding % 100:02d}"
    months = sorted({day.replace(day=1), selectors.today().replace(day=1)}, reverse=True)
    return render(request, "billing/household.html", {
        **_day_nav(request, day, "billing:household"), "household": org, "rows": rows,
        "totals": selectors.DayTotals.of(rows), "charts": charts.household_charts(rows), "dues": dues,
        "stations": selectors.stations_serving(org.msp_id), "pay_url": pay_url,
        "csv_url": reverse("billing:household-csv", args=[day.isoformat()]),
        "statements": [(m, reverse("billing:statement", args=[m.strftime("%Y-%m")])) for m in months]})


@require_safe
@login_required
def household_csv(request: HttpRequest, day: str) -> HttpResponse:
    from .statements import day_csv

    org = _household(request)
    if org is None:
        return HttpResponseForbidden(_("Only a household's members may download its bills."))
    parsed = selectors.parse_day(day)
    if parsed is None or parsed.isoformat() != day:
        raise Http404("no such day")
    response = HttpResponse(day_csv(selectors.household_day(org.msp_id, parsed)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="bill-{org.msp_id}-{day}.csv"'
    return response


@require_safe
@login_required
def statement_pdf(request: HttpRequest, month: str) -> HttpResponse:
    from .statements import statement_pdf as render_pdf

    org = _household(request)
    if org is None:
        return HttpResponseForbidden(_("Only a household's members may download its statements."))
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise Http404("no such month") from None
    if first > selectors.today() or first.year < 2000:
        raise Http404("no such month")
    response = HttpResponse(render_pdf(selectors.month_statement(org.msp_id, first)), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="statement-{org.msp_id}-{month}.pdf"'
    return response


def _refusal(exc: Exception) -> str:
    return _("The ledger refused: %(reason)s") % {"reason": plain_reason(str(exc))}


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def tariffs(request: HttpRequest) -> HttpResponse:
    if not selectors.sets_tariffs(request.user):
        return _forbidden(request, _("Only utility staff set tariffs."))
    from . import tariffs as service

    zone = selectors.billing_timezone()
    tariff_form = TariffForm.fresh(initial={"kind": "exchange_linked"}, billing_timezone=zone)
    config = selectors.config()
    dues_form = DuesForm.fresh(initial={"dues_threshold": _rupees(config.get("dues_threshold")),
                                        "fine": _rupees(config.get("fine"))})
    status = 200
    if request.method == "POST":
        status = 400
        if request.POST.get("form") == "dues":
            dues_form = DuesForm(request.POST)
            if dues_form.is_valid():
                data = dues_form.cleaned_data
                try:
                    service.dues_configure(user=request.user, dues_threshold=data["dues_threshold_paise"],
                                           fine=data["fine_paise"], idempotency_key=str(data["idempotency_key"]))
                except service.TariffError as exc:
                    dues_form.add_error(None, _refusal(exc))
                else:
                    messages.success(request, _("Dues threshold and fine saved."))
                    return redirect("billing:tariffs")
        else:
            tariff_form = TariffForm(request.POST, request.FILES, billing_timezone=zone)
            if tariff_form.is_valid():
                data = tariff_form.cleaned_data
                try:
                    service.tariff_set(user=request.user, tariff=data["tariff"],
                                       idempotency_key=str(data["idempotency_key"]))
                except service.TariffError as exc:
                    tariff_form.add_error(None, _refusal(exc))
                else:
                    messages.success(request, _("Tariff added."))
                    return redirect("billing:tariffs")
    schedule = [{"tariff": t, "prices": len(t.get("prices", {}))} for t in selectors.tariff_schedule()]
    return render(request, "billing/tariffs.html", {
        "schedule": list(reversed(schedule)), "tariff_form": tariff_form, "dues_form": dues_form,
        "config": config, "billing_timezone": zone}, status=status)


def _rupees(paise) -> str | None:
    if paise is None:
        return None
    return f"{int(paise) // 100}.{int(paise) % 100:02d}"
