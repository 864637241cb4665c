# One image for every shape of SalesPulse:
#   salespulse serve                  a small floor: one process (ingest :8001, API :8000, KPI and
#                                     background jobs), no Kafka, on SQLite in /data (the default)
#                                     or on PostgreSQL (SALESPULSE_DATABASE_URL); migrates at start
#   salespulse ingest | kpi | api     the Kafka shape, one service per container
# Its HEALTHCHECK asks /readyz of whichever of them the container runs (services/healthcheck.py).
FROM python:3.11-slim-trixie AS build
RUN pip install --no-cache-dir "uv>=0.5"
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY shared ./shared
COPY services ./services
COPY alembic.ini ./
RUN uv sync --frozen --no-dev

FROM python:3.11-slim-trixie
# pg_dump, pg_restore and psql, for backups and restores of a PostgreSQL database from the
# image: the major of the compose files' postgres image (a dump needs a client at least as new).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-17 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 salespulse \
    && mkdir /data \
    && chown salespulse:salespulse /data
WORKDIR /app
COPY --from=build /app /app
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 \
    SALESPULSE_INGEST_HOST=0.0.0.0 SALESPULSE_API_HOST=0.0.0.0 SALESPULSE_KPI_HOST=0.0.0.0 \
    SALESPULSE_DATABASE_URL=sqlite:////data/salespulse.db
# The SQLite database (and its -wal); mount a named volume here, or a folder owned by uid 10001.
VOLUME /data
EXPOSE 8000 8001
USER salespulse
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
    CMD ["python", "-m", "services.healthcheck"]
ENTRYPOINT ["salespulse"]
CMD ["serve"]
