"""The error responses every operation can give, added to the OpenAPI document once.

DRF answers the same way everywhere: a missing credential or a missing permission is 403
(session authentication comes first and sends no ``WWW-Authenticate`` challenge); a bad API
token, or HTTP basic credentials, is 401 with a ``Bearer`` challenge, and too many of those
from one address is 429;
a path naming nothing is 404; a malformed query or body is 400. Writing those on each view would
repeat them sixteen times and miss the next view, so this drf-spectacular postprocessing hook
adds them from what the document already says about an operation: its security, its path
parameters, its query parameters and body (and that the body is required). Responses a view documents itself (a 400 with more
fields, a 409) are left as they are.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

ERROR = "RequestError"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Why the request was refused: ``detail`` for the request as a whole, or each "
                   "refused field named with its messages.",
    "properties": {
        "detail": {"type": "string"},
        "tx_hash": {"type": "string", "description": "the rejected ledger transaction, when the ledger refused it"},
    },
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
METHODS = {"get", "post", "put", "patch", "delete"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR}"}}}}


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR] = ERROR_SCHEMA
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            parameters = operation.get("parameters", [])
            if "requestBody" in operation:
                # Every body this API takes is needed; drf-spectacular cannot say so of a body given
                # as a raw schema (the readings': one reading or a list).
                operation["requestBody"]["required"] = True
            responses = operation.setdefault("responses", {})
            if operation.get("requestBody") or any(p["in"] == "query" for p in parameters):
                responses.setdefault("400", _error("The query or body is malformed."))
            if any(operation.get("security", [])):
                # with an anonymous alternative ({}), bad credentials are still refused
                responses.setdefault("403", _error("Not signed in, or not allowed (an API token without the "
                                                   "scope this operation needs included)."))
                responses.setdefault("401", _error("The API token is malformed, unknown, expired or revoked, "
                                                   "or HTTP basic credentials were sent."))
                responses.setdefault("429", _error("Too many failed API token attempts from this address; "
                                                   "see Retry-After."))
            if any(p["in"] == "path" for p in parameters):
                responses.setdefault("404", _error("Nothing of that id here, or not visible to the caller."))
    return result


class ScopedAutoSchema(AutoSchema):
    """Each operation says which API token scope it needs, in its description and as
    ``x-token-scope``, so a bank or an auditor knows what to ask for. (OpenAPI 3.0 lets only
    OAuth2 security requirements list scopes; a bearer token's must stay empty.)"""

    def _scope(self) -> str | None:
        from accounts.scopes import required_scope

        return required_scope(self.view, self.method)

    def get_description(self) -> str:  # type: ignore[override]
        description = super().get_description() or ""
        scope = self._scope()
        if scope is None:
            return description
        note = f"API token scope: `{scope}`."
        return f"{description}\n\n{note}" if description else note

    def get_extensions(self) -> dict[str, Any]:
        scope = self._scope()
        return {**super().get_extensions(), **({"x-token-scope": scope} if scope else {})}
