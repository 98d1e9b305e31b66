"""Responses of one connection: planning (the brain's decision, speech), streaming, cancelling (sans-I/O).

`Responder.create` starts a response. Its brain decision runs inline when that is cheap and safe (a built-in
brain, every transcript it needs already known); otherwise it becomes a `voicelab.server.work.Work` handed to
the engine's driver, and the response waits, in progress (`response.created` is out, cancel works), until
`deliver_reply` gets the decision. Planned events come out of `release` when due; `cancel` closes a response
early; `next_deadline` says when `release` next has something.

The Brain contract: `reply(context) -> Say | Call`, or `async def reply(context)`. A brain passed to the
server as an instance is shared by its sessions: a user's brain runs in worker threads (several at once when
sessions overlap) or, when `async def`, on the server's event loop; it must not rely on running in the
loop's thread. An exception from it ends that response `failed` (`status_details.error` says why).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from voicelab.server.brains import Brain, BrainInput, Call, EchoBrain, ReplayBrain, Say, ScriptedBrain
from voicelab.server.ids import IdMaker, stamped
from voicelab.server.input_buffer import bytes_per_ms
from voicelab.server.items import Conversation
from voicelab.server.responses import (
    ActiveResponse,
    Planned,
    ResponsePlanner,
    Timing,
    rate_limits,
    text_tokens,
    usage,
)
from voicelab.server.services import EngineServices, pcm16_24k_to
from voicelab.server.validation import ClientEventError
from voicelab.server.work import Work, WorkResult

# What one request may cost the event loop (all sessions share it): a reply is cut at MAX_REPLY_CHARS (about a
# minute of speech; synthesis time grows with it) and ends `incomplete`, like a max_output_tokens cut.
MAX_REPLY_CHARS = 1200
# Brains that answer in microseconds and keep no state a thread could race on: decided inline, on the loop.
INLINE_BRAINS: tuple[type, ...] = (ScriptedBrain, EchoBrain, ReplayBrain)

Events = list[dict[str, Any]]
# (work, what to do with its result at the moment it is delivered) -> the events of that moment
Submit = Callable[[Work, Callable[[WorkResult, float], Events]], Events]
Speech = tuple[bytes, list[tuple[int, int]] | None]


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


def checked_reply(reply: Any, context: BrainInput) -> Say | Call:
    """A call to a tool the request does not declare becomes a Say that says so; anything but a Say or a
    Call is a TypeError that names the fix (the response then ends `failed` with it)."""
    if not isinstance(reply, (Say, Call)):
        raise TypeError(
            f"the brain's reply() returned {type(reply).__name__}; return voicelab.server.Say(text) or "
            "voicelab.server.Call(name, arguments)"
        )
    if isinstance(reply, Call) and reply.name not in context.tools:
        return Say(f"The brain asked to call the tool {reply.name!r}, which this session does not declare.")
    return reply  # type: ignore[no-any-return]


def decide(brain: Brain, context: BrainInput) -> Say | Call:
    """The brain's answer, here and now (an `async def` reply is run to completion); a call to a tool the
    request does not declare becomes a Say that says so."""
    reply = brain.reply(context)
    if inspect.isawaitable(reply):
        from voicelab.server.work import _run_coroutine

        reply = _run_coroutine(reply)
    return checked_reply(reply, context)


def _latest_user_audio(items: list[dict[str, Any]]) -> str | None:
    """The id of the item whose transcript `brain_input` would ask for, if it needs one."""
    for item in reversed(items):
        if item.get("type") == "message" and item.get("role") == "user":
            for part in item.get("content") or []:
                if part.get("type") == "input_audio" and not part.get("transcript") and item.get("id"):
                    return str(item["id"])
            return None
    return None


class TranscriptSource(Protocol):
    """How the responder gets a user item's transcript (the engine implements it)."""

    def known(self, item_id: str) -> bool:
        """The transcript is at hand (or known to be unavailable) without waiting or decoding."""
        ...

    def now(self, item_id: str) -> str | None:
        """The transcript, decoded here if need be (blocking)."""
        ...

    def job(self, item_id: str) -> Callable[[], str | None]:
        """A function that computes the transcript in any thread (a `Work` stage)."""
        ...

    def store(self, item_id: str, text: str | None) -> None:
        """Keep a transcript computed elsewhere (None: none could be made)."""
        ...


class Responder:
    """The responses of one connection (see the module docstring)."""

    def __init__(
        self,
        ids: IdMaker,
        brain: Brain,
        conversation: Conversation,
        session: Callable[[], Mapping[str, Any]],
        services: EngineServices,
        timing: Timing,
        conversation_id: str,
        transcripts: TranscriptSource,
        submit: Submit | None,
    ) -> None:
        self._ids = ids
        self.brain = brain
        self._conversation = conversation
        self._session = session
        self._services = services
        self.planner = ResponsePlanner(timing)
        self._conversation_id = conversation_id
        self._transcripts = transcripts
        self._submit = submit  # None: every decision inline (a driver that takes no work)
        self.responses: list[ActiveResponse] = []
        self._tail: list[ActiveResponse] = []  # finished responses with events still to release
        self._thinking: dict[int, Work] = {}  # id(active) -> its reply being decided elsewhere
        self.voice_locked = False
        self.idle_deadline: float | None = None
        self._inline_brain = type(brain) in INLINE_BRAINS
        self._async_brain = inspect.iscoroutinefunction(getattr(brain, "reply", None))

    # --- state -----------------------------------------------------------------------------------------

    def busy(self) -> bool:
        """A default-conversation response is in progress."""
        return any(r.default for r in self.responses)

    def playing(self, item_id: str) -> tuple[bytes, float] | None:
        active = next((r for r in self.responses if r.item is not None and r.item["id"] == item_id), None)
        return (bytes(active.audio), active.bytes_per_ms) if active is not None else None

    def next_deadline(self) -> float | None:
        times = [t for t in (r.next_at() for r in self.responses + self._tail) if t is not None]
        return min(times) if times else None

    def _output_bytes_per_ms(self) -> float:
        return bytes_per_ms(((self._session().get("audio") or {}).get("output") or {}).get("format"))

    # --- client events ---------------------------------------------------------------------------------

    def cancel_request(self, event: dict[str, Any], now_ms: float) -> Events:
        wanted = event.get("response_id")
        if wanted:
            targets = [r for r in self.responses if r.id == wanted]
        else:
            targets = [r for r in self.responses if r.default][:1]
        if not targets:
            raise ClientEventError(
                "response_cancel_not_active", "Cancellation failed: no active response found.", None
            )
        return self.cancel(targets[0], "client_cancelled", now_ms)

    def interrupt(self, now_ms: float) -> Events:
        """The user started speaking: the default-conversation responses end `cancelled` (turn_detected)."""
        out: Events = []
        for active in [r for r in self.responses if r.default]:
            out.extend(self.cancel(active, "turn_detected", now_ms))
        return out

    def cancel(self, active: ActiveResponse, reason: str, now_ms: float) -> Events:
        previous = None
        if active.item is not None:
            previous = self._conversation.previous_of(active.item["id"])
        work = self._thinking.pop(id(active), None)
        if work is not None:
            work.abandoned = True  # its result, when it comes, is dropped
        events = self.planner.cancel(active, reason, previous)
        self.finish(active, now_ms)
        return [stamped(self._ids, e) for e in events]

    # --- creating ---------------------------------------------------------------------------------------

    def create(self, params: Mapping[str, Any], now_ms: float, idle: bool = False) -> Events:
        default = params.get("conversation", "auto") != "none"
        if default:
            busy = next((r for r in self.responses if r.default), None)
            if busy is not None:
                raise ClientEventError(
                    "conversation_already_has_active_response",
                    f"Conversation already has an active response in progress: {busy.id}. Wait "
                    "until the response "
                    "is finished before creating a new one.",
                )
        self.idle_deadline = None
        session = self._session()
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
        items = self._conversation.context_items(params)
        response_id = self._ids.response()
        active = self.planner.start(
            response_id=response_id,
            conversation_id=self._conversation_id if default else None,
            modalities=modalities,
            voice=voice,
            output_format=fmt,
            max_output_tokens=max_tokens,
            metadata=params.get("metadata"),
            now_ms=now_ms,
        )
        self.responses.append(active)
        plan = _Plan(modalities, voice, fmt, max_tokens, self._speed())
        missing = _latest_user_audio(items)
        needs_decoding = missing is not None and not self._transcripts.known(missing)
        if self._submit is not None and (not self._inline_brain or needs_decoding):
            return self._hand_out(active, plan, items, instructions, names, idle, missing)
        context = brain_input(
            items, instructions, names, self._conversation.call_notes, idle, self._transcripts.now
        )
        tokens = self._conversation.input_tokens(items, instructions)
        previous = self._conversation.last_item_id() if default else None
        item_id = self._ids.item()
        try:
            reply = decide(self.brain, context)
            self._plan_reply(active, plan, reply, item_id, previous, tokens, None)
        except ClientEventError:
            raise
        except Exception as exc:
            self._fail(active, exc, created_sent=False)
            return []
        self._add_started_item(active)
        return []

    def _speed(self) -> float:
        return float(((self._session().get("audio") or {}).get("output") or {}).get("speed") or 1.0)

    def _hand_out(
        self,
        active: ActiveResponse,
        plan: _Plan,
        items: list[dict[str, Any]],
        instructions: str,
        names: tuple[str, ...],
        idle: bool,
        missing: str | None,
    ) -> Events:
        """The decision as a `Work`: transcript and speech in a worker thread, the brain there or awaited."""
        item_id = self._ids.item()
        notes = dict(self._conversation.call_notes)
        transcribe = self._transcripts.job(missing) if missing is not None else None
        brain = self.brain
        synthesize = self._services.synthesize

        def prepare() -> tuple[BrainInput, dict[str, str | None]]:
            texts: dict[str, str | None] = {}
            if missing is not None and transcribe is not None:
                texts[missing] = transcribe()
            return brain_input(items, instructions, names, notes, idle, texts.get), texts

        def finish(value: tuple[Any, BrainInput, dict[str, str | None]]) -> _Decided:
            raw, context, texts = value
            reply = checked_reply(raw, context)
            speech: Speech | None = None
            clipped = None
            if not isinstance(reply, Call):
                clipped = _clip(reply.text, plan.max_tokens)
                speech = _speak(synthesize, clipped[0], plan)
            return _Decided(reply, clipped, speech, texts)

        if self._async_brain:

            async def think_async(prepared: tuple[BrainInput, dict[str, str | None]]) -> Any:
                context, texts = prepared
                return await brain.reply(context), context, texts  # type: ignore[misc]

            think: Callable[[Any], Any] = think_async
        else:

            def think(prepared: tuple[BrainInput, dict[str, str | None]]) -> Any:
                context, texts = prepared
                return brain.reply(context), context, texts

        work = Work(0, "reply", prepare=prepare, think=think, finish=finish, is_async=self._async_brain)
        self._thinking[id(active)] = work
        tokens = self._conversation.input_tokens(items, instructions)

        def delivered(result: WorkResult, now_ms: float) -> Events:
            return self._deliver_reply(active, work, plan, item_id, tokens, result, now_ms)

        assert self._submit is not None
        return self._submit(work, delivered)

    def _deliver_reply(
        self,
        active: ActiveResponse,
        work: Work,
        plan: _Plan,
        item_id: str,
        tokens: tuple[int, int],
        result: WorkResult,
        now_ms: float,
    ) -> Events:
        decided = result.value if isinstance(result.value, _Decided) else None
        if decided is not None:
            for key, text in decided.transcripts.items():
                self._transcripts.store(key, text)
        if work.abandoned or self._thinking.pop(id(active), None) is None:
            return []  # cancelled while the brain worked: its answer is not wanted any more
        active.started_ms = max(active.started_ms, now_ms)  # the reply's events are timed from now
        if result.error is not None or decided is None:
            error: Exception
            if isinstance(result.error, Exception):
                error = result.error
            elif result.error is not None:
                error = RuntimeError(str(result.error))
            else:
                error = TypeError(
                    "the delivered result is not what this work gives: deliver the WorkResult of "
                    "work.run() or work.run_async()"
                )
            self._fail(active, error, created_sent=True)
            return []
        previous = self._conversation.last_item_id() if active.default else None
        try:
            self._plan_reply(active, plan, decided.reply, item_id, previous, tokens, decided)
        except Exception as exc:
            self._fail(active, exc, created_sent=True)
            return []
        self._add_started_item(active)
        return []

    def _add_started_item(self, active: ActiveResponse) -> None:
        if active.default and active.item is not None:
            started = copy.deepcopy(active.item)
            started["status"] = "in_progress"
            self._conversation.items.append(started)

    def _plan_reply(
        self,
        active: ActiveResponse,
        plan: _Plan,
        reply: Say | Call,
        item_id: str,
        previous: str | None,
        tokens: tuple[int, int],
        decided: _Decided | None,
    ) -> None:
        if isinstance(reply, Call):
            call_id = self._ids.call()
            self._conversation.call_notes[call_id] = reply.note
            self.planner.plan_call(
                active,
                item_id=item_id,
                call_id=call_id,
                previous_item_id=previous,
                name=reply.name,
                arguments=dict(reply.arguments),
                input_tokens=tokens,
            )
            return
        if decided is not None and decided.clipped is not None:
            clipped, speech = decided.clipped, decided.speech
        else:
            clipped = _clip(reply.text, plan.max_tokens)
            speech = _speak(self._services.synthesize, clipped[0], plan)
        text, status, details = clipped
        audio: bytes | None = None
        if speech is not None:
            audio, marks = speech
            if marks:
                self._conversation.marks[item_id] = list(marks)
        self.planner.plan_message(
            active,
            item_id=item_id,
            previous_item_id=previous,
            text=text,
            audio=audio,
            bytes_per_ms=bytes_per_ms(plan.fmt),
            input_tokens=tokens,
            status=status,
            status_details=details,
            marks=self._conversation.marks.get(item_id),
        )

    def _fail(self, active: ActiveResponse, exc: Exception, created_sent: bool) -> None:
        """A brain or TTS failure: the response ends as `failed` with the reason."""
        active.planned.clear()
        if not created_sent:
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

    # --- streaming --------------------------------------------------------------------------------------

    def release(self, now_ms: float) -> Events:
        """The planned events due by `now_ms`, in time order across responses."""
        out: Events = []
        while True:
            due = [r for r in self.responses + self._tail if r.planned and r.planned[0].at_ms <= now_ms]
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
                self.voice_locked = True
            elif kind == "response.done":
                self.finish(active, now_ms)
            out.append(stamped(self._ids, event))

    def finish(self, active: ActiveResponse, now_ms: float) -> None:
        if active in self.responses:
            self.responses.remove(active)
            if active.planned:
                self._tail.append(active)
        if active.item is not None:
            item_id = active.item["id"]
            if active.kind == "audio":
                self._conversation.audio[item_id] = bytes(active.audio)
            if active.default:
                self._conversation.replace(active.item)
            if active.kind == "call":
                self._conversation.call_notes.setdefault(active.item["call_id"], None)
        detection = ((self._session().get("audio") or {}).get("input") or {}).get("turn_detection")
        detection = detection if isinstance(detection, dict) else None
        timeout = detection.get("idle_timeout_ms") if detection else None
        if active.default and detection and detection.get("type") == "server_vad" and timeout:
            self.idle_deadline = max(now_ms, active.playback_end_ms) + float(timeout)


class _Plan:
    """What a response's output looks like, fixed when it is created."""

    __slots__ = ("fmt", "max_tokens", "modalities", "speed", "voice")

    def __init__(
        self, modalities: list[str], voice: Any, fmt: Mapping[str, Any], max_tokens: Any, speed: float
    ):
        self.modalities = modalities
        self.voice = voice
        self.fmt = fmt
        self.max_tokens = max_tokens
        self.speed = speed


class _Decided:
    """A reply decided in a worker: the reply, its clipped text and speech, transcripts decoded on the way."""

    __slots__ = ("clipped", "reply", "speech", "transcripts")

    def __init__(
        self,
        reply: Say | Call,
        clipped: tuple[str, str, dict[str, Any] | None] | None,
        speech: Speech | None,
        transcripts: dict[str, str | None],
    ) -> None:
        self.reply = reply
        self.clipped = clipped
        self.speech = speech
        self.transcripts = transcripts


def _clip(text: str, max_tokens: Any) -> tuple[str, str, dict[str, Any] | None]:
    """The reply cut to max_output_tokens and MAX_REPLY_CHARS: (text, status, status_details)."""
    status, details = "completed", None
    if isinstance(max_tokens, int) and text_tokens(text) > max_tokens:
        text = text[: max_tokens * 4].rstrip()
        status, details = "incomplete", {"type": "incomplete", "reason": "max_output_tokens"}
    if len(text) > MAX_REPLY_CHARS:
        cut = text[:MAX_REPLY_CHARS]
        text = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip()
        status, details = "incomplete", {"type": "incomplete", "reason": "max_output_tokens"}
    return text, status, details


def _speak(synthesize: Any, text: str, plan: _Plan) -> Speech | None:
    """The reply's audio in the output format and its word marks, or None for a text-only response."""
    if "audio" not in plan.modalities:
        return None
    if not text.strip():
        return b"", None
    voice = plan.voice if isinstance(plan.voice, str) else "alloy"
    pcm, marks = synthesize(text, voice, plan.speed)
    return pcm16_24k_to(pcm, str(plan.fmt.get("type", "audio/pcm"))), marks


__all__ = ["INLINE_BRAINS", "MAX_REPLY_CHARS", "Responder", "TranscriptSource", "brain_input", "decide"]
