"""Security headers and methods, site-wide:

- every HTML page carries a Content-Security-Policy without 'unsafe-inline' or 'unsafe-eval',
  and no template holds an inline script, style block, style attribute or event handler that
  such a policy would block;
- HSTS is sent in production only (over HTTPS), with its settings from the environment;
- ``HEAD`` is answered wherever ``GET`` is: every URL pattern of the site, filled in with
  sample arguments from the seeded demo, gives the same status to HEAD as to GET, and no body.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

REPO_ROOT = Path(__file__).resolve().parents[2]


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


# --- Content-Security-Policy -----------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/devices/", "/prices/", "/scan/", "/accounts/login/", "/offline/",
                                  "/api/docs/"])
def test_html_pages_carry_a_strict_content_security_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200
    csp = policy(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"] and csp["form-action"] == ["'self'"]
    assert csp["connect-src"] == ["'self'", "ws:", "wss:"]
    assert csp["worker-src"] == ["'self'"] and csp["manifest-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:", "https://tile.openstreetmap.org"]
    header = response["Content-Security-Policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header


@pytest.mark.django_db
def test_swagger_ui_loads_its_start_up_script_as_a_file(client):
    page = client.get("/api/docs/").content.decode()
    assert "<style" not in page
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script> (put it in a static file)"),
    (re.compile(r"<style\b", re.I), "<style> block (put it in a stylesheet)"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute (use a class)"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler (listen in a static script)"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]
TEMPLATE_TAG = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.S)


def test_no_template_holds_what_the_policy_blocks():
    """json_script is allowed: it renders a non-executed <script type="application/json">."""
    problems = []
    for template in sorted(REPO_ROOT.glob("*/templates/**/*.html")):
        if ".venv" in template.parts:
            continue
        # Template tags are not markup: ``{% blocktranslate with online=... %}`` is no handler.
        text = TEMPLATE_TAG.sub(lambda m: " " * len(m.group(0)), template.read_text())
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                if 'type="application/json"' in match.group(0):
                    continue
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{template.relative_to(REPO_ROOT)}:{line}: {what}")
    assert problems == []


# --- HSTS ------------------------------------------------------------------------------------

SHOW = ("import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, "
        "s.SECURE_SSL_REDIRECT]))")


def settings_in(tmp_path: Path, **env: str) -> list:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("GRIDCOIN_", "SECURE_")) and k not in ("DATABASE_URL", "SECRET_KEY", "DEBUG")}
    clean.update(DJANGO_SETTINGS_MODULE="gridcoin.settings", HOME=str(tmp_path), PYTHONDONTWRITEBYTECODE="1",
                 GRIDCOIN_DATA_DIR=str(tmp_path / "data"), **env)
    proc = subprocess.run([sys.executable, "-c", SHOW], cwd=REPO_ROOT, env=clean, capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def production_env(**extra: str) -> dict[str, str]:
    import base64

    key = base64.b64encode(os.urandom(32)).decode()
    return {"GRIDCOIN_ENV": "production", "SECRET_KEY": "s" * 50, "GRIDCOIN_KEK": key, "GRIDCOIN_ORDERER_KEY": key,
            "DATABASE_URL": "postgres://gridcoin@127.0.0.1:5432/gridcoin", **extra}


def test_hsts_only_in_production_and_configurable(tmp_path):
    assert settings_in(tmp_path) == [0, True, False, False]
    # Outside production HSTS stays off even when asked: a browser would pin http://localhost.
    assert settings_in(tmp_path, SECURE_HSTS_SECONDS="600")[0] == 0
    assert settings_in(tmp_path, **production_env()) == [31_536_000, True, False, False]
    assert settings_in(tmp_path, **production_env(SECURE_HSTS_SECONDS="600", SECURE_HSTS_INCLUDE_SUBDOMAINS="0",
                                                  SECURE_HSTS_PRELOAD="1", SECURE_SSL_REDIRECT="1")) == [
        600, False, True, True]


@pytest.mark.django_db
def test_hsts_header_is_sent_on_https_responses(client, settings):
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    assert client.get("/", secure=True)["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in client.get("/")


# --- HEAD wherever GET -----------------------------------------------------------------------

# Django's admin sends a signed-in user away from its login page on GET only (AdminSite.login
# tests ``request.method == "GET"``), so HEAD gets the form instead: answered, not refused.
SIGNED_IN_GET_REDIRECTS = {"/admin/login/"}


def walk(patterns, prefix: str = "", namespace: str = ""):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}:{p.namespace}" if p.namespace and namespace else (p.namespace or namespace)
            yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
        else:
            yield prefix + str(p.pattern), namespace, p


def _admin_object_for(url_name: str):
    from django.contrib import admin

    for model in admin.site._registry:
        if url_name.startswith(f"{model._meta.app_label}_{model._meta.model_name}_"):
            return model._default_manager.order_by("pk").first()
    return None


def sample_url(route: str, namespace: str, pattern: URLPattern, samples: dict[str, str]) -> str | None:
    from django.urls import NoReverseMatch, reverse

    names = list(pattern.pattern.regex.groupindex)
    model_admin = getattr(pattern.callback, "model_admin", None)
    kwargs = {}
    for name in names:
        if name == "object_id" and model_admin is not None:
            obj = model_admin.model._default_manager.order_by("pk").first()
            if obj is None:
                return None  # nothing of this model in the demo
            kwargs[name] = str(obj.pk)
        elif name == "pk" and namespace == "admin":
            # A model admin's own extra view (django-otp's TOTP QR code): an object of its model.
            obj = _admin_object_for(pattern.name or "")
            if obj is None:
                return None
            kwargs[name] = str(obj.pk)
        elif name in samples:
            kwargs[name] = samples[name]
        else:
            return None
    if pattern.name:
        try:
            return reverse(f"{namespace}:{pattern.name}" if namespace else pattern.name, kwargs=kwargs)
        except NoReverseMatch:
            return None
    if "^" in route or "(?P" in route:
        return None  # an unnamed regex (the admin's catch-all): nothing to fill in
    url = "/" + route
    for name, value in kwargs.items():
        url = re.sub(r"<(?:\w+:)?" + name + ">", value, url)
    return url


@pytest.mark.django_db
def test_head_is_answered_wherever_get_is(client):
    from django.contrib.auth import get_user_model

    from demo.seed import demo_seed
    from ledger.models import Account, Block, Transaction
    from meters.models import Device
    from payments.models import ReconciliationRun
    from tests.personas import seal_all

    demo_seed()
    seal_all()
    user = get_user_model().objects.get(username="utility")
    user.is_staff = user.is_superuser = True  # the admin's pages too
    user.save()
    client.force_login(user)

    tx = Transaction.objects.filter(block__isnull=False).order_by("id").first()
    samples = {
        "public_id": Device.objects.order_by("id").first().public_id,
        "meter_id": Device.objects.order_by("id").first().public_id,
        "number": str(Block.objects.order_by("number").first().number),
        "tx_hash": tx.tx_hash,
        "pk": str(Account.objects.order_by("id").first().pk),
        "run_id": str(ReconciliationRun.objects.order_by("id").first().pk),
        "app_label": "ledger",
        "content_type_id": "1",
    }
    # Campaign pages (and the group pages, whose slug then names no group: a 404 both ways),
    # once the demo seeds campaigns and donations.
    from charity.models import Campaign, Donation

    campaign = Campaign.objects.order_by("id").first()
    if campaign is not None:
        samples["slug"] = campaign.slug
    donation = Donation.objects.order_by("id").first()
    if donation is not None:
        samples["receipt_number"] = donation.receipt_number
    checked, answered = [], []
    for route, namespace, pattern in walk(get_resolver().url_patterns):
        url = sample_url(route, namespace, pattern, samples)
        if url is None:
            continue
        get = client.get(url)
        head = client.head(url)
        checked.append(url)
        if get.status_code == 405:
            assert head.status_code == 405, url
            continue
        answered.append(url)
        if url in SIGNED_IN_GET_REDIRECTS:
            assert (get.status_code, head.status_code) == (302, 200), url
            continue
        assert head.status_code == get.status_code, f"{url}: GET {get.status_code}, HEAD {head.status_code}"
        body = b"".join(head.streaming_content) if head.streaming else head.content
        assert body == b"", url
        if get.status_code == 200:
            assert head["Content-Type"] == get["Content-Type"], url

    # The walk reached the pages that matter (and a good share of them answer 200).
    for url in ["/", "/wallet/", "/devices/", f"/d/{samples['public_id']}", "/explorer/", "/prices/", "/scan/",
                "/sw.js", "/manifest.webmanifest", "/offline/", "/payments/simulator/", "/payments/reconciliation/",
                "/api/v1/ledger/blocks/", "/api/docs/", "/admin/"]:
        assert url in answered, url
    assert len(answered) > 60
