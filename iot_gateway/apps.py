import os

from django.apps import AppConfig


class IotGatewayConfig(AppConfig):
    name = "iot_gateway"
    verbose_name = "IoT gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        # With a broker, every process that changes a device's state (web after a funding,
        # the scheduler after a settlement) commands the meter's relay over MQTT. The
        # gateway replaces this publisher with its own connection.
        if settings.MQTT_URL and os.environ.get("GRIDCOIN_MQTT_RELAY", "1") == "1":
            from meters import live

            from .relay import default_publisher

            live.relay_publisher_register(default_publisher(settings.MQTT_URL))
