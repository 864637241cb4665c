"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) that work with no internet access.

FastAPI's own pages load Swagger UI, ReDoc, a favicon and Google Fonts from CDNs: offline they
are blank. Here their assets come from the ``fastapi-offline`` package (Swagger UI 5 and
ReDoc 2 as published, updated with the package: nothing third-party is copied into this
repository), served by the service itself under ``/docs/static/``, and the pages are FastAPI's
``get_swagger_ui_html`` / ``get_redoc_html`` pointed at them. The pages name no other host:
no favicon from fastapi.tiangolo.com, no Google Fonts, and no online validator badge (Swagger
UI would send the description's URL to validator.swagger.io).

The scripts themselves still name one: ReDoc draws its "API docs by Redocly" logo from
cdn.redoc.ly, with no option to turn it off. So both pages carry a Content-Security-Policy that
lets them load and call only their own origin (``CSP``): the browser refuses that image (ReDoc
then leaves it out) without a request leaving the machine, and whatever a later version of
either script names elsewhere is refused the same way. Only the page's own inline script
(Swagger UI's start) runs, by its hash; styles may be inline (ReDoc writes its styles at run
time); search runs in a worker made from a ``blob:``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(str(files("fastapi_offline") / "static"))
ASSETS_URL = "/docs/static"
SWAGGER_UI_PARAMETERS: dict[str, Any] = {
    "validatorUrl": None,  # no badge fetched from validator.swagger.io
    "persistAuthorization": False,  # a key typed into "Authorize" is not kept in localStorage
    "displayRequestDuration": True,
}

CSP = (
    "default-src 'self'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def confined(page: HTMLResponse) -> HTMLResponse:
    """``page`` with a policy that lets it load and call its own origin only, and run no
    inline script but its own (allowed by their SHA-256)."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode())
    ]
    page.headers["Content-Security-Policy"] = CSP.format(scripts=" ".join(hashes))
    return page


def serve_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Mount the assets and answer ``docs_url`` and ``redoc_url``; ``app`` is made with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not there too."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-static")

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return confined(
            get_swagger_ui_html(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{app.title} — Swagger UI",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
            )
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return confined(
            get_redoc_html(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{app.title} — ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )
