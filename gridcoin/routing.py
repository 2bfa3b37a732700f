from django.urls import path

from ledger.consumers import LedgerConsumer
from meters.consumers import DeviceConsumer

websocket_urlpatterns = [
    path("ws/ledger/", LedgerConsumer.as_asgi()),
    path("ws/devices/<slug:public_id>/", DeviceConsumer.as_asgi()),
]
