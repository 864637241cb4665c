"""The TV page: static files, no build step, no CDN; its data comes with a ``?key=``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
router = APIRouter(tags=["wallboard"])


@router.get(
    "/wallboard",
    response_class=HTMLResponse,
    summary="The TV wallboard (?key=&metrics=&windows=&team=&rotate=&theme=&limit=&show=pace"
    "&contest=&celebrate=&currency=)",
    description="Rotating live leaderboards (`?show=pace`: a pace bar per rep with a target); "
    "with `?contest=<id>` one contest instead: its podium, countdown and goal, then its winners. "
    "On both, from `GET /v1/stream/notifications`: a full-screen celebration of each deal won, "
    "target reached and contest won (`?celebrate=<seconds>`, 6 by default, `0` turns it off; "
    "`?currency=EUR` shows amounts with their sign) and a ticker of today's wins.",
)
async def wallboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


def install(app: FastAPI) -> None:
    """The page's route and its static files (``/wallboard/static/...``)."""
    app.include_router(router)
    app.mount("/wallboard/static", StaticFiles(directory=STATIC), name="wallboard-static")
