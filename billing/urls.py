"""Billing pages under /billing/ (see docs/billing.md, "Pages")."""

from django.urls import path  # noqa: F401  (the pages add their patterns here)

app_name = "billing"
urlpatterns: list = []
