"""Billing pages under /billing/ (see docs/billing.md, "Pages")."""

from django.urls import path

from . import simulation_views, views

app_name = "billing"
urlpatterns = [
    # the pages (hD)
    path("", views.index, name="index"),
    path("grid/", views.grid, name="grid"),
    path("distributor/", views.distributor, name="distributor"),
    path("household/", views.household, name="household"),
    path("household/<str:day>.csv", views.household_csv, name="household-csv"),
    path("statements/<str:month>.pdf", views.statement_pdf, name="statement"),
    path("tariffs/", views.tariffs, name="tariffs"),
    # simulate_day (hC)
    path("simulate/", simulation_views.simulate, name="simulate"),
    path("simulate/<int:run_id>/", simulation_views.simulation_run, name="simulation-run"),
]
