from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"

    def ready(self) -> None:
        from django.conf import settings

        from . import receivers  # noqa: F401  (connects to meters' and payments' signals)

        # The embedded default has no Celery beat: sweep deliveries due again from a thread.
        if getattr(settings, "GRIDCOIN_BACKGROUND_SCHEDULER", False):
            from .scheduler import start_background_sweep

            start_background_sweep()
