"""The one asyncio driver: WebSocket transport <-> protocol state <-> app events, recording everything.

    async with voicelab.connect(config_or_agent, url=server.url) as session:
        await session.send_text("Hello")
        async for event in session: ...

Tasks: a reader (frames -> conversation state -> app events, interruption, response sequencing) and a
dispatcher (app events -> listeners in order -> the async iterator). A slow listener never delays the
reader; a listener that raises becomes an `error` app event. With no listeners, app events go straight to
the iterator.

The reader's hot path (audio, transcript and text deltas, a few per 100 ms of audio) is synchronous: the
deltas are checked with `is_valid_delta` instead of pydantic, and only the other events go through the
openai models and the async `_handle_event`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import dataclasses
import datetime as _dt
import json
import logging
import math
import platform
import shutil
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from websockets.exceptions import ConnectionClosed

import voicelab
from voicelab.audio.core import Audio
from voicelab.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voicelab.config import SessionConfig, audio_format, format_name
from voicelab.errors import AudioError, ConfigError, RemoteProtocolError, SessionError
from voicelab.events import (
    AppEvent,
    AudioChunk,
    AudioEnd,
    AudioInterrupted,
    Disconnected,
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
from voicelab.playback import PlaybackTracker
from voicelab.protocol.conversation import Conversation, Item, b64_decoded_len, bytes_per_ms
from voicelab.protocol.events import (
    RawEvent,
    client_event,
    decode_frame,
    dumps_event,
    is_valid_delta,
    json_too_deep,
    loads_event,
    parse_server_dict,
    validate_client_event,
)
from voicelab.protocol.ids import new_event_id
from voicelab.protocol.response_queue import ResponseQueue
from voicelab.protocol.session_update import merge_session_update
from voicelab.recording import SESSION_FLUSH_MS, RecordingWriter, check_record_dir, default_record_dir
from voicelab.redact import mask_secret, redact_text, redact_url
from voicelab.transports.websocket import WebSocketTransport, auth_headers, realtime_url

logger = logging.getLogger(__name__)

_END = object()
_CHUNK_MS = 100
_HISTORY_TYPES = frozenset(
    {
        "conversation.item.done",
        "conversation.item.deleted",
        "conversation.item.truncated",
        "conversation.item.retrieved",
    }
)


class Listener(Protocol):
    async def on_event(self, session: Session, event: AppEvent) -> None: ...


class _EventChannel:
    """The iterator's queue: a deque with waiters, cheaper per event than asyncio.Queue (unbounded, no
    task accounting)."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._waiters: list[asyncio.Future[None]] = []

    def put(self, item: Any) -> None:
        self._items.append(item)
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def get(self) -> Any:
        items = self._items
        while not items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                raise
        return items.popleft()


class Session:
    """A Realtime session: `async with voicelab.connect(...) as session`; or `await voicelab.connect(...)`."""

    _output_format_name = "pcm16"

    def __init__(
        self,
        config: SessionConfig,
        *,
        url: str | None = None,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        record_dir: str | Path | bool | None = None,
        open_timeout: float = 10.0,
        response_timeout: float = 30.0,
        agent: Any = None,
        playback: PlaybackTracker | None = None,
    ) -> None:
        self._config = config
        self._output_format_name = format_name(config.output_format)
        self._url = realtime_url(url, config.model)
        self._api_key = api_key
        self._headers = auth_headers(self._url, api_key, headers)
        self._secrets = tuple(v for v in (api_key, *self._headers.values()) if v)
        self._record_dir = record_dir
        self.open_timeout = open_timeout
        self.response_timeout = response_timeout
        self.agent = agent
        self.playback = playback or PlaybackTracker()
        self.conversation = Conversation()
        self._created_at = time.monotonic()
        self._listeners: list[Any] = []
        self._runtime: Any = None
        if agent is not None:
            self._runtime = agent.create_listener()
            attach = getattr(self._runtime, "attach", None)
            if callable(attach):
                attach(self)
            self.add_listener(self._runtime)
        self._transport: WebSocketTransport | None = None
        self._writer: RecordingWriter | None = None
        self._dispatch_q: asyncio.Queue[Any] = asyncio.Queue()
        self._out = _EventChannel()
        self._reader: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._undispatched = 0  # events queued for (or in) the dispatcher: later ones queue behind them
        self._opened = False
        self._closing = False
        self._finished = False
        self._responses = ResponseQueue()  # which response.create goes out now, which waits (sans-I/O)
        self._announced: set[str] = set()
        self._interrupted_items: set[str] = set()
        self._track_start_ms: dict[str, float] = {}
        self._last_error: dict[str, Any] | None = None
        self._last_frame_at = 0.0
        self._last_request_at = 0.0
        self._watchdog: asyncio.Task[None] | None = None
        self._delta_handlers: dict[str, Callable[[dict[str, Any], float], None]] = {
            "response.output_audio.delta": self._on_audio_delta,
            "response.output_audio_transcript.delta": self._on_text_delta,
            "response.output_text.delta": self._on_text_delta,
        }

    # -- properties ----------------------------------------------------------------------------------
    @property
    def config(self) -> SessionConfig:
        return self._config

    @property
    def history(self) -> list[Item]:
        """Conversation items in order (live objects; copy before keeping)."""
        return self.conversation.items

    @property
    def recording_path(self) -> Path | None:
        return self._writer.path if self._writer is not None else None

    @property
    def runtime(self) -> Any:
        """The listener created from the agent's create_listener(), or None."""
        return self._runtime

    @property
    def url(self) -> str:
        return redact_url(self._url) or ""

    @property
    def responding(self) -> bool:
        """True while a response is active, requested, or queued behind the active one."""
        return self._responses.pending(self.conversation.active_response_id is not None)

    def now_ms(self) -> float:
        """The session clock in ms: the recording's `t_ms` (or, with recording off, ms since creation)."""
        if self._writer is not None:
            return self._writer.t_ms()
        return (time.monotonic() - self._created_at) * 1000.0

    @property
    def closed(self) -> bool:
        return self._finished

    def __repr__(self) -> str:
        state = "closed" if self._finished else "open" if self._opened else "not opened"
        return (
            f"Session(url={self.url!r}, model={self._config.model!r}, api_key={mask_secret(self._secrets)}, "
            f"{state}, items={len(self.conversation)})"
        )

    # -- lifecycle -----------------------------------------------------------------------------------
    async def open(self) -> Session:
        """Connect, start the reader, send the session configuration. Raises SessionError on failure."""
        if self._opened:
            return self
        self._opened = True
        if self._record_dir is not False:
            default = self._record_dir is None or self._record_dir is True
            folder = default_record_dir() if default else Path(self._record_dir)  # type: ignore[arg-type]
            self._writer = RecordingWriter(folder, flush_ms=SESSION_FLUSH_MS)  # deltas written every 50 ms
            self._writer.write_meta(self._meta())
        self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch_loop())
        try:
            self._transport = await self._open_transport()
        except BaseException as exc:
            await self._open_failed(exc)
            if isinstance(exc, (SessionError, asyncio.CancelledError)) or not isinstance(exc, Exception):
                raise
            message = f"cannot connect to {self.url}: {type(exc).__name__}: {exc}"
            raise SessionError(redact_text(message, self._secrets)) from None
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())
        if self.response_timeout:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch_responses())
        with contextlib.suppress(SessionError):  # closed already: the reader reports it as events
            await self._send(self._config.session_update_event())
        return self

    async def _open_failed(self, exc: BaseException) -> None:
        """A failed open ends cleanly: an error and `disconnected` for the iterator, the recording closed (a
        default folder removed: it would hold nothing), the dispatcher task finished."""
        text = str(exc) if isinstance(exc, SessionError) else f"{type(exc).__name__}: {exc}"
        self._publish(Error(redact_text(text, self._secrets), code="connect_failed", fatal=True))
        await self._finish(None, "connect failed")
        if self._dispatcher is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._dispatcher), timeout=5.0)
        runtime_close = getattr(self._runtime, "close", None)
        if callable(runtime_close):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runtime_close(), timeout=5.0)
        if self._writer is not None and (self._record_dir is None or self._record_dir is True):
            with contextlib.suppress(OSError):
                shutil.rmtree(self._writer.path)
            self._writer = None

    async def _open_transport(self) -> Any:
        """The connection events go over (the chained architecture replaces it; see voicelab.pipeline)."""
        return await WebSocketTransport.connect(self._url, self._headers, self.open_timeout)

    @property
    def architecture(self) -> str:
        """ "realtime" (speech to speech); a `voicelab.pipeline.ChainedSession` says "chained"."""
        return "realtime"

    async def __aenter__(self) -> Session:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __await__(self) -> Any:
        return self.open().__await__()

    def __aiter__(self) -> Session:
        return self

    async def __anext__(self) -> AppEvent:
        if not self._opened:
            raise SessionError("the session is not open; use `async with voicelab.connect(...) as session`.")
        items = self._out._items  # a ready event without a second coroutine: the common case
        event = items.popleft() if items else await self._out.get()
        if event is _END:
            self._out.put(_END)  # later iterations end too
            raise StopAsyncIteration
        return event

    async def close(self) -> None:
        """Close the connection and the recording; the iterator ends after a `disconnected` event."""
        if self._finished or not self._opened:
            return
        self._closing = True
        if self._transport is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._transport.close(), timeout=5.0)
        if self._reader is not None and not self._reader.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._reader), timeout=5.0)
            except (asyncio.TimeoutError, TimeoutError):
                self._reader.cancel()
        await self._finish(self._transport.close_code if self._transport else None, "closed by client")
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        if self._dispatcher is not None:
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._dispatcher), timeout=5.0)
        # the runtime also stops through the `disconnected` event; this covers a stuck dispatcher
        runtime_close = getattr(self._runtime, "close", None)
        if callable(runtime_close):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runtime_close(), timeout=5.0)

    async def _finish(self, code: int | None, reason: str) -> None:
        if self._finished:
            return
        self._finished = True
        self._publish(Disconnected(code, reason))
        self._dispatch_q.put_nowait(_END)
        if self._writer is not None:
            meta = self._meta()
            meta["ended_at"] = _now_iso()
            self._writer.write_meta(meta)
            self._writer.close()

    def _meta(self) -> dict[str, Any]:
        import openai
        import websockets

        return {
            "voicelab": voicelab.__version__,
            "model": self._config.model,
            "url": redact_url(self._url),
            "config": self._config.to_session(),
            "agent": getattr(self.agent, "name", None),
            "started_at": getattr(self, "_started_at", None) or self._set_started(),
            "versions": {
                "python": platform.python_version(),
                "openai": openai.__version__,
                "websockets": websockets.__version__,
                "numpy": np.__version__,
            },
        }

    def _set_started(self) -> str:
        self._started_at = _now_iso()
        return self._started_at

    # -- listeners and app events --------------------------------------------------------------------
    def add_listener(self, listener: Any) -> None:
        """Add a listener (`async def on_event(session, event)`, or an async callable); called in order."""
        if not (hasattr(listener, "on_event") or callable(listener)):
            raise ConfigError(
                "a listener needs `async def on_event(session, event)` or must be an async callable."
            )
        self._listeners.append(listener)

    def remove_listener(self, listener: Any) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def emit(self, event: AppEvent) -> None:
        """Push an app event: recording now, then listeners and the iterator, in order."""
        self._publish(event)

    def _publish(self, event: AppEvent, to_listeners: bool = True) -> None:
        if self._writer is not None and event.recorded:
            self._writer.record_app(event)
        if self._listeners or self._undispatched:
            self._undispatched += 1
            self._dispatch_q.put_nowait((event, to_listeners))
        else:
            self._out.put(event)  # nothing to run first: straight to the iterator

    async def _dispatch_loop(self) -> None:
        while True:
            entry = await self._dispatch_q.get()
            if entry is _END:
                self._out.put(_END)
                return
            event, to_listeners = entry
            if to_listeners:
                for listener in list(self._listeners):
                    try:
                        handler: Callable[..., Awaitable[Any]] = getattr(listener, "on_event", listener)
                        await handler(self, event)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        name = type(listener).__name__
                        logger.debug("listener %s failed on %s", name, event.type, exc_info=True)
                        error = Error(
                            f"listener {name} raised {type(exc).__name__}: {exc} while handling a "
                            f"{event.type} event; fix the listener (the session goes on).",
                            code="listener_error",
                        )
                        if self._writer is not None:
                            self._writer.record_app(error)
                        self._out.put(error)
            self._out.put(event)
            self._undispatched -= 1

    # -- sending -------------------------------------------------------------------------------------
    async def _send(self, event: dict[str, Any], pcm: bytes | None = None, validate: bool = True) -> None:
        if self._transport is None or self._finished:
            raise SessionError("the session is closed; open a new one with voicelab.connect(...).")
        if validate:
            validate_client_event(event)
        if self._writer is not None:
            self._writer.record_wire("client", event, pcm=pcm)
        await self._transport.send(dumps_event(event))

    async def send_event(self, event: dict[str, Any]) -> None:
        """Send any GA client event dict (validated; an event_id is added when missing)."""
        if not isinstance(event, dict):
            raise ConfigError(
                f"send_event takes a client event dict such as {{'type': 'response.create'}}, got "
                f"{type(event).__name__}."
            )
        event = {"event_id": new_event_id(), **event}
        await self._send(event)

    async def send_audio(
        self, audio: Audio | np.ndarray, rate: int | None = None, commit: bool = False
    ) -> None:
        """Append audio to the input buffer in ~100 ms chunks, converted to the session's input format."""
        if isinstance(audio, Audio):
            clip = audio
        else:
            if rate is None:
                raise AudioError(
                    "send_audio got an array without a sample rate; pass rate=<Hz>, e.g. "
                    "session.send_audio(samples, rate=16000), or an Audio."
                )
            clip = Audio.from_array(audio, rate)
        pcm24 = clip.to_realtime().to_pcm16()
        fmt = format_name(self._config.input_format)
        step = 24 * 2 * _CHUNK_MS
        if fmt == "pcm16":
            for offset in range(0, len(pcm24), step):
                chunk = pcm24[offset : offset + step]
                await self._append(base64.b64encode(chunk).decode("ascii"), chunk)
        else:
            encode = ulaw_encode if fmt == "g711_ulaw" else alaw_encode
            g711 = encode(clip.resample(8000).samples)
            g_step = 8 * _CHUNK_MS
            for index, offset in enumerate(range(0, len(g711), g_step)):
                chunk24 = pcm24[index * step : (index + 1) * step]
                await self._append(base64.b64encode(g711[offset : offset + g_step]).decode("ascii"), chunk24)
        if commit:
            await self.commit()

    async def _append(self, b64: str, pcm24: bytes) -> None:
        event = {"type": "input_audio_buffer.append", "event_id": new_event_id(), "audio": b64}
        await self._send(event, pcm=pcm24, validate=False)

    async def commit(self) -> None:
        await self._send(client_event("input_audio_buffer.commit"))

    async def clear_input(self) -> None:
        await self._send(client_event("input_audio_buffer.clear"))

    async def send_text(self, text: str, respond: bool = True) -> None:
        """Add a user text message; then ask for a response unless respond=False."""
        if not isinstance(text, str):
            raise ConfigError(f"send_text needs a str, got {type(text).__name__}.")
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        await self.create_item(item)
        if respond:
            await self.create_response()

    async def send_message(self, text: str) -> None:
        """`send_text(text, respond=True)`."""
        await self.send_text(text, respond=True)

    async def create_item(self, item: dict[str, Any], previous_item_id: str | None = None) -> None:
        await self._send(
            client_event("conversation.item.create", item=item, previous_item_id=previous_item_id)
        )

    async def delete_item(self, item_id: str) -> None:
        await self._send(client_event("conversation.item.delete", item_id=item_id))

    async def send_function_output(self, call_id: str, output: Any, respond: bool = True) -> None:
        """Answer a function call (`output` is sent as text; non-strings as JSON); then respond."""
        text = output if isinstance(output, str) else json.dumps(output)
        await self.create_item({"type": "function_call_output", "call_id": call_id, "output": text})
        if respond:
            await self.create_response()

    def _response_busy(self) -> bool:
        return self._responses.busy(self.conversation.active_response_id is not None)

    async def create_response(self, **params: Any) -> None:
        """Ask for a response (params: GA `response` fields). Queued while another response is active."""
        event = client_event("response.create", response=params or None)
        out_of_band = params.get("conversation") == "none"
        if out_of_band:
            await self._send(event)
            return
        now = self._responses.request(event, self.conversation.active_response_id is not None)
        if now is not None:
            await self._send_create(now)

    async def _send_create(self, event: dict[str, Any]) -> None:
        """Send a create the queue marked in flight; when the send fails nothing stays in flight."""
        self._last_request_at = time.monotonic()
        try:
            await self._send(event)
        except BaseException:
            self._responses.unsent()
            raise

    async def _release_queued_create(self) -> None:
        if self._finished:
            return
        event = self._responses.next_to_send(self.conversation.active_response_id is not None)
        if event is not None:
            await self._send_create(event)

    async def cancel_response(self, response_id: str | None = None) -> None:
        """Cancel the active response (no-op when none is active). Queued creates are dropped."""
        self._responses.clear()
        if not self._response_busy():
            return
        await self._send_cancel(response_id)

    async def _send_cancel(self, response_id: str | None = None) -> None:
        """response.cancel, remembered: when the response ended before the cancel arrived, the server's
        `response_cancel_not_active` answers a race, not a mistake, and is not reported as an error."""
        event = client_event("response.cancel", response_id=response_id)
        self._responses.cancel_sent(event["event_id"])
        await self._send(event)

    async def update(self, config: SessionConfig | dict[str, Any]) -> None:
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
        await self._send(new.session_update_event())

    async def interrupt(self) -> float | None:
        """Stop the assistant: audio_interrupted + truncate at what was played, and cancel the response.

        Returns the played ms of the interrupted item (None when nothing was playing)."""
        played = await self._interrupt_playback()
        if self._response_busy():
            self._responses.clear()
            await self._send_cancel()
        return played

    async def cut_playback(self) -> float | None:
        """Stop what is playing without cancelling anything: audio_interrupted + truncate at what was
        played. For a reply that already arrived whole (a cancel would be refused). Returns the played ms,
        or None when nothing was playing."""
        return await self._interrupt_playback()

    async def _interrupt_playback(self) -> float | None:
        state = self.playback.state()
        if state is not None and not state.finished:
            stop = getattr(self.playback, "stop", None)
            if stop is not None:  # a real player: stop it now and truncate at what it confirms was heard
                heard = await stop()
                if heard is not None:
                    state = dataclasses.replace(state, played_ms=min(float(heard), state.received_ms))
        self.playback.reset()
        if state is None or state.finished:
            return None
        item = self.conversation.get(state.item_id)
        received = item.audio_ms if item is not None else state.received_ms
        played = max(0, min(int(state.played_ms), int(received)))
        self._interrupted_items.add(state.item_id)
        self._publish(AudioInterrupted(state.item_id, state.content_index, float(played)))
        if self._writer is not None and state.item_id in self._track_start_ms:
            self._writer.cut_output(self._track_start_ms[state.item_id] + played)
        if not self._finished:
            await self._send(
                client_event(
                    "conversation.item.truncate",
                    item_id=state.item_id,
                    content_index=state.content_index,
                    audio_end_ms=played,
                )
            )
        return float(played)

    def _server_interrupts(self) -> bool:
        """Whether the server cancels on speech_started (interrupt_response as this session set it)."""
        return self._config.interrupt_response

    # -- receiving -----------------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        assert self._transport is not None
        code: int | None = None
        reason = ""
        try:
            recv = self._transport.recv_frame
            on_frame = self._on_frame
            monotonic = time.monotonic
            while True:
                frame = await recv()
                self._last_frame_at = monotonic()
                pending = on_frame(frame)
                if pending is not None:
                    try:
                        await pending
                    except (SessionError, ConnectionClosed, asyncio.CancelledError):
                        raise
                    except Exception as exc:  # an event voicelab cannot handle: reported, it goes on
                        self._on_unusable_event(None, exc)
        except ConnectionClosed as exc:
            close = exc.rcvd or exc.sent
            code = close.code if close is not None else None
            reason = close.reason if close is not None else "connection lost"
            if not self._closing:
                detail = f"code {code}" + (f", {reason}" if reason else "") if close else "no close frame"
                last = self._last_error
                if last is not None:
                    detail += f"; last server error: {last.get('message')}"
                self._publish(
                    Error(
                        f"the server closed the connection ({detail}); everything received is recorded. "
                        "Reconnect with voicelab.connect(...).",
                        code="connection_closed",
                        fatal=True,
                        raw=last,
                    )
                )
        except asyncio.CancelledError:
            reason = "cancelled"
            raise
        except SessionError as exc:  # a send from the reader failed: the connection is gone
            if not self._closing:
                self._publish(Error(str(exc), code="connection_closed", fatal=True))
            reason = "send failed"
        except Exception as exc:  # a bug in voicelab: surface it, never hang
            logger.exception("session reader failed")
            self._publish(
                Error(f"voicelab session reader failed: {exc!r}", code="internal_error", fatal=True)
            )
            reason = "internal error"
        finally:
            await self._finish(code, reason or ("closed by client" if self._closing else "closed"))

    async def _watch_responses(self) -> None:
        """Fail the session when a response is pending and the server sends nothing for response_timeout."""
        timeout = self.response_timeout
        while not self._finished:
            await asyncio.sleep(min(timeout / 4, 1.0))
            if self._finished or not self._response_busy():
                continue
            silent = time.monotonic() - max(self._last_frame_at, self._last_request_at)
            if silent < timeout:
                continue
            self._publish(
                Error(
                    f"the server sent nothing for {timeout:g} s while a response was pending (no "
                    "response.done); it stopped answering. Reconnect, or raise response_timeout for slow "
                    "servers.",
                    code="response_timeout",
                    fatal=True,
                )
            )
            self._closing = True  # the reader ends quietly; this error says why
            if self._transport is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._transport.close(1000, "response timeout"), 2.0)
            if self._reader is not None:
                with contextlib.suppress(asyncio.TimeoutError, TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(self._reader), 2.0)
            await self._finish(None, "response timeout")
            return

    def _on_frame(self, frame: str | bytes) -> Coroutine[Any, Any, None] | None:
        """Handle one frame. The deltas are handled here and now (None); any other event returns the
        `_handle_event` coroutine for the reader to await."""
        writer = self._writer
        t_ms = writer.t_ms() if writer is not None else 0.0
        text = frame if type(frame) is str else bytes(frame).decode("utf-8", errors="replace")  # type: ignore[arg-type]
        try:
            data = decode_frame(text)
        except Exception:  # ValueError, and RecursionError for deep nesting: any frame is an error at worst
            data = None
        if type(data) is not dict or type(data.get("type")) is not str:
            self._on_invalid_frame(text, t_ms)
            return None
        fast = self._delta_handlers.get(data["type"])
        if fast is not None and is_valid_delta(data):
            try:
                fast(data, t_ms)
            except Exception as exc:  # e.g. a delta whose audio is not base64: reported, the session goes on
                self._on_unusable_event(data, exc)
            return None
        if json_too_deep(data):  # no event nests this deep; typing and copying it would recurse too far
            self._on_invalid_frame(text, t_ms)
            return None
        return self._handle_event(data, t_ms)

    def _on_unusable_event(self, data: dict[str, Any] | None, exc: Exception) -> None:
        """A server event voicelab could not handle: a non-fatal error event; the session goes on."""
        logger.debug("session failed on a server event", exc_info=True)
        kind = f" {data.get('type')}" if data is not None else ""
        self._publish(
            Error(
                f"voicelab could not handle a server{kind} event ({type(exc).__name__}: {exc}); it was "
                "skipped and the session goes on.",
                code="invalid_server_event",
                raw=data,
            )
        )

    def _on_invalid_frame(self, text: str, t_ms: float) -> None:
        try:
            loads_event(text)  # raises with the message naming the problem
            message = f"the server sent an unusable frame: {text[:80]!r}."
        except RemoteProtocolError as exc:
            message = str(exc)
        except Exception as exc:  # never let a frame's problem out of the reader
            message = f"the server sent an unusable frame ({type(exc).__name__}): {text[:80]!r}."
        if self._writer is not None:
            self._writer.record_wire("server", {"type": "invalid_frame", "text": text[:2000]}, t_ms=t_ms)
        self._publish(Error(message, code="invalid_json", raw={"text": text[:2000]}))

    async def _handle_event(self, data: dict[str, Any], t_ms: float) -> None:
        """Every server event but the valid deltas: typed with the openai models, then translated."""
        writer = self._writer
        event_type = data["type"]
        if writer is not None and not (
            event_type == "response.output_audio.delta" and type(data.get("delta")) is str
        ):
            writer.record_wire("server", data, t_ms=t_ms)
        parsed = parse_server_dict(data)
        if isinstance(parsed, RawEvent) and parsed.problem is not None:
            self._publish(
                Error(
                    f"server event {event_type} does not match the Realtime GA schema ({parsed.problem}); "
                    "it was kept raw. Check the server version.",
                    code="invalid_server_event",
                    raw=data,
                )
            )
        if event_type == "response.output_audio.delta" and type(data.get("delta")) is str:
            self._on_audio_delta(data, t_ms)  # off-schema, still audio: played and recorded as received
            return
        item_key = _item_id_of(data)
        was_known = item_key in self.conversation if item_key else True
        self.conversation.apply(parsed)
        if event_type == "session.created":  # server defaults; the format in force is the one we send
            self.conversation.output_bytes_per_ms = bytes_per_ms(audio_format(self._config.output_format))
        await self._translate(event_type, data, item_key, was_known)

    def _on_text_delta(self, data: dict[str, Any], t_ms: float) -> None:
        """A valid assistant transcript or text delta (the hot path)."""
        if self._writer is not None:
            self._writer.record_wire("server", data, t_ms=t_ms)
        item_id: str = data["item_id"]
        delta: str = data["delta"]
        self.conversation.add_assistant_delta(item_id, delta, data["type"] == "response.output_text.delta")
        self._publish(TranscriptDelta._new(item_id, "assistant", delta))

    def _on_audio_delta(self, data: dict[str, Any], t_ms: float) -> None:
        """An assistant audio delta (the hot path): counted, tracked, recorded, published undecoded."""
        b64: str = data["delta"]
        writer = self._writer
        item_id = data.get("item_id", "")
        nbytes = b64_decoded_len(b64)
        self.conversation.add_output_audio(item_id, data.get("response_id"), nbytes)
        payload: bytes | str = b64  # decoded lazily (AudioChunk.data) unless needed here
        if self._output_format_name != "pcm16":
            payload = self._g711_to_pcm(base64.b64decode(b64))
        elif writer is not None:
            payload = base64.b64decode(b64)
        pcm_ms = (len(payload) if isinstance(payload, bytes) else nbytes) / 48.0
        if item_id in self._interrupted_items:  # received after the barge-in: recorded, never played
            if writer is not None:
                ref = {"track": "dropped", "start_ms": round(t_ms, 3), "duration_ms": pcm_ms}
                writer.record_wire("server", {**data, "delta": {"$audio": ref}}, t_ms=t_ms)
            return
        if writer is not None:
            assert isinstance(payload, bytes)
            recorded = writer.record_wire("server", data, pcm=payload, t_ms=t_ms)
            if item_id not in self._track_start_ms:
                self._track_start_ms[item_id] = recorded["delta"]["$audio"]["start_ms"]
        content_index = data.get("content_index", 0)
        self.playback.on_audio(item_id, content_index, pcm_ms)
        self._publish(AudioChunk._new(item_id, content_index, data.get("response_id", ""), payload))

    def _g711_to_pcm(self, raw: bytes) -> bytes:
        samples = ulaw_decode(raw) if self._output_format_name == "g711_ulaw" else alaw_decode(raw)
        if samples.size == 0:
            return b""
        return Audio.from_array(samples, 8000).to_realtime().to_pcm16()

    async def _translate(
        self, event_type: str, data: dict[str, Any], item_key: str | None, was_known: bool
    ) -> None:
        conv = self.conversation
        publish = self._publish
        if item_key and not was_known and item_key in conv and item_key not in self._announced:
            self._announced.add(item_key)
            publish(HistoryAdded(_snapshot(conv.get(item_key))))
            publish(HistoryUpdated(tuple(_snapshot(i) for i in conv.items)))
        if event_type == "input_audio_buffer.speech_started":
            publish(SpeechStarted(data.get("item_id", ""), data.get("audio_start_ms", 0)))
            state = self.playback.state()
            if state is not None and not state.finished:
                await self._interrupt_playback()
                if not self._server_interrupts() and conv.active_response_id is not None:
                    await self._send_cancel()
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
            self._responses.on_created()
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
            self._responses.on_done()
            done = conv.responses.get(rid)
            publish(
                ResponseDone(
                    rid,
                    response.get("status", "completed"),
                    done.reason if done is not None else None,
                    response.get("usage"),
                )
            )
            await self._release_queued_create()
        elif event_type == "error":
            error = data.get("error") or {}
            self._last_error = error
            refused = self._responses.refused(error)
            if self._responses.raced_cancel(error):
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
                await self._release_queued_create()
        else:
            publish(RawServerEvent(data))


def _item_id_of(data: dict[str, Any]) -> str | None:
    item = data.get("item")
    if isinstance(item, dict) and data["type"] in (
        "conversation.item.added",
        "conversation.item.created",
        "conversation.item.done",
        "response.output_item.added",
        "response.output_item.done",
    ):
        return item.get("id")
    return None


def _snapshot(item: Item | None) -> Item:
    assert item is not None
    return copy.deepcopy(item)


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def _check_connect_args(
    url: Any,
    api_key: Any,
    model: Any,
    record_dir: Any,
    headers: Any,
    open_timeout: Any,
    response_timeout: Any,
    playback: Any,
) -> None:
    """ConfigError naming the argument and the fix, for what connect() cannot use (URLs: SessionError)."""
    if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
        raise ConfigError(
            "api_key must be a non-empty str, or None to use OPENAI_API_KEY (or no key offline)."
        )
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise ConfigError(
            "model must be a non-empty str such as 'gpt-realtime', or None for the config's model."
        )
    check_record_dir(record_dir)
    if headers is not None and (
        not isinstance(headers, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        raise ConfigError("headers must be a dict of str to str, e.g. {'X-Trace': 'abc'}.")
    for name, value, zero_ok in (
        ("open_timeout", open_timeout, False),
        ("response_timeout", response_timeout, True),
    ):
        number_ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not number_ok or value < 0 or (value == 0 and not zero_ok):
            allowed = "0 (no watchdog) or more" if zero_ok else "more than 0"
            raise ConfigError(f"{name} must be a number of seconds, {allowed}; got {value!r}.")
    if playback is not None and not isinstance(playback, PlaybackTracker):
        raise ConfigError(
            "playback must be a voicelab PlaybackTracker (or None for a new one), got "
            f"{type(playback).__name__}."
        )


def connect(
    agent_or_config: Any = None,
    url: str | None = None,
    api_key: str | None = None,
    *,
    model: str | None = None,
    record_dir: str | Path | bool | None = None,
    headers: dict[str, str] | None = None,
    open_timeout: float = 10.0,
    response_timeout: float = 30.0,
    playback: PlaybackTracker | None = None,
    architecture: str = "realtime",
    models: Any = None,
) -> Session:
    """A Session for a SessionConfig, a dict of session fields, or an agent (`session_config()` +
    `create_listener()`). Open it with `async with` (or `await`). `url=None` is the OpenAI API
    (OPENAI_API_KEY); `record_dir=None` (or True) records to a new ./recordings/<time>-<random> folder,
    False records nothing. Arguments that cannot work raise ConfigError (a bad URL: SessionError) here, not
    at open. `architecture="chained"` runs the same agent as speech-to-text -> text model -> text-to-speech
    (`voicelab.pipeline.ChainedSession`; `models=voicelab.ChainedModels(...)` picks the three models)."""
    _check_connect_args(url, api_key, model, record_dir, headers, open_timeout, response_timeout, playback)
    if architecture not in ("realtime", "chained"):
        raise ConfigError(
            f"architecture={architecture!r} is not an architecture; use 'realtime' (speech to speech) or "
            "'chained' (speech-to-text -> text model -> text-to-speech)."
        )
    if models is not None and architecture != "chained":
        raise ConfigError("models= picks the chained architecture's models; pass architecture='chained' too.")
    agent = None
    if isinstance(agent_or_config, type):
        raise ConfigError(
            f"connect() got the class {agent_or_config.__name__}, not an instance; create one first, e.g. "
            f"voicelab.connect({agent_or_config.__name__}(...))."
        )
    if agent_or_config is None:
        config = SessionConfig()
    elif isinstance(agent_or_config, SessionConfig):
        config = agent_or_config
    elif isinstance(agent_or_config, dict):
        config = SessionConfig.from_dict(agent_or_config)
    elif hasattr(agent_or_config, "session_config") and hasattr(agent_or_config, "create_listener"):
        agent = agent_or_config
        config = agent.session_config()
    else:
        raise ConfigError(
            f"connect() takes a SessionConfig, a dict of session fields or a voicelab.Agent, got "
            f"{type(agent_or_config).__name__}."
        )
    if model is not None:
        config = config.replace(model=model)
    options: dict[str, Any] = {
        "url": url,
        "api_key": api_key,
        "headers": headers,
        "record_dir": record_dir,
        "open_timeout": open_timeout,
        "response_timeout": response_timeout,
        "agent": agent,
        "playback": playback,
    }
    if architecture == "chained":
        from voicelab.pipeline import ChainedSession

        return ChainedSession(config, models=models, **options)
    return Session(config, **options)


__all__ = ["Listener", "Session", "connect"]
