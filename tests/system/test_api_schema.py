"""The OpenAPI document at /api/schema/ and the Swagger UI at /api/docs/."""

from __future__ import annotations

import json
import re

import pytest
from django.core.management import call_command
from django.urls import URLPattern

from ledger.urls import urlpatterns as ledger_urlpatterns

pytestmark = pytest.mark.django_db

LEDGER_PREFIX = "/api/v1/ledger/"


def ledger_paths() -> set[str]:
    """Every route of ledger/urls.py, spelled as OpenAPI paths (drf-spectacular names ``pk`` ``id``)."""
    paths = set()
    for pattern in ledger_urlpatterns:
        assert isinstance(pattern, URLPattern)
        route = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{" + ("id" if m[1] == "pk" else m[1]) + "}",
                       str(pattern.pattern))
        paths.add(LEDGER_PREFIX + route)
    return paths


@pytest.fixture
def signed_in(client, django_user_model, settings):
    client.force_login(django_user_model.objects.create_user(username="reader", password="reader-password-1"))
    return client


def _schema(client) -> dict:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return json.loads(response.content)


def test_schema_lists_every_ledger_path(signed_in):
    schema = _schema(signed_in)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "GridCoin API"
    documented = {p for p in schema["paths"] if p.startswith(LEDGER_PREFIX)}
    assert len(ledger_paths()) == 19  # 7, the global log's 7 (docs/witnesses.md), documents (2), policies, genesis, snapshot
    assert documented == ledger_paths()


def test_ledger_api_is_documented_read_only_and_authenticated(signed_in):
    schema = _schema(signed_in)
    schemes = schema["components"]["securitySchemes"]
    assert {"cookieAuth", "tokenAuth"} <= set(schemes) and "basicAuth" not in schemes
    assert schemes["tokenAuth"]["type"] == "http" and schemes["tokenAuth"]["scheme"] == "bearer"
    for path in ledger_paths() - {COSIGNATURES}:
        operations = schema["paths"][path]
        assert set(operations) == {"get"}, (path, set(operations))
        security = operations["get"]["security"]
        # no anonymous ({}) alternative: every ledger read needs a signed-in caller
        assert {} not in security and security, (path, security)


COSIGNATURES = LEDGER_PREFIX + "checkpoints/{number}/cosignatures/"


def test_the_one_ledger_write_is_a_witness_cosignature_authenticated_by_its_signature(signed_in):
    operations = _schema(signed_in)["paths"][COSIGNATURES]
    assert set(operations) == {"post"}
    assert operations["post"].get("security", [{}]) in ([{}], [])
    assert {"200", "201", "403"} <= set(operations["post"]["responses"])


def test_proof_endpoint_documents_its_response(signed_in):
    schema = _schema(signed_in)
    ok = schema["paths"][LEDGER_PREFIX + "transactions/{tx_hash}/proof/"]["get"]["responses"]["200"]
    ref = ok["content"]["application/json"]["schema"]["$ref"]
    proof = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert {"tx_hash", "leaf_index", "tree_size", "audit_path", "block"} <= set(proof["properties"])


def test_yaml_is_the_default_format(signed_in):
    response = signed_in.get("/api/schema/")
    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


def test_schema_generates_without_warnings_and_validates(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3.")


def test_docs_page_for_a_signed_in_user(signed_in):
    response = signed_in.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content.lower()
    # The start-up script is a file of its own (the CSP allows no inline script); it loads the schema.
    assert b'<script src="/api/docs/?script="></script>' in response.content
    assert b"/api/schema/" in signed_in.get("/api/docs/?script=").content


def test_schema_and_docs_are_public_but_the_data_is_not(client):
    # drf-spectacular serves the schema and docs to anyone (SERVE_PERMISSIONS defaults to
    # AllowAny): they describe shapes, not data. The endpoints they describe still refuse
    # anonymous callers.
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
    assert client.get(LEDGER_PREFIX + "blocks/").status_code == 403


def test_every_operation_names_the_token_scope_it_needs(signed_in):
    """A bank or auditor reads in the document which scope to ask for: every API operation says
    it (description and ``x-token-scope``), and it is the scope the view enforces. Meters' readings
    take no token (each reading is signed by the meter's own key)."""
    from accounts.scopes import SCOPES

    schema = json.loads(signed_in.get("/api/schema/", {"format": "json"}).content)
    seen = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"} or not path.startswith("/api/v1/"):
                continue
            if not any("tokenAuth" in requirement for requirement in operation.get("security", [])):
                assert "x-token-scope" not in operation
                continue
            scope = operation.get("x-token-scope")
            assert scope in SCOPES, f"{method.upper()} {path} names no known scope: {scope!r}"
            assert f"API token scope: `{scope}`." in operation.get("description", "")
            seen[(method, path)] = scope
    assert seen[("get", "/api/v1/prices/")] == "prices:read"
    assert seen[("post", "/api/v1/prices/")] == "prices:write"
    assert seen[("get", "/api/v1/ledger/blocks/")] == "ledger:read"
    assert "post" in schema["paths"]["/api/v1/meters/{meter_id}/readings"]
