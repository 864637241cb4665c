"""The bus the services talk through; ``build_bus`` picks Kafka or in-memory from the settings."""

from shared.bus.base import Bus, BusUnavailable, Consumer, OffsetsLoader, OutgoingRecord, Record
from shared.settings import Settings


def build_bus(settings: Settings, client_id: str = "salespulse") -> Bus:
    if settings.kafka_bootstrap_servers:
        from shared.bus.kafka import KafkaBus

        return KafkaBus(
            settings.kafka_bootstrap_servers,
            partitions=settings.kafka_partitions,
            replication_factor=settings.kafka_replication_factor,
            client_id=client_id,
            publish_timeout_s=settings.publish_timeout_seconds,
        )
    from shared.bus.memory import MemoryBus

    return MemoryBus(partitions=settings.kafka_partitions)


__all__ = [
    "Bus",
    "BusUnavailable",
    "Consumer",
    "OffsetsLoader",
    "OutgoingRecord",
    "Record",
    "build_bus",
]
