from django.urls import path

from charity.consumers import CampaignConsumer
from ledger.consumers import LedgerConsumer
from meters.consumers import DeviceConsumer

websocket_urlpatterns = [
    path("ws/ledger/", LedgerConsumer.as_asgi()),
    path("ws/devices/<slug:public_id>/", DeviceConsumer.as_asgi()),
    path("ws/campaigns/<slug:slug>/", CampaignConsumer.as_asgi()),
]
