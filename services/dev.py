"""The demo of ``make run`` (``salespulse serve --demo``): demo secrets for whatever is unset,
the banner printed at start, and the simulator's secrets."""

from __future__ import annotations

import base64
import secrets

from pydantic import SecretStr

from services.simulator import DEMO_CONTEST, Secrets
from shared.settings import KeyScope, Settings, masked_url


def with_demo_secrets(settings: Settings) -> tuple[Settings, str | None]:
    """Fill every unset secret with a fresh demo value; return (settings, an admin key).

    Demo values fill only what is unset: a setting given explicitly (in the environment, even
    ``SALESPULSE_ALLOW_PRIVATE_CHANNELS=0``) always wins."""
    token = secrets.token_urlsafe(16)
    demo = {
        "webhook_secret": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        # named: the console says who is signed in, and corrections who made them
        "api_keys": f"admin@demo-{secrets.token_urlsafe(12)}:read+admin,"
        f"wallboard@wall-{secrets.token_urlsafe(9)}:read",
        "twilio_auth_token": f"demo-twilio-{token}",
        "aircall_token": f"demo-aircall-{token}",
        "hubspot_client_secret": f"demo-hubspot-{token}",
        "pipedrive_password": f"demo-pipedrive-{token}",
    }
    filled = settings.model_copy(
        update={
            "dev_mode": True,
            "allow_private_channels": settings.allow_private_channels
            if "allow_private_channels" in settings.model_fields_set
            else True,
            "pipedrive_user": settings.pipedrive_user or "pipedrive",
            **{name: getattr(settings, name) or SecretStr(value) for name, value in demo.items()},
        }
    )
    admins = [
        k.key.get_secret_value() for k in filled.parsed_api_keys() if KeyScope.admin in k.scopes
    ]
    return filled, admins[0] if admins else None


def simulator_secrets(settings: Settings) -> Secrets:
    def plain(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value else None

    password = plain(settings.pipedrive_password)
    return Secrets(
        standard=plain(settings.webhook_secret),
        twilio=plain(settings.twilio_auth_token),
        aircall=plain(settings.aircall_token),
        hubspot=plain(settings.hubspot_client_secret),
        pipedrive=(settings.pipedrive_user, password)
        if settings.pipedrive_user and password
        else None,
    )


def _read_key(settings: Settings) -> str:
    """A key for the TV's URL: read-only if there is one."""
    keys = settings.parsed_api_keys()
    read_only = [k for k in keys if k.scopes == {KeyScope.read}]
    return (read_only or keys)[0].key.get_secret_value() if keys else "<read key>"


def banner(settings: Settings, admin_key: str | None) -> str:
    """What a newcomer needs at start: URLs that work as printed (keys in them where a browser
    needs one), only for what runs, and every secret a provider must be given."""
    api = f"http://{settings.api_host}:{settings.api_port}"
    ingest = f"http://{settings.ingest_host}:{settings.ingest_port}"
    read = _read_key(settings)
    lines = [
        "SalesPulse (one process; database " + masked_url(settings.database_url) + ")",
        f"  console    {api}/console  (sign in with the admin key below)",
        f"  wallboard  {api}/wallboard?key={read}&metrics=calls_total,deals_won,revenue"
        "&windows=today,this_week",
    ]
    if settings.simulate:
        lines.append(
            f"  contest    {api}/wallboard?key={read}&contest={DEMO_CONTEST}"
            "  (a call blitz the simulator runs, round after round)"
        )
    lines += [
        f"  API docs   {api}/docs  (Authorize with the admin key below)",
        f"  a board    {api}/v1/leaderboards/calls_total?window=today&key={read}",
        f"  admin key  {admin_key or '(none with the admin scope)'}",
        f"  read key   {read}",
        "  webhooks   " + ingest + "/webhooks/<provider>, with these secrets:",
        *(f"    {name:<34} {value}" for name, value in _provider_secrets(settings)),
        "  simulator  "
        + ("on (SALESPULSE_SIMULATE=0 turns it off)" if settings.simulate else "off"),
        "Ctrl-C stops.",
    ]
    return "\n".join(lines)


def _provider_secrets(settings: Settings) -> list[tuple[str, str]]:
    """Each provider's route and the secret it needs, as set (demo values in dev mode)."""

    def plain(value: SecretStr | None) -> str:
        return value.get_secret_value() if value else "(unset: route off)"

    pipedrive = f"{settings.pipedrive_user or '(unset)'} / {plain(settings.pipedrive_password)}"
    return [
        ("events    SALESPULSE_WEBHOOK_SECRET", plain(settings.webhook_secret)),
        ("twilio    SALESPULSE_TWILIO_AUTH_TOKEN", plain(settings.twilio_auth_token)),
        ("aircall   SALESPULSE_AIRCALL_TOKEN", plain(settings.aircall_token)),
        ("hubspot   SALESPULSE_HUBSPOT_CLIENT_SECRET", plain(settings.hubspot_client_secret)),
        ("pipedrive SALESPULSE_PIPEDRIVE_USER/PASSWORD", pipedrive),
    ]
