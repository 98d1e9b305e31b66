"""Client-side conversation state, rebuilt from server events (sans-I/O: `apply(event)`, no awaits).

State rules, in one place:
1. Items are ordered by `previous_item_id`: absent -> append; explicit null or "root" -> first; a known id ->
   right after it; an unknown id -> append. An item seen again (added -> done, output_item.*) is updated in
   place and never moves.
2. Both spellings are accepted: GA `conversation.item.added/done` and beta `conversation.item.created`;
   content types `output_audio`/`audio` and `output_text`/`text`; beta event names `response.audio.delta`,
   `response.audio_transcript.*`, `response.text.*` (they arrive as RawEvent dicts).
3. Audio is counted, not stored: bytes -> ms with 48 bytes/ms (PCM16 24 kHz) or 8 bytes/ms (G.711).
4. Transcripts merge: deltas accumulate; a final transcript replaces them; a later item snapshot without a
   transcript never erases one already known.
5. At most one response is active: `response.created` sets it, `response.done` clears it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from voicelab.protocol.events import RawEvent
from voicelab.protocol.wire_audio import G711_BYTES_PER_MS, PCM16_BYTES_PER_MS, bytes_per_ms

_BETA_ALIASES = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
}
_AUDIO_PARTS = ("output_audio", "audio")
_TEXT_PARTS = ("output_text", "text")


def b64_decoded_len(data: str) -> int:
    """Length in bytes of base64 text once decoded, without decoding it."""
    n = len(data)
    return n * 3 // 4 - data.count("=", n - 2) if n > 1 else 0


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _as_dict(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", exclude_none=True)
    return obj


@dataclass
class Item:
    """One conversation item as the client knows it."""

    id: str
    type: str = "message"
    role: str | None = None
    status: str | None = None
    content: list[dict[str, Any]] = field(default_factory=list)
    previous_item_id: str | None = None
    response_id: str | None = None
    input_transcript: str | None = None  # user audio transcription (final, or deltas so far)
    input_transcript_done: bool = False
    transcript: str = ""  # assistant audio transcript (deltas, then final)
    text: str = ""  # assistant text output
    audio_bytes: int = 0  # assistant audio received
    bytes_per_ms: float = PCM16_BYTES_PER_MS
    truncated_ms: int | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str = ""
    output: str | None = None  # a function_call_output's output

    @property
    def audio_ms(self) -> float:
        """Milliseconds of assistant audio received for this item."""
        return self.audio_bytes / self.bytes_per_ms

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot (no audio bytes: only counts)."""
        return {
            "id": self.id,
            "type": self.type,
            "role": self.role,
            "status": self.status,
            "content": copy.deepcopy(self.content),
            "previous_item_id": self.previous_item_id,
            "response_id": self.response_id,
            "input_transcript": self.input_transcript,
            "transcript": self.transcript,
            "text": self.text,
            "audio_ms": self.audio_ms,
            "truncated_ms": self.truncated_ms,
            "call_id": self.call_id,
            "name": self.name,
            "arguments": self.arguments,
            "output": self.output,
        }


@dataclass
class Response:
    """One model response."""

    id: str
    status: str = "in_progress"
    status_details: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    output_item_ids: list[str] = field(default_factory=list)
    conversation_id: str | None = None
    metadata: dict[str, Any] | None = None

    @property
    def reason(self) -> str | None:
        """`status_details.reason` (turn_detected, client_cancelled, max_output_tokens, content_filter)."""
        return (self.status_details or {}).get("reason")


def place_item(order: list[str], item_id: str, previous: Any = ...) -> None:
    """Insert `item_id` into `order` where a server event's `previous_item_id` puts it: the one ordering rule
    of the client state (`Conversation`) and the tables (`voicelab.tables`).

    `...` (the event has no previous_item_id): at the end. None or "root" (the server sends null for the
    first item, also when a client inserted at "root"): at the front. A known id: right after it. An unknown
    id: at the end (its place cannot be known)."""
    if previous is ... or (order and previous == order[-1]):
        order.append(item_id)
    elif previous is None or previous == "root":
        order.insert(0, item_id)
    elif previous in order:
        order.insert(order.index(previous) + 1, item_id)
    else:
        order.append(item_id)


class Conversation:
    """Items and responses of one Realtime session, updated by `apply(server_event)`."""

    def __init__(self) -> None:
        self._items: dict[str, Item] = {}
        self._order: list[str] = []
        self.responses: dict[str, Response] = {}
        self.active_response_id: str | None = None
        self.session: dict[str, Any] = {}
        self.output_bytes_per_ms: float = PCM16_BYTES_PER_MS

    # -- queries -------------------------------------------------------------------------------------
    @property
    def items(self) -> list[Item]:
        """Items in conversation order."""
        return [self._items[i] for i in self._order]

    def get(self, item_id: str) -> Item | None:
        return self._items.get(item_id)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._order)

    def add_output_audio(self, item_id: str, response_id: str | None, nbytes: int) -> Item:
        """Count `nbytes` of assistant audio (wire format) for an item: the audio-delta fast path."""
        item = self._items.get(item_id) or self._ensure(item_id, role="assistant")
        if item.response_id is None:
            item.response_id = response_id
        item.audio_bytes += nbytes
        return item

    def add_assistant_delta(self, item_id: str, delta: str, text: bool = False) -> Item:
        """Append an assistant transcript delta (or, with text=True, an output_text delta): the same as
        applying `response.output_audio_transcript.delta` / `response.output_text.delta`, on the hot path."""
        item = self._items.get(item_id) or self._ensure(item_id, role="assistant")
        if text:
            item.text += delta
        else:
            item.transcript += delta
        return item

    # -- the one entry point -------------------------------------------------------------------------
    def apply(self, event: BaseModel | RawEvent | dict[str, Any]) -> Item | Response | None:
        """Update state from one server event; returns the item or response it touched (or None)."""
        if isinstance(event, RawEvent):
            event = event.data
        event_type = _get(event, "type")
        event_type = _BETA_ALIASES.get(event_type, event_type)
        handler = _HANDLERS.get(event_type)
        if handler is None:
            return None
        return handler(self, event)

    # -- items ---------------------------------------------------------------------------------------
    def _place(self, item_id: str, event: Any) -> None:
        if item_id in self._items:
            return
        explicit = _has_field(event, "previous_item_id")
        place_item(self._order, item_id, _get(event, "previous_item_id") if explicit else ...)

    def _ensure(self, item_id: str, **defaults: Any) -> Item:
        item = self._items.get(item_id)
        if item is None:
            item = Item(id=item_id, bytes_per_ms=self.output_bytes_per_ms, **defaults)
            self._items[item_id] = item
            self._order.append(item_id)
        return item

    def upsert_item(self, raw_item: Any, event: Any = None) -> Item:
        """Insert or update an item from a GA/beta item object (model or dict)."""
        data = _as_dict(raw_item)
        item_id = data.get("id")
        if not item_id:
            item_id = f"unknown_{len(self._items)}"
        is_new = item_id not in self._items
        if is_new:
            self._place(item_id, event if event is not None else {})
            self._items[item_id] = Item(id=item_id, bytes_per_ms=self.output_bytes_per_ms)
        item = self._items[item_id]
        if event is not None and _has_field(event, "previous_item_id"):
            item.previous_item_id = _get(event, "previous_item_id")
        item.type = data.get("type", item.type)
        item.role = data.get("role", item.role)
        item.status = data.get("status", item.status)
        for key in ("call_id", "name", "output"):
            if data.get(key) is not None:
                setattr(item, key, data[key])
        if data.get("arguments"):
            item.arguments = data["arguments"]
        content = data.get("content")
        if content is not None:
            item.content = [dict(part) for part in content]
            self._merge_content(item)
        return item

    def _merge_content(self, item: Item) -> None:
        for part in item.content:
            kind = part.get("type")
            transcript = part.get("transcript")
            if kind == "input_audio" and transcript:
                item.input_transcript = transcript
            elif kind in _AUDIO_PARTS and transcript:
                item.transcript = transcript
            elif kind in _TEXT_PARTS and part.get("text"):
                item.text = part["text"]

    def _on_item(self, event: Any) -> Item:
        return self.upsert_item(_get(event, "item"), event)

    def _on_item_deleted(self, event: Any) -> Item | None:
        item_id = _get(event, "item_id")
        item = self._items.pop(item_id, None)
        if item is not None:
            self._order.remove(item_id)
        return item

    def _on_item_truncated(self, event: Any) -> Item:
        item = self._ensure(_get(event, "item_id"))
        item.truncated_ms = _get(event, "audio_end_ms")
        return item

    def _on_input_transcript_delta(self, event: Any) -> Item:
        item = self._ensure(_get(event, "item_id"), role="user")
        if not item.input_transcript_done:
            item.input_transcript = (item.input_transcript or "") + (_get(event, "delta") or "")
        return item

    def _on_input_transcript_completed(self, event: Any) -> Item:
        item = self._ensure(_get(event, "item_id"), role="user")
        item.input_transcript = _get(event, "transcript") or ""
        item.input_transcript_done = True
        for part in item.content:
            if part.get("type") == "input_audio":
                part["transcript"] = item.input_transcript
        return item

    def _on_input_transcript_failed(self, event: Any) -> Item:
        item = self._ensure(_get(event, "item_id"), role="user")
        item.input_transcript_done = True
        return item

    # -- responses -----------------------------------------------------------------------------------
    def _upsert_response(self, raw: Any) -> Response:
        data = _as_dict(raw) or {}
        response_id = data.get("id") or "unknown_response"
        response = self.responses.get(response_id)
        if response is None:
            response = self.responses[response_id] = Response(id=response_id)
        if data.get("status"):
            response.status = data["status"]
        for key in ("status_details", "usage", "conversation_id", "metadata"):
            if data.get(key) is not None:
                setattr(response, key, data[key])
        for out in data.get("output") or []:
            if out.get("id"):
                item = self.upsert_item(out)
                item.response_id = response_id
                if out["id"] not in response.output_item_ids:
                    response.output_item_ids.append(out["id"])
        return response

    def _on_response_created(self, event: Any) -> Response:
        response = self._upsert_response(_get(event, "response"))
        self.active_response_id = response.id
        return response

    def _on_response_done(self, event: Any) -> Response:
        response = self._upsert_response(_get(event, "response"))
        if self.active_response_id in (None, response.id):
            self.active_response_id = None
        return response

    def _on_output_item(self, event: Any) -> Item:
        item = self.upsert_item(_get(event, "item"), None)
        response_id = _get(event, "response_id")
        item.response_id = response_id
        response = self.responses.get(response_id)
        if response is None and response_id:
            response = self.responses[response_id] = Response(id=response_id)
        if response is not None and item.id not in response.output_item_ids:
            response.output_item_ids.append(item.id)
        return item

    def _on_content_part(self, event: Any) -> Item:
        item = self._ensure(_get(event, "item_id"), role="assistant")
        index = _get(event, "content_index") or 0
        part = _as_dict(_get(event, "part")) or {}
        while len(item.content) <= index:
            item.content.append({})
        merged = {**item.content[index], **{k: v for k, v in part.items() if v not in (None, "")}}
        item.content[index] = merged
        self._merge_content(item)
        return item

    def _on_audio_delta(self, event: Any) -> Item:
        item = self._ensure(_get(event, "item_id"), role="assistant")
        item.response_id = item.response_id or _get(event, "response_id")
        item.audio_bytes += b64_decoded_len(_get(event, "delta") or "")
        return item

    def _on_transcript_delta(self, event: Any) -> Item:
        item = self._ensure(_get(event, "item_id"), role="assistant")
        item.transcript += _get(event, "delta") or ""
        return item

    def _on_transcript_done(self, event: Any) -> Item:
        item = self._ensure(_get(event, "item_id"), role="assistant")
        item.transcript = _get(event, "transcript") or item.transcript
        return item

    def _on_text_delta(self, event: Any) -> Item:
        item = self._ensure(_get(event, "item_id"), role="assistant")
        item.text += _get(event, "delta") or ""
        return item

    def _on_text_done(self, event: Any) -> Item:
        item = self._ensure(_get(event, "item_id"), role="assistant")
        item.text = _get(event, "text") or item.text
        return item

    def _on_arguments_delta(self, event: Any) -> Item:
        item = self._ensure(_get(event, "item_id"), type="function_call")
        item.call_id = item.call_id or _get(event, "call_id")
        item.arguments += _get(event, "delta") or ""
        return item

    def _on_arguments_done(self, event: Any) -> Item:
        item = self._ensure(_get(event, "item_id"), type="function_call")
        item.call_id = _get(event, "call_id") or item.call_id
        item.name = _get(event, "name") or item.name
        item.arguments = _get(event, "arguments") or item.arguments
        return item

    # -- session -------------------------------------------------------------------------------------
    def _on_session(self, event: Any) -> None:
        self.session = _as_dict(_get(event, "session")) or {}
        output = (self.session.get("audio") or {}).get("output") or {}
        if output.get("format") is not None:
            self.output_bytes_per_ms = bytes_per_ms(output["format"])
        return None


def _has_field(event: Any, name: str) -> bool:
    if isinstance(event, dict):
        return name in event
    fields_set = getattr(event, "model_fields_set", None)
    return fields_set is not None and name in fields_set


_HANDLERS: dict[str, Any] = {
    "session.created": Conversation._on_session,
    "session.updated": Conversation._on_session,
    "conversation.item.added": Conversation._on_item,
    "conversation.item.created": Conversation._on_item,
    "conversation.item.done": Conversation._on_item,
    "conversation.item.retrieved": Conversation._on_item,
    "conversation.item.deleted": Conversation._on_item_deleted,
    "conversation.item.truncated": Conversation._on_item_truncated,
    "conversation.item.input_audio_transcription.delta": Conversation._on_input_transcript_delta,
    "conversation.item.input_audio_transcription.completed": Conversation._on_input_transcript_completed,
    "conversation.item.input_audio_transcription.failed": Conversation._on_input_transcript_failed,
    "response.created": Conversation._on_response_created,
    "response.done": Conversation._on_response_done,
    "response.output_item.added": Conversation._on_output_item,
    "response.output_item.done": Conversation._on_output_item,
    "response.content_part.added": Conversation._on_content_part,
    "response.content_part.done": Conversation._on_content_part,
    "response.output_audio.delta": Conversation._on_audio_delta,
    "response.output_audio_transcript.delta": Conversation._on_transcript_delta,
    "response.output_audio_transcript.done": Conversation._on_transcript_done,
    "response.output_text.delta": Conversation._on_text_delta,
    "response.output_text.done": Conversation._on_text_done,
    "response.function_call_arguments.delta": Conversation._on_arguments_delta,
    "response.function_call_arguments.done": Conversation._on_arguments_done,
}

__all__ = [
    "G711_BYTES_PER_MS",
    "PCM16_BYTES_PER_MS",
    "Conversation",
    "Item",
    "Response",
    "b64_decoded_len",
    "bytes_per_ms",
]
