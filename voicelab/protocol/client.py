"""The client side of a Realtime GA connection, sans-I/O: frames in, app events out; commands in, client
events out. No sockets, no tasks, no awaits, no clock but the `t_ms` a caller passes in (issue 8, thin core).

    protocol = ClientProtocol(config)                 # state CONNECTING: commands are refused
    protocol.connection_open()                        # the transport is up
    send(protocol.session_update())                   # every command returns the client events to send
    events = protocol.receive(frame, t_ms)            # one server frame -> app events (voicelab.events)
    if protocol.barge_in: ...                         # speech started over playback: stop it, cut_playback()
    send(protocol.events_to_send())                   # what receive() decided to send (queued creates)
    protocol.connection_closed()                      # state CLOSED: commands raise SessionError

`voicelab.Session` is the asyncio driver of this class (the transport, tasks, listeners, recording app and
client events, awaiting a player's stop); `voicelab.testing.ConnectionPair` drives it against the embedded
server's `Engine` with no socket and a controlled clock.

Rules, in one place:
1. Any frame gives app events at worst: a frame that is not a JSON object with a string `type`, or nests
   deeper than `MAX_EVENT_DEPTH`, is an `error` app event (`invalid_json`); an event voicelab cannot handle is
   an `error` (`invalid_server_event`); `receive` raises nothing.
2. The hot path (valid audio, transcript and text deltas) skips the openai models; every other event is typed
   with them (`parse_server_dict`), applied to the `Conversation`, then translated into app events.
3. Response creates go through the `ResponseQueue`: one in flight or active at a time, the others queued and
   released (in `events_to_send()`) by `response.done` or by the error that refused the one in flight.
4. A barge-in (`input_audio_buffer.speech_started` while the playback tracker says audio is still playing)
   sets `barge_in`; the driver stops its player (which may take a while), then `cut_playback()` gives
   `audio_interrupted` and the `conversation.item.truncate` at what was heard, and `barge_in_cancel()` the
   client's own `response.cancel` when the server does not cancel on speech (`interrupt_response` false).
   Audio that arrives for an interrupted item is recorded on the `dropped` track and never played.
5. Commands check the state first (SessionError when not open), then validate the event (LocalProtocolError:
   the caller's mistake), so nothing invalid is ever handed out.
6. The optional `recorder` (the session's `RecordingWriter`; anything with `record_wire` and `cut_output`)
   gets every server event as it is received, with its audio as PCM16 24 kHz, and the output cut at a
   barge-in. The driver records app events and the client events it sends.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import enum
import json
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

import numpy as np
from openai.types.realtime import (
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemSystemMessage,
    RealtimeConversationItemUserMessage,
    RealtimeResponseCreateParams,
)
from pydantic import BaseModel, ValidationError

from voicelab.audio.b64 import b64decode, b64encode
from voicelab.audio.core import REALTIME_RATE, Audio
from voicelab.checks import flag, unknown_keywords
from voicelab.config import SessionConfig, audio_format, format_name
from voicelab.errors import AudioError, ConfigError, LocalProtocolError, RemoteProtocolError, SessionError
from voicelab.events import (
    AppEvent,
    AudioChunk,
    AudioEnd,
    AudioInterrupted,
    Error,
    FunctionCall,
    HistoryAdded,
    HistoryUpdated,
    InputAudioTimeout,
    RawServerEvent,
    ResponseDone,
    ResponseStarted,
    SpeechStarted,
    SpeechStopped,
    TranscriptDelta,
    TranscriptDone,
)
from voicelab.playback import PlaybackState, PlaybackTracker
from voicelab.protocol.conversation import Conversation, Item, b64_decoded_len
from voicelab.protocol.events import (
    RawEvent,
    client_event,
    decode_frame,
    is_valid_delta,
    json_too_deep,
    loads_event,
    parse_server_dict,
    validate_client_event,
)
from voicelab.protocol.ids import new_event_id
from voicelab.protocol.response_queue import ResponseQueue
from voicelab.protocol.session_update import merge_session_update
from voicelab.protocol.wire_audio import G711Decoder, InputStream, bytes_per_ms, pcm16_samples

logger = logging.getLogger("voicelab.session")

CHUNK_MS = 100  # the audio in one input_audio_buffer.append
_HISTORY_TYPES = frozenset(
    {
        "conversation.item.done",
        "conversation.item.deleted",
        "conversation.item.truncated",
        "conversation.item.retrieved",
    }
)
_ITEM_EVENTS = frozenset(
    {
        "conversation.item.added",
        "conversation.item.created",
        "conversation.item.done",
        "response.output_item.added",
        "response.output_item.done",
    }
)
_CLOSED_MESSAGE = "the session is closed; open a new one with voicelab.connect(...)."
_NOT_OPEN_MESSAGE = (
    "the session was never opened; open it first: `async with voicelab.connect(...) as session:`, or "
    "`await session.open()` (a ClientProtocol: call connection_open() once the transport is up)."
)
RESPONSE_FIELDS = tuple(RealtimeResponseCreateParams.model_fields)  # the GA response.create `response`
MAX_OUTPUT_TOKENS = 4096
_ITEM_EXAMPLE = "{'type': 'message', 'role': 'user', 'content': [{'type': 'input_text', 'text': 'Hi'}]}"
_ITEM_MODELS: dict[tuple[str, str | None], type[BaseModel]] = {
    ("message", "system"): RealtimeConversationItemSystemMessage,
    ("message", "user"): RealtimeConversationItemUserMessage,
    ("message", "assistant"): RealtimeConversationItemAssistantMessage,
    ("function_call", None): RealtimeConversationItemFunctionCall,
    ("function_call_output", None): RealtimeConversationItemFunctionCallOutput,
}


class State(enum.Enum):
    """CONNECTING (commands refused) -> OPEN -> CLOSED (commands refused; frames are still read)."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


class WireRecorder(Protocol):
    """Where received server events go as they arrive (`voicelab.recording.RecordingWriter` is one).

    A recorder may also have `record_delta(event, t_ms, pcm=None)`, a shortcut recording what
    `record_wire("server", event, pcm, t_ms)` would for a delta whose every value the caller checked to be a
    str, an int, a bool or None (exact types): the valid deltas with no other field then go through it."""

    def record_wire(
        self, direction: str, event: dict[str, Any], pcm: bytes | None = None, t_ms: float | None = None
    ) -> dict[str, Any]: ...

    def cut_output(self, at_ms: float) -> None: ...


class Cut(NamedTuple):
    """What `cut_playback` decided: the app events (`audio_interrupted`, or none when nothing was playing),
    the client events to send (the truncate), and the ms of the item that were played (None: nothing)."""

    events: list[AppEvent]
    send: list[dict[str, Any]]
    played_ms: float | None


class ClientProtocol:
    """One Realtime connection's client side (see the module docstring)."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        playback: PlaybackTracker | None = None,
        recorder: WireRecorder | None = None,
    ) -> None:
        if not isinstance(config, SessionConfig):
            raise ConfigError(
                f"ClientProtocol takes a voicelab.SessionConfig, got {type(config).__name__}; build one with "
                "SessionConfig(...) or SessionConfig.from_dict(fields)."
            )
        self._config = config
        self._output_format_name = format_name(config.output_format)
        self._input_stream: InputStream | None = None  # the caller's audio, one stream across appends
        self._g711_decoders: dict[str, G711Decoder] = {}  # output item id -> its G.711 stream
        self.playback = playback or PlaybackTracker()
        self._recorder: WireRecorder | None = None
        # the recorder's shortcut for checked deltas (see WireRecorder), when it has one
        self._record_delta: Callable[..., dict[str, Any]] | None = None
        self.recorder = recorder
        self.conversation = Conversation()
        self.state = State.CONNECTING
        self.responses = ResponseQueue()  # which response.create goes out now, which waits
        self.last_error: dict[str, Any] | None = None  # the `error` of the server's last error event
        self.barge_in = False  # speech started over playback: the driver stops it and calls cut_playback()
        self._announced: set[str] = set()
        self._interrupted_items: set[str] = set()
        self._track_start_ms: dict[str, float] = {}  # item -> where its audio starts on the output track
        # client events receive() decided to send (a queued create released); events_to_send() empties it
        self.outgoing: list[dict[str, Any]] = []
        self._events: list[AppEvent] = []  # app events of the frame being received
        self._delta_handlers: dict[str, Callable[[dict[str, Any], float], AppEvent | None]] = {
            "response.output_audio.delta": self._on_audio_delta,
            "response.output_audio_transcript.delta": self._on_text_delta,
            "response.output_text.delta": self._on_text_delta,
        }

    # -- state ---------------------------------------------------------------------------------------
    @property
    def config(self) -> SessionConfig:
        """The session configuration in force (as this client last set it)."""
        return self._config

    @property
    def history(self) -> list[Item]:
        return self.conversation.items

    @property
    def response_busy(self) -> bool:
        """Whether a new response.create must wait: a response is active or a create is in flight."""
        return self.responses.busy(self.conversation.active_response_id is not None)

    @property
    def responding(self) -> bool:
        """True while a response is active, requested, or queued behind the active one."""
        return self.responses.pending(self.conversation.active_response_id is not None)

    def connection_open(self) -> None:
        """The transport is up: commands are accepted."""
        if self.state is State.CONNECTING:
            self.state = State.OPEN

    def connection_closed(self) -> None:
        """The connection is gone: commands raise SessionError from now on."""
        self.state = State.CLOSED

    def is_create_in_flight(self, event: dict[str, Any]) -> bool:
        """Whether `event` is the response.create the queue marked in flight (the one being sent)."""
        return self.responses.awaiting_created and event.get("event_id") == self.responses.awaiting_id

    def send_failed(self, event: dict[str, Any]) -> None:
        """The driver could not send `event`: a create in flight is not in flight any more."""
        if event.get("type") == "response.create" and self.is_create_in_flight(event):
            self.responses.unsent()

    def events_to_send(self) -> list[dict[str, Any]]:
        """The client events `receive()` decided to send (a queued create released), oldest first; the buffer
        is emptied."""
        out, self.outgoing = self.outgoing, []
        return out

    # -- commands: each returns the client events to send, in order ----------------------------------
    def _check_open(self) -> None:
        if self.state is not State.OPEN:
            raise self._not_open()

    def _not_open(self) -> SessionError:
        """The SessionError for a command while not open: never opened, or closed."""
        return SessionError(_NOT_OPEN_MESSAGE if self.state is State.CONNECTING else _CLOSED_MESSAGE)

    def _valid(self, event: dict[str, Any]) -> dict[str, Any]:
        self._check_open()
        validate_client_event(event)
        return event

    def session_update(self) -> list[dict[str, Any]]:
        """The `session.update` carrying the whole configuration (the first event a session sends)."""
        return [self._valid(self._config.session_update_event())]

    def update(self, config: SessionConfig | dict[str, Any]) -> list[dict[str, Any]]:
        """Change the session: a SessionConfig, or a dict of GA or flat fields merged into the current one."""
        if isinstance(config, SessionConfig):
            new = config
        elif isinstance(config, dict):
            if "audio" in config or "type" in config:
                new = SessionConfig.from_dict(merge_session_update(self._config.to_session(), config))
            else:
                new = self._config.replace(**config)
        else:
            raise ConfigError(f"update() takes a SessionConfig or a dict, got {type(config).__name__}.")
        self._config = new
        self._output_format_name = format_name(new.output_format)
        return [self._valid(new.session_update_event())]

    def send_event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Any GA client event dict (validated; an event_id is added when missing)."""
        if not isinstance(event, dict):
            raise ConfigError(
                f"send_event takes a client event dict such as {{'type': 'response.create'}}, got "
                f"{type(event).__name__}."
            )
        return [self._valid({"event_id": new_event_id(), **event})]

    def create_item(self, item: dict[str, Any], previous_item_id: str | None = None) -> list[dict[str, Any]]:
        """The `conversation.item.create` of `item` (a GA item dict); an invalid one is a one-line
        ConfigError (not a dict) or LocalProtocolError naming the field."""
        if not isinstance(item, dict):
            raise ConfigError(
                f"create_item takes an item dict such as {_ITEM_EXAMPLE}, got {type(item).__name__}."
            )
        try:
            event = client_event("conversation.item.create", item=item, previous_item_id=previous_item_id)
        except LocalProtocolError as exc:
            raise LocalProtocolError(_item_problem(item) or str(exc)) from None
        return [self._valid(event)]

    def delete_item(self, item_id: str) -> list[dict[str, Any]]:
        return [self._valid(client_event("conversation.item.delete", item_id=item_id))]

    def text_item(self, text: str) -> list[dict[str, Any]]:
        """The `conversation.item.create` of a user text message."""
        if not isinstance(text, str):
            raise ConfigError(f"send_text needs a str, got {type(text).__name__}.")
        if not text.strip():
            raise ConfigError(
                "send_text needs a non-empty str, e.g. send_text('Hello'); to ask for a response without a "
                "new message, use create_response()."
            )
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        return self.create_item(item)

    def send_text(self, text: str, respond: bool = True) -> list[dict[str, Any]]:
        """A user text message, then (respond=True) a response.create (or nothing more when one is queued)."""
        flag(respond, "respond", where="send_text")
        out = self.text_item(text)
        return out + self.create_response() if respond else out

    def function_output_item(self, call_id: str, output: Any) -> list[dict[str, Any]]:
        """The `function_call_output` item answering a call (`output` as text; non-strings as JSON)."""
        if not isinstance(call_id, str) or not call_id:
            got = repr(call_id) if isinstance(call_id, str) else type(call_id).__name__
            raise ConfigError(
                f"send_function_output needs the call's call_id, a non-empty str (the function_call event's "
                f".call_id, e.g. 'call_9Q9eysr6LstYMEx6'), got {got}."
            )
        if isinstance(output, str):
            text = output
        else:
            try:
                text = json.dumps(output)
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    "send_function_output: output must be JSON-serializable (a str, or a dict, list, "
                    f"number, bool or None of those), got {type(output).__name__} ({exc}); convert it "
                    "first, e.g. str(value) or a dict of its fields."
                ) from None
        return self.create_item({"type": "function_call_output", "call_id": call_id, "output": text})

    def send_function_output(self, call_id: str, output: Any, respond: bool = True) -> list[dict[str, Any]]:
        flag(respond, "respond", where="send_function_output")
        out = self.function_output_item(call_id, output)
        return out + self.create_response() if respond else out

    def create_response(self, **params: Any) -> list[dict[str, Any]]:
        """A response.create (params: GA `response` fields): [event] to send now, or [] when it is queued
        behind the active response (released by `events_to_send()` after response.done).
        `conversation="none"` (out of band) goes out at once. An unknown field is an ArgumentError naming the
        closest one; a `max_output_tokens` outside 1-4096 (or "inf") a LocalProtocolError."""
        if params:
            _check_response_params(params)
        event = self._valid(client_event("response.create", response=params or None))
        if params.get("conversation") == "none":
            return [event]
        now = self.responses.request(event, self.conversation.active_response_id is not None)
        return [now] if now is not None else []

    def cancel_response(self, response_id: str | None = None) -> list[dict[str, Any]]:
        """Drop the queued creates; a response.cancel when a response is active or in flight, else []."""
        self.responses.clear()
        if not self.response_busy:
            return []
        return [self._cancel_event(response_id)]

    def _cancel_event(self, response_id: str | None = None) -> dict[str, Any]:
        """response.cancel, remembered: when the response ended before the cancel arrived, the server's
        `response_cancel_not_active` answers a race, not a mistake, and is not reported as an error."""
        event = self._valid(client_event("response.cancel", response_id=response_id))
        self.responses.cancel_sent(event["event_id"])
        return event

    def interrupt_cancel(self) -> list[dict[str, Any]]:
        """After `cut_playback()` for `interrupt()`: the response.cancel (queued creates dropped) when a
        response is active or in flight, else []."""
        if not self.response_busy:
            return []
        self.responses.clear()
        return [self._cancel_event()]

    def barge_in_cancel(self) -> list[dict[str, Any]]:
        """After a barge-in's `cut_playback()`: the client's response.cancel when the server does not cancel
        on speech itself (`interrupt_response` false) and a response is active, else []."""
        if self._config.interrupt_response or self.conversation.active_response_id is None:
            return []
        return [self._cancel_event()]

    def commit(self) -> list[dict[str, Any]]:
        """The commit event (a driver sends `input_tail()` first: the resampler's held-back millisecond)."""
        return [self._valid(client_event("input_audio_buffer.commit"))]

    def clear_input(self) -> list[dict[str, Any]]:
        self._input_stream = None  # the buffer is gone: the next audio starts a new stream
        return [self._valid(client_event("input_audio_buffer.clear"))]

    def audio_appends(
        self, audio: Audio | np.ndarray | bytes, rate: int | None = None, last: bool = False
    ) -> Iterator[tuple[dict[str, Any], bytes]]:
        """`input_audio_buffer.append` events of ~100 ms in the session's input format, each with the PCM16
        24 kHz audio it carries (for the recording). `audio`: an Audio, an array with `rate`, or PCM16
        little-endian bytes at `rate` (default 24000). Consecutive calls are one stream: audio at another
        rate than the wire's goes through one streaming resampler, so the result does not depend on how the
        caller cut it; `last` ends the stream (see `input_tail`). The audio is checked and converted now;
        the events are made as they are taken (the state is checked for each), so a driver sends one before
        making the next."""
        clip = _caller_audio(audio, rate)
        fmt = format_name(self._config.input_format)
        stream = self._input_stream
        head = (b"", b"")
        if stream is None or stream.fmt != fmt or stream.rate != clip.rate:
            if stream is not None and stream.fmt == fmt and stream.holds:
                head = stream.flush()  # a new rate: the old stream's last millisecond goes first
            stream = self._input_stream = InputStream(fmt, clip.rate)
        wire, pcm24 = stream.push(clip.samples, last=last)
        if last:
            self._input_stream = None
        return self._appends(fmt, head[0] + wire, head[1] + pcm24)

    def input_tail(self) -> Iterator[tuple[dict[str, Any], bytes]]:
        """End the caller's stream before a commit: the appends of what a resampler still holds (about a
        millisecond of audio sent at another rate than the wire's; nothing for 24 kHz PCM16)."""
        stream, self._input_stream = self._input_stream, None
        if stream is None or not stream.holds:
            return iter(())
        return self._appends(stream.fmt, *stream.flush())

    def _appends(self, fmt: str, wire: bytes, pcm24: bytes) -> Iterator[tuple[dict[str, Any], bytes]]:
        """`wire` (in format `fmt`) in ~CHUNK_MS appends, each with its share of `pcm24` (the recording's
        copy)."""
        step24 = 24 * 2 * CHUNK_MS
        if fmt == "pcm16":  # PCM16 24 kHz on the wire: the appends are the recording's copy
            return self._pcm_appends(wire, step24)
        step = round(bytes_per_ms(fmt) * CHUNK_MS)
        count = -(-len(wire) // step)
        cuts = [min(len(pcm24), i * step24) for i in range(count)] + [len(pcm24)]
        return (
            (
                self._append(b64encode(wire[i * step : (i + 1) * step])),
                pcm24[cuts[i] : cuts[i + 1]],
            )
            for i in range(count)
        )

    def _pcm_appends(self, pcm: bytes, step: int) -> Iterator[tuple[dict[str, Any], bytes]]:
        for offset in range(0, len(pcm), step):
            chunk = pcm[offset : offset + step]
            yield self._append(b64encode(chunk)), chunk

    def _append(self, b64: str) -> dict[str, Any]:
        if self.state is not State.OPEN:
            raise self._not_open()
        return {"type": "input_audio_buffer.append", "event_id": new_event_id(), "audio": b64}

    def cut_playback(self, state: PlaybackState | None, heard_ms: float | None = None) -> Cut:
        """Stop the playback `state` describes (the tracker's state when the stop began; None: nothing)
        at `heard_ms` (what a player confirmed was heard, None: the tracker's figure): `audio_interrupted`,
        the output track cut, and the `conversation.item.truncate` (when open). Nothing plays afterwards."""
        if state is not None and not state.finished and heard_ms is not None:
            state = dataclasses.replace(state, played_ms=min(float(heard_ms), state.received_ms))
        self.playback.reset()
        if state is None or state.finished:
            return Cut([], [], None)
        item = self.conversation.get(state.item_id)
        received = item.audio_ms if item is not None else state.received_ms
        played = max(0, min(int(state.played_ms), int(received)))
        self._interrupted_items.add(state.item_id)
        event = AudioInterrupted(state.item_id, state.content_index, float(played))
        if self.recorder is not None and state.item_id in self._track_start_ms:
            self.recorder.cut_output(self._track_start_ms[state.item_id] + played)
        send: list[dict[str, Any]] = []
        if self.state is State.OPEN:
            truncate = client_event(
                "conversation.item.truncate",
                item_id=state.item_id,
                content_index=state.content_index,
                audio_end_ms=played,
            )
            send.append(self._valid(truncate))
        return Cut([event], send, float(played))

    @property
    def recorder(self) -> WireRecorder | None:
        """Where received server events are recorded (None: nowhere); settable."""
        return self._recorder

    @recorder.setter
    def recorder(self, recorder: WireRecorder | None) -> None:
        self._recorder = recorder
        self._record_delta = getattr(recorder, "record_delta", None)

    # -- receiving -----------------------------------------------------------------------------------
    def receive(self, frame: str | bytes, t_ms: float) -> list[AppEvent]:
        """One server frame received at `t_ms` (the session clock) -> the app events it gives, in order.
        Never raises (rule 1). Afterwards check `barge_in` and `events_to_send()`."""
        text = frame if type(frame) is str else bytes(frame).decode("utf-8", errors="replace")  # type: ignore[arg-type]
        try:
            data = decode_frame(text)
        except Exception:  # ValueError, and RecursionError for deep nesting: any frame is an error at worst
            data = None
        if type(data) is not dict or type(data.get("type")) is not str:
            return [self._invalid_frame(text, t_ms)]
        fast = self._delta_handlers.get(data["type"])
        if fast is not None and is_valid_delta(data):
            try:
                event = fast(data, t_ms)
            except Exception as exc:  # e.g. a delta whose audio is not base64: reported, the session goes on
                return [unusable_event(data, exc)]
            return [event] if event is not None else []
        if json_too_deep(data):  # no event nests this deep; typing and copying it would recurse too far
            return [self._invalid_frame(text, t_ms)]
        events = self._events = []
        try:
            self._handle_event(data, t_ms)
        except Exception as exc:  # an event voicelab cannot handle: reported, the session goes on
            events.append(unusable_event(None, exc))
        return events

    def _invalid_frame(self, text: str, t_ms: float) -> Error:
        try:
            loads_event(text)  # raises with the message naming the problem
            message = f"the server sent an unusable frame: {text[:80]!r}."
        except RemoteProtocolError as exc:
            message = str(exc)
        except Exception as exc:  # never let a frame's problem out of the reader
            message = f"the server sent an unusable frame ({type(exc).__name__}): {text[:80]!r}."
        if self.recorder is not None:
            self.recorder.record_wire("server", {"type": "invalid_frame", "text": text[:2000]}, t_ms=t_ms)
        return Error(message, code="invalid_json", raw={"text": text[:2000]})

    def _handle_event(self, data: dict[str, Any], t_ms: float) -> None:
        """Every server event but the valid deltas: typed with the openai models, then translated."""
        recorder = self.recorder
        event_type = data["type"]
        off_schema_audio = event_type == "response.output_audio.delta" and type(data.get("delta")) is str
        if recorder is not None and not off_schema_audio:
            recorder.record_wire("server", data, t_ms=t_ms)
        parsed = parse_server_dict(data)
        if isinstance(parsed, RawEvent) and parsed.problem is not None:
            self._events.append(
                Error(
                    f"server event {event_type} does not match the Realtime GA schema ({parsed.problem}); "
                    "it was kept raw. Check the server version.",
                    code="invalid_server_event",
                    raw=data,
                )
            )
        if off_schema_audio:
            event = self._on_audio_delta(data, t_ms, False)  # still audio: played and recorded as received
            if event is not None:
                self._events.append(event)
            return
        item_key = _item_id_of(data)
        was_known = item_key in self.conversation if item_key else True
        self.conversation.apply(parsed)
        if event_type == "session.created":  # server defaults; the format in force is the one we send
            self.conversation.output_bytes_per_ms = bytes_per_ms(audio_format(self._config.output_format))
        self._translate(event_type, data, item_key, was_known)

    def _on_text_delta(self, data: dict[str, Any], t_ms: float) -> AppEvent:
        """A valid assistant transcript or text delta (the hot path)."""
        if self._recorder is not None:
            if len(data) == 7 and self._record_delta is not None:  # only the fields is_valid_delta checked
                self._record_delta(data, t_ms)
            else:
                self._recorder.record_wire("server", data, t_ms=t_ms)
        item_id: str = data["item_id"]
        delta: str = data["delta"]
        self.conversation.add_assistant_delta(item_id, delta, data["type"] == "response.output_text.delta")
        return TranscriptDelta._new(item_id, "assistant", delta)

    def _on_audio_delta(self, data: dict[str, Any], t_ms: float, valid: bool = True) -> AppEvent | None:
        """An assistant audio delta (the hot path): counted, tracked, recorded, handed on undecoded.
        `valid`: `data` passed is_valid_delta (False: an off-schema delta whose `delta` is a str)."""
        b64: str = data["delta"]
        recorder = self._recorder
        item_id = data.get("item_id", "")
        nbytes = b64_decoded_len(b64)
        self.conversation.add_output_audio(item_id, data.get("response_id"), nbytes)
        payload: bytes | str = b64  # decoded lazily (AudioChunk.data) unless needed here
        if self._output_format_name != "pcm16":
            payload = self._g711_to_pcm(item_id, b64decode(b64))
        elif recorder is not None:
            payload = b64decode(b64)
        pcm_ms = (len(payload) if isinstance(payload, bytes) else nbytes) / 48.0
        if item_id in self._interrupted_items:  # received after the barge-in: recorded, never played
            if recorder is not None:
                ref = {"track": "dropped", "start_ms": round(t_ms, 3), "duration_ms": pcm_ms}
                recorder.record_wire("server", {**data, "delta": {"$audio": ref}}, t_ms=t_ms)
            return None
        if recorder is not None:
            assert isinstance(payload, bytes)
            if valid and len(data) == 7 and self._record_delta is not None:  # is_valid_delta's fields
                recorded = self._record_delta(data, t_ms, payload)
            else:
                recorded = recorder.record_wire("server", data, pcm=payload, t_ms=t_ms)
            if item_id not in self._track_start_ms:
                self._track_start_ms[item_id] = recorded["delta"]["$audio"]["start_ms"]
        content_index = data.get("content_index", 0)
        self.playback.on_audio(item_id, content_index, pcm_ms)
        return AudioChunk._new(item_id, content_index, data.get("response_id", ""), payload)

    def _g711_to_pcm(self, item_id: str, raw: bytes) -> bytes:
        """One item's G.711 deltas, decoded as one stream (a decoder per item: the last few are kept)."""
        decoder = self._g711_decoders.get(item_id)
        if decoder is None or decoder.law != self._output_format_name:
            decoder = self._g711_decoders[item_id] = G711Decoder(self._output_format_name)
            while len(self._g711_decoders) > 4:
                del self._g711_decoders[next(iter(self._g711_decoders))]
        return decoder.decode(raw)

    def _release_queued_create(self) -> None:
        if self.state is not State.OPEN:
            return
        event = self.responses.next_to_send(self.conversation.active_response_id is not None)
        if event is not None:
            self.outgoing.append(event)

    def _translate(
        self, event_type: str, data: dict[str, Any], item_key: str | None, was_known: bool
    ) -> None:
        conv = self.conversation
        publish = self._events.append
        if item_key and not was_known and item_key in conv and item_key not in self._announced:
            self._announced.add(item_key)
            publish(HistoryAdded(_snapshot(conv.get(item_key))))
            publish(HistoryUpdated(tuple(_snapshot(i) for i in conv.items)))
        if event_type == "input_audio_buffer.speech_started":
            publish(SpeechStarted(data.get("item_id", ""), data.get("audio_start_ms", 0)))
            state = self.playback.state()
            if state is not None and not state.finished:
                self.barge_in = True
        elif event_type == "input_audio_buffer.speech_stopped":
            publish(SpeechStopped(data.get("item_id", ""), data.get("audio_end_ms", 0)))
        elif event_type == "input_audio_buffer.timeout_triggered":
            publish(
                InputAudioTimeout(
                    data.get("item_id", ""), data.get("audio_start_ms", 0), data.get("audio_end_ms", 0)
                )
            )
        elif event_type in _HISTORY_TYPES:
            publish(HistoryUpdated(tuple(_snapshot(i) for i in conv.items)))
        elif event_type == "conversation.item.input_audio_transcription.delta":
            publish(TranscriptDelta(data.get("item_id", ""), "user", data.get("delta") or ""))
        elif event_type == "conversation.item.input_audio_transcription.completed":
            publish(TranscriptDone(data.get("item_id", ""), "user", data.get("transcript") or ""))
            publish(HistoryUpdated(tuple(_snapshot(i) for i in conv.items)))
        elif event_type == "conversation.item.input_audio_transcription.failed":
            error = data.get("error") or {}
            publish(
                Error(
                    f"input transcription failed for {data.get('item_id')}: {error.get('message')}",
                    code=error.get("code") or "transcription_failed",
                    raw=data,
                )
            )
        elif event_type == "response.created":
            self.responses.on_created()
            publish(ResponseStarted((data.get("response") or {}).get("id", "")))
        elif event_type in ("response.output_audio.done", "response.audio.done"):
            publish(AudioEnd(data.get("item_id", ""), data.get("content_index", 0)))
        elif event_type in ("response.output_audio_transcript.delta", "response.output_text.delta"):
            publish(TranscriptDelta(data.get("item_id", ""), "assistant", data.get("delta") or ""))
        elif event_type in ("response.output_audio_transcript.done", "response.output_text.done"):
            text = data.get("transcript") if "transcript" in data else data.get("text")
            publish(TranscriptDone(data.get("item_id", ""), "assistant", text or ""))
        elif event_type == "response.output_item.done":
            item = data.get("item") or {}
            if item.get("type") == "function_call" and item.get("status") in ("completed", None):
                publish(
                    FunctionCall(
                        call_id=item.get("call_id", ""),
                        name=item.get("name", ""),
                        arguments=item.get("arguments") or "",
                        item_id=item.get("id", ""),
                        response_id=data.get("response_id"),
                    )
                )
        elif event_type == "response.done":
            response = data.get("response") or {}
            rid = response.get("id", "")
            self.responses.on_done()
            done = conv.responses.get(rid)
            publish(
                ResponseDone(
                    rid,
                    response.get("status", "completed"),
                    done.reason if done is not None else None,
                    response.get("usage"),
                )
            )
            self._release_queued_create()
        elif event_type == "error":
            error = data.get("error") or {}
            self.last_error = error
            refused = self.responses.refused(error)
            if self.responses.raced_cancel(error):
                publish(RawServerEvent(data))  # the response finished first: nothing was left to cancel
                return
            publish(
                Error(
                    str(error.get("message") or "server error"),
                    code=error.get("code") or error.get("type"),
                    fatal=False,
                    raw=data,
                )
            )
            if refused:
                self._release_queued_create()
        else:
            publish(RawServerEvent(data))


def unusable_event(data: dict[str, Any] | None, exc: Exception) -> Error:
    """The `error` app event for a server event voicelab could not handle (non-fatal: the session goes on)."""
    logger.debug("session failed on a server event", exc_info=(type(exc), exc, exc.__traceback__))
    kind = f" {data.get('type')}" if data is not None else ""
    return Error(
        f"voicelab could not handle a server{kind} event ({type(exc).__name__}: {exc}); it was "
        "skipped and the session goes on.",
        code="invalid_server_event",
        raw=data,
    )


def _item_id_of(data: dict[str, Any]) -> str | None:
    item = data.get("item")
    if isinstance(item, dict) and data["type"] in _ITEM_EVENTS:
        return item.get("id")
    return None


def _snapshot(item: Item | None) -> Item:
    assert item is not None
    return copy.deepcopy(item)


def _check_response_params(params: dict[str, Any]) -> None:
    """What the GA `response.create` would refuse, refused here with the field and the fix."""
    unknown_keywords(params, RESPONSE_FIELDS, "create_response()")
    limit = params.get("max_output_tokens")
    if (limit is not None and limit != "inf") and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_OUTPUT_TOKENS
    ):
        raise LocalProtocolError(
            f"create_response: max_output_tokens={limit!r} is not valid; use a whole number from 1 to "
            f"{MAX_OUTPUT_TOKENS}, or 'inf' for the model's limit."
        )


def _item_problem(item: dict[str, Any]) -> str | None:
    """One line naming what is wrong with an item the GA union refused (None: no better words than its
    own)."""
    kind = item.get("type")
    kinds = ("message", "function_call", "function_call_output")
    if kind not in kinds:
        close = difflib.get_close_matches(kind, kinds, n=1) if isinstance(kind, str) else []
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (
            f"create_item: item type {kind!r} is not an item type; {hint}use 'message' (with 'role' and "
            f"'content'), 'function_call' or 'function_call_output', e.g. {_ITEM_EXAMPLE}."
        )
    role = item.get("role") if kind == "message" else None
    if kind == "message" and role not in ("system", "user", "assistant"):
        return (
            f"create_item: a message's role must be 'user', 'assistant' or 'system', got {role!r}, e.g. "
            f"{_ITEM_EXAMPLE}."
        )
    model = _ITEM_MODELS[(kind, role)]
    try:
        model.model_validate(item)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "item"
        what = f"{role} message" if role else kind
        return (
            f"create_item: invalid {what} item: {where}: {first['msg']}; fix that field (the shape is "
            f"openai.types.realtime.{model.__name__})."
        )
    return None


def _caller_audio(audio: Any, rate: int | None) -> Audio:
    """What send_audio accepts, as an Audio: an Audio, a numeric array with its rate, or PCM16 bytes."""
    if isinstance(audio, Audio):
        if rate is not None and rate != audio.rate:
            raise AudioError(
                f"send_audio got an Audio at {audio.rate} Hz and rate={rate!r}; an Audio carries its own "
                "rate, so drop rate= (it is converted to the session's format), or, if the samples "
                f"really are at {rate!r} Hz, pass Audio.from_array(audio.samples, {rate!r})."
            )
        return audio
    if isinstance(audio, (str, os.PathLike)):
        raise AudioError(
            f"send_audio takes audio, not a path ({str(os.fspath(audio))!r}); pass "
            "voicelab.read_audio(path), e.g. session.send_audio(voicelab.read_audio('turn.wav'))."
        )
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return Audio.from_array(pcm16_samples(audio), REALTIME_RATE if rate is None else rate)
    if rate is None:
        raise AudioError(
            f"send_audio got {type(audio).__name__} samples without a sample rate; pass rate=<Hz>, e.g. "
            "session.send_audio(samples, rate=16000), or an Audio (PCM16 bytes default to 24000 Hz)."
        )
    return Audio.from_array(audio, rate)


__all__ = ["CHUNK_MS", "ClientProtocol", "Cut", "State", "WireRecorder", "unusable_event"]
