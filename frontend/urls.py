from django.urls import path

from . import views

app_name = "frontend"
urlpatterns = [
    path("", views.home, name="home"),
    path("explorer/", views.explorer, name="explorer"),
    path("explorer/blocks/<int:number>/", views.block_detail, name="block"),
    path("explorer/tx/<str:tx_hash>/", views.transaction_detail, name="transaction"),
]
