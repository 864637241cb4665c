"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) that work with no internet access.

FastAPI's own pages load Swagger UI, ReDoc, a favicon and Google Fonts from CDNs: offline they
are blank. Here their assets come from the ``fastapi-offline`` package (Swagger UI 5 and
ReDoc 2 as published, updated with the package: nothing third-party is copied into this
repository), served by the service itself under ``/docs/static/``, and the pages are FastAPI's
``get_swagger_ui_html`` / ``get_redoc_html`` pointed at them. The pages name no other host:
no favicon from fastapi.tiangolo.com, no Google Fonts, and no online validator badge (Swagger
UI would send the description's URL to validator.swagger.io).
"""

from __future__ import annotations

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


def serve_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Mount the assets and answer ``docs_url`` and ``redoc_url``; ``app`` is made with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not there too."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-static")

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} — Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} — ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
