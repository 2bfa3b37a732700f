from django.urls import path

from . import views

app_name = "frontend"
urlpatterns = [
    path("", views.home, name="home"),
    path("explorer/", views.explorer, name="explorer"),
    path("explorer/blocks/<int:number>/", views.block_detail, name="block"),
    path("explorer/tx/<str:tx_hash>/", views.transaction_detail, name="transaction"),
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/receipts/<str:tx_hash>/", views.receipt, name="receipt"),
    path("devices/", views.device_list, name="devices"),
    path("d/<slug:public_id>", views.device_page, name="device"),
    path("d/<slug:public_id>/", views.device_page),
    path("prices/", views.prices, name="prices"),
]
