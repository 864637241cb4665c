"""The console: ``/console``, the web pages the people who run the sales floor use instead of
curl (``interfaces.md``, "Console").

Server-rendered HTML (Jinja2 templates shipped in this package, our own CSS and a little of our
own JavaScript; no CDN, no build step), every page a plain HTML form first. Each write calls
the same services and validation as the API, in-process, in the request's unit of work.

- ``session``: the signed session cookie and its CSRF token (pure);
- ``views``: the viewer, the language, the templates, refusals next to their fields;
- ``signing``: sign in and out;
- one module per page: ``overview``, ``roster``, ``targets``, ``contests``, ``alerts``,
  ``activity``, ``wallboards`` (with settings and connections);
- ``messages``: every text in French and English.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from services.api.console import (
    activity,
    alerts,
    contests,
    overview,
    roster,
    signing,
    targets,
    wallboards,
)
from services.api.console.views import Answer, Keys

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """The console's pages and static files (``/console/static/...``), and the answer to an
    ``Answer`` (a page or a redirect that ends a request early)."""
    app.state.console_keys = Keys.of(app.state.settings)
    for module in (signing, overview, roster, targets, contests, alerts, activity, wallboards):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    async def answer(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Answer)
        return exc.response

    app.add_exception_handler(Answer, answer)
