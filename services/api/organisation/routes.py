"""``GET /v1/organisation``: the settings every page formats and cuts windows with."""

from __future__ import annotations

from services.api.common.auth import READ_ACCESS
from services.api.common.database import api_router
from services.api.common.params import AppSettings
from services.api.organisation.schemas import Named, OrganisationOut
from shared import i18n
from shared.pacing import WEEKDAYS

router = api_router(prefix="/v1", tags=["organisation"])


@router.get(
    "/organisation",
    response_model=OrganisationOut,
    dependencies=READ_ACCESS,
    summary="The organisation's settings: time zone, working days, currency, locale",
)
async def organisation(settings: AppSettings) -> OrganisationOut:
    workdays = settings.working_days
    return OrganisationOut(
        timezone=settings.timezone,
        week_start=settings.week_start.value,
        workdays=[WEEKDAYS[d] for d in sorted(workdays)] if workdays is not None else [],
        currency=settings.currency,
        locale=settings.locale,
        language=settings.language,
        windows=[Named(name=n, labels=i18n.labels(i18n.WINDOWS, n)) for n in i18n.WINDOWS],
        periods=[Named(name=n, labels=i18n.labels(i18n.PERIODS, n)) for n in i18n.PERIODS],
    )
