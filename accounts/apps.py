from django.apps import AppConfig
from django.db.models.signals import post_migrate


def create_cache_table(using: str = "default", **kwargs) -> None:
    """The database cache (login lockouts and rate limits in the embedded default) needs its
    table; ``migrate`` makes it, so a fresh ``make run`` and every test database have it.
    A no-op when the cache is Redis or the table exists."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the deployment check)

        post_migrate.connect(create_cache_table, sender=self, dispatch_uid="accounts.create_cache_table")

        from .languages import connect_signals

        connect_signals()
