from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from . import chaincodes  # noqa: F401  (registers the built-in contracts)

        if settings.GRIDCOIN_BACKGROUND_SEALER:
            from .sealing import start_background_sealer

            start_background_sealer()
