# One image for the three services: `salespulse ingest | kpi | api`.
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir "uv>=0.5"
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY shared ./shared
COPY services ./services
COPY alembic.ini ./
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
RUN useradd --system --uid 10001 salespulse
WORKDIR /app
COPY --from=build /app /app
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 \
    SALESPULSE_INGEST_HOST=0.0.0.0 SALESPULSE_API_HOST=0.0.0.0 SALESPULSE_KPI_HOST=0.0.0.0
USER salespulse
ENTRYPOINT ["salespulse"]
CMD ["api"]
