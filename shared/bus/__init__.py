"""The bus the services talk through; ``build_bus`` picks Kafka, or the database's own log.

Without Kafka (``SALESPULSE_KAFKA_BOOTSTRAP_SERVERS`` unset) the bus is a table of the database
(``shared.bus.log``): durable, so ``salespulse serve`` loses no accepted event. The in-memory
bus (``shared.bus.memory``) is for tests that want no database under the bus.
"""

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bus.base import Bus, BusUnavailable, Consumer, OffsetsLoader, OutgoingRecord, Record
from shared.settings import Settings


def build_bus(
    settings: Settings, client_id: str = "salespulse", db: AsyncEngine | None = None
) -> Bus:
    """Kafka if configured, else the log in ``db`` (or in a database engine of its own, built
    from ``settings.database_url`` and disposed with the bus)."""
    if settings.kafka_bootstrap_servers:
        from shared.bus.kafka import KafkaBus

        return KafkaBus(
            settings.kafka_bootstrap_servers,
            partitions=settings.kafka_partitions,
            replication_factor=settings.kafka_replication_factor,
            client_id=client_id,
            publish_timeout_s=settings.publish_timeout_seconds,
        )
    from shared.bus.log import LogBus
    from shared.db.engine import create_engine

    owns = db is None
    engine = create_engine(settings.database_url, pool_pre_ping=True) if db is None else db
    return LogBus(engine, publish_timeout_s=settings.publish_timeout_seconds, owns_db=owns)


__all__ = [
    "Bus",
    "BusUnavailable",
    "Consumer",
    "OffsetsLoader",
    "OutgoingRecord",
    "Record",
    "build_bus",
]
