"""Parse server events and build client events (Realtime GA), with no I/O.

Server events are validated with the `openai.types.realtime` discriminated union. Anything the union does
not know (an unknown `type`, or a known type whose payload does not validate) comes back as a
`RawEvent` holding the original dict, so a newer or quirkier server never crashes the client.
Text that is not a JSON object raises `RemoteProtocolError` (the peer's fault); a client event that does
not validate raises `LocalProtocolError` (the caller's fault).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from orjson import JSONDecodeError as _OrjsonError
from orjson import loads as _orjson_loads
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from voicelab.errors import LocalProtocolError, RemoteProtocolError
from voicelab.protocol.ids import new_event_id

ServerEvent = BaseModel  # one of the openai.types.realtime server event models

SERVER_EVENT_TYPES: frozenset[str] = frozenset()  # filled below from the union


@dataclass(frozen=True)
class RawEvent:
    """A server event voicelab could not type: kept verbatim. `problem` says why; None means it is fine
    but untyped: an unknown type, or a content spelling the openai models reject (see parse_server_dict)."""

    type: str
    data: dict[str, Any]
    problem: str | None = None


@lru_cache(maxsize=1)
def _server_adapter() -> TypeAdapter[Any]:
    return TypeAdapter(Annotated[RealtimeServerEvent, Field(discriminator="type")])


@lru_cache(maxsize=1)
def _client_adapter() -> TypeAdapter[Any]:
    return TypeAdapter(Annotated[RealtimeClientEvent, Field(discriminator="type")])


def _literal_types(union: Any) -> frozenset[str]:
    from typing import get_args

    members = get_args(get_args(union)[0]) if get_args(union) else ()
    types: set[str] = set()
    for model in members:
        field = model.model_fields.get("type")
        if field is not None:
            types.update(get_args(field.annotation))
    return frozenset(types)


SERVER_EVENT_TYPES = _literal_types(RealtimeServerEvent)
CLIENT_EVENT_TYPES: frozenset[str] = _literal_types(RealtimeClientEvent)


_scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _no_float(value: Any) -> bool:
    """True when a decoded JSON value holds no float anywhere (checked without recursion)."""
    stack = [value]
    while stack:
        node = stack.pop()
        for child in node.values() if type(node) is dict else node:
            kind = type(child)
            if kind is float:
                return False
            if kind is dict or kind is list:
                stack.append(child)
    return True


def decode_frame(text: str) -> Any:
    """`json.loads(text)` for one frame, 2-3x faster: orjson parses it, and its value is kept when it holds
    no float (orjson reads an integer beyond 64 bits as a float; json keeps it exact). Every other frame
    (with a float, or one orjson refuses: NaN/Infinity, lone surrogates, nesting past 1024, invalid JSON)
    goes through the json module's own C scanner, so it decodes, or fails with ValueError, as before. Both
    keep the last of duplicate keys."""
    try:
        value = _orjson_loads(text)
    except _OrjsonError:
        pass
    else:
        kind = type(value)
        if kind is dict or kind is list:
            if _no_float(value):
                return value
        elif kind is not float:
            return value
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


MAX_EVENT_DEPTH = 64  # Realtime events nest a few levels (response.output[].content[]); JSON schemas more


def json_too_deep(value: Any, limit: int = MAX_EVENT_DEPTH) -> bool:
    """Whether a decoded JSON value nests lists/objects more than `limit` levels (checked without recursion,
    so any depth is safe to ask about)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_frame(text: str, max_depth: int = MAX_EVENT_DEPTH) -> Any:
    """Decode one text frame. Any failure (bad JSON, a number too long, nesting too deep for the parser or
    deeper than `max_depth`, running out of memory) raises ValueError with a message naming the problem:
    no frame can raise anything else."""
    try:
        value = decode_frame(text)
    except RecursionError:
        raise ValueError(f"the JSON is nested too deeply (more than {max_depth} levels)") from None
    except MemoryError:
        raise ValueError("the JSON is too large to decode") from None
    except ValueError:
        raise
    except Exception as exc:  # the json module documents ValueError only; never let another one out
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    # a short document with at most max_depth brackets cannot nest deeper: it skips the walk (counting is C
    # speed; brackets inside strings only make a walk happen that was not needed). Long frames (audio appends
    # and deltas) are flat, so walking them is cheaper than counting their characters.
    maybe_deep = len(text) > 4096 or text.count("{") + text.count("[") > max_depth
    if maybe_deep and json_too_deep(value, max_depth):
        raise ValueError(f"the JSON is nested too deeply (more than {max_depth} levels)")
    return value


def loads_event(text: str | bytes) -> dict[str, Any]:
    """Decode one frame into an event dict; RemoteProtocolError if it is not a JSON object with a `type`."""
    try:
        data = parse_frame(text if isinstance(text, str) else text.decode("utf-8"))
    except ValueError as exc:
        preview = text[:80] if isinstance(text, str) else repr(text[:80])
        raise RemoteProtocolError(
            f"the server sent a frame that is not JSON ({exc}): {preview!r}. Each Realtime frame must be one "
            "JSON event; check that the URL points at a Realtime endpoint."
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise RemoteProtocolError(
            f"the server sent JSON that is not an event object with a string 'type': {str(data)[:80]!r}. "
            "Check that the URL points at a Realtime endpoint."
        )
    return data


def parse_server_dict(data: dict[str, Any]) -> BaseModel | RawEvent:
    """Type an event dict with the openai models; unknown or invalid payloads become a RawEvent."""
    event_type = data["type"]
    if event_type not in SERVER_EVENT_TYPES:
        return RawEvent(event_type, data)
    try:
        return _server_adapter().validate_python(data)
    except ValidationError as exc:
        problem = _short_validation_message(exc)
    respelled = _respell_content(data)
    if respelled is not None:
        try:
            _server_adapter().validate_python(respelled)
        except ValidationError:
            pass
        else:  # valid but for the part spelling: accepted as is (PROTOCOL §15.1)
            return RawEvent(event_type, data)
    return RawEvent(event_type, data, problem=problem)


# Content and part types come in two spellings (PROTOCOL §15.1): the openai 3.x models take only
# output_audio/output_text in items and only audio/text in `response.content_part.*` parts.
_ITEM_SPELLING = {"audio": "output_audio", "text": "output_text"}
_PART_SPELLING = {"output_audio": "audio", "output_text": "text"}


def _respell_part(part: Any, spelling: dict[str, str] = _PART_SPELLING) -> Any:
    if isinstance(part, dict) and part.get("type") in spelling:
        return {**part, "type": spelling[part["type"]]}
    return part


def _respell_item(item: Any) -> Any:
    if isinstance(item, dict) and isinstance(item.get("content"), list):
        return {**item, "content": [_respell_part(part, _ITEM_SPELLING) for part in item["content"]]}
    return item


def _respell_content(data: dict[str, Any]) -> dict[str, Any] | None:
    """A copy of `data` in the spellings the openai models take, or None when nothing differs."""
    out = dict(data)
    if "part" in data:
        out["part"] = _respell_part(data["part"])
    if "item" in data:
        out["item"] = _respell_item(data["item"])
    response = data.get("response")
    if isinstance(response, dict) and isinstance(response.get("output"), list):
        out["response"] = {**response, "output": [_respell_item(item) for item in response["output"]]}
    return out if out != data else None


DELTA_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
        "response.output_text.delta",
    }
)


def is_valid_delta(data: dict[str, Any]) -> bool:
    """Cheap validation of the high-rate delta events (DELTA_EVENT_TYPES), without pydantic.

    Their openai models share one shape: `event_id`, `response_id`, `item_id`, `delta` (str) and
    `output_index`, `content_index` (int), extra fields allowed. True means the openai model accepts `data`
    as is; False means "not sure" (a wrong or coercible type): validate it fully with `parse_server_dict`.
    """
    return (
        type(data.get("delta")) is str
        and type(data.get("item_id")) is str
        and type(data.get("response_id")) is str
        and type(data.get("event_id")) is str
        and type(data.get("content_index")) is int
        and type(data.get("output_index")) is int
    )


def parse_server_event(text: str | bytes) -> BaseModel | RawEvent:
    """Parse one server frame: a typed openai model, or a RawEvent. Raises RemoteProtocolError on bad JSON."""
    return parse_server_dict(loads_event(text))


def _short_validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def client_event(event_type: str, *, event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """Build and validate a client event dict, e.g. `client_event("response.create", response={...})`.

    Fields set to None are dropped. Raises LocalProtocolError naming the bad field if the GA client union
    rejects the event.
    """
    event: dict[str, Any] = {"type": event_type, "event_id": event_id or new_event_id()}
    event.update({k: v for k, v in fields.items() if v is not None})
    validate_client_event(event)
    return event


def validate_client_event(event: dict[str, Any]) -> None:
    """Raise LocalProtocolError unless `event` is a valid GA client event."""
    if event.get("type") not in CLIENT_EVENT_TYPES:
        raise LocalProtocolError(
            f"{event.get('type')!r} is not a Realtime GA client event type; use one of "
            f"{', '.join(sorted(CLIENT_EVENT_TYPES))}."
        )
    try:
        _client_adapter().validate_python(event)
    except ValidationError as exc:
        raise LocalProtocolError(
            f"invalid {event['type']} event: {_short_validation_message(exc)}. Fix the field named above "
            "(see openai.types.realtime for the GA shape)."
        ) from exc


def dumps_event(event: dict[str, Any]) -> str:
    """Encode a client event dict as compact JSON text."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def event_to_dict(event: BaseModel | RawEvent | dict[str, Any]) -> dict[str, Any]:
    """The wire dict of a typed, raw or dict event."""
    if isinstance(event, RawEvent):
        return event.data
    if isinstance(event, dict):
        return event
    return event.model_dump(mode="json", exclude_unset=True)


__all__ = [
    "CLIENT_EVENT_TYPES",
    "DELTA_EVENT_TYPES",
    "MAX_EVENT_DEPTH",
    "SERVER_EVENT_TYPES",
    "RawEvent",
    "ServerEvent",
    "client_event",
    "decode_frame",
    "dumps_event",
    "event_to_dict",
    "is_valid_delta",
    "json_too_deep",
    "loads_event",
    "parse_frame",
    "parse_server_dict",
    "parse_server_event",
    "validate_client_event",
]
