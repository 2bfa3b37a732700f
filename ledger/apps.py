from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.core.signals import got_request_exception

        from . import chaincodes  # noqa: F401  (registers the built-in contracts)

        got_request_exception.connect(_request_failed, dispatch_uid="ledger.db.pool_drop_dead_connections")

        if settings.GRIDCOIN_BACKGROUND_SEALER:
            from .sealing import start_background_sealer

            start_background_sealer()


def _request_failed(sender, **kwargs) -> None:
    """Django sends this from inside its handler's ``except``: the error is the current one."""
    import sys

    from .db import pool_drop_dead_connections

    pool_drop_dead_connections(sys.exc_info()[1])
