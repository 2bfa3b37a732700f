from django.urls import path

from . import views

app_name = "webhooks"
urlpatterns = [
    path("bank/", views.bank_webhook, name="bank"),
    path("stripe/", views.stripe_webhook, name="stripe"),
]
