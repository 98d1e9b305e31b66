"""Sans-I/O Realtime GA protocol: parse server events, build client events, track the conversation, and the
client side of a connection (`ClientProtocol`, loaded on first use: it builds on voicelab.config and
voicelab.events, which import this package)."""

from typing import TYPE_CHECKING, Any

from voicelab.protocol.conversation import (
    G711_BYTES_PER_MS,
    PCM16_BYTES_PER_MS,
    Conversation,
    Item,
    Response,
    b64_decoded_len,
    bytes_per_ms,
)
from voicelab.protocol.events import (
    CLIENT_EVENT_TYPES,
    SERVER_EVENT_TYPES,
    RawEvent,
    client_event,
    dumps_event,
    event_to_dict,
    loads_event,
    parse_server_dict,
    parse_server_event,
    validate_client_event,
)
from voicelab.protocol.ids import new_event_id, new_item_id

if TYPE_CHECKING:
    from voicelab.protocol.client import ClientProtocol as ClientProtocol

__all__ = [
    "CLIENT_EVENT_TYPES",
    "G711_BYTES_PER_MS",
    "PCM16_BYTES_PER_MS",
    "SERVER_EVENT_TYPES",
    "ClientProtocol",
    "Conversation",
    "Item",
    "RawEvent",
    "Response",
    "b64_decoded_len",
    "bytes_per_ms",
    "client_event",
    "dumps_event",
    "event_to_dict",
    "loads_event",
    "new_event_id",
    "new_item_id",
    "parse_server_dict",
    "parse_server_event",
    "validate_client_event",
]


def __getattr__(name: str) -> Any:
    if name == "ClientProtocol":
        from voicelab.protocol.client import ClientProtocol

        return ClientProtocol
    raise AttributeError(f"module 'voicelab.protocol' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
