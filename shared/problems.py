"""One error hierarchy, one renderer: RFC 9457 ``application/problem+json`` everywhere."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

PROBLEM_JSON = "application/problem+json"
# Bounds on what an error response repeats back: a body of a million bad items, or one huge
# field name, must not become a response of megabytes.
MAX_PROBLEMS = 20
MAX_FIELD_CHARS = 200
MAX_MESSAGE_CHARS = 300
MAX_DETAIL_CHARS = 2000

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

    def summary(self) -> str:
        """What is wrong in one line: the first fields and their messages, else the detail."""
        errors = self.extensions.get("errors")
        if isinstance(errors, list) and errors:
            return describe(errors)
        return self.detail


class BadRequest(Problem):
    status, slug = 400, "malformed-body"


class Unauthorized(Problem):
    status, slug = 401, "unauthorized"


class Forbidden(Problem):
    status, slug = 403, "forbidden"


class NotFound(Problem):
    status, slug = 404, "not-found"


class Conflict(Problem):
    status, slug = 409, "conflict"


class PayloadTooLarge(Problem):
    status, slug = 413, "payload-too-large"


async def read_body(request: Request, limit: int, advice: str = "") -> bytes:
    """The raw body (signatures are over raw bytes), refused with 413 past ``limit`` bytes,
    read as it arrives (never more than ``limit`` held); ``advice`` ends the refusal."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the {limit}-byte limit{advice}")
    chunks, size = [], 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the {limit}-byte limit{advice}")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)  # one chunk: that chunk itself, not a copy


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
        "detail": clip(detail, MAX_DETAIL_CHARS),
        **extensions,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ``...`` marking a cut."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """The first ``MAX_PROBLEMS`` pydantic errors as ``{field, message}``, dotted paths (inputs
    left out: they may be secret; each part clipped).

    The caller reports ``len(errors)`` as ``errors_total`` when it is more.
    """
    return [
        {
            "field": clip(".".join(str(p) for p in e["loc"]) or "body", MAX_FIELD_CHARS),
            "message": clip(str(e["msg"]), MAX_MESSAGE_CHARS),
        }
        for e in list(errors)[:MAX_PROBLEMS]
    ]


def as_sent(loc: Any, body: Any) -> tuple[Any, ...]:
    """A pydantic location as a path into ``body`` as it was sent: the tag pydantic adds for
    the member of a tagged union (``body.trigger.threshold.value``) is left out where the body
    has no such key (``body.trigger.value``)."""
    node, path = body, []
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and _is_tag(part, node):
            continue  # pydantic's step into the union's member, not a key of the body
        path.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(path)


def _is_tag(part: str, node: dict[Any, Any]) -> bool:
    """``part`` is no key of ``node`` but one of its values: the tag of a tagged union."""
    return part not in node and any(value == part for value in node.values())


def describe(errors: list[dict[str, Any]], count: int = 5) -> str:
    """The first few ``{field, message}`` errors in one line, for a detail or a reason."""
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors[:count])


def refused(*problems: tuple[str, str]) -> Unprocessable:
    """A 422 naming each ``(field, message)`` of the request body (``body.<field>``): for what a
    service refuses beyond the schema (the catalogue, the roster, the network)."""
    errors = [{"field": f"body.{field}", "message": message} for field, message in problems]
    return Unprocessable(describe(errors, len(errors)), errors=errors)


def invalid(errors: Any, prefix: str) -> Unprocessable:
    """A 422 naming the fields of pydantic ``errors``: at most ``MAX_PROBLEMS`` of them, and
    how many there were."""
    listed = validation_errors(errors)
    return Unprocessable(
        f"{prefix}{describe(listed)}", errors=listed, errors_total=len(list(errors))
    )


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
        sent = {"body": exc.body}
        errors = [{**e, "loc": as_sent(e["loc"], sent)} for e in exc.errors()]
        problem = invalid(errors, "")
        return problem_response(422, problem.slug, problem.detail, **problem.extensions)

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
