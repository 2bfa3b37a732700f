"""Reconciliation pages for utility and bank staff. Thin: check access, call one service or
selector, render. The run page is also its own htmx fragment, polled while the run is in flight."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from . import selectors
from .dispatch import reconciliation_start
from .forms import StatementUploadForm
from .models import FLAGGED, Outcome, ReconciliationRun
from .services import StatementRefused, reconciliation_run_create


def _access(request: HttpRequest) -> selectors.ReconciliationAccess:
    access = selectors.reconciliation_access(request.user)
    if not access.allowed:
        raise PermissionDenied("reconciliation is for utility and bank staff")
    return access


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def run_list(request: HttpRequest) -> HttpResponse:
    access = _access(request)
    form = StatementUploadForm(request.POST or None, request.FILES or None, access=access)
    if request.method == "POST" and form.is_valid():
        source, scope = form.cleaned_data["source"]
        upload = form.cleaned_data["statement"]
        try:
            made = reconciliation_run_create(source=source, scope=scope, stream=upload, file_name=upload.name,
                                             processor=form.cleaned_data["processor"], created_by=request.user,
                                             rerun=form.cleaned_data["rerun"])
        except StatementRefused as exc:
            form.add_error("statement", str(exc))
        else:
            if made.created:
                transaction.on_commit(lambda: reconciliation_start(made.run.pk))
            else:
                messages.info(request, _("This statement was reconciled before: here is its run."))
            return redirect("payments:reconciliation-run", run_id=made.run.pk)
    runs = selectors.runs_visible(access)[:50]
    return render(request, "payments/reconciliation/index.html", {"form": form, "runs": runs},
                  status=400 if form.errors else 200)


def _visible_run(request: HttpRequest, run_id: int) -> ReconciliationRun:
    run = selectors.runs_visible(_access(request)).filter(pk=run_id).first()
    if run is None:
        raise Http404("no such reconciliation run")
    return run


@login_required
@require_safe
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _visible_run(request, run_id)
    totals = [(o, run.counts.get(o.value, 0), o in FLAGGED) for o in Outcome if o != Outcome.PENDING]
    context = {"run": run, "totals": totals,
               "flagged": [] if run.in_flight else selectors.run_flagged_lines(run)}
    template = "payments/reconciliation/_run_status.html" if request.htmx else "payments/reconciliation/run.html"
    return render(request, template, context)


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
@require_safe
def run_export(request: HttpRequest, run_id: int) -> StreamingHttpResponse:
    run = _visible_run(request, run_id)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(selectors.EXPORT_COLUMNS)
        for row in selectors.run_lines_export(run):
            yield writer.writerow(["" if v is None else v for v in row])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="reconciliation-{run.pk}.csv"'
    return response
