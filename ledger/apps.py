from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import chaincodes  # noqa: F401  (registers the built-in contracts)
        from django.conf import settings

        if settings.GRIDCOIN_BACKGROUND_SEALER:
            from .sealing import start_background_sealer

            start_background_sealer()
