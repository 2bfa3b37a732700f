from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CharityConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "charity"
    verbose_name = _("Charity campaigns")

    def ready(self) -> None:
        from django.conf import settings

        from . import receivers  # noqa: F401  (connects to payments' donation_credited)

        # The embedded default has no Celery beat: run the campaign tasks from a thread instead.
        if getattr(settings, "GRIDCOIN_BACKGROUND_SCHEDULER", False):
            from .scheduler import start_background_scheduler

            start_background_scheduler()
