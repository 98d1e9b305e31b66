"""The one asyncio driver: a transport moving frames <-> the sans-I/O `ClientProtocol` <-> app events.

    async with voicelab.connect(config_or_agent, url=server.url) as session:
        await session.send_text("Hello")
        async for event in session: ...

Every protocol decision (frame parsing, deltas, conversation state, the response queue, error mapping,
barge-in and truncation arithmetic, the events each command sends) is `voicelab.protocol.client
.ClientProtocol`'s, synchronous and testable without a socket (`voicelab.testing.ConnectionPair`). This
module only drives it: the transport, the tasks, the listeners, the recording's app and client lines, the
response watchdog, and awaiting a player's `stop()` at a barge-in.

Tasks: a reader (frames -> `protocol.receive` -> app events; then a barge-in's stop and what the protocol
wants sent) and a dispatcher (app events -> listeners in order -> the async iterator). A slow listener never
delays the reader; a listener that raises becomes an `error` app event. With no listeners, app events go
straight to the iterator.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import functools
import logging
import platform
import re
import shutil
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from websockets.exceptions import ConnectionClosed

import voicelab
from voicelab.audio.core import Audio
from voicelab.checks import api_key_text, checked, checked_class, flag, number
from voicelab.config import SessionConfig
from voicelab.errors import ConfigError, SessionError
from voicelab.events import AppEvent, Disconnected, Error
from voicelab.playback import PlaybackTracker
from voicelab.protocol.client import ClientProtocol, unusable_event
from voicelab.protocol.conversation import Conversation, Item
from voicelab.protocol.events import dumps_event
from voicelab.recording import SESSION_FLUSH_MS, RecordingWriter, check_record_dir, default_record_dir
from voicelab.redact import mask_secret, redact_text, redact_url
from voicelab.transports.websocket import WebSocketTransport, auth_headers, realtime_url

logger = logging.getLogger(__name__)

_END = object()


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


@checked_class
class Session:
    """A Realtime session: `async with voicelab.connect(...) as session`; or `await voicelab.connect(...)`."""

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
        if not isinstance(config, SessionConfig):
            got = f"the class {config.__name__}" if isinstance(config, type) else type(config).__name__
            raise ConfigError(
                f"Session takes a voicelab.SessionConfig, got {got}; open a session with "
                "voicelab.connect(agent_or_config, url=...), which also takes an agent or a dict of fields."
            )
        _check_connect_args(url, api_key, None, record_dir, headers, open_timeout, response_timeout, playback)
        self._url = realtime_url(url, config.model)
        self._api_key = api_key
        self._headers = auth_headers(self._url, api_key, headers)
        self._secrets = tuple(v for v in (api_key, *self._headers.values()) if v)
        self._record_dir = record_dir
        self.open_timeout = open_timeout
        self.response_timeout = response_timeout
        self.agent = agent
        # every protocol decision; the recording writer becomes its recorder when the session opens
        self._protocol = ClientProtocol(config, playback=playback or PlaybackTracker())
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
        self._last_frame_at = 0.0
        self._last_request_at = 0.0
        self._watchdog: asyncio.Task[None] | None = None

    # -- properties ----------------------------------------------------------------------------------
    @property
    def protocol(self) -> ClientProtocol:
        """The sans-I/O client protocol this session drives (state, conversation, response queue)."""
        return self._protocol

    @property
    def config(self) -> SessionConfig:
        return self._protocol.config

    @property
    def conversation(self) -> Conversation:
        """The conversation state rebuilt from the server's events."""
        return self._protocol.conversation

    @conversation.setter
    def conversation(self, conversation: Conversation) -> None:
        self._protocol.conversation = conversation

    @property
    def playback(self) -> PlaybackTracker:
        """Where local playback is (the tracker given to connect(), or a wall-clock one)."""
        return self._protocol.playback

    @playback.setter
    def playback(self, playback: PlaybackTracker) -> None:
        self._protocol.playback = playback

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
        return self._protocol.responding

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
            f"Session(url={self.url!r}, model={self.config.model!r}, api_key={mask_secret(self._secrets)}, "
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
            self._protocol.recorder = self._writer  # server events are recorded as they are received
        self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch_loop())
        try:
            self._transport = await self._open_transport()
        except BaseException as exc:
            await self._open_failed(exc)
            if isinstance(exc, (SessionError, asyncio.CancelledError)) or not isinstance(exc, Exception):
                raise
            message = f"cannot connect to {self.url}: {type(exc).__name__}: {exc}"
            raise SessionError(redact_text(message, self._secrets)) from None
        self._protocol.connection_open()
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())
        if self.response_timeout:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch_responses())
        with contextlib.suppress(SessionError):  # closed already: the reader reports it as events
            await self._send_all(self._protocol.session_update())
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
            self._protocol.recorder = None

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
        self._protocol.connection_closed()
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
            "model": self.config.model,
            "url": redact_url(self._url),
            "config": self.config.to_session(),
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

    # -- sending: the protocol makes the events, the driver records and sends them --------------------
    async def _send(self, event: dict[str, Any], pcm: bytes | None = None) -> None:
        if self._transport is None or self._finished:
            if not self._opened:
                raise SessionError(
                    "the session was never opened; open it first: `async with voicelab.connect(...) as "
                    "session:`, or `await session.open()`."
                )
            raise SessionError("the session is closed; open a new one with voicelab.connect(...).")
        if self._writer is not None:
            self._writer.record_wire("client", event, pcm=pcm)
        await self._transport.send(dumps_event(event))

    async def _send_all(self, events: Iterable[dict[str, Any]]) -> None:
        """Send the protocol's events in order; a response.create it marked in flight starts the watchdog's
        wait, and when its send fails nothing stays in flight."""
        protocol = self._protocol
        for event in events:
            if event["type"] == "response.create" and protocol.is_create_in_flight(event):
                self._last_request_at = time.monotonic()
            try:
                await self._send(event)
            except BaseException:
                protocol.send_failed(event)
                raise

    async def send_event(self, event: dict[str, Any]) -> None:
        """Send any GA client event dict (validated; an event_id is added when missing)."""
        await self._send_all(self._protocol.send_event(event))

    async def send_audio(
        self, audio: Audio | np.ndarray | bytes, rate: int | None = None, commit: bool = False
    ) -> None:
        """Append audio to the input buffer in ~100 ms chunks, converted to the session's input format.

        `audio`: an Audio, an array with `rate`, or PCM16 little-endian bytes (at `rate`, default 24000).
        Consecutive calls are one stream (a 48 kHz mic's chunks are resampled without seams)."""
        if commit is not False and commit is not True:
            flag(commit, "commit", where="send_audio")
        for event, pcm24 in self._protocol.audio_appends(audio, rate, last=commit):
            await self._send(event, pcm=pcm24)
        if commit:
            await self.commit()

    async def commit(self) -> None:
        for event, pcm24 in self._protocol.input_tail():
            await self._send(event, pcm=pcm24)
        await self._send_all(self._protocol.commit())

    async def clear_input(self) -> None:
        await self._send_all(self._protocol.clear_input())

    async def send_text(self, text: str, respond: bool = True) -> None:
        """Add a user text message; then ask for a response unless respond=False."""
        flag(respond, "respond", where="send_text")
        await self._send_all(self._protocol.text_item(text))
        if respond:
            await self.create_response()

    async def send_message(self, text: str) -> None:
        """`send_text(text, respond=True)`."""
        await self.send_text(text, respond=True)

    async def create_item(self, item: dict[str, Any], previous_item_id: str | None = None) -> None:
        await self._send_all(self._protocol.create_item(item, previous_item_id))

    async def delete_item(self, item_id: str) -> None:
        await self._send_all(self._protocol.delete_item(item_id))

    async def send_function_output(self, call_id: str, output: Any, respond: bool = True) -> None:
        """Answer a function call (`output` is sent as text; non-strings as JSON); then respond."""
        flag(respond, "respond", where="send_function_output")
        await self._send_all(self._protocol.function_output_item(call_id, output))
        if respond:
            await self.create_response()

    async def create_response(self, **params: Any) -> None:
        """Ask for a response (params: GA `response` fields). Queued while another response is active."""
        await self._send_all(self._protocol.create_response(**params))

    async def cancel_response(self, response_id: str | None = None) -> None:
        """Cancel the active response (no-op when none is active). Queued creates are dropped."""
        await self._send_all(self._protocol.cancel_response(response_id))

    async def update(self, config: SessionConfig | dict[str, Any]) -> None:
        """Change the session: a SessionConfig, or a dict of GA or flat fields merged into the current one."""
        await self._send_all(self._protocol.update(config))

    async def interrupt(self) -> float | None:
        """Stop the assistant: audio_interrupted + truncate at what was played, and cancel the response.

        Returns the played ms of the interrupted item (None when nothing was playing)."""
        played = await self._interrupt_playback()
        await self._send_all(self._protocol.interrupt_cancel())
        return played

    async def cut_playback(self) -> float | None:
        """Stop what is playing without cancelling anything: audio_interrupted + truncate at what was
        played. For a reply that already arrived whole (a cancel would be refused). Returns the played ms,
        or None when nothing was playing."""
        return await self._interrupt_playback()

    async def _interrupt_playback(self) -> float | None:
        """Stop the player (awaiting a real player's `stop()`, which reports what was heard), then let the
        protocol cut at that point: audio_interrupted, the output track cut, the truncate sent."""
        state = self.playback.state()
        heard = None
        if state is not None and not state.finished:
            stop = getattr(self.playback, "stop", None)
            if stop is not None:  # a real player: stop it now and truncate at what it confirms was heard
                heard = await stop()
        cut = self._protocol.cut_playback(state, heard)
        for event in cut.events:
            self._publish(event)
        await self._send_all(cut.send)
        return cut.played_ms

    # -- receiving -----------------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        assert self._transport is not None
        code: int | None = None
        reason = ""
        protocol = self._protocol
        try:
            recv = self._transport.recv_frame
            receive = protocol.receive
            publish = self._publish
            monotonic = time.monotonic
            while True:
                frame = await recv()
                self._last_frame_at = now = monotonic()
                writer = self._writer
                if writer is None:
                    t_ms = 0.0
                elif writer.clock is monotonic:  # writer.t_ms() at the time just read
                    t_ms = (now - writer.origin) * 1000.0
                else:
                    t_ms = writer.t_ms()
                for event in receive(frame, t_ms):
                    publish(event)
                if protocol.barge_in or protocol.outgoing:
                    try:
                        await self._after_receive()
                    except (SessionError, ConnectionClosed, asyncio.CancelledError):
                        raise
                    except Exception as exc:  # e.g. a player whose stop() failed: reported, it goes on
                        self._publish(unusable_event(None, exc))
        except ConnectionClosed as exc:
            close = exc.rcvd or exc.sent
            code = close.code if close is not None else None
            reason = close.reason if close is not None else "connection lost"
            if not self._closing:
                detail = f"code {code}" + (f", {reason}" if reason else "") if close else "no close frame"
                last = protocol.last_error
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

    async def _after_receive(self) -> None:
        """What a frame asked of the driver: a barge-in (stop the player, truncate, the client's cancel when
        the server does not cancel on speech), then the events the protocol wants sent (a queued create)."""
        protocol = self._protocol
        if protocol.barge_in:
            protocol.barge_in = False
            await self._interrupt_playback()
            await self._send_all(protocol.barge_in_cancel())
        await self._send_all(protocol.events_to_send())

    async def _watch_responses(self) -> None:
        """Fail the session when a response is pending and the server sends nothing for response_timeout."""
        timeout = self.response_timeout
        while not self._finished:
            await asyncio.sleep(min(timeout / 4, 1.0))
            if self._finished or not self._protocol.response_busy:
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
    if api_key is not None:
        api_key_text(api_key, "api_key", fix="pass the key alone, e.g. api_key=key.strip()")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise ConfigError(
            "model must be a non-empty str such as 'gpt-realtime', or None for the config's model."
        )
    check_record_dir(record_dir)
    if headers is not None:
        _check_headers(headers)
    number(open_timeout, "open_timeout", lo=0, lo_open=True, hi=MAX_TIMEOUT_S, unit="seconds", example=10)
    number(
        response_timeout,
        "response_timeout",
        lo=0,
        hi=MAX_TIMEOUT_S,
        unit="seconds (0: no watchdog)",
        example=30,
    )
    if playback is not None and not isinstance(playback, PlaybackTracker):
        raise ConfigError(
            "playback must be a voicelab PlaybackTracker (or None for a new one), got "
            f"{type(playback).__name__}."
        )


MAX_TIMEOUT_S = 3600  # open_timeout and response_timeout: an hour is more than any server needs
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP header name (RFC 9110 token)


def _check_headers(headers: Any) -> None:
    """ConfigError for headers that cannot go into an HTTP handshake (a value is never shown: it may be a
    secret)."""
    example = "e.g. headers={'X-Trace': 'abc'}"
    if not isinstance(headers, Mapping):
        raise ConfigError(f"headers must be a dict of str to str, {example}.")
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigError(f"headers must be a dict of str to str, {example}.")
        if not name:
            raise ConfigError(f"headers has an empty header name; give every value a name, {example}.")
        if not _TOKEN.fullmatch(name):
            raise ConfigError(
                f"headers: {name!r} is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only: no "
                f"spaces, colons or line breaks), {example}."
            )
        if not value.isascii() or any(c != "\t" and not c.isprintable() for c in value):
            raise ConfigError(
                f"headers[{name!r}] has a line break, a control or a non-ASCII character in its value; a "
                "header value is one line of ASCII text (to send two headers, give two keys)."
            )


def config_of(agent_or_config: Any, caller: str = "voicelab.connect") -> tuple[SessionConfig, Any]:
    """(config, agent or None) from a SessionConfig, a dict of session fields, None (the defaults) or an agent
    (`session_config()` + `create_listener()`); ConfigError naming `caller` for anything else."""
    name = caller.rsplit(".", 1)[-1]
    if isinstance(agent_or_config, type):
        raise ConfigError(
            f"{name}() got the class {agent_or_config.__name__}, not an instance; create one first, e.g. "
            f"{caller}({agent_or_config.__name__}(...))."
        )
    if agent_or_config is None:
        return SessionConfig(), None
    if isinstance(agent_or_config, SessionConfig):
        return agent_or_config, None
    if isinstance(agent_or_config, dict):
        return SessionConfig.from_dict(agent_or_config), None
    if hasattr(agent_or_config, "session_config") and hasattr(agent_or_config, "create_listener"):
        return agent_or_config.session_config(), agent_or_config
    raise ConfigError(
        f"{name}() takes a SessionConfig, a dict of session fields or a voicelab.Agent, got "
        f"{type(agent_or_config).__name__}."
    )


@functools.partial(checked, name="voicelab.connect")
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
    config, agent = config_of(agent_or_config)
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


__all__ = ["Listener", "Session", "config_of", "connect"]
