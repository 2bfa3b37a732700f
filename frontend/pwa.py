"""The installable app's shell: the manifest, the files the service worker pre-caches, and the
version that names its cache.

The version is a hash of every pre-cached file's bytes, of the offline page and of the worker's
own source, so a deploy that changes any of them changes ``/sw.js``; the browser then installs
the new worker, which drops the old cache. Nothing here depends on who is asking: the shell
holds no user data.
"""

from __future__ import annotations

import functools
import hashlib

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.template import loader
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import get_language, override
from django.utils.translation import gettext as _

THEME_COLOUR = "#14532d"
BACKGROUND_COLOUR = "#f6f7f4"
SW_TEMPLATE = "frontend/pwa/sw.js"
OFFLINE_TEMPLATE = "frontend/pwa/offline.html"

ICONS = [
    {"path": "frontend/icons/icon-192.png", "sizes": "192x192", "purpose": "any"},
    {"path": "frontend/icons/icon-512.png", "sizes": "512x512", "purpose": "any"},
    {"path": "frontend/icons/icon-maskable-512.png", "sizes": "512x512", "purpose": "maskable"},
]
SHORTCUT_ICONS = {"scan": "frontend/icons/shortcut-scan-96.png", "wallet": "frontend/icons/shortcut-wallet-96.png"}
# The shell: what every page needs to draw itself, and the offline page's own files.
SHELL_STATIC = [
    "frontend/gridcoin.css",
    "frontend/app.js",
    "frontend/vendor/htmx-2.0.11.min.js",
    "frontend/icons/icon-192.png",
    "frontend/icons/apple-touch-icon-180.png",
]
# Loaded by the worker with importScripts (Web Push: notifications app); part of its version.
WORKER_IMPORTS = ["frontend/sw-push.js"]


def manifest() -> dict:
    icons = [{"src": static(icon["path"]), "sizes": icon["sizes"], "type": "image/png", "purpose": icon["purpose"]}
             for icon in ICONS]

    def shortcut(name: str, short_name: str, url: str, icon: str) -> dict:
        return {"name": name, "short_name": short_name, "url": url,
                "icons": [{"src": static(icon), "sizes": "96x96", "type": "image/png"}]}

    return {
        "id": "/",
        "name": "GridCoin",
        "short_name": "GridCoin",
        "description": _("Buy, give and spend electricity on a verifiable ledger."),
        "lang": get_language() or "en",
        "dir": "ltr",
        "start_url": reverse("frontend:home"),
        # The whole site, so a device's QR link (/d/<id>) opens in the installed app.
        "scope": "/",
        "display": "standalone",
        "theme_color": THEME_COLOUR,
        "background_color": BACKGROUND_COLOUR,
        "categories": ["finance", "utilities"],
        "icons": icons,
        "shortcuts": [
            shortcut(_("Scan a device"), _("Scan"), reverse("frontend:scan"), SHORTCUT_ICONS["scan"]),
            shortcut(_("Wallet"), _("Wallet"), reverse("frontend:wallet"), SHORTCUT_ICONS["wallet"]),
        ],
    }


def offline_page() -> str:
    """The offline page, rendered without a request: it must hold nothing of any user. It is
    cached once but read in whatever language the resident uses later, so it carries every
    switcher language (the default first) and app.js shows the one the last page was in."""
    languages = [settings.LANGUAGE_CODE, *(code for code in settings.GRIDCOIN_SWITCHER_LANGUAGES
                                           if code != settings.LANGUAGE_CODE)]
    with override(settings.LANGUAGE_CODE):
        return loader.render_to_string(OFFLINE_TEMPLATE, {"offline_languages": languages})


def _static_bytes(path: str) -> bytes:
    found = finders.find(path)
    if found:
        with open(found, "rb") as fh:
            return fh.read()
    with staticfiles_storage.open(path) as fh:  # collected only (production)
        return fh.read()


def shell_version() -> str:
    """Browsers ask for /sw.js on every navigation (it is served no-cache): in production, where
    the files cannot change without a restart, the hash is computed once per process."""
    return _deployed_shell_version() if settings.PRODUCTION else _shell_version()


@functools.cache
def _deployed_shell_version() -> str:
    return _shell_version()


def _shell_version() -> str:
    digest = hashlib.sha256()
    for path in [*SHELL_STATIC, *WORKER_IMPORTS]:
        digest.update(path.encode() + b"\0" + _static_bytes(path) + b"\0")
    digest.update(offline_page().encode())
    digest.update(loader.get_template(SW_TEMPLATE).template.source.encode())
    return digest.hexdigest()[:16]


def worker_imports() -> list[str]:
    return [static(path) for path in WORKER_IMPORTS]


def precache_urls() -> list[str]:
    return [reverse("frontend:offline"), *(static(path) for path in SHELL_STATIC)]
