from django.apps import AppConfig


class MetersConfig(AppConfig):
    name = "meters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        # The embedded default has no Celery beat: settle ended windows from a thread instead.
        if getattr(settings, "GRIDCOIN_BACKGROUND_SCHEDULER", False):
            from .scheduler import start_background_scheduler

            start_background_scheduler()
