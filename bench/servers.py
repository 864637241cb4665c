"""Servers under test, each run by the same uvicorn settings: `python -m bench.servers NAME PORT`.

- bare: a FastAPI endpoint that reads the body and answers 202 (the floor: HTTP + framework)
- ingest-memory: the real ingest app on the in-memory bus (verification, parsing, publishing)
- ingest-kafka: the real ingest app on Kafka (SALESPULSE_KAFKA_BOOTSTRAP_SERVERS)
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI, Request, Response

from services.ingest.app import create_app
from shared.bus.memory import MemoryBus
from shared.observability import NO_TELEMETRY, configure_logging
from shared.runtime import tune_gc_for_batches
from shared.settings import Settings


def bare_app() -> FastAPI:
    app = FastAPI(telemetry=NO_TELEMETRY)  # as the services' apps

    @app.post("/webhooks/events")
    async def accept(request: Request) -> Response:
        await request.body()
        return Response(b'{"accepted":1}', status_code=202, media_type="application/json")

    return app


def main(name: str, port: int) -> None:
    configure_logging("WARNING")
    settings = Settings()
    if name == "bare":
        app = bare_app()
    elif name == "ingest-memory":
        app = create_app(settings.model_copy(update={"kafka_bootstrap_servers": None}), MemoryBus())
    elif name == "ingest-kafka":
        app = create_app(settings)
    else:
        raise SystemExit(f"unknown server {name}")
    tune_gc_for_batches()  # every server as `salespulse ingest` runs (the bare one too)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        log_config=None,
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
