from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "billing"
    verbose_name = _("Frequency billing")

    def ready(self) -> None:
        from django.conf import settings

        # The embedded default has no Celery beat: run the billing tasks from a thread instead.
        if getattr(settings, "GRIDCOIN_BACKGROUND_SCHEDULER", False):
            from .scheduler import start_background_scheduler

            start_background_scheduler()
