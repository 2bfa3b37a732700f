"""The utility's dashboard: energy minted and burned per hour, retail sales per day, meters
online and offline now. Utility staff only."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from iot_gateway.selectors import meters_presence

from . import charts, selectors


@require_safe
@login_required
def utility_dashboard(request: HttpRequest) -> HttpResponse:
    utility = selectors.utility_organisation_of(request.user)
    if utility is None:
        return HttpResponseForbidden(_("Only utility staff see the utility's dashboard."))
    return render(request, "frontend/dashboard.html", {
        "utility": utility,
        "issuance": charts.issuance_chart(),
        "sales": charts.sales_charts(utility.msp_id),
        "presence": meters_presence(),
    })
