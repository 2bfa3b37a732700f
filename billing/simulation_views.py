"""``/billing/simulate/``: utility staff start a simulated day and follow its progress. The run
page is also its own htmx fragment, polled while the run is in flight; without JavaScript a
reload link does the same."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from ledger.models import OrgType
from ledger.selectors import organisations_of

from .models import SimulationRun
from .simulation_dispatch import simulation_start
from .simulation_forms import SimulateDayForm
from .simulation_runs import SimulationError, runs_recent, simulation_run_create


def _utility_staff(request: HttpRequest) -> None:
    if not any(o.org_type == OrgType.UTILITY for o in organisations_of(request.user)):
        raise PermissionDenied("simulating a day is for utility staff")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def simulate(request: HttpRequest) -> HttpResponse:
    _utility_staff(request)
    form = SimulateDayForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = simulation_run_create(households=data["households"], day=data["day"], seed=data["seed"],
                                        seconds_per_slot=float(data["seconds_per_slot"]), created_by=request.user)
        except SimulationError as exc:
            form.add_error(None, str(exc))
        else:
            transaction.on_commit(lambda: simulation_start(run.pk))
            return redirect("billing:simulation-run", run_id=run.pk)
    return render(request, "billing/simulate.html", {"form": form, "runs": runs_recent()},
                  status=400 if form.errors else 200)


@login_required
@require_safe
def simulation_run(request: HttpRequest, run_id: int) -> HttpResponse:
    _utility_staff(request)
    run = get_object_or_404(SimulationRun, pk=run_id)
    template = "billing/_simulation_progress.html" if request.htmx else "billing/simulation_run.html"
    return render(request, template, {"run": run})
