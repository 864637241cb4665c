"""One error hierarchy, one renderer: RFC 9457 ``application/problem+json`` everywhere."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """An expected refusal: rendered as problem+json with its status; never a 500."""

    status = 400
    slug = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status or self.status
        self.slug = slug or self.slug
        self.headers = headers or {}
        self.extensions = extensions


class BadRequest(Problem):
    status, slug = 400, "malformed-body"


class Unauthorized(Problem):
    status, slug = 401, "unauthorized"


class Forbidden(Problem):
    status, slug = 403, "forbidden"


class NotFound(Problem):
    status, slug = 404, "not-found"


class PayloadTooLarge(Problem):
    status, slug = 413, "payload-too-large"


class Unprocessable(Problem):
    status, slug = 422, "validation-error"


class Unavailable(Problem):
    status, slug = 503, "unavailable"


def problem_response(
    status: int, slug: str, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any
) -> JSONResponse:
    body = {
        "type": f"https://salespulse.dev/problems/{slug}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extensions,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic errors as ``{field, message}``, dotted paths (inputs left out: may be secret)."""
    return [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in errors]


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> Response:
        if exc.status == 304:  # not an error: a conditional read that has nothing new
            return Response(status_code=304, headers=exc.headers)
        return problem_response(
            exc.status, exc.slug, exc.detail, headers=exc.headers, **exc.extensions
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc.errors())
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(422, "validation-error", detail, errors=errors)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # A bug, not a refusal: the details go to the log (re-raised by Starlette), not out.
        return problem_response(500, "internal-error", "unexpected error; it has been logged")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(
            exc.status_code, slug, str(exc.detail), headers=dict(exc.headers or {})
        )
