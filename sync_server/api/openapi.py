"""The OpenAPI document as integrators need it (SPEC section 13), finished in one place: the
bearer and `X-API-Key` security schemes, the error envelope on every operation's 4xx and 503
answers (never FastAPI's `{detail}` shape, which the server does not send), the
`Idempotency-Key` header on POSTs; and `/docs` and `/redoc` served with assets from the
`fastapi-offline` package, so they work on a venue network with no internet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from sync_server.api.operation_docs import document_operations

__all__ = ["ErrorEnvelope", "finish_document", "serve_docs"]

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/v1/devices/enroll", "/metrics"})
_ENVELOPE = "#/components/schemas/ErrorEnvelope"
_ERRORS = {
    "401": "Missing, unknown or revoked API key (`invalid_api_key`)",
    "403": "The key lacks the scope (`insufficient_scope`)",
    "404": "No such resource in your organization (`not_found`)",
    "409": "A duplicate (email, code, slug) or a request still in progress (`conflict`)",
    "422": "The request is not valid (`validation_error`, `idempotency_key_reused`)",
    "429": "Too many requests (`rate_limited`); see `Retry-After`",
    "503": "The database is busy or unreachable (`unavailable`); retry after `Retry-After`",
}


class ErrorDetail(BaseModel):
    field: str = Field(
        description="Where: a body field, a query parameter, a header, `row 3: email`"
    )
    code: str
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="A stable code: `not_found`, `validation_error`, …")
    message: str = Field(description="For people: what went wrong and what to do")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorEnvelope(BaseModel):
    """Every error answer: `{"error": {"code", "message", "details"}}` (SPEC section 3)."""

    error: ErrorBody


def _components(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorDetail, ErrorBody, ErrorEnvelope):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schema.pop("$defs", None)
        schemas[model.__name__] = schema
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    document["components"]["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`dk_live_…`) or a device token (`dk_dev_…`)",
        },
        "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    return schemas


def _hoist_defs(node: Any, schemas: dict[str, Any]) -> Any:
    """Move any inline `$defs` (a pydantic schema injected by hand) into the components."""
    if isinstance(node, dict):
        for name, schema in (node.pop("$defs", None) or {}).items():
            schemas.setdefault(name, _hoist_defs(schema, schemas))
        for key, value in list(node.items()):
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                node[key] = "#/components/schemas/" + value.removeprefix("#/$defs/")
            else:
                _hoist_defs(value, schemas)
    elif isinstance(node, list):
        for item in node:
            _hoist_defs(item, schemas)
    return node


def finish_document(document: dict[str, Any]) -> dict[str, Any]:
    """Add the security schemes, the summaries and descriptions, the error answers and the
    `Idempotency-Key` header."""
    schemas = _components(document)
    _hoist_defs(document.get("paths", {}), schemas)
    _hoist_defs(schemas, schemas)
    document["security"] = [{"bearer": []}, {"apiKeyHeader": []}]
    document_operations(document.get("paths", {}))
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            public = path in PUBLIC_PATHS
            if public:
                operation["security"] = []
            for status, description in _ERRORS.items():
                if public and status in ("401", "403"):
                    continue
                existing = responses.get(status, {})
                responses[status] = {
                    "description": existing.get("description") or description,
                    "content": {"application/json": {"schema": {"$ref": _ENVELOPE}}},
                }
            for status, answer in responses.items():
                if status.startswith("4") and status not in _ERRORS and "content" not in answer:
                    answer["content"] = {"application/json": {"schema": {"$ref": _ENVELOPE}}}
            if method == "post" and not public and path != "/v1/sync/push":
                operation.setdefault("parameters", []).append(
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "Send the same key again (within 24 h) to get the first "
                        "answer again instead of acting twice; 1-255 visible ASCII characters",
                        "schema": {"type": "string", "maxLength": 255},
                    }
                )
    return document


def serve_docs(app: FastAPI) -> None:
    """`/docs` (Swagger UI) and `/redoc` from assets served by the server itself."""
    import fastapi_offline

    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/docs/assets", StaticFiles(directory=static), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            redoc_js_url="/docs/assets/redoc.standalone.js",
            redoc_favicon_url="/docs/assets/favicon.png",
            with_google_fonts=False,
        )
