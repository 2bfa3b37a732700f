from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"
    verbose_name = "Payments (fiat webhooks)"

    def ready(self) -> None:
        from django.conf import settings

        # The embedded default has no Celery beat: sweep refunds due again from a thread.
        if getattr(settings, "GRIDCOIN_BACKGROUND_SCHEDULER", False):
            from .scheduler import start_background_sweep

            start_background_sweep()
