"""The app's own error pages: the embedded default runs with DEBUG off, so a mistyped device id
gets the app's 404 (never Django's debug page with the URL list), a failing view the app's 500,
and API paths keep their JSON 404."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

REPO_ROOT = Path(__file__).resolve().parents[2]
PRINT_DEBUG = "import django; django.setup(); from django.conf import settings as s; print('DEBUG=%s' % s.DEBUG)"


def embedded_debug(tmp_path: Path, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "GRIDCOIN_ENV", "DATABASE_URL", "REDIS_URL"}}
    clean.update(DJANGO_SETTINGS_MODULE="gridcoin.settings", GRIDCOIN_DATA_DIR=str(tmp_path), **env)
    proc = subprocess.run([sys.executable, "-c", PRINT_DEBUG], cwd=REPO_ROOT, env=clean,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_embedded_default_runs_with_debug_off_unless_asked(tmp_path):
    assert embedded_debug(tmp_path) == "DEBUG=False"
    assert embedded_debug(tmp_path, DEBUG="0") == "DEBUG=False"
    assert embedded_debug(tmp_path, DEBUG="1") == "DEBUG=True"


@pytest.mark.django_db
def test_a_mistyped_device_id_gets_the_apps_404(client, settings):
    settings.DEBUG = False
    response = client.get("/d/nosuch")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body
    assert 'href="/"' in body and 'href="/scan/"' in body
    assert "frontend/gridcoin.css" in body  # the app's look
    assert "URLconf" not in body and "urlpatterns" not in body and "explorer/blocks" not in body


@pytest.mark.django_db
def test_an_unknown_path_gets_the_apps_404_signed_in_too(client, settings, django_user_model):
    settings.DEBUG = False
    client.force_login(django_user_model.objects.create_user("mira", password="x-long-password"))
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


@pytest.mark.django_db
def test_api_paths_keep_their_json_404(client, settings):
    settings.DEBUG = False
    response = client.get("/api/v1/ledger/blocks/abc/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.django_db
def test_a_forbidden_page_gets_the_apps_403(client, settings, django_user_model):
    # The payment simulator refuses (PermissionDenied) a user who belongs to no organisation.
    settings.DEBUG = False
    client.force_login(django_user_model.objects.create_user("nobody", password="x-long-password"))
    response = client.get("/payments/simulator/")
    assert response.status_code == 403
    body = response.content.decode()
    assert "Not allowed" in body and 'href="/scan/"' in body


@pytest.mark.urls("tests.frontend.error_urls")
def test_a_failing_view_gets_the_apps_500_without_touching_the_database(settings):
    # No django_db mark: any query while rendering the 500 page would fail this test, as the page
    # is shown exactly when the database may be what broke.
    settings.DEBUG = False
    response = Client(raise_request_exception=False).get("/broken/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body
    assert 'href="/"' in body and 'href="/scan/"' in body
    assert "frontend/gridcoin.css" in body
    assert "RuntimeError" not in body and "Traceback" not in body


@pytest.mark.django_db
def test_static_files_serve_with_debug_off(client, settings):
    # WhiteNoise serves the apps' static folders through the finders, DEBUG or not.
    settings.DEBUG = False
    response = client.get("/static/frontend/gridcoin.css")
    assert response.status_code == 200
    assert b".tabbar" in b"".join(response.streaming_content)


@pytest.mark.django_db
def test_the_favicon_browsers_ask_for_is_there(client):
    # A 404 here would be an error in the console of every page.
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert client.head("/favicon.ico").status_code == 200


@pytest.mark.django_db
def test_a_host_the_app_does_not_answer_on_gets_the_apps_400(client, settings):
    # A phone using a name missing from ALLOWED_HOSTS: Django refuses it (DisallowedHost).
    settings.DEBUG = False
    response = client.get("/devices/", HTTP_HOST="192.168.1.20:8000")
    assert response.status_code == 400
    body = response.content.decode()
    assert "Something was wrong with that request" in body and "ALLOWED_HOSTS" not in body
