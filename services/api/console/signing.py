"""Signing in and out of the console (``session`` says what the cookie holds).

The sign-in form takes an API key, checked by the API's own ``KeyRing``; the key is never
stored, only its name and scopes. The form itself is protected against login CSRF by a
random token in a short-lived cookie that the form repeats (double submit)."""

from __future__ import annotations

import hmac
import secrets
import time

from fastapi import Request
from fastapi.responses import Response

from services.api.common.auth import KeyRing
from services.api.common.database import api_router
from services.api.console.session import COOKIE, new_session, safe_next
from services.api.console.views import Anyone, Viewer, field_of, forbidden, signed_in

router = api_router(prefix="/console", include_in_schema=False)
PRE = "sp_pre"  # the sign-in form's own token (no session yet to bind one to)


@router.get("/sign-in")
async def sign_in_page(console: Anyone, next: str = "/console") -> Response:
    if signed_in(console) is not None:
        return console.redirect(safe_next(next))
    token = secrets.token_urlsafe(16)
    response = console.render("sign_in.html", next=safe_next(next), pre=token, failed=False)
    console.set_cookie(response, PRE, token)
    return response


@router.post("/sign-in")
async def sign_in(request: Request, console: Anyone) -> Response:
    form = await request.form()
    console.form = form
    sent, kept = field_of(form, "pre"), request.cookies.get(PRE, "")
    if not sent or not hmac.compare_digest(sent.encode(), kept.encode()):
        raise forbidden(console, "forbidden.csrf")
    ring: KeyRing = request.app.state.keyring
    found = ring.holder_of(field_of(form, "key")) if field_of(form, "key") else None
    target = safe_next(field_of(form, "next"))
    if found is None:
        token = secrets.token_urlsafe(16)
        response = console.render("sign_in.html", 401, next=target, pre=token, failed=True)
        console.set_cookie(response, PRE, token)
        return response
    name, scopes = found
    console.session = new_session(name, scopes, time.time(), console.settings.console_session_hours)
    signed = console.redirect(target)
    signed.delete_cookie(PRE, path="/console")
    return signed


@router.post("/sign-out")
async def sign_out(console: Viewer) -> Response:
    """Signing out needs the session's CSRF token too: a page elsewhere cannot sign you out."""
    form = await console.request.form()
    assert console.session is not None
    if not console.session.csrf_matches(field_of(form, "csrf")):
        raise forbidden(console, "forbidden.csrf")
    console.session = None
    response = console.redirect("/console/sign-in", "signed_out")
    response.delete_cookie(COOKIE, path="/console")
    return response
