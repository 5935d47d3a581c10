"""The one error envelope (SPEC section 3) and the handlers that make every failure use it."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "RETRY_AFTER_S",
    "ApiError",
    "error_body",
    "install_error_handlers",
    "not_found",
    "unavailable",
]

RETRY_AFTER_S = 2

log = logging.getLogger("doorcheck.server")

_STATUS_CODES = {
    400: "bad_request",
    401: "invalid_api_key",
    403: "insufficient_scope",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


class ApiError(Exception):
    """An error the API answers on purpose: `raise ApiError(404, "not_found", "No such event")`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = headers or {}


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"No such {what}")


def unavailable(why: str = "The database is busy or unreachable") -> ApiError:
    """503 with `Retry-After`: storage could not take the request now; nothing was changed."""
    return ApiError(
        503,
        "unavailable",
        f"{why}: try again in a moment",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _respond(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        body, status_code=status, headers={"Cache-Control": "private, no-store", **(headers or {})}
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _respond(exc.status, error_body(exc.code, exc.message, exc.details), exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = []
    for err in exc.errors()[:50]:
        kind = str(err.get("type", "invalid"))
        message = str(err.get("msg", "invalid value"))
        if kind == "json_invalid":
            message = "The request body is not valid JSON"
        details.append(
            {"field": _field(tuple(err.get("loc", ()))), "code": kind, "message": message}
        )
    return _respond(422, error_body("validation_error", "The request is not valid", details))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return _respond(exc.status_code, error_body(code, message), dict(exc.headers or {}))


# PostgreSQL states that mean "not now" rather than "wrong": read-only transaction, lock not
# available, cannot connect now, admin shutdown, crash shutdown, too many connections, disk full.
_UNAVAILABLE_STATES = frozenset({"25006", "55P03", "57P01", "57P02", "57P03", "53300", "53100"})


def _is_storage_fault(exc: Exception) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _UNAVAILABLE_STATES


async def _storage_error(request: Request, exc: Exception) -> JSONResponse:
    """The database is locked past the bounded wait, read-only, or unreachable (SQLite busy or
    locked, a read-only file, PostgreSQL down, the pool exhausted): 503, never 500. The request's
    transaction was rolled back, so nothing it did was kept."""
    if not _is_storage_fault(exc):
        return await _unhandled(request, exc)
    first = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
    log.warning(
        "storage unavailable on %s %s: %s",
        request.method,
        request.url.path,
        first[0] if first else exc.__class__.__name__,
    )
    error = unavailable()
    return _respond(error.status, error_body(error.code, error.message), error.headers)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _respond(500, error_body("internal_error", "Something went wrong on our side"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for storage in (DBAPIError, PoolTimeout):
        app.add_exception_handler(storage, _storage_error)
    app.add_exception_handler(Exception, _unhandled)
