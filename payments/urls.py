from django.urls import path

from . import views
from .reconciliation import views as reconciliation

app_name = "payments"
urlpatterns = [
    path("simulator/", views.simulator, name="simulator"),
    path("reconciliation/", reconciliation.run_list, name="reconciliation"),
    path("reconciliation/<int:run_id>/", reconciliation.run_detail, name="reconciliation-run"),
    path("reconciliation/<int:run_id>/lines.csv", reconciliation.run_export, name="reconciliation-export"),
]
