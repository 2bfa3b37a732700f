from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data for every capability: the one app that knows every other app. None of them
    imports it; the home page's list of demo logins arrives through this app's context
    processor, so the site runs unchanged without it."""

    name = "demo"

    def ready(self) -> None:
        from django.conf import settings

        if getattr(settings, "GRIDCOIN_BACKGROUND_WITNESSES", False):
            from .witnesses import start_background_witnesses

            start_background_witnesses()
