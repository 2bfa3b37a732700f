from django.urls import path

from . import dashboard_views, device_views, pwa_views, views

app_name = "frontend"
urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("explorer/", views.explorer, name="explorer"),
    path("explorer/blocks/<int:number>/", views.block_detail, name="block"),
    path("explorer/tx/<str:tx_hash>/", views.transaction_detail, name="transaction"),
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/receipts/<str:tx_hash>/", views.receipt, name="receipt"),
    path("devices/", views.device_list, name="devices"),
    path("devices/stickers/", device_views.sticker_sheet, name="stickers"),
    path("d/<slug:public_id>/qr.png", device_views.device_qr_png, name="device-qr-png"),
    path("d/<slug:public_id>/qr.svg", device_views.device_qr_svg, name="device-qr-svg"),
    path("d/<slug:public_id>", views.device_page, name="device"),
    path("d/<slug:public_id>/", views.device_page),
    path("prices/", views.prices, name="prices"),
    path("scan/", device_views.scanner, name="scan"),
    path("simulators/producer/", device_views.producer_simulator, name="producer-simulator"),
    path("simulators/consumer/<slug:public_id>/", device_views.consumer_simulator, name="consumer-simulator"),
    path("simulators/meters/<slug:public_id>/tick", device_views.simulator_tick, name="simulator-tick"),
    # --- charts: the utility's dashboard ---
    path("dashboard/", dashboard_views.utility_dashboard, name="dashboard"),
    # The installable app: served at the root so the service worker's scope is the whole site.
    path("manifest.webmanifest", pwa_views.manifest, name="manifest"),
    path("sw.js", pwa_views.service_worker, name="sw"),
    path("offline/", pwa_views.offline, name="offline"),
]
