"""The embedded server's Realtime state machine for one connection (sans-I/O: no sockets, no awaits).

    engine = Engine(brain, pace="fast")
    events = engine.start(now_ms)              # [session.created]
    events += engine.receive(text, now_ms)     # one client frame in, server events (dicts) out
    events += engine.advance(now_ms)           # paced events that became due
    engine.next_deadline()                     # when advance() next has something to do, or None

The clock is the caller's (milliseconds, any origin). Behaviour follows PROTOCOL.md §2-§10: the GA session,
the input audio buffer with server VAD (semantic_vad is approximated by a server VAD whose silence duration
depends on `eagerness`, see SEMANTIC_SILENCE_MS), input transcription, responses streamed in the GA order,
function calls, cancellation, truncation and the real server's errors. Every emitted event validates against
the openai `RealtimeServerEvent` union.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import copy
import time
import typing
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

import numpy as np
from openai.types.realtime import ConversationItem, RealtimeClientEvent, RealtimeResponseCreateParams
from pydantic import BaseModel, TypeAdapter, ValidationError

from voicelab.protocol.conversation import place_item
from voicelab.protocol.events import parse_frame
from voicelab.server.brains import Brain, BrainInput, Call, Say
from voicelab.server.ids import IdMaker
from voicelab.server.responses import (
    ActiveResponse,
    Pace,
    Planned,
    ResponsePlanner,
    Timing,
    rate_limits,
    text_tokens,
    usage,
)
from voicelab.server.services import (
    EngineServices,
    TranscriptStream,
    TurnDetectorLike,
    decode_g711,
    pcm16_24k_from,
    pcm16_24k_to,
)
from voicelab.server.validation import (
    ClientEventError,
    _path,
    check_response_params,
    check_session_update,
    default_session,
    default_transcription_session,
    find_unknown_parameter,
    merge_session,
    model_problem,
    voice_of,
)

# semantic_vad is emulated: eagerness picks the silence that ends a turn (an approximation of the real
# turn-detection model, which waits up to 8 s / 4 s / 2 s for low / medium / high).
SEMANTIC_SILENCE_MS = {"low": 1000, "medium": 600, "auto": 600, "high": 300}
MIN_COMMIT_MS = 100.0
# What one request may cost the event loop (all sessions share it): a reply is cut at MAX_REPLY_CHARS (about a
# minute of speech; synthesis time grows with it) and ends `incomplete`, like a max_output_tokens cut.
MAX_REPLY_CHARS = 1200
# Under server VAD, audio before the current turn is kept only this far back (plus the prefix padding):
# enough for a turn's start, not ten minutes of silence.
VAD_KEEP_MS = 2000.0
VAD_MAX_PADDING_KEPT_MS = 10_000.0  # a huge prefix_padding_ms must not make the idle buffer unbounded again
POLL_MS = 3.0  # how often deferred turn work checks a transcript still being finalised elsewhere
STREAM_FEED_BYTES = 9600  # a turn's audio goes to its transcription stream in blocks of at least 200 ms
_APPEND_TYPES = ("input_audio_buffer.append", "session.input_audio_buffer.append")
ACCEPTED_TYPES = (
    "session.update",
    "session.close",
    "input_audio_buffer.append",
    "session.input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "response.create",
    "response.cancel",
)


def _client_classes() -> dict[str, type[BaseModel]]:
    union = typing.get_args(RealtimeClientEvent)[0]
    classes: dict[str, type[BaseModel]] = {}
    for cls in typing.get_args(union):
        for literal in typing.get_args(cls.model_fields["type"].annotation):
            classes[literal] = cls
    return classes


_CLIENT_CLASSES = _client_classes()
_ITEM_ADAPTER: TypeAdapter[Any] = TypeAdapter(ConversationItem)


def _parse_client_frame(data: str | bytes) -> tuple[str, Any]:
    """("event", the decoded JSON), ("invalid_json", why) or ("binary", None)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return ("binary", None)
    try:
        return ("event", parse_frame(data))
    except ValueError as exc:
        return ("invalid_json", exc)


def _is_append(frame: tuple[str, Any]) -> bool:
    return frame[0] == "event" and isinstance(frame[1], dict) and frame[1].get("type") in _APPEND_TYPES


def _plain_append(event: dict[str, Any]) -> bool:
    """An append with only `type`, a string `audio` and an optional string `event_id` (valid as it is)."""
    return (
        isinstance(event.get("audio"), str)
        and isinstance(event.get("event_id", ""), str)
        and len(event) == 2 + ("event_id" in event)
    )


def _bytes_per_ms(fmt: Mapping[str, Any] | None) -> float:
    kind = (fmt or {}).get("type", "audio/pcm")
    return 48.0 if kind == "audio/pcm" else 8.0


def brain_input(
    items: list[dict[str, Any]],
    instructions: str,
    tools: tuple[str, ...],
    call_notes: Mapping[str, Any],
    idle: bool = False,
    transcribe: Callable[[str], str | None] | None = None,
) -> BrainInput:
    """What a brain sees for a conversation (Realtime-shaped items, oldest first): the latest user words,
    and the function output when the latest item is one. Shared by the Realtime engine and the HTTP APIs
    (`voicelab.server.textapi`), so that both answer alike."""
    user_text: str | None = None
    for item in reversed(items):
        if item.get("type") == "message" and item.get("role") == "user":
            parts: list[str] = []
            for part in item.get("content") or []:
                if part.get("type") in ("input_text", "text") and part.get("text"):
                    parts.append(part["text"])
                elif part.get("type") == "input_audio":
                    spoken = part.get("transcript") or (
                        transcribe(item["id"]) if transcribe is not None and item.get("id") else None
                    )
                    if spoken:
                        parts.append(spoken)
            user_text = " ".join(parts)
            break
    output = name = note = None
    last = items[-1] if items else None
    if last is not None and last.get("type") == "function_call_output":
        output = str(last.get("output", ""))
        call_id = last.get("call_id")
        note = call_notes.get(call_id) if isinstance(call_id, str) else None
        name = next(
            (
                i.get("name")
                for i in items
                if i.get("type") == "function_call" and i.get("call_id") == call_id
            ),
            None,
        )
    return BrainInput(user_text, instructions, tools, output, name, note, idle, tuple(items))


def decide(brain: Brain, context: BrainInput) -> Say | Call:
    """The brain's answer; a call to a tool the request does not declare becomes a Say that says so."""
    reply = brain.reply(context)
    if isinstance(reply, Call) and reply.name not in context.tools:
        return Say(f"The brain asked to call the tool {reply.name!r}, which this session does not declare.")
    return reply


class Engine:
    """One Realtime connection's server side. See the module docstring."""

    def __init__(
        self,
        brain: Brain,
        *,
        model: str = "gpt-realtime",
        pace: Pace = "realtime",
        services: EngineServices | None = None,
        timing: Timing | None = None,
        seed: int | None = None,
        wall_clock: Callable[[], float] = time.time,
        intent: str | None = None,
    ) -> None:
        if intent not in (None, "transcription"):
            raise ValueError(f"intent must be None or 'transcription', got {intent!r}")
        if pace not in ("realtime", "fast"):
            raise ValueError(f"pace must be 'realtime' or 'fast', got {pace!r}")
        self.brain = brain
        self.services = services or EngineServices.default()
        self.timing = timing or Timing(pace=pace)
        if self.timing.pace != pace and timing is not None:
            self.timing = Timing(
                pace, timing.chunk_ms, timing.audio_lead_ms, timing.transcript_lead_ms, timing.text_delta_ms
            )
        self._planner = ResponsePlanner(self.timing)
        self._ids = IdMaker(seed)
        self.session: dict[str, Any] = (
            default_transcription_session(self._ids.session(), wall_clock())
            if intent == "transcription"
            else default_session(model, self._ids.session(), wall_clock())
        )
        self.conversation_id = self._ids.conversation()
        self.closed: tuple[int, str] | None = None
        self._items: list[dict[str, Any]] = []
        self._audio: dict[str, bytes] = {}
        self._marks: dict[str, list[tuple[int, int]]] = {}
        self._transcripts: dict[str, str] = {}
        self._call_notes: dict[str, Any] = {}
        self._responses: list[ActiveResponse] = []
        self._tail: list[ActiveResponse] = []  # finished responses with events still to release
        self._voice_locked = False
        self._transcriber: Callable[[bytes], str] | None = None
        self._transcriber_error: str | None = None
        # input audio: total ms written this session; the uncommitted buffer and where it starts
        self._input_ms = 0.0
        self._buffer = bytearray()
        self._buffer_start_ms = 0.0
        self._odd_byte = (
            b""  # the first half of a PCM sample an append ended on: the next append completes it
        )
        self._detector: TurnDetectorLike | None = None
        self._detector_key: tuple[Any, ...] | None = None
        self._detector_offset_ms = 0.0
        self._speech_item_id: str | None = None
        self._speech_start_ms = 0
        self._idle_deadline: float | None = None
        # work after a VAD commit (transcription, the response) runs in the next advance()/receive(), so that
        # speech_stopped and committed reach the client before the slower work starts
        self._deferred: list[tuple[float, Callable[[float], list[dict[str, Any]] | None]]] = []
        # the turn being transcribed while it is spoken: its stream and how far into the buffer it was fed
        self._stream: TranscriptStream | None = None
        self._stream_pos = 0
        self._pending: dict[str, Future[str]] = {}  # item id -> transcript still being finalised
        # a batched detector (voicelab.server.vad_batch) scores appends on another thread; the I/O layer may
        # set on_vad_ready (called from that thread) to be told when to call advance() for their events
        self.on_vad_ready: Callable[[], None] | None = None
        self._clock_ms = 0.0  # the latest now_ms seen
        self._held: deque[tuple[str, Any]] = deque()  # frames waiting for the batched VAD of earlier appends

    # --- public API -----------------------------------------------------------------------------------

    def start(self, now_ms: float) -> list[dict[str, Any]]:
        """The first event of the connection: `session.created`; or, for a model the real API does not
        know, `invalid_model` and the connection closes with 4000 (`closed` is set)."""
        problem = (
            model_problem(str(self.session["model"])) if self.session.get("type") == "realtime" else None
        )
        if problem is not None:
            self.closed = (4000, "invalid_request_error.invalid_model")
            return [self._error("invalid_model", problem, None, None)]
        self._configure_detector()
        return [self._event({"type": "session.created", "session": copy.deepcopy(self.session)})]

    def receive(self, data: str | bytes, now_ms: float) -> list[dict[str, Any]]:
        """Handle one client frame (text, or bytes for a binary frame) and return the server events."""
        self._clock_ms = now_ms
        out: list[dict[str, Any]] = self._run_deferred(now_ms) + self._release(now_ms)
        frame = _parse_client_frame(data)
        if self._held or (not _is_append(frame) and self._vad_busy()):
            # a batched VAD is still scoring earlier appends: this frame waits for their events (advance()
            # handles it then), so that the events keep the order of a synchronous VAD
            self._held.append(frame)
            return out
        out.extend(self._handle(frame, now_ms))
        return out

    def _handle(self, frame: tuple[str, Any], now_ms: float) -> list[dict[str, Any]]:
        kind, event = frame
        if kind == "binary":
            return [
                self._error(
                    "invalid_event",
                    "Expected a text WebSocket message, but got a binary message. Send each event "
                    "as JSON text.",
                    None,
                    None,
                )
            ]
        if kind == "invalid_json":
            return [
                self._error(
                    "invalid_json", f"The server could not parse the event as JSON: {event}.", None, None
                )
            ]
        out: list[dict[str, Any]] = []
        client_event_id: str | None = None
        try:
            if not isinstance(event, dict):
                raise ClientEventError("invalid_json", "Expected a JSON object with a 'type' field.")
            raw_id = event.get("event_id")
            client_event_id = raw_id if isinstance(raw_id, str) else None
            out.extend(self._dispatch(event, now_ms))
        except ClientEventError as exc:
            out.append(self._error(exc.code, exc.message, exc.param, client_event_id, exc.type))
        except Exception as exc:  # a bug or a failing service must not take the connection down
            message = f"The embedded server failed on this event ({type(exc).__name__}: {exc})."
            out.append(self._error("server_error", message, None, client_event_id, "server_error"))
        out.extend(self._release(now_ms))
        return out

    def advance(self, now_ms: float) -> list[dict[str, Any]]:
        """Events due by `now_ms`: deferred turn work, paced response events and the idle timeout."""
        self._clock_ms = now_ms
        out = self._run_deferred(now_ms) + self._release(now_ms)
        idle = self._idle_deadline is not None and now_ms >= self._idle_deadline
        vad_events = self._vad_results(now_ms, wait=idle)
        out.extend(vad_events)
        # frames held for the batched VAD: handled in the next call when VAD events go out now (so that
        # speech_stopped is not held up by the turn's response work), as receive() would have handled them
        while not vad_events and self._held and (_is_append(self._held[0]) or not self._vad_busy()):
            out.extend(self._run_deferred(now_ms) + self._release(now_ms))
            out.extend(self._handle(self._held.popleft(), now_ms))
        if self._idle_deadline is not None and now_ms >= self._idle_deadline:
            self._idle_deadline = None
            if not self._speech_item_id and not any(r.default for r in self._responses):
                out.extend(self._idle_timeout(now_ms))
                out.extend(self._release(now_ms))
        return out

    def next_deadline(self) -> float | None:
        times = [t for t in (r.next_at() for r in self._responses + self._tail) if t is not None]
        times.extend(at for at, _ in self._deferred)
        if self._idle_deadline is not None:
            times.append(self._idle_deadline)
        if self._held and not self._vad_busy():
            times.append(self._clock_ms)  # frames held for the batched VAD can go now
        elif self.on_vad_ready is None and (self._held or self._vad_busy()):
            times.append(self._clock_ms + POLL_MS)  # no wake-up callback: poll the batched VAD
        return min(times) if times else None

    @property
    def items(self) -> list[dict[str, Any]]:
        """The default conversation, in order (copies; audio bytes not included)."""
        return copy.deepcopy(self._items)

    @property
    def active_response_ids(self) -> list[str]:
        return [r.id for r in self._responses]

    # --- plumbing -------------------------------------------------------------------------------------

    def _event(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"event_id": self._ids.event(), **body}

    def _error(
        self,
        code: str | None,
        message: str,
        param: str | None,
        client_event_id: str | None,
        kind: str = "invalid_request_error",
    ) -> dict[str, Any]:
        # a lone surrogate the client sent (e.g. in an item id) must not make the error itself invalid UTF-8
        message = message.encode("utf-8", "replace").decode("utf-8")
        error = {"type": kind, "code": code, "message": message, "param": param, "event_id": client_event_id}
        return self._event({"type": "error", "error": error})

    def _dispatch(self, event: dict[str, Any], now_ms: float) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind is None:
            raise ClientEventError(
                "missing_required_parameter", "Missing required parameter: 'type'.", "type"
            )
        if kind not in ACCEPTED_TYPES:
            supported = ", ".join(repr(t) for t in ACCEPTED_TYPES)
            raise ClientEventError(
                "invalid_value", f"Invalid value: {kind!r}. Supported values are: {supported}.", "type"
            )
        if kind == "session.input_audio_buffer.append":
            kind = "input_audio_buffer.append"
        self._check_event(kind, event)
        handler = getattr(self, "_on_" + kind.replace(".", "_"))
        return typing.cast(list[dict[str, Any]], handler(event, now_ms))

    def _check_event(self, kind: str, event: dict[str, Any]) -> None:
        if event.get("type") == "input_audio_buffer.append" and _plain_append(event):
            return  # the common case, ~50 times a second per session: what the checks below would pass
        cls = _CLIENT_CLASSES.get(kind)
        if cls is None:
            return
        body = {key: value for key, value in event.items() if key != "type"}
        unknown = find_unknown_parameter({"type": kind, **body}, cls, "")
        if unknown:
            unknown = unknown.lstrip(".")
            raise ClientEventError("unknown_parameter", f"Unknown parameter: '{unknown}'.", unknown)
        if kind == "session.update":
            if "session" not in event:
                raise ClientEventError(
                    "missing_required_parameter", "Missing required parameter: 'session'.", "session"
                )
            return
        checked = dict(event)
        if kind == "response.create" and isinstance(checked.get("response"), dict):
            checked["response"] = {k: v for k, v in checked["response"].items() if k != "input"}
        try:
            cls.model_validate(checked)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = _path("", tuple(first["loc"]), checked).lstrip(".")
            if first["type"] == "missing":
                missing = ".".join(str(p) for p in first["loc"] if not str(p)[:1].isupper())
                raise ClientEventError(
                    "missing_required_parameter", f"Missing required parameter: '{missing}'.", missing
                ) from None
            raise ClientEventError(
                "invalid_value", f"Invalid value for '{param}': {first['msg']}.", param
            ) from None

    def _run_deferred(self, now_ms: float) -> list[dict[str, Any]]:
        """Run deferred work that is due; work that returns None is not ready yet and is retried later."""
        out: list[dict[str, Any]] = []
        while self._deferred and self._deferred[0][0] <= now_ms:
            _, work = self._deferred.pop(0)
            events = work(now_ms)
            if events is None:
                self._deferred.insert(0, (now_ms + POLL_MS, work))
                break
            out.extend(events)
        return out

    def _release(self, now_ms: float) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            due = [r for r in self._responses + self._tail if r.planned and r.planned[0].at_ms <= now_ms]
            if not due:
                return out
            active = min(due, key=lambda r: r.planned[0].at_ms)
            planned = active.planned.popleft()
            if active in self._tail and not active.planned:
                self._tail.remove(active)
            event = planned.event
            active.note_released(event)
            kind = event["type"]
            if kind == "response.output_audio.delta":
                self._voice_locked = True
            elif kind == "response.done":
                self._finish_response(active, now_ms)
            out.append(self._event(event))

    def _finish_response(self, active: ActiveResponse, now_ms: float) -> None:
        if active in self._responses:
            self._responses.remove(active)
            if active.planned:
                self._tail.append(active)
        if active.item is not None:
            item_id = active.item["id"]
            if active.kind == "audio":
                self._audio[item_id] = bytes(active.audio)
            if active.default:
                self._replace_item(active.item)
            if active.kind == "call":
                self._call_notes.setdefault(active.item["call_id"], None)
        detection = self._turn_detection()
        timeout = detection.get("idle_timeout_ms") if detection else None
        if active.default and detection and detection.get("type") == "server_vad" and timeout:
            self._idle_deadline = max(now_ms, active.playback_end_ms) + float(timeout)

    # --- conversation ---------------------------------------------------------------------------------

    def _index(self, item_id: str) -> int | None:
        for index, item in enumerate(self._items):
            if item.get("id") == item_id:
                return index
        return None

    def _last_item_id(self) -> str | None:
        return self._items[-1]["id"] if self._items else None

    def _replace_item(self, item: dict[str, Any]) -> None:
        index = self._index(item["id"])
        if index is not None:
            self._items[index] = copy.deepcopy(item)

    def _require_item(self, item_id: Any, action: str) -> int:
        index = self._index(item_id) if isinstance(item_id, str) else None
        if index is None:
            raise ClientEventError(
                "item_not_found",
                f"Error {action} item: the item with id '{item_id}' does not exist in the conversation.",
                "item_id",
            )
        return index

    def _with_audio(self, item: dict[str, Any]) -> dict[str, Any]:
        full = copy.deepcopy(item)
        audio = self._audio.get(item["id"])
        for part in full.get("content") or []:
            if part.get("type") in ("input_audio", "output_audio") and audio is not None:
                part["audio"] = base64.b64encode(audio).decode("ascii")
        return full

    # --- session --------------------------------------------------------------------------------------

    def _turn_detection(self) -> dict[str, Any] | None:
        value = ((self.session.get("audio") or {}).get("input") or {}).get("turn_detection")
        return value if isinstance(value, dict) else None

    def _input_format(self) -> str:
        fmt = ((self.session.get("audio") or {}).get("input") or {}).get("format") or {}
        return str(fmt.get("type", "audio/pcm"))

    def _configure_detector(self) -> None:
        detection = self._turn_detection()
        if detection is None:
            self._detector, self._detector_key = None, None
            return
        if detection.get("type") == "semantic_vad":
            silence = SEMANTIC_SILENCE_MS.get(str(detection.get("eagerness") or "auto"), 600)
            key: tuple[Any, ...] = (0.5, 300, silence)
        else:
            threshold: Any = detection.get("threshold")
            padding: Any = detection.get("prefix_padding_ms")
            silence_ms: Any = detection.get("silence_duration_ms")
            key = (
                float(threshold if threshold is not None else 0.5),
                int(padding if padding is not None else 300),
                int(silence_ms if silence_ms is not None else 200),
            )
        rate = 24000 if self._input_format() == "audio/pcm" else 8000
        key = (*key, rate)
        if key != self._detector_key:
            self._detector = self.services.turn_detector(key[0], key[1], key[2], rate)
            if hasattr(self._detector, "wakeup"):
                self._detector.wakeup = self._vad_ready  # type: ignore[union-attr]
            self._detector_key = key
            self._detector_offset_ms = self._input_ms
            self._speech_item_id = None
            self._drop_stream()

    def _vad_busy(self) -> bool:
        return bool(getattr(self._detector, "busy", False))

    def _vad_ready(self) -> None:
        if self.on_vad_ready is not None:
            self.on_vad_ready()

    def _on_session_update(self, event: dict[str, Any], now_ms: float) -> list[dict[str, Any]]:
        update = event["session"]
        check_session_update(update, str(self.session.get("type", "realtime")))
        merged = merge_session(self.session, update)
        if self._voice_locked and voice_of(merged) != voice_of(self.session):
            raise ClientEventError(
                "cannot_update_voice",
                "Cannot update a conversation's voice if assistant audio is present. Set the "
                "voice before the "
                "first response, or start a new session.",
                "session.audio.output.voice",
            )
        if self._input_format() != str(
            (((merged.get("audio") or {}).get("input") or {}).get("format") or {}).get("type", "audio/pcm")
        ):
            self._odd_byte = b""
        self.session = merged
        self._configure_detector()
        return [self._event({"type": "session.updated", "session": copy.deepcopy(self.session)})]

    def _on_session_close(self, event: dict[str, Any], now_ms: float) -> list[dict[str, Any]]:
        self.closed = (1000, "session closed by the client")
        return []

    # --- input audio buffer ---------------------------------------------------------------------------

    def _on_input_audio_buffer_append(self, event: dict[str, Any], now_ms: float) -> list[dict[str, Any]]:
        audio = event.get("audio")
        try:
            data = base64.b64decode(audio, validate=True) if isinstance(audio, str) else None
        except (binascii.Error, ValueError):
            data = None
        if data is None:
            raise ClientEventError(
                "invalid_value",
                "Invalid 'audio': expected base64-encoded audio in the session input format.",
                "audio",
            )
        fmt = self._input_format()
        bytes_per_ms = _bytes_per_ms({"type": fmt})
        if fmt == "audio/pcm":
            if self._odd_byte:
                data, self._odd_byte = self._odd_byte + data, b""
            if len(data) % 2:
                data, self._odd_byte = data[:-1], data[-1:]
        self._buffer.extend(data)
        self._input_ms += len(data) / bytes_per_ms
        if self._detector is None or not data:
            return []
        pcm16 = np.frombuffer(data, dtype="<i2") if fmt == "audio/pcm" else decode_g711(data, fmt)
        submit = getattr(self._detector, "submit", None)
        if submit is not None:  # batched: this append's events come from _vad_results once scored
            submit(pcm16, self._input_ms)  # int16 in: scaled by 1/32768 there, the very same floats
            return self._vad_results(now_ms, wait=False)
        samples = pcm16.astype(np.float32) / 32768.0
        return self._after_vad(self._detector.push(samples), self._input_ms, now_ms)

    def _after_vad(self, turn_events: list[Any], input_ms: float, now_ms: float) -> list[dict[str, Any]]:
        """An append's work once its VAD is known (`input_ms`: the session's input audio up to its end)."""
        out: list[dict[str, Any]] = []
        for turn_event in turn_events:
            if hasattr(turn_event, "audio_start_ms"):
                out.extend(
                    self._speech_started(int(turn_event.audio_start_ms + self._detector_offset_ms), now_ms)
                )
            else:
                out.extend(
                    self._speech_stopped(int(turn_event.audio_end_ms + self._detector_offset_ms), now_ms)
                )
        bytes_per_ms = _bytes_per_ms({"type": self._input_format()})
        end = len(self._buffer)
        if input_ms != self._input_ms:  # later appends are in the buffer already
            end = max(0, min(end, round((input_ms - self._buffer_start_ms) * bytes_per_ms)))
        if self._stream is not None and end - self._stream_pos >= STREAM_FEED_BYTES:
            self._feed_stream(end)
        if self._speech_item_id is None:
            self._trim_idle_buffer(bytes_per_ms, input_ms)
        return out

    def _vad_results(self, now_ms: float, wait: bool) -> list[dict[str, Any]]:
        """The events of appends a batched detector has scored (all of them when `wait`), in order."""
        detector = self._detector
        if detector is None or not getattr(detector, "busy", False):
            return []
        out: list[dict[str, Any]] = []
        for input_ms, turn_events in detector.wait() if wait else detector.completed():  # type: ignore[attr-defined]
            if self._detector is not detector:
                break  # a session.update replaced the detector meanwhile
            out.extend(self._after_vad(turn_events, input_ms, now_ms))
        return out + self._release(now_ms) if out else out

    def _trim_idle_buffer(self, bytes_per_ms: float, input_ms: float | None = None) -> None:
        """Outside a turn, drop input audio older than VAD_KEEP_MS + the prefix padding: a turn that starts
        later still gets its padding, and silence does not pile up (10 minutes would be 29 MB of PCM)."""
        input_ms = self._input_ms if input_ms is None else input_ms
        if self._input_ms - self._buffer_start_ms <= 2 * VAD_KEEP_MS:  # the common case: nothing to trim yet
            return
        detection = self._turn_detection() or {}
        padding = detection.get("prefix_padding_ms")
        padding_ms = float(padding) if isinstance(padding, (int, float)) else 300.0
        keep_ms = VAD_KEEP_MS + min(padding_ms, VAD_MAX_PADDING_KEPT_MS)
        excess_ms = (input_ms - self._buffer_start_ms) - 2 * keep_ms
        if excess_ms <= 0:  # trim in steps of keep_ms, not on every append
            return
        drop = int((input_ms - self._buffer_start_ms - keep_ms) * bytes_per_ms)
        drop -= drop % 2
        del self._buffer[:drop]
        self._buffer_start_ms += drop / bytes_per_ms

    # --- transcription while the user speaks ----------------------------------------------------------

    def _open_stream(self) -> None:
        """Start decoding the turn that just started (PCM input and a streaming transcriber only)."""
        self._drop_stream()
        if not self.brain.phrases and not self._transcribing():
            return
        transcriber = self._get_transcriber()
        stream_factory = getattr(transcriber, "stream", None)
        if stream_factory is None or self._input_format() != "audio/pcm":
            return
        start = round((self._speech_start_ms - self._buffer_start_ms) * 48)
        self._stream = stream_factory()
        self._stream_pos = max(0, start - start % 2)

    def _feed_stream(self, end: int) -> None:
        if self._stream is not None and end > self._stream_pos:
            self._stream.feed(bytes(self._buffer[self._stream_pos : end]))
            self._stream_pos = end

    def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.cancel()

    def _speech_started(self, audio_start_ms: int, now_ms: float) -> list[dict[str, Any]]:
        self._speech_item_id = self._ids.item()
        self._speech_start_ms = max(audio_start_ms, int(self._buffer_start_ms))
        self._idle_deadline = None
        try:
            self._open_stream()
        except Exception:  # transcription problems surface at the end of the turn
            self._stream = None
        out = [
            self._event(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": audio_start_ms,
                    "item_id": self._speech_item_id,
                }
            )
        ]
        detection = self._turn_detection() or {}
        if detection.get("interrupt_response", True):
            for active in [r for r in self._responses if r.default]:
                out.extend(self._cancel(active, "turn_detected", now_ms))
        return out

    def _speech_stopped(self, audio_end_ms: int, now_ms: float) -> list[dict[str, Any]]:
        item_id = self._speech_item_id or self._ids.item()
        self._speech_item_id = None
        out = [
            self._event(
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": audio_end_ms,
                    "item_id": item_id,
                }
            )
        ]
        bytes_per_ms = _bytes_per_ms({"type": self._input_format()})
        start = round((self._speech_start_ms - self._buffer_start_ms) * bytes_per_ms)
        end = round((audio_end_ms - self._buffer_start_ms) * bytes_per_ms)
        start, end = max(0, start - start % 2), max(0, end - end % 2)
        segment = bytes(self._buffer[start:end])
        if self._stream is not None:
            self._feed_stream(end)
            stream, self._stream = self._stream, None
            with contextlib.suppress(Exception):  # on failure the whole segment is transcribed instead
                self._pending[item_id] = stream.finish()
        del self._buffer[:end]
        self._buffer_start_ms = float(audio_end_ms)
        out.extend(self._commit(item_id, segment, transcribe=False))
        respond = not self.transcription_only and bool(
            (self._turn_detection() or {}).get("create_response", True)
        )

        def after(now: float) -> list[dict[str, Any]] | None:
            pending = self._pending.get(item_id)
            if pending is not None and not pending.done():
                return None  # still finalising in the worker: keep serving other events meanwhile
            events = self._transcription_events(item_id, segment) if self._transcribing() else []
            if respond and not any(r.default for r in self._responses):
                events.extend(self._create_response({}, now))
            return events + self._release(now)

        self._deferred.append((now_ms, after))
        return out

    @property
    def transcription_only(self) -> bool:
        """A transcription session (`?intent=transcription`): turns are transcribed, never answered."""
        return self.session.get("type") == "transcription"

    def _transcribing(self) -> bool:
        return bool(((self.session.get("audio") or {}).get("input") or {}).get("transcription"))

    def _commit(self, item_id: str, audio: bytes, transcribe: bool = True) -> list[dict[str, Any]]:
        previous = self._last_item_id()
        item = {
            "id": item_id, "type": "message", "role": "user", "object": "realtime.item",
            "status": "completed", "content": [{"type": "input_audio", "transcript": None}],
        }  # fmt: skip
        self._items.append(item)
        self._audio[item_id] = audio
        out = [
            self._event(
                {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous}
            ),
            self._event(
                {"type": "conversation.item.added", "previous_item_id": previous, "item": copy.deepcopy(item)}
            ),
            self._event(
                {"type": "conversation.item.done", "previous_item_id": previous, "item": copy.deepcopy(item)}
            ),
        ]
        if transcribe and self._transcribing():
            out.extend(self._transcription_events(item_id, audio))
        return out

    def _get_transcriber(self) -> Callable[[bytes], str] | None:
        if self._transcriber is None and self._transcriber_error is None:
            try:
                self._transcriber = self.services.transcriber(list(self.brain.phrases))
            except Exception as exc:  # the transcriber is optional; the brain then sees no text
                self._transcriber_error = f"{type(exc).__name__}: {exc}"
        return self._transcriber

    def _transcribe(self, item_id: str) -> str | None:
        """The item's transcript for the brain (computed once), or None when no transcriber is available."""
        if item_id in self._transcripts:
            return self._transcripts[item_id]
        pending = self._pending.pop(item_id, None)
        if pending is not None:
            try:
                text = str(pending.result())
                self._transcripts[item_id] = text
                return text
            except Exception:  # decode the committed audio as a whole instead
                pass
        if self._get_transcriber() is None or self._transcriber is None:
            return None
        audio = pcm16_24k_from(self._audio.get(item_id, b""), self._input_format())
        text = self._transcriber(audio) if audio else ""
        self._transcripts[item_id] = text
        return text

    def _transcription_events(self, item_id: str, audio: bytes) -> list[dict[str, Any]]:
        try:
            text = self._transcribe(item_id)
            problem = None if text is not None else self._transcriber_error
        except Exception as exc:
            text, problem = None, f"{type(exc).__name__}: {exc}"
        if text is None:
            error = {
                "type": "server_error",
                "code": "transcription_failed",
                "message": f"The embedded server could not transcribe the audio ({problem}).",
                "param": None,
            }
            return [
                self._event(
                    {
                        "type": "conversation.item.input_audio_transcription.failed",
                        "item_id": item_id,
                        "content_index": 0,
                        "error": error,
                    }
                )
            ]
        index = self._index(item_id)
        if index is not None:
            self._items[index]["content"][0]["transcript"] = text
        seconds = round(len(audio) / _bytes_per_ms({"type": self._input_format()}) / 1000.0, 3)
        base = {"item_id": item_id, "content_index": 0}
        return [
            self._event({"type": "conversation.item.input_audio_transcription.delta", **base, "delta": text}),
            self._event(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    **base,
                    "transcript": text,
                    "usage": {"type": "duration", "seconds": seconds},
                }
            ),
        ]

    def _on_input_audio_buffer_commit(self, event: dict[str, Any], now_ms: float) -> list[dict[str, Any]]:
        buffered_ms = len(self._buffer) / _bytes_per_ms({"type": self._input_format()})
        if buffered_ms < MIN_COMMIT_MS:
            raise ClientEventError(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS:.0f}ms of "
                f"audio, but buffer only has {buffered_ms:.2f}ms of audio.",
            )
        item_id = self._speech_item_id or self._ids.item()
        self._speech_item_id = None
        self._drop_stream()
        if self._detector is not None:
            self._detector.clear()
        audio = bytes(self._buffer)
        self._buffer.clear()
        self._odd_byte = b""  # half a sample cannot be committed; it must not start the next turn either
        self._buffer_start_ms = self._input_ms
        return self._commit(item_id, audio)

    def _on_input_audio_buffer_clear(self, event: dict[str, Any], now_ms: float) -> list[dict[str, Any]]:
        self._buffer.clear()
        self._odd_byte = b""
        self._buffer_start_ms = self._input_ms
        self._speech_item_id = None
        self._drop_stream()
        if self._detector is not None:
            self._detector.clear()
        return [self._event({"type": "input_audio_buffer.cleared"})]

    def _idle_timeout(self, now_ms: float) -> list[dict[str, Any]]:
        item_id = self._ids.item()
        out = [
            self._event(
                {
                    "type": "input_audio_buffer.timeout_triggered",
                    "audio_start_ms": int(self._buffer_start_ms),
                    "audio_end_ms": int(self._input_ms),
                    "item_id": item_id,
                }
            )
        ]
        audio = bytes(self._buffer)
        self._buffer.clear()
        self._buffer_start_ms = self._input_ms
        self._drop_stream()
        if self._detector is not None:
            self._detector.clear()
        out.extend(self._commit(item_id, audio))
        out.extend(self._create_response({}, now_ms, idle=True))
        return out

    # --- conversation items ---------------------------------------------------------------------------

    def _on_conversation_item_create(self, event: dict[str, Any], now_ms: float) -> list[dict[str, Any]]:
        raw = event["item"]
        if not isinstance(raw, dict):
            raise ClientEventError("invalid_type", "Invalid type for 'item': expected an object.", "item")
        item = copy.deepcopy(raw)
        if item.get("type") == "message" and item.get("role") == "assistant":
            for index, part in enumerate(item.get("content") or []):
                if part.get("type") == "output_audio":
                    raise ClientEventError(
                        "invalid_value",
                        "Assistant audio messages cannot be created with conversation.item.create; use "
                        "'output_text' content instead.",
                        f"item.content[{index}].type",
                    )
        item_id = item.get("id") or self._ids.item()
        if self._index(item_id) is not None:
            raise ClientEventError(
                "invalid_value",
                f"Item with id '{item_id}' already exists; use a new id or leave it out.",
                "item.id",
            )
        previous_param = event.get("previous_item_id")
        if previous_param not in (None, "root") and self._index(previous_param) is None:
            raise ClientEventError(
                "invalid_value",
                f"Invalid 'previous_item_id': no item with id '{previous_param}' in the "
                "conversation. Use an "
                "existing id, 'root', or leave it out to append.",
                "previous_item_id",
            )
        # the client's and the tables' ordering rule; a client's null means "append" (the parameter left out)
        order = [existing["id"] for existing in self._items]
        place_item(order, item_id, ... if previous_param is None else previous_param)
        position = order.index(item_id)
        item = {"id": item_id, **{k: v for k, v in item.items() if k != "id"}}
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        for part in item.get("content") or []:
            if part.get("type") == "input_audio" and part.get("audio"):
                try:
                    self._audio[item_id] = base64.b64decode(part["audio"])
                except (binascii.Error, ValueError):
                    raise ClientEventError(
                        "invalid_value", "Invalid 'item.content.audio': not base64.", "item"
                    ) from None
                del part["audio"]
                part.setdefault("transcript", None)
        previous = self._items[position - 1]["id"] if position > 0 else None
        self._items.insert(position, item)
        return [
            self._event(
                {"type": "conversation.item.added", "previous_item_id": previous, "item": copy.deepcopy(item)}
            ),
            self._event(
                {"type": "conversation.item.done", "previous_item_id": previous, "item": copy.deepcopy(item)}
            ),
        ]

    def _on_conversation_item_retrieve(self, event: dict[str, Any], now_ms: float) -> list[dict[str, Any]]:
        index = self._require_item(event["item_id"], "retrieving")
        return [
            self._event({"type": "conversation.item.retrieved", "item": self._with_audio(self._items[index])})
        ]

    def _on_conversation_item_delete(self, event: dict[str, Any], now_ms: float) -> list[dict[str, Any]]:
        index = self._require_item(event["item_id"], "deleting")
        item = self._items.pop(index)
        self._audio.pop(item["id"], None)
        return [self._event({"type": "conversation.item.deleted", "item_id": item["id"]})]

    def _on_conversation_item_truncate(self, event: dict[str, Any], now_ms: float) -> list[dict[str, Any]]:
        index = self._require_item(event["item_id"], "truncating")
        item = self._items[index]
        content = item.get("content") or []
        content_index = event["content_index"]
        is_audio = item.get("role") == "assistant" and any(p.get("type") == "output_audio" for p in content)
        active = next((r for r in self._responses if r.item is not None and r.item["id"] == item["id"]), None)
        audio = bytes(active.audio) if active is not None else self._audio.get(item["id"])
        if not is_audio or not audio:
            raise ClientEventError(
                "unsupported_content_type", "Only model output audio messages can be truncated.", "item_id"
            )
        if content_index != 0 or content_index >= len(content):  # negative indexes included
            raise ClientEventError(
                "invalid_value",
                f"Invalid 'content_index': {content_index}; audio is content 0.",
                "content_index",
            )
        bytes_per_ms = active.bytes_per_ms if active is not None else self._output_bytes_per_ms()
        length_ms = len(audio) / bytes_per_ms
        end_ms = event["audio_end_ms"]
        if end_ms < 0:
            raise ClientEventError(
                "invalid_value",
                f"Invalid 'audio_end_ms': {end_ms}. Use the ms of audio the user heard, from 0 up.",
                "audio_end_ms",
            )
        if end_ms > length_ms:
            raise ClientEventError(
                None,
                f"Audio content of {int(length_ms)}ms is already shorter than {end_ms}ms",
                "audio_end_ms",
            )
        cut = int(end_ms * bytes_per_ms)
        self._audio[item["id"]] = audio[: cut - cut % 2]
        transcript = content[0].get("transcript") or ""
        content[0]["transcript"] = self._heard(item["id"], transcript, end_ms, length_ms)
        return [
            self._event(
                {
                    "type": "conversation.item.truncated",
                    "item_id": item["id"],
                    "content_index": 0,
                    "audio_end_ms": end_ms,
                }
            )
        ]

    def _heard(self, item_id: str, transcript: str, end_ms: float, length_ms: float) -> str:
        """The transcript words spoken before `end_ms` (word marks from the TTS, else proportional)."""
        marks = self._marks.get(item_id)
        if marks:
            starts = [ms for _, ms in marks]
            spoken = bisect.bisect_left(starts, end_ms)
            cut = marks[spoken][0] if spoken < len(marks) else len(transcript)
        else:
            cut = int(len(transcript) * (end_ms / length_ms)) if length_ms else 0
        return transcript[:cut].rstrip()

    def _output_bytes_per_ms(self) -> float:
        return _bytes_per_ms(((self.session.get("audio") or {}).get("output") or {}).get("format"))

    # --- responses ------------------------------------------------------------------------------------

    def _on_response_create(self, event: dict[str, Any], now_ms: float) -> list[dict[str, Any]]:
        if self.transcription_only:
            raise ClientEventError(
                "invalid_value",
                "response.create is not supported in a transcription session; connect to "
                "/v1/realtime?model=... for responses.",
                "type",
            )
        params = event.get("response") or {}
        unknown = find_unknown_parameter(params, RealtimeResponseCreateParams, "response")
        if unknown:
            raise ClientEventError("unknown_parameter", f"Unknown parameter: '{unknown}'.", unknown)
        check_response_params(params)
        return self._create_response(params, now_ms)

    def _on_response_cancel(self, event: dict[str, Any], now_ms: float) -> list[dict[str, Any]]:
        wanted = event.get("response_id")
        if wanted:
            targets = [r for r in self._responses if r.id == wanted]
        else:
            targets = [r for r in self._responses if r.default][:1]
        if not targets:
            raise ClientEventError(
                "response_cancel_not_active", "Cancellation failed: no active response found.", None
            )
        return self._cancel(targets[0], "client_cancelled", now_ms)

    def _cancel(self, active: ActiveResponse, reason: str, now_ms: float) -> list[dict[str, Any]]:
        previous = None
        if active.item is not None:
            index = self._index(active.item["id"])
            previous = self._items[index - 1]["id"] if index else None
        events = self._planner.cancel(active, reason, previous)
        self._finish_response(active, now_ms)
        return [self._event(e) for e in events]

    def _context_items(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        if "input" not in params or params["input"] is None:
            return [copy.deepcopy(i) for i in self._items]
        items: list[dict[str, Any]] = []
        for index, entry in enumerate(params["input"]):
            if isinstance(entry, dict) and entry.get("type") == "item_reference":
                found = self._index(entry.get("id", ""))
                if found is None:
                    raise ClientEventError(
                        "invalid_value",
                        f"Invalid item reference {entry.get('id')!r}: no such item.",
                        f"response.input[{index}]",
                    )
                items.append(copy.deepcopy(self._items[found]))
            elif isinstance(entry, dict):
                items.append(copy.deepcopy(entry))
        return items

    def _brain_input(
        self, items: list[dict[str, Any]], instructions: str, tools: tuple[str, ...], idle: bool
    ) -> BrainInput:
        return brain_input(items, instructions, tools, self._call_notes, idle, self._transcribe)

    def _input_tokens(self, items: list[dict[str, Any]], instructions: str) -> tuple[int, int]:
        text = text_tokens(instructions)
        audio_ms = 0.0
        for item in items:
            for part in item.get("content") or []:
                text += text_tokens(str(part.get("text") or part.get("transcript") or ""))
            if item.get("type") in ("function_call", "function_call_output"):
                text += text_tokens(str(item.get("arguments") or item.get("output") or ""))
            if item.get("id") in self._audio:
                audio_ms += len(self._audio[item["id"]]) / 48.0
        return text, int(np.ceil(audio_ms / 100))

    def _create_response(
        self, params: Mapping[str, Any], now_ms: float, idle: bool = False
    ) -> list[dict[str, Any]]:
        default = params.get("conversation", "auto") != "none"
        if default:
            busy = next((r for r in self._responses if r.default), None)
            if busy is not None:
                raise ClientEventError(
                    "conversation_already_has_active_response",
                    f"Conversation already has an active response in progress: {busy.id}. Wait "
                    "until the response "
                    "is finished before creating a new one.",
                )
        self._idle_deadline = None
        session = self.session
        modalities = list(params.get("output_modalities") or session.get("output_modalities") or ["audio"])
        instructions = params.get("instructions")
        instructions = str(session.get("instructions") or "") if instructions is None else str(instructions)
        tool_list = params.get("tools")
        tool_list = session.get("tools") or [] if tool_list is None else tool_list
        tool_choice = params.get("tool_choice", session.get("tool_choice", "auto"))
        names = tuple(
            t.get("name") for t in tool_list if t.get("type", "function") == "function" and t.get("name")
        )
        if tool_choice == "none":
            names = ()
        elif isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
            names = tuple(n for n in names if n == tool_choice.get("name"))
        out_audio = (params.get("audio") or {}).get("output") or {}
        session_out = (session.get("audio") or {}).get("output") or {}
        voice = out_audio.get("voice") or session_out.get("voice") or "alloy"
        fmt = out_audio.get("format") or session_out.get("format") or {"type": "audio/pcm", "rate": 24000}
        max_tokens = params.get("max_output_tokens", session.get("max_output_tokens", "inf"))
        items = self._context_items(params)
        response_id = self._ids.response()
        active = self._planner.start(
            response_id=response_id,
            conversation_id=self.conversation_id if default else None,
            modalities=modalities,
            voice=voice,
            output_format=fmt,
            max_output_tokens=max_tokens,
            metadata=params.get("metadata"),
            now_ms=now_ms,
        )
        self._responses.append(active)
        context = self._brain_input(items, instructions, names, idle)
        tokens = self._input_tokens(items, instructions)
        previous = self._last_item_id() if default else None
        item_id = self._ids.item()
        try:
            reply = decide(self.brain, context)
            if isinstance(reply, Call):
                call_id = self._ids.call()
                self._call_notes[call_id] = reply.note
                self._planner.plan_call(
                    active,
                    item_id=item_id,
                    call_id=call_id,
                    previous_item_id=previous,
                    name=reply.name,
                    arguments=dict(reply.arguments),
                    input_tokens=tokens,
                )
            else:
                self._plan_say(
                    active, reply.text, item_id, previous, modalities, voice, fmt, max_tokens, tokens
                )
        except ClientEventError:
            raise
        except Exception as exc:
            self._fail(active, exc)
            return []
        if default and active.item is not None:
            started = copy.deepcopy(active.item)
            started["status"] = "in_progress"
            self._items.append(started)
        return []

    def _plan_say(
        self,
        active: ActiveResponse,
        text: str,
        item_id: str,
        previous: str | None,
        modalities: list[str],
        voice: Any,
        fmt: Mapping[str, Any],
        max_tokens: Any,
        tokens: tuple[int, int],
    ) -> None:
        status, details = "completed", None
        if isinstance(max_tokens, int) and text_tokens(text) > max_tokens:
            text = text[: max_tokens * 4].rstrip()
            status, details = "incomplete", {"type": "incomplete", "reason": "max_output_tokens"}
        if len(text) > MAX_REPLY_CHARS:
            cut = text[:MAX_REPLY_CHARS]
            text = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip()
            status, details = "incomplete", {"type": "incomplete", "reason": "max_output_tokens"}
        audio: bytes | None = None
        if "audio" in modalities:
            audio = b""
            if text.strip():
                speed = float(((self.session.get("audio") or {}).get("output") or {}).get("speed") or 1.0)
                pcm, marks = self.services.synthesize(
                    text, voice if isinstance(voice, str) else "alloy", speed
                )
                audio = pcm16_24k_to(pcm, str(fmt.get("type", "audio/pcm")))
                if marks:
                    self._marks[item_id] = list(marks)
        self._planner.plan_message(
            active,
            item_id=item_id,
            previous_item_id=previous,
            text=text,
            audio=audio,
            bytes_per_ms=_bytes_per_ms(fmt),
            input_tokens=tokens,
            status=status,
            status_details=details,
            marks=self._marks.get(item_id),
        )

    def _fail(self, active: ActiveResponse, exc: Exception) -> None:
        """A brain or TTS failure: the response ends as `failed` with the reason."""
        active.planned.clear()
        active.planned.append(
            Planned(active.started_ms, {"type": "response.created", "response": dict(active.response)})
        )
        error = {
            "type": "server_error",
            "code": "embedded_server_error",
            "message": f"{type(exc).__name__}: {exc}",
        }
        body = {
            **active.response,
            "status": "failed",
            "status_details": {"type": "failed", "error": error},
            "usage": usage(0, 0, 0, 0),
        }
        active.planned.append(Planned(active.started_ms, {"type": "response.done", "response": body}))
        active.planned.append(Planned(active.started_ms, rate_limits(0)))
