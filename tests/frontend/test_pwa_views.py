"""The installable app's views: the manifest, the service worker and the offline page, and the
links every page carries to them."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.staticfiles import finders

from frontend import pwa

pytestmark = pytest.mark.django_db


def test_manifest_is_served_with_its_content_type_and_install_fields(client):
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["name"] == "GridCoin" and manifest["short_name"] == "GridCoin"
    assert manifest["description"]
    assert (manifest["id"], manifest["start_url"], manifest["scope"]) == ("/", "/", "/")
    assert manifest["display"] == "standalone"
    assert manifest["theme_color"] == "#14532d" and manifest["background_color"]
    assert manifest["lang"] == "en"
    sizes = {(icon["sizes"], icon["purpose"]) for icon in manifest["icons"]}
    assert sizes == {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")}
    assert [(s["short_name"], s["url"]) for s in manifest["shortcuts"]] == [("Scan", "/scan/"), ("Wallet", "/wallet/")]
    for icon in manifest["icons"] + [i for s in manifest["shortcuts"] for i in s["icons"]]:
        path = finders.find(icon["src"].removeprefix("/static/"))
        assert path, icon["src"]
        with open(path, "rb") as fh:
            head = fh.read(24)
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"{int.from_bytes(head[16:20], 'big')}x{int.from_bytes(head[20:24], 'big')}" == icon["sizes"]


def worker_shell(response) -> dict:
    match = re.search(r"^const SHELL = (\{.*\});$", response.content.decode(), re.M)
    assert match
    return json.loads(match.group(1))


def test_service_worker_is_served_from_the_root_with_its_headers(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    assert response["Cache-Control"] == "no-cache"
    shell = worker_shell(response)
    assert shell["version"] == pwa.shell_version()
    assert shell["offline"] == "/offline/"
    # The shell only: the offline page and static files, never a page that shows money or the API.
    assert shell["precache"][0] == "/offline/"
    assert all(url.startswith("/static/") for url in shell["precache"][1:])
    assert "/static/frontend/app.js" in shell["precache"] and "/static/frontend/gridcoin.css" in shell["precache"]


def test_a_changed_shell_file_changes_the_worker(client, monkeypatch, tmp_path):
    before = client.get("/sw.js").content
    changed = tmp_path / "gridcoin.css"
    changed.write_text("body { color: red; }\n")
    real_find = finders.find
    monkeypatch.setattr(finders, "find", lambda path, *a, **kw: str(changed) if path == "frontend/gridcoin.css"
                        else real_find(path, *a, **kw))
    after = client.get("/sw.js").content
    assert after != before
    assert worker_shell(client.get("/sw.js"))["version"] == pwa.shell_version()
    # ... and the same files give the same worker, so an unchanged deploy is no update.
    assert client.get("/sw.js").content == after


def test_offline_page_holds_nothing_of_the_user(client, django_user_model):
    anonymous = client.get("/offline/")
    assert anonymous.status_code == 200
    assert "You're offline" in anonymous.content.decode()
    user = django_user_model.objects.create_user(username="mira-offline", password="pw-offline-123")
    client.force_login(user)
    signed_in = client.get("/offline/")
    assert signed_in.content == anonymous.content
    page = signed_in.content.decode()
    assert "mira-offline" not in page and "csrf" not in page.lower() and "kWh" not in page


def test_every_page_links_the_manifest_icons_and_the_app_script(client):
    page = client.get("/").content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    assert 'rel="apple-touch-icon" href="/static/frontend/icons/apple-touch-icon-180.png"' in page
    assert re.search(r'<script src="/static/frontend/app.js" defer data-sw="/sw.js"></script>', page)
    config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", page)
    assert config and json.loads(config.group(1))["includeIndicatorStyles"] is False
    assert "Updated — reload" in page  # the banner, hidden until a new worker takes over


def test_money_forms_are_marked_so_they_are_refused_offline(client, settings):
    from tests.meters_world import build_meter_world

    world = build_meter_world(settings)
    client.force_login(world.alice.user)
    for path in ["/wallet/", "/d/SL-0001", "/payments/simulator/"]:
        page = client.get(path).content.decode()
        forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>", page)
        money = [f for f in forms if "data-money-action" in f]
        assert len(money) == 1, path


def test_production_hashes_the_shell_once_per_process(settings, monkeypatch):
    """/sw.js is asked for on every navigation; in production its files cannot change under a
    running process, so the version is not recomputed each time (elsewhere it is: files change
    while developing)."""
    from frontend import pwa

    computed = []
    monkeypatch.setattr(pwa, "_shell_version", lambda: computed.append(1) or f"v{len(computed)}")
    pwa._deployed_shell_version.cache_clear()
    try:
        settings.PRODUCTION = True
        assert pwa.shell_version() == pwa.shell_version() == "v1"
        settings.PRODUCTION = False
        assert pwa.shell_version() == "v2" and pwa.shell_version() == "v3"
    finally:
        pwa._deployed_shell_version.cache_clear()
