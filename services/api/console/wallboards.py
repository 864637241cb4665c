"""The wallboard URL builder: metrics, windows, team, rotation, theme, language, with a live
preview. The TV's URL carries a read key (``?key=``, for TV browsers that cannot send a
header); the console never holds keys, so the key is typed into the page and put into the URL
by the page's own script, in the browser only (the field has no ``name``: no form sends it)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Query
from fastapi.responses import Response

from services.api.common.database import Db, api_router
from services.api.console.views import Viewer
from services.api.roster.repository import RosterRepository
from shared.catalogue import CATALOGUE
from shared.i18n import WINDOWS

router = api_router(prefix="/console", include_in_schema=False)
BOARD_WINDOWS = [w for w in WINDOWS if w != "custom"]


def wallboard_url(metrics: list[str], windows: list[str], team: str, rotate: int, theme: str,
                  lang: str, pace: bool, key: str = "<read key>") -> str:  # fmt: skip
    """The TV's URL (``/wallboard``) with these choices; ``key`` a placeholder by default."""
    query: dict[str, str | int] = {"key": key, "metrics": ",".join(metrics),
                                   "windows": ",".join(windows)}  # fmt: skip
    if team:
        query["team"] = team
    query["rotate"] = rotate
    query["theme"] = theme
    query["lang"] = lang
    if pace:
        query["show"] = "pace"
    return "/wallboard?" + urlencode(query, safe=",<>")


@router.get("/wallboards")
async def builder(
    console: Viewer, db: Db,
    metrics: list[str] = Query(default=["calls_total", "deals_won", "revenue"]),
    windows: list[str] = Query(default=["today", "this_week"]),
    team: str = "", rotate: int = 20, theme: str = "dark", lang: str = "", pace: str = "",
) -> Response:  # fmt: skip
    chosen_metrics = [m for m in metrics if m in CATALOGUE] or ["calls_total"]
    chosen_windows = [w for w in windows if w in BOARD_WINDOWS] or ["today"]
    rotate = min(max(rotate, 5), 600)
    theme = theme if theme in ("dark", "light") else "dark"
    lang = lang if lang in ("fr", "en") else console.language
    url = wallboard_url(chosen_metrics, chosen_windows, team, rotate, theme, lang, pace == "1")
    return console.render(
        "wallboards.html", url=url, metrics=chosen_metrics, windows=chosen_windows, team=team,
        rotate=rotate, theme=theme, board_lang=lang, pace=pace == "1",
        teams=await RosterRepository(db).all_teams(), all_windows=BOARD_WINDOWS,
    )  # fmt: skip
