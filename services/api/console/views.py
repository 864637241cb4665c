"""What every console page shares: the signed-in viewer, the language, the templates, the
answers that end a request early (``Answer``), and refusals shown next to their fields.

- ``Viewer``: a page's dependency. No valid session: a redirect to the sign-in page, with
  ``next=`` the page asked for.
- ``Editor``: a form's dependency (every POST that changes something): a session with the
  ``admin`` scope (else a 403 page) and the session's CSRF token in the form (else a 403 page).
- A refusal of the services (``Problem`` with ``errors``) or of a schema (pydantic
  ``ValidationError``) becomes ``{field: message}``: the page shows each next to its field,
  with what the user typed kept. The page is raised as an ``Answer``, so the request's unit of
  work rolls back whatever the attempt wrote.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from services.api.console import messages
from services.api.console.session import (
    COOKIE,
    LANGUAGE_COOKIE,
    Session,
    Signer,
    secret_of,
    still_held,
)
from shared import i18n
from shared.i18n import Language
from shared.problems import Problem
from shared.settings import KeyScope, Settings

TEMPLATES = Path(__file__).parent / "templates"
ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,  # every value is escaped unless marked safe
    undefined=jinja2.StrictUndefined,  # a misspelt name fails the test, not the page silently
    trim_blocks=True,
    lstrip_blocks=True,
)


class Answer(Exception):
    """A response that ends the request here: a redirect to sign in, a 403 page, or a form
    shown again with its refusals (the request's transaction then rolls back)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True, slots=True)
class Keys:
    """The API keys by name, and the signer of sessions: built once per app."""

    scopes: dict[str, frozenset[KeyScope]]
    signer: Signer

    @classmethod
    def of(cls, settings: Settings) -> Keys:
        found = {k.name: k.scopes for k in settings.parsed_api_keys()}
        return cls(found, Signer(secret_of(settings)))


def console_keys(request: Request) -> Keys:
    keys: Keys = request.app.state.console_keys
    return keys


def language_of(request: Request, settings: Settings) -> Language:
    """``?lang=`` first, then the switch's cookie, then the organisation's ``LOCALE``."""
    for asked in (request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE)):
        if asked in i18n.LANGUAGES:
            return "fr" if asked == "fr" else "en"
    return settings.language


def secure(request: Request) -> bool:
    """Whether the browser reached us over https (uvicorn trusts ``X-Forwarded-Proto`` from the
    proxies in ``FORWARDED_ALLOW_IPS``, 127.0.0.1 by default, and sets the scheme)."""
    return request.url.scheme == "https"


@dataclass
class Console:
    """One request of the console: who asks, in which language, and how pages are answered."""

    request: Request
    settings: Settings
    keys: Keys
    language: Language
    session: Session | None = None
    form: FormData | None = None
    extra_cookies: dict[str, str] = field(default_factory=dict)

    # --- words and formats ---------------------------------------------------------------

    def t(self, key: str, **values: Any) -> str:
        return messages.text(key, self.language, **values)

    @property
    def locale(self) -> str:
        return i18n.locale_for(self.language, self.settings.locale)

    def number(self, value: float | int | None, decimals: int = 0) -> str:
        if value is None:
            return "—"
        return i18n.number(value, self.locale, decimals)

    def money(self, value: float | int | None) -> str:
        return "—" if value is None else i18n.money(value, self.settings.currency, self.locale)

    def metric_value(self, metric: str, value: float | int | None) -> str:
        from shared.catalogue import CATALOGUE

        unit = CATALOGUE[metric].unit if metric in CATALOGUE else None
        if value is None:
            return "—"
        if unit == "currency":
            return self.money(value)
        if unit == "ratio":
            return i18n.percent(value, self.locale, 1)
        return self.number(value, 0 if float(value).is_integer() else 1)

    def when(self, moment: datetime | None) -> str:
        if moment is None:
            return "—"
        local = moment.astimezone(self.settings.tz)
        return local.strftime("%d/%m/%Y %H:%M" if self.language == "fr" else "%Y-%m-%d %H:%M")

    def metric_label(self, name: str) -> str:
        return i18n.label(i18n.METRICS, name, self.language)

    def metric_options(self) -> list[tuple[str, str]]:
        from shared.catalogue import CATALOGUE

        return [(name, self.metric_label(name)) for name in CATALOGUE]

    def window_label(self, name: str) -> str:
        return i18n.label(i18n.WINDOWS, name, self.language)

    def period_label(self, name: str) -> str:
        return i18n.label(i18n.PERIODS, name, self.language)

    # --- answers -------------------------------------------------------------------------

    @property
    def may_write(self) -> bool:
        return self.session is not None and self.session.admin

    def export_links(self, **query: Any) -> list[tuple[str, str]]:
        """(label, URL) of this page as CSV (French Excel's dialect in French) and xlsx."""
        kept = {
            k: v for k, v in self.request.query_params.items() if k not in ("format", "dialect")
        }
        kept.update({k: v for k, v in query.items() if v is not None})
        csv = {
            **kept,
            "format": "csv",
            **({"dialect": "excel-fr"} if self.language == "fr" else {}),
        }
        path = self.request.url.path
        return [
            (self.t("export.csv"), f"{path}?{urlencode(csv)}"),
            (self.t("export.xlsx"), f"{path}?{urlencode({**kept, 'format': 'xlsx'})}"),
        ]

    def render(self, template: str, code: int = 200, **context: Any) -> HTMLResponse:
        page = ENVIRONMENT.get_template(template).render(
            c=self, t=self.t, session=self.session, path=self.request.url.path,
            query=self.request.url.query, errors=context.pop("errors", {}),
            values=context.pop("values", {}), **context,
        )  # fmt: skip
        response = HTMLResponse(page, status_code=code, headers=NO_STORE)
        self.keep_session(response)
        return response

    def keep_session(self, response: Response) -> None:
        """The session again, with a new expiry (the idle timeout counts from now); the
        language switch remembered."""
        if self.session is not None:
            renewed = self.session.renewed(time.time(), self.settings.console_session_hours)
            self.set_cookie(response, COOKIE, self.keys.signer.dumps(renewed))
        for name, value in self.extra_cookies.items():
            self.set_cookie(response, name, value)

    def set_cookie(self, response: Response, name: str, value: str) -> None:
        response.set_cookie(
            name, value, httponly=True, samesite="strict", secure=secure(self.request),
            path="/console",
        )  # fmt: skip

    def redirect(self, to: str, done: str | None = None) -> RedirectResponse:
        """303 to ``to`` (POST-redirect-GET), with ``done=`` naming what to tell the user."""
        if done:
            to += ("&" if "?" in to else "?") + urlencode({"done": done})
        response = RedirectResponse(to, status_code=303, headers=NO_STORE)
        self.keep_session(response)
        return response

    def refuse(self, template: str, exc: Exception, **context: Any) -> Answer:
        """The form again, its refusals next to their fields, what was typed kept."""
        errors = errors_of(exc)
        values = context.pop("values", None)
        if values is None:
            values = dict(self.form.items()) if self.form is not None else {}
        return Answer(self.render(template, 422, errors=errors, values=values, **context))


NO_STORE = {"Cache-Control": "no-store"}


def errors_of(exc: Exception) -> dict[str, str]:
    """``{field: message}`` of a refusal: a form field is the first part of the API's field
    (``body.identities.0.external_id`` -> ``identities``); what names no field is ``_``."""
    found: dict[str, str] = {}
    if isinstance(exc, ValidationError):
        pairs = [
            (".".join(str(p) for p in e["loc"]), str(e["msg"]))
            for e in exc.errors(include_url=False, include_input=False)
        ]
    elif isinstance(exc, Problem):
        listed = exc.extensions.get("errors") or []
        pairs = [(str(e.get("field", "")), str(e.get("message", ""))) for e in listed]
        if not pairs:
            pairs = [("", exc.detail)]
    else:
        pairs = [("", str(exc))]
    for where, message in pairs:
        found.setdefault(form_field(where), message)
    return found


def form_field(where: str) -> str:
    parts = [p for p in where.split(".") if p]
    if parts[:1] == ["body"]:
        parts = parts[1:]
    if parts[:1] == ["trigger"] and len(parts) > 1:
        parts = parts[1:]  # an alert's trigger fields are the form's own
    if parts[:1] == ["score"] and len(parts) > 1:
        parts = parts[1:]
    return parts[0] if parts else "_"


# --- the dependencies -----------------------------------------------------------------------


def _console(request: Request) -> Console:
    settings: Settings = request.app.state.settings
    console = Console(request, settings, console_keys(request), language_of(request, settings))
    asked = request.query_params.get("lang")
    if asked in i18n.LANGUAGES:  # the switch: remembered for the next pages
        console.extra_cookies[LANGUAGE_COOKIE] = asked
    return console


def sign_in_first(console: Console) -> Answer:
    request = console.request
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/console"
    response = RedirectResponse(
        f"/console/sign-in?next={quote(target, safe='')}", status_code=303, headers=NO_STORE
    )
    response.delete_cookie(COOKIE, path="/console")
    return Answer(response)


def signed_in(console: Console) -> Session | None:
    found = console.keys.signer.loads(console.request.cookies.get(COOKIE), time.time())
    return still_held(found, console.keys.scopes) if found is not None else None


async def viewer(request: Request) -> Console:
    """The console of a signed-in user (any scope); else a redirect to sign in."""
    console = _console(request)
    console.session = signed_in(console)
    if console.session is None:
        raise sign_in_first(console)
    return console


async def editor(request: Request) -> Console:
    """The console of a signed-in admin posting a form with the session's CSRF token."""
    console = await viewer(request)
    console.form = await request.form()
    assert console.session is not None
    if not console.session.csrf_matches(_text(console.form.get("csrf"))):
        raise forbidden(console, "forbidden.csrf")
    if not console.session.admin:
        raise forbidden(console, "forbidden.read_only")
    return console


def forbidden(console: Console, why: str) -> Answer:
    return Answer(console.render("forbidden.html", 403, why=why))


def anyone(request: Request) -> Console:
    """The console of whoever asks (the sign-in page)."""
    return _console(request)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def field_of(form: Mapping[str, Any] | None, name: str) -> str:
    """A text field of a form, trimmed ('' when absent or a file)."""
    value = form.get(name) if form is not None else None
    return value.strip() if isinstance(value, str) else ""


Viewer = Annotated[Console, Depends(viewer)]
Editor = Annotated[Console, Depends(editor)]
Anyone = Annotated[Console, Depends(anyone)]
