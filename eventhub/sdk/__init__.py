"""The EventHub service SDK: validated publishing and at-least-once consuming.

Django-free: any Python service uses it with just the bus adapters.

    from eventhub.bus import open_bus
    from eventhub.sdk import Consumer, LocalSchemas, Producer

See docs/sdk.md.
"""

from eventhub.sdk.consumer import (
    Consumer,
    Event,
    Handler,
    HandlerFailed,
    NoHandler,
    RedeliveredTooOften,
)
from eventhub.sdk.headers import dead_letter_topic, heartbeat_topic
from eventhub.sdk.heartbeat import Heartbeat
from eventhub.sdk.payload import PayloadDecodeError, decode_json
from eventhub.sdk.producer import NoTopic, Producer
from eventhub.sdk.schemas import (
    EventSchema,
    InvalidPayload,
    InvalidSchema,
    LocalSchemas,
    PayloadError,
    RegistrySchemas,
    SchemaError,
    SchemaRegistryUnavailable,
    SchemaSource,
    UnknownEventType,
    Validators,
)

__all__ = [
    "Consumer",
    "Event",
    "EventSchema",
    "Handler",
    "HandlerFailed",
    "Heartbeat",
    "InvalidPayload",
    "InvalidSchema",
    "LocalSchemas",
    "NoHandler",
    "NoTopic",
    "PayloadDecodeError",
    "PayloadError",
    "Producer",
    "RedeliveredTooOften",
    "RegistrySchemas",
    "SchemaError",
    "SchemaRegistryUnavailable",
    "SchemaSource",
    "UnknownEventType",
    "Validators",
    "dead_letter_topic",
    "decode_json",
    "heartbeat_topic",
]
