from django.urls import path

from . import api

app_name = "iot_gateway"
urlpatterns = [
    path("meters/<str:meter_id>/readings", api.MeterReadings.as_view(), name="meter-readings"),
]
