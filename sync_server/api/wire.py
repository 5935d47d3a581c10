"""The device sync routes speak `shared.sync`'s wire types (msgspec), not pydantic: this module
turns those types into the OpenAPI document's request and response schemas, and reads a wire
body with the API's error envelope for what does not decode.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.sync import WireError
from sync_server.api.openapi import finish_document
from sync_server.errors import ApiError

__all__ = ["decode_body", "install_wire_schemas", "wire_openapi", "wire_request_openapi"]

_REF = "#/components/schemas/{name}"
_COMPONENTS: dict[str, Any] = {}


def wire_openapi(response: type[Any], request: type[Any] | None = None) -> dict[str, Any]:
    """`openapi_extra` for a route that answers `response` (and reads `request`)."""
    kinds = [response] if request is None else [response, request]
    schemas, components = msgspec.json.schema_components(kinds, ref_template=_REF)
    _COMPONENTS.update(components)
    extra: dict[str, Any] = {
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": schemas[0]}}}
        }
    }
    if request is not None:
        extra["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas[1]}},
        }
    return extra


def wire_request_openapi(request: type[Any]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads `request` (its answer is a pydantic model)."""
    (schema,), components = msgspec.json.schema_components([request], ref_template=_REF)
    _COMPONENTS.update(components)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def install_wire_schemas(app: FastAPI) -> None:
    """Add the wire types' component schemas to the app's OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(_COMPONENTS)
            app.openapi_schema = finish_document(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def decode_body(decoder: msgspec.json.Decoder[Any], raw: bytes) -> Any:
    """A request body as a wire value; 422 `validation_error` naming where it went wrong."""
    try:
        return decoder.decode(raw)
    except WireError as exc:
        message = str(exc).splitlines()[0][:300] if str(exc) else "not valid JSON"
        raise ApiError(
            422,
            "validation_error",
            f"The request is not valid: {message}",
            [{"field": "body", "code": "invalid", "message": message}],
        ) from None
