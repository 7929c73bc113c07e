"""Bus adapters: one interface (`Bus`), two backends (Kafka, Redis Streams). No Django."""

from eventhub.bus.base import (
    Bus,
    BusError,
    BusTimeout,
    BusUnavailable,
    Found,
    GroupConsumer,
    GroupInfo,
    Headers,
    OutgoingRecord,
    PartitionLag,
    PoisonRule,
    Position,
    Published,
    Record,
    RecordTooLarge,
    TopicInfo,
    UnknownTopic,
    Watermark,
)

__all__ = [
    "Bus",
    "BusError",
    "BusTimeout",
    "BusUnavailable",
    "Found",
    "GroupConsumer",
    "GroupInfo",
    "Headers",
    "OutgoingRecord",
    "PartitionLag",
    "PoisonRule",
    "Position",
    "Published",
    "Record",
    "RecordTooLarge",
    "TopicInfo",
    "UnknownTopic",
    "Watermark",
    "open_bus",
]


def open_bus(kind: str, **options) -> Bus:
    """Build an adapter; it connects lazily, on first use.

    kafka: open_bus("kafka", bootstrap_servers="host:port")
    redis: open_bus("redis", url="redis://host:port/0")
    """
    if kind == "kafka":
        from eventhub.bus.kafka import KafkaBus

        return KafkaBus(**options)
    if kind == "redis":
        from eventhub.bus.redis_streams import RedisBus

        return RedisBus(**options)
    raise ValueError(f"unknown bus kind {kind!r}: expected 'kafka' or 'redis'")
