from django.apps import AppConfig


class IotGatewayConfig(AppConfig):
    name = "iot_gateway"
    verbose_name = "IoT gateway"
    default_auto_field = "django.db.models.BigAutoField"
