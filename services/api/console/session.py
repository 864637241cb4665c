"""The console's session: who signed in, what they may do, until when; pure (no I/O).

- **What the cookie holds**: the API key's name and scopes, a CSRF token and an expiry,
  signed with HMAC-SHA256 (``Signer``). Never the key itself: a stolen cookie cannot be turned
  into an API key, and it dies on its own.
- **The secret**: ``SALESPULSE_CONSOLE_SECRET`` when set; else one derived from the API keys
  (an HMAC of them), so every API process with the same keys accepts the same sessions, a
  restart keeps them, and changing the keys (revoking one) ends every session.
- **Expiry**: ``SALESPULSE_CONSOLE_SESSION_HOURS`` (8 by default) after the last request; each
  page answered re-issues the cookie with a new expiry (an idle timeout).
- **CSRF**: a synchronizer token, random per session and kept in the signed cookie; every
  form that changes something carries it, and a POST without the same token is refused.
- **Still a key**: each request checks that the key's name is still among the API keys, and
  keeps only the scopes it still has.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson

from shared.settings import KeyScope, Settings

COOKIE = "sp_console"
LANGUAGE_COOKIE = "sp_lang"


@dataclass(frozen=True, slots=True)
class Session:
    name: str  # the API key's name (``SALESPULSE_API_KEYS``: ``name@key:scopes``)
    scopes: frozenset[KeyScope]
    csrf: str
    expires: int  # epoch seconds

    @property
    def admin(self) -> bool:
        return KeyScope.admin in self.scopes

    def renewed(self, now: float, hours: float) -> Session:
        return Session(self.name, self.scopes, self.csrf, int(now + hours * 3600))

    def csrf_matches(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf.encode(), (sent or "").encode())


def new_session(name: str, scopes: frozenset[KeyScope], now: float, hours: float) -> Session:
    return Session(name, scopes, secrets.token_urlsafe(24), int(now + hours * 3600))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Turns a session into a cookie value and back; a value not signed by this secret, badly
    formed, or expired is no session."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def dumps(self, session: Session) -> str:
        body = {"n": session.name, "s": sorted(session.scopes), "c": session.csrf,
                "x": session.expires}  # fmt: skip
        payload = _b64(orjson.dumps(body))
        return f"{payload}.{self._mac(payload)}"

    def loads(self, value: str | None, now: float) -> Session | None:
        if not value or value.count(".") != 1:
            return None
        payload, mac = value.split(".")
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        try:
            body = orjson.loads(_unb64(payload))
            session = Session(
                str(body["n"]), frozenset(KeyScope(s) for s in body["s"]), str(body["c"]),
                int(body["x"]),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > now else None


def secret_of(settings: Settings) -> bytes:
    """The signing secret (see the module)."""
    if settings.console_secret is not None:
        return settings.console_secret.get_secret_value().encode()
    keys = sorted(
        f"{k.name}\0{k.key.get_secret_value()}\0{'+'.join(sorted(k.scopes))}"
        for k in settings.parsed_api_keys()
    )
    material = "\n".join(keys).encode()
    return hmac.new(b"salespulse-console-session-v1", material, hashlib.sha256).digest()


def still_held(session: Session, keys: dict[str, frozenset[KeyScope]]) -> Session | None:
    """The session with the scopes its key still has; None once its key is gone."""
    scopes = keys.get(session.name)
    if scopes is None:
        return None
    return Session(session.name, session.scopes & scopes, session.csrf, session.expires)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of the console only (no open redirect)."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target if "\\" not in target else "/console"
    return "/console"
