from django.urls import path

from . import api

app_name = "payments-api"
urlpatterns = [
    path("events/", api.WebhookEventList.as_view(), name="event-list"),
]
