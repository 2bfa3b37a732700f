from django.urls import path

from . import views

app_name = "payments"
urlpatterns = [
    path("simulator/", views.simulator, name="simulator"),
]
