"""The chained architecture behind a Realtime-shaped transport: speech-to-text -> text model -> speech.

A `ChainedTransport` takes the Realtime client events a `voicelab.Session` sends and answers with Realtime GA
server events, so the Session's conversation state, app events, recording, tables and plots work unchanged.
Behind it:

- speech to text: a transcription session (`/v1/realtime?intent=transcription`) with the session's turn
  detection; its speech_started / speech_stopped / committed / transcription events are passed through;
- the text model: `POST /v1/responses` (streamed) with the session's instructions and function tools, over
  the conversation as heard (a truncated assistant turn counts only what was played);
- text to speech: `POST /v1/audio/speech` (streamed PCM), one request per sentence, each sentence checked by
  `check` (the agent's output guardrails) before it is synthesized.

Barge-in (speech_started while answering, with interrupt_response) cancels the rest of the answer. Each stage
reports its latency through `on_stage(stage, ids, started_ms, ended_ms)`: "transcription" (end of speech to
transcript), "text_model" (request to first text or call), "synthesis" (text to first audio byte).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from voicelab.audio.b64 import b64encode
from voicelab.checks import checked_class
from voicelab.checks import text as text_arg
from voicelab.errors import SessionError
from voicelab.redact import redact_text

logger = logging.getLogger(__name__)
_SENTENCE_END = re.compile(r"[.!?;:](\s+|$)")
_TD_KEYS = {"type", "threshold", "prefix_padding_ms", "silence_duration_ms", "eagerness"}
Check = Callable[[str, str, str], Awaitable[bool]]  # (item_id, response_id, text so far) -> speak it?
OnStage = Callable[[str, dict[str, str], float, float], None]


@checked_class
@dataclass(frozen=True)
class ChainedModels:
    """The three models of the chained architecture (names as the OpenAI API knows them)."""

    transcribe: str = "gpt-4o-transcribe"
    text: str = "gpt-4.1-mini"
    speech: str = "gpt-4o-mini-tts"

    def __post_init__(self) -> None:
        for name, default in (
            ("transcribe", "gpt-4o-transcribe"),
            ("text", "gpt-4.1-mini"),
            ("speech", "gpt-4o-mini-tts"),
        ):
            text_arg(getattr(self, name), name, max_len=128, example=default, where="ChainedModels")


def _id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(10)}"


def split_sentences(buffer: str, final: bool) -> tuple[list[str], str]:
    """Complete sentences of `buffer` and the rest (all of it when `final`)."""
    out: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(buffer):
        if match.end() == len(buffer) and not final and not match.group(1):
            break  # "3." may be "3.5": wait for what follows
        out.append(buffer[start : match.end()])
        start = match.end()
    rest = buffer[start:]
    if final and rest.strip():
        out.append(rest)
        rest = ""
    return [s for s in out if s.strip()], rest


@dataclass
class _Spoken:
    text: str
    audio_ms: float


class _Answer:
    """One response in progress."""

    def __init__(self, response_id: str, params: Mapping[str, Any]) -> None:
        self.id = response_id
        self.params = params
        self.task: asyncio.Task[None] | None = None
        self.message_id: str | None = None
        self.output: list[dict[str, Any]] = []
        self.spoken: list[_Spoken] = []  # sentences sent as audio, in order
        self.usage: dict[str, Any] | None = None
        self.done = False


class ChainedTransport:
    """Realtime client events in, Realtime server events out; see the module docstring."""

    def __init__(
        self,
        *,
        client: Any,  # openai.AsyncOpenAI for the HTTP APIs
        transcription_url: str,
        headers: Mapping[str, str],
        models: ChainedModels,
        clock: Callable[[], float],
        on_stage: OnStage | None = None,
        check: Check | None = None,
        open_timeout: float = 10.0,
        secrets_: tuple[str, ...] = (),
    ) -> None:
        self._client = client
        self._stt_url = transcription_url
        self._headers = dict(headers)
        self.models = models
        self._clock = clock
        self._on_stage = on_stage
        self.check = check
        self._open_timeout = open_timeout
        self._secrets = secrets_
        self._out: asyncio.Queue[str | Close] = asyncio.Queue()
        self._inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._stt: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self.session: dict[str, Any] = {"type": "realtime", "id": _id("sess_"), "model": models.text}
        self._items: list[dict[str, Any]] = []
        self._active: _Answer | None = None
        self._answers: dict[str, _Answer] = {}  # assistant message id -> its response (for truncation)
        self._speech_end: dict[str, float] = {}  # user item -> when speech_stopped arrived
        self.close_code: int | None = None
        self._closed = False

    # --- the transport interface the Session uses --------------------------------------------------------

    @classmethod
    async def connect(cls, **kwargs: Any) -> ChainedTransport:
        transport = cls(**kwargs)
        await transport._start()
        return transport

    async def _start(self) -> None:
        shown = redact_text(self._stt_url, self._secrets)
        try:
            from voicelab.transports.websocket import _RedactingLogger, _secrets_of

            secrets = (*self._secrets, *_secrets_of(self._stt_url, self._headers))
            self._stt = await asyncio.wait_for(
                websockets.connect(
                    self._stt_url,
                    additional_headers=self._headers,
                    max_size=32 * 1024 * 1024,
                    open_timeout=self._open_timeout,
                    logger=_RedactingLogger(secrets),  # handshake headers are logged at DEBUG
                ),
                self._open_timeout + 1.0,
            )
        except Exception as exc:
            raise SessionError(
                f"the chained session could not open its transcription session at {shown} "
                f"({redact_text(str(exc), self._secrets) or type(exc).__name__}); check the URL and that "
                "the server is running."
            ) from None
        await asyncio.to_thread(_warm_openai, self._client)  # not on the first turn's clock
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._client_loop()))
        self._tasks.append(loop.create_task(self._stt_loop()))
        self._emit({"type": "session.created", "session": copy.deepcopy(self.session)})

    async def send(self, text: str) -> None:
        if self._closed:
            raise SessionError("cannot send: the chained session is closed; reconnect.")
        self._inbox.put_nowait(json.loads(text))

    async def recv(self) -> str:
        return await self.recv_frame()  # type: ignore[return-value]

    @property
    def recv_frame(self) -> Callable[[], Awaitable[str | bytes]]:
        return self._next_frame

    async def _next_frame(self) -> str:
        frame = await self._out.get()
        if isinstance(frame, Close):
            self._out.put_nowait(frame)
            raise ConnectionClosed(frame, None)
        return frame

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        self.close_code = code
        if self._active is not None and self._active.task is not None:
            self._active.task.cancel()
        for task in self._tasks:
            task.cancel()
        if self._stt is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._stt.close(), 2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.close(), 2.0)
        self._out.put_nowait(Close(code, reason))

    # --- plumbing ----------------------------------------------------------------------------------------

    def _emit(self, event: dict[str, Any]) -> None:
        self._out.put_nowait(json.dumps({"event_id": _id("event_"), **event}))

    def _error(
        self,
        message: str,
        code: str | None,
        param: str | None = None,
        kind: str = "invalid_request_error",
        client_event_id: str | None = None,
    ) -> None:
        error = {"type": kind, "code": code, "message": message, "param": param, "event_id": client_event_id}
        self._emit({"type": "error", "error": error})

    def _stage(self, stage: str, ids: dict[str, str], started_ms: float) -> None:
        if self._on_stage is not None:
            self._on_stage(stage, ids, started_ms, self._clock())

    def _previous(self) -> str | None:
        return self._items[-1]["id"] if self._items else None

    def _add_item(self, item: dict[str, Any]) -> None:
        previous = self._previous()
        self._items.append(item)
        self._emit(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": copy.deepcopy(item)}
        )
        self._emit(
            {"type": "conversation.item.done", "previous_item_id": previous, "item": copy.deepcopy(item)}
        )

    def _index(self, item_id: Any) -> int | None:
        for index, item in enumerate(self._items):
            if item.get("id") == item_id:
                return index
        return None

    def _turn_detection(self) -> dict[str, Any] | None:
        value = ((self.session.get("audio") or {}).get("input") or {}).get("turn_detection")
        return value if isinstance(value, dict) else None

    async def _configure_stt(self) -> None:
        audio_in = (self.session.get("audio") or {}).get("input") or {}
        detection = self._turn_detection()
        update = {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": audio_in.get("format") or {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": self.models.transcribe},
                        "turn_detection": {k: v for k, v in detection.items() if k in _TD_KEYS}
                        if detection
                        else None,
                    }
                },
            },
        }
        await self._stt.send(json.dumps(update))

    # --- client events -----------------------------------------------------------------------------------

    async def _client_loop(self) -> None:
        while True:
            event = await self._inbox.get()
            if event is None:
                return
            try:
                await self._on_client(event)
            except asyncio.CancelledError:
                raise
            except ConnectionClosed:
                self._error(
                    "the transcription session closed; reconnect.", "connection_closed", kind="server_error"
                )
            except Exception as exc:  # a bug must not end the session silently
                logger.debug("chained transport failed on %s", event.get("type"), exc_info=True)
                self._error(
                    f"the chained pipeline failed on {event.get('type')} ({type(exc).__name__}: "
                    f"{redact_text(str(exc), self._secrets)}).",
                    "pipeline_error",
                    kind="server_error",
                    client_event_id=event.get("event_id"),
                )

    async def _on_client(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind in ("input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear"):
            await self._stt.send(json.dumps(event))
        elif kind == "session.update":
            session = event.get("session") or {}
            merged = copy.deepcopy(self.session)
            for key, value in session.items():
                merged[key] = copy.deepcopy(value)
            merged["model"] = self.models.text
            self.session = merged
            await self._configure_stt()
            self._emit({"type": "session.updated", "session": copy.deepcopy(self.session)})
        elif kind == "conversation.item.create":
            item = copy.deepcopy(event.get("item") or {})
            item.setdefault("id", _id("item_"))
            item.setdefault("object", "realtime.item")
            if item.get("type") in ("message", "function_call", "function_call_output"):
                item.setdefault("status", "completed")
            self._add_item(item)
        elif kind == "conversation.item.delete":
            index = self._index(event.get("item_id"))
            if index is None:
                self._error(f"Item '{event.get('item_id')}' does not exist.", "item_not_found", "item_id")
                return
            self._items.pop(index)
            self._emit({"type": "conversation.item.deleted", "item_id": event["item_id"]})
        elif kind == "conversation.item.truncate":
            self._truncate(event)
        elif kind == "response.create":
            if self._active is not None and not self._active.done:
                self._error(
                    f"Conversation already has an active response in progress: {self._active.id}.",
                    "conversation_already_has_active_response",
                )
                return
            self._respond(event.get("response") or {})
        elif kind == "response.cancel":
            if self._active is None or self._active.done:
                self._error("Cancellation failed: no active response found.", "response_cancel_not_active")
                return
            await self._cancel("client_cancelled")
        elif kind == "session.close":
            await self.close(1000, "session closed by the client")
        else:
            self._error(f"The chained session does not handle {kind!r}.", "invalid_value", "type")

    def _truncate(self, event: dict[str, Any]) -> None:
        """Keep what was heard: the sentences played in full, and the played share of the one cut."""
        index = self._index(event.get("item_id"))
        if index is None:
            self._error(f"Item '{event.get('item_id')}' does not exist.", "item_not_found", "item_id")
            return
        item = self._items[index]
        end_ms = float(event.get("audio_end_ms") or 0)
        answer = self._answers.get(item["id"])
        spoken = answer.spoken if answer is not None else []
        heard, elapsed = "", 0.0
        for sentence in spoken:
            if elapsed + sentence.audio_ms <= end_ms:
                heard += sentence.text
            else:
                share = max(0.0, end_ms - elapsed) / sentence.audio_ms if sentence.audio_ms else 0.0
                words = sentence.text.split()
                heard += " ".join(words[: int(len(words) * share)])
                break
            elapsed += sentence.audio_ms
        for part in item.get("content") or []:
            if part.get("type") == "output_audio":
                part["transcript"] = heard.strip()
        self._emit(
            {
                "type": "conversation.item.truncated",
                "item_id": item["id"],
                "content_index": 0,
                "audio_end_ms": int(end_ms),
            }
        )

    # --- speech to text ----------------------------------------------------------------------------------

    async def _stt_loop(self) -> None:
        code, reason = 1000, "closed"
        try:
            await self._configure_stt()
            async for frame in self._stt:
                event = json.loads(frame)
                await self._on_stt(event)
        except asyncio.CancelledError:
            raise
        except ConnectionClosed as exc:
            frame = exc.rcvd or exc.sent
            code, reason = (frame.code, frame.reason) if frame is not None else (1006, "connection lost")
        except Exception as exc:
            logger.debug("transcription session failed", exc_info=True)
            code, reason = 1011, f"transcription session failed ({type(exc).__name__})"
        if not self._closed:
            self._error(
                f"the transcription session ended ({code} {reason}).",
                "connection_closed",
                kind="server_error",
            )
            await self.close(code, reason)

    async def _on_stt(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind in ("session.created", "session.updated", "transcription_session.updated"):
            return
        if kind == "input_audio_buffer.speech_started":
            self._emit(event)
            detection = self._turn_detection() or {}
            if (
                detection.get("interrupt_response", True)
                and self._active is not None
                and not self._active.done
            ):
                await self._cancel("turn_detected")
            return
        if kind == "input_audio_buffer.committed":
            item_id = event.get("item_id")
            if isinstance(item_id, str) and self._index(item_id) is None:
                # the user turn, in case the transcription service announces no conversation item for it
                self._items.append(
                    {
                        "id": item_id,
                        "type": "message",
                        "role": "user",
                        "object": "realtime.item",
                        "status": "completed",
                        "content": [{"type": "input_audio", "transcript": None}],
                    }
                )
            self._emit(event)
            return
        if kind == "input_audio_buffer.speech_stopped":
            self._speech_end[str(event.get("item_id"))] = self._clock()
            self._emit(event)
            return
        if kind == "conversation.item.added":
            item = copy.deepcopy(event.get("item") or {})
            index = self._index(item.get("id"))
            if index is None:
                self._items.append(item)
            else:
                self._items[index] = {
                    **item,
                    "content": self._items[index].get("content") or item.get("content"),
                }
            self._emit({**event, "previous_item_id": self._previous_of(item.get("id"))})
            return
        if kind == "conversation.item.done":
            self._emit({**event, "previous_item_id": self._previous_of((event.get("item") or {}).get("id"))})
            return
        if kind == "conversation.item.input_audio_transcription.completed":
            item_id = str(event.get("item_id"))
            index = self._index(item_id)
            if index is not None:
                for part in self._items[index].get("content") or []:
                    if part.get("type") == "input_audio":
                        part["transcript"] = event.get("transcript") or ""
            self._emit(event)
            started = self._speech_end.pop(item_id, None)
            if started is not None:
                self._stage("transcription", {"item_id": item_id}, started)
            detection = self._turn_detection() or {}
            idle = self._active is None or self._active.done
            if detection.get("create_response", True) and (event.get("transcript") or "").strip() and idle:
                self._respond({})
            return
        if kind == "input_audio_buffer.cleared":
            return  # the Session's own clear is answered here too, once
        self._emit(event)  # committed, transcription deltas and failures, errors

    def _previous_of(self, item_id: Any) -> str | None:
        index = self._index(item_id)
        return self._items[index - 1]["id"] if index else None

    # --- responses -----------------------------------------------------------------------------------------

    def _respond(self, params: Mapping[str, Any]) -> None:
        answer = _Answer(_id("resp_"), params)
        self._active = answer
        answer.task = asyncio.get_running_loop().create_task(self._run(answer))

    def _response_body(
        self, answer: _Answer, status: str, details: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        audio_out = (self.session.get("audio") or {}).get("output") or {}
        return {
            "id": answer.id,
            "object": "realtime.response",
            "status": status,
            "status_details": details,
            "output": copy.deepcopy(answer.output),
            "conversation_id": "conv_chained",
            "output_modalities": self._modalities(answer),
            "max_output_tokens": "inf",
            "audio": {
                "output": {
                    "format": audio_out.get("format") or {"type": "audio/pcm", "rate": 24000},
                    "voice": audio_out.get("voice") or "alloy",
                }
            },
            "usage": answer.usage,
            "metadata": None,
        }

    def _modalities(self, answer: _Answer) -> list[str]:
        return list(
            answer.params.get("output_modalities") or self.session.get("output_modalities") or ["audio"]
        )

    def _model_input(self) -> list[dict[str, Any]]:
        """The conversation for the text model: user words (typed or transcribed), what the assistant said
        (as heard), function calls and their outputs."""
        out: list[dict[str, Any]] = []
        for item in self._items:
            kind = item.get("type")
            if kind == "message":
                texts = [
                    str(p.get("text") or p.get("transcript") or "")
                    for p in item.get("content") or []
                    if p.get("text") or p.get("transcript")
                ]
                if texts:
                    role = item.get("role") if item.get("role") in ("user", "assistant", "system") else "user"
                    out.append({"role": role, "content": " ".join(texts)})
            elif kind == "function_call":
                out.append(
                    {
                        "type": "function_call",
                        "call_id": item.get("call_id"),
                        "name": item.get("name"),
                        "arguments": item.get("arguments") or "{}",
                    }
                )
            elif kind == "function_call_output":
                out.append(
                    {
                        "type": "function_call_output",
                        "call_id": item.get("call_id"),
                        "output": str(item.get("output") or ""),
                    }
                )
        return out

    def _tools(self, answer: _Answer) -> list[dict[str, Any]]:
        tools = answer.params.get("tools")
        tools = self.session.get("tools") or [] if tools is None else tools
        return [
            {
                "type": "function",
                "name": t["name"],
                "description": t.get("description") or "",
                "parameters": t.get("parameters") or {"type": "object", "properties": {}},
                "strict": False,
            }
            for t in tools
            if t.get("type", "function") == "function" and t.get("name")
        ]

    async def _run(self, answer: _Answer) -> None:
        self._emit({"type": "response.created", "response": self._response_body(answer, "in_progress")})
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        speaker = asyncio.get_running_loop().create_task(self._speak(answer, sentences))
        try:
            await self._think(answer, sentences)
            await sentences.put(None)
            await speaker
        except asyncio.CancelledError:
            speaker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await speaker
            raise
        except Exception as exc:
            speaker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await speaker
            self._fail(answer, exc)
            return
        self._finish_message(answer, "completed")
        answer.done = True
        self._emit({"type": "response.done", "response": self._response_body(answer, "completed")})

    async def _think(self, answer: _Answer, sentences: asyncio.Queue[str | None]) -> None:
        """The text model, streamed: text goes to the speaker sentence by sentence; calls become items."""
        instructions = answer.params.get("instructions")
        if instructions is None:
            instructions = self.session.get("instructions")
        tools = self._tools(answer)
        request: dict[str, Any] = {"model": self.models.text, "input": self._model_input(), "stream": True}
        if instructions:
            request["instructions"] = instructions
        if tools:
            request["tools"] = tools
            choice = answer.params.get("tool_choice", self.session.get("tool_choice"))
            if choice is not None:
                request["tool_choice"] = choice
        started = self._clock()
        first = True
        buffer = ""
        stream = await self._client.responses.create(**request)
        async for event in stream:
            kind = getattr(event, "type", "")
            if first and kind in ("response.output_text.delta", "response.output_item.done"):
                first = False
                self._stage("text_model", {"response_id": answer.id}, started)
            if kind == "response.output_text.delta":
                buffer += event.delta
                ready, buffer = split_sentences(buffer, final=False)
                for sentence in ready:
                    await sentences.put(sentence)
            elif kind == "response.output_item.done" and getattr(event.item, "type", "") == "function_call":
                self._function_call(answer, event.item)
            elif kind == "response.completed":
                usage = getattr(event.response, "usage", None)
                if usage is not None:
                    answer.usage = {
                        "total_tokens": usage.total_tokens,
                        "input_tokens": usage.input_tokens,
                        "output_tokens": usage.output_tokens,
                        "input_token_details": {
                            "text_tokens": usage.input_tokens,
                            "audio_tokens": 0,
                            "cached_tokens": 0,
                        },
                        "output_token_details": {"text_tokens": usage.output_tokens, "audio_tokens": 0},
                    }
            elif kind in ("response.failed", "error"):
                raise RuntimeError(f"the text model failed ({getattr(event, 'message', None) or kind})")
        ready, _ = split_sentences(buffer, final=True)
        for sentence in ready:
            await sentences.put(sentence)

    def _function_call(self, answer: _Answer, call: Any) -> None:
        item = {
            "id": _id("item_"),
            "type": "function_call",
            "object": "realtime.item",
            "status": "completed",
            "call_id": call.call_id,
            "name": call.name,
            "arguments": call.arguments or "{}",
        }
        index = len(answer.output)
        base = {"response_id": answer.id, "output_index": index}
        started = {**item, "status": "in_progress", "arguments": ""}
        self._emit({"type": "response.output_item.added", **base, "item": started})
        self._emit({"type": "conversation.item.added", "previous_item_id": self._previous(), "item": started})
        self._items.append(copy.deepcopy(item))
        ids = {"item_id": item["id"], "call_id": call.call_id}
        self._emit(
            {"type": "response.function_call_arguments.delta", **base, **ids, "delta": item["arguments"]}
        )
        self._emit(
            {
                "type": "response.function_call_arguments.done",
                **base,
                **ids,
                "arguments": item["arguments"],
                "name": call.name,
            }
        )
        answer.output.append(item)
        self._emit({"type": "response.output_item.done", **base, "item": copy.deepcopy(item)})
        self._emit(
            {
                "type": "conversation.item.done",
                "previous_item_id": self._previous_of(item["id"]),
                "item": copy.deepcopy(item),
            }
        )

    def _open_message(self, answer: _Answer) -> str:
        if answer.message_id is not None:
            return answer.message_id
        audio = "audio" in self._modalities(answer)
        item_id = _id("item_")
        answer.message_id = item_id
        part = {"type": "output_audio", "transcript": ""} if audio else {"type": "output_text", "text": ""}
        item = {
            "id": item_id,
            "type": "message",
            "object": "realtime.item",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        index = len(answer.output)
        answer.output.append(item)
        self._emit(
            {
                "type": "response.output_item.added",
                "response_id": answer.id,
                "output_index": index,
                "item": copy.deepcopy(item),
            }
        )
        self._emit(
            {
                "type": "conversation.item.added",
                "previous_item_id": self._previous(),
                "item": copy.deepcopy(item),
            }
        )
        local = copy.deepcopy(item)
        local["content"] = [copy.deepcopy(part)]  # type: ignore[list-item]
        self._answers[item_id] = answer
        self._items.append(local)
        self._emit(
            {
                "type": "response.content_part.added",
                "response_id": answer.id,
                "item_id": item_id,
                "output_index": index,
                "content_index": 0,
                "part": part,
            }
        )
        return item_id

    async def _speak(self, answer: _Answer, sentences: asyncio.Queue[str | None]) -> None:
        """Sentence by sentence: the guardrail check, then audio (or text) and its transcript."""
        said = ""
        first_audio = True
        while True:
            sentence = await sentences.get()
            if sentence is None:
                return
            item_id = self._open_message(answer)
            if self.check is not None:
                verdict = asyncio.ensure_future(self.check(item_id, answer.id, said + sentence))
                # shielded: a trip cancels this response, but the guardrail's own follow-up must go on
                if not await asyncio.shield(verdict):
                    await asyncio.Event().wait()  # the cancel from the trip ends this task
            said += sentence
            base = {
                "response_id": answer.id,
                "item_id": item_id,
                "output_index": answer.output.index(next(o for o in answer.output if o["id"] == item_id)),
                "content_index": 0,
            }
            if "audio" not in self._modalities(answer):
                self._emit({"type": "response.output_text.delta", **base, "delta": sentence})
                answer.spoken.append(_Spoken(sentence, 0.0))
                continue
            started = self._clock()
            audio_ms = 0.0
            fmt = str(
                (((self.session.get("audio") or {}).get("output") or {}).get("format") or {}).get("type")
                or "audio/pcm"
            )
            voice = ((self.session.get("audio") or {}).get("output") or {}).get("voice") or "alloy"
            async with self._client.audio.speech.with_streaming_response.create(
                model=self.models.speech, voice=voice, input=sentence, response_format="pcm"
            ) as response:
                carry = b""
                async for chunk in response.iter_bytes(chunk_size=4800):
                    chunk = carry + chunk
                    carry = chunk[len(chunk) - len(chunk) % 2 :]
                    chunk = chunk[: len(chunk) - len(chunk) % 2]
                    if not chunk:
                        continue
                    if first_audio:
                        first_audio = False
                        self._stage("synthesis", {"response_id": answer.id}, started)
                    if audio_ms == 0.0:
                        self._emit(
                            {"type": "response.output_audio_transcript.delta", **base, "delta": sentence}
                        )
                    audio_ms += len(chunk) / 48.0
                    payload = chunk if fmt == "audio/pcm" else _to_g711(chunk, fmt)
                    self._emit(
                        {
                            "type": "response.output_audio.delta",
                            **base,
                            "delta": b64encode(payload),
                        }
                    )
            answer.spoken.append(_Spoken(sentence, audio_ms))

    def _finish_message(self, answer: _Answer, status: str) -> None:
        if answer.message_id is None:
            return
        index = next(i for i, o in enumerate(answer.output) if o["id"] == answer.message_id)
        text = "".join(s.text for s in answer.spoken).strip()
        audio = "audio" in self._modalities(answer)
        base = {
            "response_id": answer.id,
            "item_id": answer.message_id,
            "output_index": index,
            "content_index": 0,
        }
        if audio:
            self._emit({"type": "response.output_audio.done", **base})
            self._emit({"type": "response.output_audio_transcript.done", **base, "transcript": text})
            part = {"type": "output_audio", "transcript": text}
        else:
            self._emit({"type": "response.output_text.done", **base, "text": text})
            part = {"type": "output_text", "text": text}
        self._emit({"type": "response.content_part.done", **base, "part": part})
        item = {
            "id": answer.message_id,
            "type": "message",
            "object": "realtime.item",
            "role": "assistant",
            "status": status,
            "content": [part],
        }
        answer.output[index] = item
        local = self._index(answer.message_id)
        if local is not None:
            heard = self._items[local]["content"][0]
            if status == "completed" or not heard.get("transcript"):
                heard.update(part)
            self._items[local]["status"] = status
        self._emit(
            {
                "type": "response.output_item.done",
                "response_id": answer.id,
                "output_index": index,
                "item": copy.deepcopy(item),
            }
        )
        self._emit(
            {
                "type": "conversation.item.done",
                "previous_item_id": self._previous_of(answer.message_id),
                "item": copy.deepcopy(item),
            }
        )

    async def _cancel(self, reason: str) -> None:
        answer = self._active
        if answer is None or answer.done:
            return
        answer.done = True
        if answer.task is not None and answer.task is not asyncio.current_task():
            answer.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await answer.task
        self._finish_message(answer, "incomplete")
        details = {"type": "cancelled", "reason": reason}
        self._emit({"type": "response.done", "response": self._response_body(answer, "cancelled", details)})

    def _fail(self, answer: _Answer, exc: Exception) -> None:
        answer.done = True
        self._finish_message(answer, "incomplete")
        message = redact_text(f"{type(exc).__name__}: {exc}", self._secrets)
        error = {"type": "server_error", "code": "pipeline_error", "message": message}
        self._emit(
            {
                "type": "response.done",
                "response": self._response_body(answer, "failed", {"type": "failed", "error": error}),
            }
        )


def _warm_openai(client: Any) -> None:
    """Import the openai client's Responses and speech modules and build its stream event parsers now: done
    lazily on the first request, it costs the first turn a few hundred milliseconds."""
    with contextlib.suppress(Exception):
        from openai._models import construct_type
        from openai.types.responses import ResponseStreamEvent

        _ = client.responses, client.audio.speech
        construct_type(type_=ResponseStreamEvent, value={"type": "response.output_text.delta", "delta": ""})


def _to_g711(pcm: bytes, fmt: str) -> bytes:
    from voicelab.server.services import pcm16_24k_to

    return pcm16_24k_to(pcm, fmt)


__all__ = ["ChainedModels", "ChainedTransport", "split_sentences"]
