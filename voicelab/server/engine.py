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

The engine is a façade over three parts that call each other explicitly: `InputBuffer` (the input audio
buffer, VAD turns and their caps; `voicelab.server.input_buffer`), `Conversation` (items, their audio and
transcripts; `voicelab.server.items`) and `Responder` (planning, streaming and cancelling responses;
`voicelab.server.responding`). The engine parses and checks client frames, routes them, and turns a turn's
end into its transcript and response.

Slow work. With `hand_out_work=True` the engine never runs a user's brain or a slow transcription itself: it
queues a `voicelab.server.work.Work` and goes on serving the connection; the driver takes it
(`take_work()`), performs it off its loop and hands the result back (`deliver(work, result, now_ms)`):

    for work in engine.take_work():
        result = await work.run_async(executor)
        events = engine.deliver(work, result, now_ms)

Without it (the default, for drivers that only call start/receive/advance/next_deadline) the same work runs
inline, and a transcript still being decoded elsewhere is waited for by polling (next_deadline() asks for a
call POLL_MS later).
"""

from __future__ import annotations

import copy
import itertools
import time
import typing
from collections import deque
from collections.abc import Callable
from typing import Any

from openai.types.realtime import RealtimeClientEvent, RealtimeResponseCreateParams
from pydantic import BaseModel, ValidationError

from voicelab.checks import checked_class, one_of
from voicelab.errors import ConfigError
from voicelab.protocol.events import parse_frame
from voicelab.server.brains import Brain
from voicelab.server.ids import IdMaker, error_event, stamped
from voicelab.server.input_buffer import (
    MAX_BUFFER_MS,
    MAX_TURN_MS,
    MIN_COMMIT_MS,
    SEMANTIC_SILENCE_MS,
    STREAM_FEED_BYTES,
    VAD_KEEP_MS,
    VAD_MAX_PADDING_KEPT_MS,
    InputBuffer,
    bytes_per_ms,
)
from voicelab.server.items import Conversation
from voicelab.server.responding import (
    MAX_REPLY_CHARS,
    Responder,
    brain_input,
    decide,
)
from voicelab.server.responses import Pace, Timing
from voicelab.server.services import EngineServices, TranscriptStream, TurnDetectorLike, pcm16_24k_from
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
from voicelab.server.work import Work, WorkResult

POLL_MS = 3.0  # how often deferred turn work checks a transcript still being finalised elsewhere
_bytes_per_ms = bytes_per_ms  # the single-module engine's name
Events = list[dict[str, Any]]
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


class _EngineTranscripts:
    """The responder's view of the engine's transcripts."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def known(self, item_id: str) -> bool:
        return self._engine._transcript_ready(item_id)

    def now(self, item_id: str) -> str | None:
        return self._engine._transcribe(item_id)

    def job(self, item_id: str) -> Callable[[], str | None]:
        return self._engine._transcript_job(item_id)

    def store(self, item_id: str, text: str | None) -> None:
        if text is not None:
            self._engine.conversation.set_transcript(item_id, text)


@checked_class
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
        hand_out_work: bool = False,
    ) -> None:
        _check_engine_args(brain, pace, services, timing, intent)
        self.brain = brain
        self.services = services or EngineServices.default()
        self.timing = timing or Timing(pace=pace)
        if self.timing.pace != pace and timing is not None:
            self.timing = Timing(
                pace, timing.chunk_ms, timing.audio_lead_ms, timing.transcript_lead_ms, timing.text_delta_ms
            )
        self._ids = IdMaker(seed)
        self.session: dict[str, Any] = (
            default_transcription_session(self._ids.session(), wall_clock())
            if intent == "transcription"
            else default_session(model, self._ids.session(), wall_clock())
        )
        self.conversation_id = self._ids.conversation()
        self.closed: tuple[int, str] | None = None
        self.hand_out_work = hand_out_work
        self._transcriber: Callable[[bytes], str] | None = None
        self._transcriber_error: str | None = None
        self.conversation = Conversation(self._ids)
        self._input = InputBuffer(self._ids, self.services, self._session, self, self._open_stream)
        self._responder = Responder(
            self._ids,
            brain,
            self.conversation,
            self._session,
            self.services,
            self.timing,
            self.conversation_id,
            _EngineTranscripts(self),
            self._submit if hand_out_work else None,
        )
        # work after a VAD commit (transcription, the response) runs in the next advance()/receive(), so that
        # speech_stopped and committed reach the client before the slower work starts
        self._deferred: list[tuple[float, Callable[[float], Events | None]]] = []
        self._clock_ms = 0.0  # the latest now_ms seen
        self._held: deque[tuple[str, Any]] = deque()  # frames waiting for the batched VAD or held work
        self._work_ids = itertools.count(1)
        self._new_work: list[Work] = []  # handed out, not yet taken by the driver
        self._waiting: dict[int, tuple[Work, Callable[[WorkResult, float], Events]]] = {}

    def _session(self) -> dict[str, Any]:
        return self.session

    # --- public API -----------------------------------------------------------------------------------

    def start(self, now_ms: float) -> Events:
        """The first event of the connection: `session.created`; or, for a model the real API does not
        know, `invalid_model` and the connection closes with 4000 (`closed` is set)."""
        problem = (
            model_problem(str(self.session["model"])) if self.session.get("type") == "realtime" else None
        )
        if problem is not None:
            self.closed = (4000, "invalid_request_error.invalid_model")
            return [self._error("invalid_model", problem, None, None)]
        self._input.configure()
        return [self._event({"type": "session.created", "session": copy.deepcopy(self.session)})]

    def receive(self, data: str | bytes, now_ms: float) -> Events:
        """Handle one client frame (text, or bytes for a binary frame) and return the server events."""
        self._clock_ms = now_ms
        out: Events = self._run_deferred(now_ms) + self._release(now_ms)
        frame = _parse_client_frame(data)
        if self._held or self._holding() or (not _is_append(frame) and self._input.vad_busy()):
            # a batched VAD is still scoring earlier appends, or work that keeps this connection's order is
            # out: this frame waits for their events (advance()/deliver() handle it then), so that the
            # events keep the order of an inline run
            self._held.append(frame)
            return out
        out.extend(self._handle(frame, now_ms))
        return out

    def advance(self, now_ms: float) -> Events:
        """Events due by `now_ms`: deferred turn work, paced response events and the idle timeout."""
        self._clock_ms = now_ms
        out = self._run_deferred(now_ms) + self._release(now_ms)
        idle_deadline = self._responder.idle_deadline
        idle = idle_deadline is not None and now_ms >= idle_deadline
        vad_events = self._vad_results(now_ms, wait=idle)
        out.extend(vad_events)
        # frames held for the batched VAD: handled in the next call when VAD events go out now (so that
        # speech_stopped is not held up by the turn's response work), as receive() would have handled them
        while (
            not vad_events
            and self._held
            and not self._holding()
            and (_is_append(self._held[0]) or not self._input.vad_busy())
        ):
            out.extend(self._run_deferred(now_ms) + self._release(now_ms))
            out.extend(self._handle(self._held.popleft(), now_ms))
        idle_deadline = self._responder.idle_deadline
        if idle_deadline is not None and now_ms >= idle_deadline:
            self._responder.idle_deadline = None
            if not self._input.speech_item_id and not self._responder.busy():
                out.extend(self._idle_timeout(now_ms))
                out.extend(self._release(now_ms))
        return out

    def next_deadline(self) -> float | None:
        times: list[float] = []
        due = self._responder.next_deadline()
        if due is not None:
            times.append(due)
        times.extend(at for at, _ in self._deferred)
        if self._responder.idle_deadline is not None:
            times.append(self._responder.idle_deadline)
        vad_busy = self._input.vad_busy()
        if self._held and not vad_busy and not self._holding():
            times.append(self._clock_ms)  # frames held for the batched VAD can go now
        elif self.on_vad_ready is None and (vad_busy or (self._held and not self._holding())):
            times.append(self._clock_ms + POLL_MS)  # no wake-up callback: poll the batched VAD
        return min(times) if times else None

    def take_work(self) -> list[Work]:
        """Work handed out since the last call (`hand_out_work=True`): perform each and `deliver` it."""
        work, self._new_work = self._new_work, []
        return work

    def deliver(self, work: Work, result: WorkResult, now_ms: float) -> Events:
        """The result of a `Work` from `take_work()`: its events, then whatever became due meanwhile."""
        self._clock_ms = now_ms
        out = self._run_deferred(now_ms) + self._release(now_ms)
        entry = self._waiting.get(work.id)
        if entry is not None and entry[0] is work:  # (not another engine's work with the same number)
            del self._waiting[work.id]
            try:
                out.extend(entry[1](result, now_ms))
            except Exception as exc:
                out.append(self._failure(exc, "delivered work", None))
            out.extend(self._release(now_ms))
        out.extend(self.advance(now_ms))  # frames that waited for this work
        return out

    @property
    def pending_work(self) -> int:
        """Work handed out and not delivered yet."""
        return len(self._waiting)

    @property
    def on_vad_ready(self) -> Callable[[], None] | None:
        """Set by the I/O layer: called (from the batching thread) when a batched VAD has events for
        advance()."""
        return self._input.on_vad_ready

    @on_vad_ready.setter
    def on_vad_ready(self, callback: Callable[[], None] | None) -> None:
        self._input.on_vad_ready = callback

    @property
    def items(self) -> list[dict[str, Any]]:
        """The default conversation, in order (copies; audio bytes not included)."""
        return copy.deepcopy(self.conversation.items)

    @property
    def active_response_ids(self) -> list[str]:
        return [r.id for r in self._responder.responses]

    @property
    def transcription_only(self) -> bool:
        """A transcription session (`?intent=transcription`): turns are transcribed, never answered."""
        return self.session.get("type") == "transcription"

    # the parts' state under the names of the single-module engine (tests and benchmarks read them)
    @property
    def _buffer(self) -> bytearray:
        return self._input.buffer

    @property
    def _detector(self) -> TurnDetectorLike | None:
        return self._input.detector

    @property
    def _items(self) -> list[dict[str, Any]]:
        return self.conversation.items

    @property
    def _audio(self) -> dict[str, bytes]:
        return self.conversation.audio

    @property
    def _responses(self) -> list[Any]:
        return self._responder.responses

    # --- plumbing -------------------------------------------------------------------------------------

    def _event(self, body: dict[str, Any]) -> dict[str, Any]:
        return stamped(self._ids, body)

    def _error(
        self,
        code: str | None,
        message: str,
        param: str | None,
        client_event_id: str | None,
        kind: str = "invalid_request_error",
    ) -> dict[str, Any]:
        return error_event(self._ids, code, message, param, client_event_id, kind)

    def _failure(self, exc: Exception, doing: str, client_event_id: str | None) -> dict[str, Any]:
        """The `error` event for what failed while handling `doing`: the client's mistake as such, anything
        else (a bug or a failing service, which must not take the connection down) as `server_error`."""
        if isinstance(exc, ClientEventError):
            return self._error(exc.code, exc.message, exc.param, client_event_id, exc.type)
        message = f"The embedded server failed on {doing} ({type(exc).__name__}: {exc})."
        return self._error("server_error", message, None, client_event_id, "server_error")

    def _release(self, now_ms: float) -> Events:
        return self._responder.release(now_ms)

    def _vad_results(self, now_ms: float, wait: bool) -> Events:
        out = self._input.vad_results(now_ms, wait)
        return out + self._release(now_ms) if out else out

    def _holding(self) -> bool:
        """Work is out whose events must come before this connection's next frames."""
        return any(work.holds_frames for work, _ in self._waiting.values())

    def _submit(self, work: Work, on_done: Callable[[WorkResult, float], Events]) -> Events:
        work.id = next(self._work_ids)
        self._new_work.append(work)
        self._waiting[work.id] = (work, on_done)
        return []

    def _handle(self, frame: tuple[str, Any], now_ms: float) -> Events:
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
        out: Events = []
        client_event_id: str | None = None
        try:
            if not isinstance(event, dict):
                raise ClientEventError("invalid_json", "Expected a JSON object with a 'type' field.")
            raw_id = event.get("event_id")
            client_event_id = raw_id if isinstance(raw_id, str) else None
            out.extend(self._dispatch(event, now_ms))
        except Exception as exc:
            out.append(self._failure(exc, "this event", client_event_id))
        out.extend(self._release(now_ms))
        return out

    def _dispatch(self, event: dict[str, Any], now_ms: float) -> Events:
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
        return typing.cast(Events, handler(event, now_ms))

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

    def _run_deferred(self, now_ms: float) -> Events:
        """Run deferred work that is due; work that returns None is not ready yet and is retried later."""
        out: Events = []
        while self._deferred and self._deferred[0][0] <= now_ms:
            _, work = self._deferred.pop(0)
            events = work(now_ms)
            if events is None:
                self._deferred.insert(0, (now_ms + POLL_MS, work))
                break
            out.extend(events)
        return out

    # --- session --------------------------------------------------------------------------------------

    def _turn_detection(self) -> dict[str, Any] | None:
        return self._input.turn_detection()

    def _on_session_update(self, event: dict[str, Any], now_ms: float) -> Events:
        update = event["session"]
        check_session_update(update, str(self.session.get("type", "realtime")))
        merged = merge_session(self.session, update)
        if self._responder.voice_locked and voice_of(merged) != voice_of(self.session):
            raise ClientEventError(
                "cannot_update_voice",
                "Cannot update a conversation's voice if assistant audio is present. Set the "
                "voice before the "
                "first response, or start a new session.",
                "session.audio.output.voice",
            )
        self._input.format_changing(
            str(
                (((merged.get("audio") or {}).get("input") or {}).get("format") or {}).get(
                    "type", "audio/pcm"
                )
            )
        )
        self.session = merged
        self._input.configure()
        return [self._event({"type": "session.updated", "session": copy.deepcopy(self.session)})]

    def _on_session_close(self, event: dict[str, Any], now_ms: float) -> Events:
        self.closed = (1000, "session closed by the client")
        return []

    # --- input audio buffer (voicelab.server.input_buffer) ---------------------------------------------

    def _on_input_audio_buffer_append(self, event: dict[str, Any], now_ms: float) -> Events:
        return self._input.append(event.get("audio"), now_ms)

    def _on_input_audio_buffer_commit(self, event: dict[str, Any], now_ms: float) -> Events:
        item_id, audio = self._input.commit()
        return self._commit(item_id, audio, now_ms)

    def _on_input_audio_buffer_clear(self, event: dict[str, Any], now_ms: float) -> Events:
        self._input.clear()
        return [self._event({"type": "input_audio_buffer.cleared"})]

    def _idle_timeout(self, now_ms: float) -> Events:
        item_id = self._ids.item()
        start_ms, end_ms = int(self._input.buffer_start_ms), int(self._input.input_ms)
        out = [
            self._event(
                {
                    "type": "input_audio_buffer.timeout_triggered",
                    "audio_start_ms": start_ms,
                    "audio_end_ms": end_ms,
                    "item_id": item_id,
                }
            )
        ]
        _, _, audio = self._input.take_for_timeout()
        out.extend(
            self._commit(item_id, audio, now_ms, then=lambda now: self._responder.create({}, now, idle=True))
        )
        return out

    # the TurnSink of the input buffer: a turn's start and end

    def turn_started(self, item_id: str, audio_start_ms: int, now_ms: float) -> Events:
        self._responder.idle_deadline = None
        out = [
            self._event(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": audio_start_ms,
                    "item_id": item_id,
                }
            )
        ]
        if (self._turn_detection() or {}).get("interrupt_response", True):
            out.extend(self._responder.interrupt(now_ms))
        return out

    def turn_stopped(
        self,
        item_id: str,
        audio_end_ms: int,
        audio: bytes,
        transcript: Any,
        now_ms: float,
        forced: bool,
    ) -> Events:
        out = [
            self._event(
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": audio_end_ms,
                    "item_id": item_id,
                }
            )
        ]
        if transcript is not None:
            self.conversation.pending[item_id] = transcript
        out.extend(self.conversation.commit_audio(item_id, audio))
        respond = (
            not forced
            and not self.transcription_only
            and bool((self._turn_detection() or {}).get("create_response", True))
        )
        self._deferred.append((now_ms, lambda now: self._turn_end(item_id, audio, respond, now)))
        return out

    def _turn_end(self, item_id: str, audio: bytes, respond: bool, now_ms: float) -> Events | None:
        """A VAD turn's transcript and response, once its transcript is ready (None: not yet, poll)."""
        if self._transcribing() and self.hand_out_work and not self._transcript_ready(item_id):
            pending = self.conversation.pending.pop(item_id, None)
            work = (
                Work(0, "transcript", future=pending)
                if pending is not None
                else _job_work(self._transcript_job(item_id))
            )

            def transcribed(result: WorkResult, now: float) -> Events:
                if pending is not None and result.error is not None:  # decode the whole turn instead
                    retry = _job_work(self._transcript_job(item_id))
                    return self._submit(retry, transcribed_whole)
                return transcribed_whole(result, now)

            def transcribed_whole(result: WorkResult, now: float) -> Events:
                events = self._transcription_result_events(item_id, audio, result)
                if respond and not self._responder.busy():
                    events.extend(self._responder.create({}, now))
                return events

            return self._submit(work, transcribed)
        pending = self.conversation.pending.get(item_id)
        if pending is not None and not pending.done() and not self.hand_out_work:
            return None  # still finalising in the worker: keep serving other events meanwhile
        events = self._transcription_events(item_id, audio) if self._transcribing() else []
        if respond and not self._responder.busy():
            events.extend(self._responder.create({}, now_ms))
        return events + self._release(now_ms)

    def _commit(
        self, item_id: str, audio: bytes, now_ms: float, then: Callable[[float], Events] | None = None
    ) -> Events:
        """Committed audio (manual commit or idle timeout) becomes an item; its transcript follows at
        once, or, handed out, before this connection's next frames are handled; then `then`."""
        out = self.conversation.commit_audio(item_id, audio)
        if not self._transcribing():
            return out + (then(now_ms) if then is not None else [])
        if self.hand_out_work and not self._transcript_ready(item_id):
            work = _job_work(self._transcript_job(item_id), holds_frames=True)

            def transcribed(result: WorkResult, now: float) -> Events:
                events = self._transcription_result_events(item_id, audio, result)
                return events + (then(now) if then is not None else [])

            return out + self._submit(work, transcribed)
        out.extend(self._transcription_events(item_id, audio))
        return out + (then(now_ms) if then is not None else [])

    # --- transcripts ----------------------------------------------------------------------------------

    def _transcribing(self) -> bool:
        return bool(((self.session.get("audio") or {}).get("input") or {}).get("transcription"))

    def _get_transcriber(self) -> Callable[[bytes], str] | None:
        if self._transcriber is None and self._transcriber_error is None:
            try:
                self._transcriber = self.services.transcriber(list(self.brain.phrases))
            except Exception as exc:  # the transcriber is optional; the brain then sees no text
                self._transcriber_error = f"{type(exc).__name__}: {exc}"
        return self._transcriber

    def _open_stream(self) -> TranscriptStream | None:
        """A transcription stream for the turn that just started, when the brain or the session needs it."""
        if not self.brain.phrases and not self._transcribing():
            return None
        stream_factory = getattr(self._get_transcriber(), "stream", None)
        return stream_factory() if stream_factory is not None else None

    def _transcript_ready(self, item_id: str) -> bool:
        """The item's transcript is known, or known to be unavailable, without decoding or waiting."""
        if item_id in self.conversation.transcripts:
            return True
        pending = self.conversation.pending.get(item_id)
        if pending is not None:
            return pending.done() and pending.exception() is None
        return self._get_transcriber() is None

    def _transcript_job(self, item_id: str) -> Callable[[], str | None]:
        """A function that gives the item's transcript in any thread (a Work's stage)."""
        pending = self.conversation.pending.pop(item_id, None)
        transcriber = self._get_transcriber()
        audio = pcm16_24k_from(self.conversation.audio.get(item_id, b""), self._input.input_format())

        def job() -> str | None:
            if pending is not None:
                try:
                    return str(pending.result())
                except Exception:  # decode the committed audio as a whole instead
                    pass
            if transcriber is None:
                return None
            return transcriber(audio) if audio else ""

        return job

    def _transcribe(self, item_id: str) -> str | None:
        """The item's transcript for the brain (computed once), or None when no transcriber is available."""
        if item_id in self.conversation.transcripts:
            return self.conversation.transcripts[item_id]
        pending = self.conversation.pending.pop(item_id, None)
        if pending is not None:
            try:
                text = str(pending.result())
                self.conversation.set_transcript(item_id, text)
                return text
            except Exception:  # decode the committed audio as a whole instead
                pass
        if self._get_transcriber() is None or self._transcriber is None:
            return None
        audio = pcm16_24k_from(self.conversation.audio.get(item_id, b""), self._input.input_format())
        text = self._transcriber(audio) if audio else ""
        self.conversation.set_transcript(item_id, text)
        return text

    def _transcription_events(self, item_id: str, audio: bytes) -> Events:
        try:
            text = self._transcribe(item_id)
            problem = None if text is not None else self._transcriber_error
        except Exception as exc:
            text, problem = None, f"{type(exc).__name__}: {exc}"
        return self.conversation.transcription_events(
            item_id, text, problem, audio, self._input.input_format()
        )

    def _transcription_result_events(self, item_id: str, audio: bytes, result: WorkResult) -> Events:
        text: str | None = None
        if result.error is not None:
            problem: str | None = f"{type(result.error).__name__}: {result.error}"
        else:
            text = None if result.value is None else str(result.value)
            problem = None if text is not None else self._transcriber_error
        if text is not None:
            self.conversation.set_transcript(item_id, text)
        return self.conversation.transcription_events(
            item_id, text, problem, audio, self._input.input_format()
        )

    # --- conversation items (voicelab.server.items) ----------------------------------------------------

    def _on_conversation_item_create(self, event: dict[str, Any], now_ms: float) -> Events:
        return self.conversation.create(event)

    def _on_conversation_item_retrieve(self, event: dict[str, Any], now_ms: float) -> Events:
        return self.conversation.retrieve(event)

    def _on_conversation_item_delete(self, event: dict[str, Any], now_ms: float) -> Events:
        return self.conversation.delete(event)

    def _on_conversation_item_truncate(self, event: dict[str, Any], now_ms: float) -> Events:
        playing = self._responder.playing(event["item_id"])
        output_format = ((self.session.get("audio") or {}).get("output") or {}).get("format")
        return self.conversation.truncate(event, playing, bytes_per_ms(output_format))

    # --- responses (voicelab.server.responding) ---------------------------------------------------------

    def _on_response_create(self, event: dict[str, Any], now_ms: float) -> Events:
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
        return self._responder.create(params, now_ms)

    def _on_response_cancel(self, event: dict[str, Any], now_ms: float) -> Events:
        return self._responder.cancel_request(event, now_ms)


def _check_engine_args(brain: Any, pace: Any, services: Any, timing: Any, intent: Any) -> None:
    """ConfigError (a ValueError) naming the argument and the fix, before anything is built."""
    if isinstance(brain, type) or not callable(getattr(brain, "reply", None)):
        got = f"the class {brain.__name__}" if isinstance(brain, type) else type(brain).__name__
        fix = (
            f"create one first, e.g. Engine({brain.__name__}(...))"
            if isinstance(brain, type)
            else ("e.g. Engine(voicelab.server.ScriptedBrain(script)) or Engine(voicelab.server.EchoBrain())")
        )
        raise ConfigError(
            f"Engine needs a brain (an object with `phrases` and `reply(context)`), got {got}; {fix}."
        )
    one_of(pace, "pace", ("realtime", "fast"), where="Engine")
    one_of(intent, "intent", (None, "transcription"), where="Engine")
    if services is not None and not isinstance(services, EngineServices):
        got = f"the class {services.__name__}" if isinstance(services, type) else type(services).__name__
        raise ConfigError(
            "Engine: services must be a voicelab.server.EngineServices (EngineServices.default(), "
            "EngineServices.pooled() or EngineServices(synthesize, turn_detector, transcriber)), or None for "
            f"the defaults; got {got}."
        )
    if timing is not None and not isinstance(timing, Timing):
        raise ConfigError(
            "Engine: timing must be a voicelab.server.responses.Timing, e.g. Timing(pace='fast'), or None "
            f"for the pace's defaults; got {type(timing).__name__}."
        )


def _job_work(job: Callable[[], str | None], holds_frames: bool = False) -> Work:
    """A transcript to decode in a worker thread."""
    return Work(0, "transcript", holds_frames=holds_frames, think=lambda _: job())


__all__ = [
    "MAX_BUFFER_MS",
    "MAX_REPLY_CHARS",
    "MAX_TURN_MS",
    "MIN_COMMIT_MS",
    "POLL_MS",
    "SEMANTIC_SILENCE_MS",
    "STREAM_FEED_BYTES",
    "VAD_KEEP_MS",
    "VAD_MAX_PADDING_KEPT_MS",
    "Engine",
    "brain_input",
    "decide",
]
