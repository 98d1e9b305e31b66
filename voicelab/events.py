"""App events: what a Session yields to the app, its listeners and its recording.

Every event is a small frozen dataclass subclassing `AppEvent`, with a `type: ClassVar[str]` and
`to_record()` (a JSON-ready dict without audio bytes). Other packages (voicelab.agents) add their own event
classes the same way:

    @dataclass(frozen=True)
    class Handoff(AppEvent):
        type: ClassVar[str] = "handoff"
        from_agent: str
        to_agent: str
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from voicelab.audio.b64 import b64decode
from voicelab.protocol.conversation import Item, b64_decoded_len

_new_object = object.__new__


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": len(value)}
    if isinstance(value, Item):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


@dataclass(frozen=True)
class AppEvent:
    """Base class of every app event."""

    type: ClassVar[str] = "app_event"
    recorded: ClassVar[bool] = True  # False: too frequent or already in the recording as a wire event

    def to_record(self) -> dict[str, Any]:
        """The event's fields as JSON-ready data; bytes are replaced by their length."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class AudioChunk(AppEvent):
    """Assistant audio to play: `data` is PCM16 24 kHz mono bytes (G.711 sessions are decoded for you).

    `payload` holds the bytes, or the base64 text as received: it is decoded on the first `data` access,
    so consumers that ignore audio never pay for decoding.
    """

    type: ClassVar[str] = "audio"
    recorded: ClassVar[bool] = False  # the bytes live in output.wav; the wire event is recorded
    item_id: str
    content_index: int
    response_id: str
    payload: bytes | str = field(repr=False)

    @property
    def data(self) -> bytes:
        if isinstance(self.payload, str):
            object.__setattr__(self, "payload", b64decode(self.payload))
        return self.payload  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        return b64_decoded_len(self.payload) if isinstance(self.payload, str) else len(self.payload)

    @property
    def duration_ms(self) -> float:
        return self.nbytes / 48.0

    @classmethod
    def _new(cls, item_id: str, content_index: int, response_id: str, payload: bytes | str) -> AudioChunk:
        """The session's hot-path constructor: the same object as `AudioChunk(...)`, built without the
        frozen dataclass's per-field `object.__setattr__` (about half the cost, per audio delta)."""
        event = _new_object(cls)
        fields = event.__dict__
        fields["item_id"] = item_id
        fields["content_index"] = content_index
        fields["response_id"] = response_id
        fields["payload"] = payload
        return event

    def to_record(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "content_index": self.content_index,
            "response_id": self.response_id,
            "data": {"$bytes": self.nbytes},
        }


@dataclass(frozen=True)
class AudioEnd(AppEvent):
    type: ClassVar[str] = "audio_end"
    item_id: str
    content_index: int = 0


@dataclass(frozen=True)
class AudioInterrupted(AppEvent):
    """Stop local playback now: the user barged in (or `interrupt()` was called)."""

    type: ClassVar[str] = "audio_interrupted"
    item_id: str
    content_index: int = 0
    played_ms: float = 0.0


@dataclass(frozen=True)
class TranscriptDelta(AppEvent):
    type: ClassVar[str] = "transcript_delta"
    recorded: ClassVar[bool] = False  # the wire delta is recorded
    item_id: str
    role: str  # "user" | "assistant"
    delta: str

    @classmethod
    def _new(cls, item_id: str, role: str, delta: str) -> TranscriptDelta:
        """The session's hot-path constructor (see AudioChunk._new)."""
        event = _new_object(cls)
        fields = event.__dict__
        fields["item_id"] = item_id
        fields["role"] = role
        fields["delta"] = delta
        return event


@dataclass(frozen=True)
class TranscriptDone(AppEvent):
    type: ClassVar[str] = "transcript_done"
    item_id: str
    role: str
    transcript: str


@dataclass(frozen=True)
class HistoryAdded(AppEvent):
    type: ClassVar[str] = "history_added"
    item: Item


@dataclass(frozen=True)
class HistoryUpdated(AppEvent):
    type: ClassVar[str] = "history_updated"
    history: tuple[Item, ...]

    def to_record(self) -> dict[str, Any]:
        # the full history is derivable from the wire events; keep the line short
        return {"item_ids": [item.id for item in self.history]}


@dataclass(frozen=True)
class ResponseStarted(AppEvent):
    type: ClassVar[str] = "response_started"
    response_id: str


@dataclass(frozen=True)
class ResponseDone(AppEvent):
    type: ClassVar[str] = "response_done"
    response_id: str
    status: str
    reason: str | None = None
    usage: dict[str, Any] | None = None


@dataclass(frozen=True)
class FunctionCall(AppEvent):
    """The model called a function tool (from `response.output_item.done`, status completed)."""

    type: ClassVar[str] = "function_call"
    call_id: str
    name: str
    arguments: str
    item_id: str
    response_id: str | None = None


@dataclass(frozen=True)
class SpeechStarted(AppEvent):
    type: ClassVar[str] = "speech_started"
    item_id: str
    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped(AppEvent):
    type: ClassVar[str] = "speech_stopped"
    item_id: str
    audio_end_ms: int


@dataclass(frozen=True)
class InputAudioTimeout(AppEvent):
    type: ClassVar[str] = "input_audio_timeout"
    item_id: str
    audio_start_ms: int
    audio_end_ms: int


@dataclass(frozen=True)
class Error(AppEvent):
    """Something went wrong. `fatal=True`: the session is over (a `Disconnected` follows)."""

    type: ClassVar[str] = "error"
    message: str
    code: str | None = None
    fatal: bool = False
    raw: dict[str, Any] | None = None


@dataclass(frozen=True)
class RawServerEvent(AppEvent):
    """A server event voicelab has no app event for (unknown types included), verbatim."""

    type: ClassVar[str] = "raw_server_event"
    recorded: ClassVar[bool] = False  # the wire event is recorded
    event: dict[str, Any]


@dataclass(frozen=True)
class Disconnected(AppEvent):
    """The connection is closed; no more events follow."""

    type: ClassVar[str] = "disconnected"
    code: int | None = None
    reason: str = ""


__all__ = [
    "AppEvent",
    "AudioChunk",
    "AudioEnd",
    "AudioInterrupted",
    "Disconnected",
    "Error",
    "FunctionCall",
    "HistoryAdded",
    "HistoryUpdated",
    "InputAudioTimeout",
    "RawServerEvent",
    "ResponseDone",
    "ResponseStarted",
    "SpeechStarted",
    "SpeechStopped",
    "TranscriptDelta",
    "TranscriptDone",
]
