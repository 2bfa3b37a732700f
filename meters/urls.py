from django.urls import path

from . import api

app_name = "meters"
urlpatterns = [
    path("wallet/", api.WalletBalances.as_view(), name="wallet"),
    path("wallet/history/", api.WalletHistory.as_view(), name="wallet-history"),
    path("devices/", api.DeviceList.as_view(), name="device-list"),
    path("devices/<slug:public_id>/", api.DeviceDetail.as_view(), name="device-detail"),
    path("devices/<slug:public_id>/fund/", api.DeviceFund.as_view(), name="device-fund"),
    path("prices/", api.Prices.as_view(), name="prices"),
]
