"""Billing pages under /billing/ (see docs/billing.md, "Pages")."""

from django.urls import path

from . import simulation_views

app_name = "billing"
urlpatterns: list = [
    # simulate_day (hC)
    path("simulate/", simulation_views.simulate, name="simulate"),
    path("simulate/<int:run_id>/", simulation_views.simulation_run, name="simulation-run"),
]
