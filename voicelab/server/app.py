"""The embedded server on a socket: one Starlette app served by uvicorn, HTTP and WebSocket on one port.

WebSocket `/v1/realtime?model=...` drives one sans-I/O `Engine` per connection (`?intent=transcription`
opens a transcription session). Like the real API, handshake problems are reported after the upgrade: an
`error` event then a close frame (3000 for auth, 4000 for the request shape; reason
"<error.type>.<error.code>").
HTTP `/v1/audio/transcriptions`, `/v1/audio/speech`, `/v1/responses` and `/v1/chat/completions` are served by
`voicelab.server.httpapi` from the same brain and services.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import socket
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketState

from voicelab.audio.vad import prewarm_silero
from voicelab.errors import ConfigError
from voicelab.server.brains import Brain, ScriptedBrain
from voicelab.server.engine import Engine
from voicelab.server.httpapi import HttpApi, not_found
from voicelab.server.ids import IdMaker
from voicelab.server.logs import protect_server_logs
from voicelab.server.responses import Pace
from voicelab.server.script import Script, placeholders
from voicelab.server.services import EngineServices, espeak_synthesizer
from voicelab.server.vad_batch import LoopWaker
from voicelab.server.work import Work, WorkerThreads, WorkResult
from voicelab.server.workers import WorkerPool, check_workers

logger = logging.getLogger("voicelab.server")
PATH = "/v1/realtime"
PING_INTERVAL_S = 20.0
MAX_FRAME_BYTES = 16 * 1024 * 1024  # the real API takes up to 15 MiB of audio per append
SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "data" / "scripts"
DEFAULT_SCRIPT = "returns_desk"

BrainSource = Brain | Callable[[], Brain]
_VAD_READY = object()  # queued with the client's frames: the batched VAD has events for advance()
# A user's brain and slow transcription run in these threads (an `async def` brain on the loop), never on the
# event loop itself; a brain that blocks holds one thread, so this many may block before others queue.
WORK_THREADS = 32


def bundled_scripts() -> list[str]:
    return sorted(p.stem for p in SCRIPTS_DIR.glob("*.yaml"))


def resolve_script(script: str | Path | dict[str, Any] | None) -> ScriptedBrain:
    """A path, a bundled script name (e.g. "returns_desk"), a parsed dict, or None for the default script."""
    if script is None:
        script = DEFAULT_SCRIPT
    if not isinstance(script, (str, Path, dict)):
        raise ConfigError(
            f"script must be a path, a bundled script name ({', '.join(bundled_scripts())}) or a dict, got "
            f"{type(script).__name__}"
        )
    if isinstance(script, (str, Path)) and not Path(script).exists():
        bundled = SCRIPTS_DIR / f"{script}.yaml"
        if bundled.exists():
            script = bundled
        else:
            raise ConfigError(
                f"script {str(script)!r} is neither a file nor a bundled script; pass a path to a "
                ".yaml/.json "
                f"script or one of: {', '.join(bundled_scripts())}"
            )
    return ScriptedBrain(script)


def _cached(services: EngineServices) -> EngineServices:
    """The services with the transcriber built once per phrase list (pocketsphinx setup takes ~150 ms)."""
    cached = functools.lru_cache(maxsize=16)(lambda phrases: services.transcriber(list(phrases)))
    return EngineServices(services.synthesize, services.turn_detector, lambda phrases: cached(tuple(phrases)))


DEFAULT_VOICE = "alloy"  # the engine's voice when neither the session nor the response sets one
MAX_WARM_LINES = 128  # the fixed replies synthesized ahead (the synthesizer's cache holds 256)
MAX_WARM_CHARS = 1200  # longer replies are cut by the engine before synthesis (its MAX_REPLY_CHARS)
WARM_UP_JOIN_S = 30.0  # Server.close() waits at most this long for the warm-up thread
STOP_TIMEOUT_S = 15.0  # Server.close() waits at most this long for the server's loop to stop serving


def _static_lines(brain: BrainSource) -> list[str]:
    """A scripted brain's replies that do not depend on what the caller said (no placeholders)."""
    script = getattr(brain, "script", None)
    if not isinstance(brain, ScriptedBrain) or not isinstance(script, Script):
        return []
    texts = [rule.say for rule in script.rules if rule.say is not None]
    texts += [script.fallback, *([script.idle] if script.idle else [])]
    lines = [
        t for t in dict.fromkeys(texts) if t.strip() and len(t) <= MAX_WARM_CHARS and not placeholders(t)
    ]
    return lines[:MAX_WARM_LINES]


def dump_event(event: dict[str, Any]) -> str:
    """A server event as a text frame: orjson (an audio delta in 0.7 us instead of json.dumps' 11 us), with
    json.dumps for what orjson refuses or would change (NaN and infinities, which it writes as null). The
    frame is compact JSON with UTF-8 text where json.dumps put spaces and \\u escapes: the same values."""
    try:
        data = orjson.dumps(event)
    except TypeError:  # an int beyond 64 bits, a key that is not a string
        return json.dumps(event)
    if b"null" in data and _has_nonfinite(event):
        return json.dumps(event)
    return data.decode()


def _has_nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_nonfinite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_nonfinite(v) for v in value)
    return False


def _handshake_error(code: str | None, message: str, kind: str = "invalid_request_error") -> str:
    error = {"type": kind, "code": code, "message": message, "param": None, "event_id": None}
    return json.dumps({"event_id": IdMaker().event(), "type": "error", "error": error})


class _Handler:
    """Accepts connections and runs one engine per connection; serves the HTTP APIs."""

    def __init__(
        self, brain: BrainSource, token: str | None, pace: Pace, services: EngineServices | None = None
    ) -> None:
        self._brain = brain
        self._token = token
        self.pace: Pace = pace
        self.services = _cached(services or EngineServices.default())
        self.connections = 0
        self.http = HttpApi(self._http_brain, token, self.services)
        self._shared_brain: Brain | None = None
        self._wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWaker] = (
            weakref.WeakKeyDictionary()
        )
        self._executor: WorkerThreads | None = None
        self._warming: threading.Thread | None = None

    def warm_up(self) -> None:
        """Once the server listens (a server that cannot listen starts nothing a process could exit in the
        middle of): load the VAD model, and build the grammar and the script's fixed replies in a thread that
        `join_warm_up` waits for when the server closes."""
        prewarm_silero()  # the VAD model, loaded once for every connection, before the first one needs it
        brain = self._brain
        phrases = list(getattr(brain, "phrases", ())) if _is_brain(brain) else []
        lines = _static_lines(brain) if self.services.synthesize is espeak_synthesizer else []
        if phrases or lines:
            self._warming = threading.Thread(target=self._warm, args=(phrases, lines), daemon=True)
            self._warming.start()

    def join_warm_up(self, timeout_s: float = WARM_UP_JOIN_S) -> None:
        """Wait (at most `timeout_s`) for the warm-up thread: a process that exits while it runs in native
        code (espeak, the grammar) can abort ("terminate called without an active exception")."""
        thread = self._warming
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def _warm(self, phrases: list[str], lines: list[str]) -> None:
        """Build the transcription grammar before the first turn needs it, then synthesize the script's
        fixed replies in the default voice (the synthesizer caches them): a first reply is then sent
        without waiting for its synthesis."""
        if phrases:
            with contextlib.suppress(Exception):  # a missing transcriber shows up as transcription.failed
                self.services.transcriber(phrases)
        for line in lines:
            with contextlib.suppress(Exception):  # a failing synthesis shows up in its response
                self.services.synthesize(line, DEFAULT_VOICE, 1.0)

    def _new_brain(self) -> Brain:
        brain = self._brain
        if _is_brain(brain):
            return brain  # type: ignore[return-value]
        made = brain()  # type: ignore[operator]
        if not _is_brain(made):
            raise ConfigError(
                f"the brain factory {brain!r} returned {type(made).__name__}; it must return a brain (an "
                "object with `phrases` and `reply(context)`)"
            )
        return made  # type: ignore[no-any-return]

    def _http_brain(self) -> Brain:
        """The brain of the HTTP APIs: one for the server's lifetime (a factory is called once)."""
        if self._shared_brain is None:
            self._shared_brain = self._new_brain()
        return self._shared_brain

    def app(self) -> Starlette:
        routes = [
            WebSocketRoute(PATH, self.realtime),
            WebSocketRoute(PATH + "/", self.realtime),
            *self.http.routes(),
            WebSocketRoute("/{path:path}", self._no_such_socket),
            Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
        ]
        return Starlette(routes=routes)

    async def _no_such_socket(self, ws: WebSocket) -> None:
        await ws.send_denial_response(
            PlainTextResponse(f"voicelab embedded server: use ws://HOST:PORT{PATH}\n", status_code=404)
        )

    async def _refuse(self, ws: WebSocket, close_code: int, code: str | None, message: str) -> None:
        await ws.send_text(_handshake_error(code, message))
        await ws.close(close_code, f"invalid_request_error.{code}" if code else "invalid_request_error")

    async def realtime(self, ws: WebSocket) -> None:
        try:
            await self._realtime(ws)
        except Exception:  # a dropped connection or a failing send: the client is gone, nothing to report
            logger.debug("realtime connection ended with an error", exc_info=True)
            if ws.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await ws.close(1011, "server_error")

    async def _realtime(self, ws: WebSocket) -> None:
        headers = ws.headers
        query = ws.query_params
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        await ws.accept(subprotocol="realtime" if "realtime" in offered else None)
        if self._token is not None:
            auth = headers.get("authorization")
            if auth is None:
                await self._refuse(
                    ws,
                    3000,
                    None,
                    "Missing bearer authentication in header. Send 'Authorization: Bearer <token>'.",
                )
                return
            if auth != f"Bearer {self._token}":
                await self._refuse(
                    ws,
                    3000,
                    "invalid_api_key",
                    "Incorrect API key provided. Use the token the embedded server was started with.",
                )
                return
        if headers.get("openai-beta") is not None:
            await self._refuse(
                ws,
                4000,
                "beta_api_shape_disabled",
                "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API "
                "(drop the OpenAI-Beta header).",
            )
            return
        intent = query.get("intent")
        model = query.get("model") or ""
        if intent is not None and intent != "transcription":
            await self._refuse(
                ws,
                4000,
                "invalid_intent",
                f"Invalid value for 'intent': {intent!r}. Use intent=transcription, or leave it out.",
            )
            return
        if intent is None and not model:
            await self._refuse(
                ws,
                4000,
                "missing_model",
                "Missing required parameter: 'model'. Connect to /v1/realtime?model=...",
            )
            return
        engine = Engine(
            self._new_brain(),
            model=model or "gpt-realtime",
            pace=self.pace,
            services=self.services,
            intent=intent,
            hand_out_work=True,
        )
        await self._run(ws, engine)

    def close_work(self) -> None:
        """Let the worker threads end (a brain still running finishes in its daemon thread)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        self.http.close_work()

    def _work_executor(self) -> WorkerThreads:
        if self._executor is None:
            self._executor = WorkerThreads(WORK_THREADS)
        return self._executor

    async def _run(self, ws: WebSocket, engine: Engine) -> None:
        loop = asyncio.get_running_loop()
        origin = loop.time()

        def now_ms() -> float:
            return (loop.time() - origin) * 1000.0

        frames: asyncio.Queue[str | bytes | object | None] = asyncio.Queue()
        gone = asyncio.Event()
        # a batched VAD (EngineServices.pooled()) scores appends on its own thread and says when it is done
        waker = self._wakers.get(loop) or self._wakers.setdefault(loop, LoopWaker(loop))
        engine.on_vad_ready = functools.partial(waker.call, functools.partial(frames.put_nowait, _VAD_READY))

        async def read() -> None:
            try:
                while True:
                    message = await ws.receive()
                    if message["type"] == "websocket.disconnect":
                        break
                    text = message.get("text")
                    frames.put_nowait(text if text is not None else (message.get("bytes") or b""))
            finally:
                gone.set()
                frames.put_nowait(None)

        async def send(events: Sequence[dict[str, Any]]) -> None:
            for index, event in enumerate(events):
                if gone.is_set():
                    return  # the client went away: what is left is dropped, as on a closed socket
                await ws.send_text(dump_event(event))
                if index % 4 == 3:
                    await asyncio.sleep(0)  # lets a disconnect be noticed within a few frames

        working: dict[asyncio.Task[WorkResult], Work] = {}

        def hand_out() -> None:
            """Start the work the engine handed out (its result comes back through `frames`); stop an
            `async def` brain whose response was cancelled meanwhile (a thread cannot be stopped)."""
            for work in engine.take_work():
                task = loop.create_task(work.run_async(self._work_executor()))
                working[task] = work
                task.add_done_callback(functools.partial(finished, work))
            for task, work in list(working.items()):
                if work.abandoned and work.is_async:
                    task.cancel()

        def finished(work: Work, task: asyncio.Task[WorkResult]) -> None:
            working.pop(task, None)
            if not task.cancelled():
                frames.put_nowait((work, task.result()))
            elif work.abandoned:  # the engine still counts it as out: close it
                frames.put_nowait((work, WorkResult(error=asyncio.CancelledError())))

        reader = loop.create_task(read())
        self.connections += 1
        try:
            await send(engine.start(now_ms()))
            while engine.closed is None:
                deadline = engine.next_deadline()
                try:
                    if deadline is None:
                        frame = await frames.get()
                    else:
                        frame = await asyncio.wait_for(frames.get(), max(0.0, deadline - now_ms()) / 1000.0)
                except asyncio.TimeoutError:
                    await send(engine.advance(now_ms()))
                    hand_out()
                    continue
                if frame is None or gone.is_set():
                    return  # the client went away
                if frame is _VAD_READY:
                    await send(engine.advance(now_ms()))
                    hand_out()
                    continue
                if isinstance(frame, tuple):  # (work, its result)
                    await send(engine.deliver(frame[0], frame[1], now_ms()))
                    hand_out()
                    continue
                # The engine runs on the loop: a frame's work (VAD over one chunk, a bundled brain, a
                # cached or short TTS call, handing audio to the transcriber) is well under a millisecond
                # or two, far less than a thread hop under the GIL costs other connections. A user's brain
                # and decoding that would block are handed out (hand_out() runs them off the loop).
                await send(engine.receive(frame, now_ms()))  # type: ignore[arg-type]
                due = engine.next_deadline()
                if due is not None and due <= now_ms():
                    await send(engine.advance(now_ms()))
                hand_out()
            if not gone.is_set():
                await ws.close(*engine.closed)
        finally:
            self.connections -= 1
            for task in list(working):  # an async brain still thinking for a client that left
                task.cancel()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


class _Listening:
    """A uvicorn server on a socket bound here (so port=0 gives the port before the first request)."""

    def __init__(self, handler: _Handler, host: str, port: int, reuse_port: bool = False) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP; without it a
        # response written in two parts waits ~40 ms for the client's delayed ACK on every kept-alive request
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:  # workers > 1: the processes of one server listen on the same port
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((host, port))
            sock.listen(512)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno is None:
                raise
            reason = (exc.strerror or str(exc)).lower()
            raise OSError(
                exc.errno, f"error while attempting to bind on address {(host, port)!r}: {reason}"
            ) from None
        except BaseException:
            sock.close()
            raise
        self.socket = sock
        self.port: int = sock.getsockname()[1]
        config = uvicorn.Config(
            handler.app(),
            log_config=None,
            access_log=False,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
            ws_max_size=MAX_FRAME_BYTES,
            # no permessage-deflate: on loopback it only costs CPU (a quarter of a busy server's event loop
            # went to compressing and inflating frames, bench/bench_server.py); clients that offer it
            # simply get uncompressed frames
            ws_per_message_deflate=False,
            ws_ping_interval=PING_INTERVAL_S,
            ws_ping_timeout=PING_INTERVAL_S,
            timeout_graceful_shutdown=2,
        )
        config.load()
        protect_server_logs()  # after load() configured uvicorn's loggers: redacted, client faults INFO
        self.server = uvicorn.Server(config)
        self.server.lifespan = config.lifespan_class(config)
        self._main: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            await self.server.startup(sockets=[self.socket])
        except BaseException:
            self.socket.close()
            raise
        self._main = asyncio.get_running_loop().create_task(self.server.main_loop())

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._main is not None:
            with contextlib.suppress(Exception):
                await self._main
        for connection in list(self.server.server_state.connections):
            connection.shutdown()
        with contextlib.suppress(Exception):
            await self.server.shutdown(sockets=[self.socket])


class AsyncServer:
    """The embedded server inside the caller's running event loop (`await serve_async(...)`)."""

    def __init__(self, listening: _Listening, handler: _Handler, host: str) -> None:
        self._listening = listening
        self._handler = handler
        self.host = host
        self.port: int = listening.port

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{PATH}"

    @property
    def base_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1"

    @property
    def http_base_url(self) -> str:
        """`http://HOST:PORT/v1`, for `AsyncOpenAI(base_url=...)`."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def connections(self) -> int:
        return self._handler.connections

    async def aclose(self) -> None:
        """Stop listening, let the work threads end, and wait (at most WARM_UP_JOIN_S, off the loop) for the
        warm-up thread, as `Server.close()` does."""
        await self.stop()
        await asyncio.get_running_loop().run_in_executor(None, self._handler.join_warm_up)

    async def stop(self) -> None:
        """Stop listening and let the work threads end (`Server.close()` then joins the warm-up itself)."""
        await self._listening.stop()
        self._handler.close_work()

    async def __aenter__(self) -> AsyncServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<voicelab AsyncServer {self.url} pace={self._handler.pace}>"


def _is_brain(value: object) -> bool:
    """A brain instance (a class with `reply` is a factory of brains)."""
    return not isinstance(value, type) and callable(getattr(value, "reply", None))


def _brain_source(script: str | Path | dict[str, Any] | None, brain: BrainSource | None) -> BrainSource:
    if brain is not None and script is not None:
        raise ConfigError("pass either script= or brain= to serve(), not both")
    if brain is None:
        return resolve_script(script)
    if _is_brain(brain):
        try:
            list(brain.phrases)  # type: ignore[union-attr]
        except Exception:
            raise ConfigError(
                f"brain {type(brain).__name__} needs a `phrases` attribute: a list of what callers are "
                "expected to say (the transcription grammar), or () for none"
            ) from None
    elif not callable(brain):
        raise ConfigError(
            f"brain must be a brain (an object with `phrases` and `reply(context) -> Say | Call`, plain or "
            f"async def) or a zero-argument factory of one (e.g. its class), got {type(brain).__name__}"
        )
    return brain


def _listen_error(host: str, port: int, failure: BaseException) -> str:
    """What went wrong when the server could not listen, and what to change."""
    text = f"the embedded server could not listen on {host}:{port}: {failure}."
    errno = getattr(failure, "errno", None)
    if errno in (98, 48) or "in use" in str(failure):  # EADDRINUSE on Linux / macOS
        return f"{text} Pick another port (port=0 takes a free one)."
    if errno in (13,):  # EACCES: ports below 1024 need privileges
        return f"{text} Use a port from 1024 up (port=0 takes a free one)."
    if isinstance(failure, OverflowError) or "port must be" in str(failure):
        return f"{text} A port is a number from 0 to 65535 (0 takes a free one)."
    return f"{text} Check the host: 127.0.0.1 (the default) or an address of this machine."


def _check(pace: str, token: str | None) -> None:
    if pace not in ("realtime", "fast"):
        raise ConfigError(f"pace must be 'realtime' or 'fast', got {pace!r}")
    if token is not None and (not isinstance(token, str) or not token):
        raise ConfigError("token must be a non-empty string, or None to accept any client")


async def serve_async(
    script: str | Path | dict[str, Any] | None = None,
    *,
    brain: BrainSource | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    pace: Pace = "realtime",
    services: EngineServices | None = None,
    _reuse_port: bool = False,
) -> AsyncServer:
    """Start the embedded server in the running event loop."""
    _check(pace, token)
    handler = _Handler(_brain_source(script, brain), token, pace, services)
    listening = _Listening(handler, host, port, reuse_port=_reuse_port)
    await listening.start()
    handler.warm_up()
    return AsyncServer(listening, handler, host)


class Server:
    """The embedded server running in a background thread with its own event loop (works inside Jupyter).

    `workers=N` (N > 1) adds N - 1 worker processes listening on the same port (`voicelab.server.workers`):
    new connections are spread over the N processes, for servers with more sessions than one event loop
    carries. Each connection is served whole by one process.
    """

    def __init__(
        self,
        script: str | Path | dict[str, Any] | None = None,
        *,
        brain: BrainSource | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        pace: Pace = "realtime",
        services: EngineServices | None = None,
        workers: int = 1,
        _reuse_port: bool = False,
    ) -> None:
        _check(pace, token)
        source = _brain_source(script, brain)
        settings: dict[str, Any] = {"brain": source, "host": host, "token": token, "pace": pace}
        settings["services"] = services
        self.workers: int = check_workers(workers, settings)
        self._pool: WorkerPool | None = None
        reuse_port = _reuse_port or self.workers > 1
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._inner: AsyncServer | None = None

        async def start() -> None:
            self._inner = await serve_async(
                brain=source,
                host=host,
                port=port,
                token=token,
                pace=pace,
                services=services,
                _reuse_port=reuse_port,
            )

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(start())
            except BaseException as exc:  # reported to the caller of Server()
                self._failure = exc
                self._ready.set()
                return
            self._ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="voicelab-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            raise ConfigError(_listen_error(host, port, self._failure)) from self._failure
        assert self._inner is not None
        self.host: str = host
        self.port: int = self._inner.port
        self.pace: Pace = pace
        if self.workers > 1:
            try:
                self._pool = WorkerPool(self.workers - 1, {**settings, "port": self.port})
            except BaseException:
                self.close()
                raise

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of the worker processes (`workers=N` starts N - 1; this process serves too)."""
        return self._pool.pids if self._pool is not None else []

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{PATH}"

    @property
    def base_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1"

    @property
    def http_base_url(self) -> str:
        """`http://HOST:PORT/v1`, for `AsyncOpenAI(base_url=...)` (HTTP and WebSocket share the port)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def connections(self) -> int:
        """Open connections, over every process of the server."""
        here = self._inner.connections if self._inner else 0
        return here + (self._pool.connections() if self._pool is not None else 0)

    @property
    def closed(self) -> bool:
        return not self._thread.is_alive()

    def close(self) -> None:
        pool, self._pool = getattr(self, "_pool", None), None
        if pool is not None:
            pool.close()
        if self.closed or self._inner is None:
            return
        inner = self._inner
        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(inner.stop(), self._loop).result(timeout=STOP_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=STOP_TIMEOUT_S)
        self._loop.close()
        inner._handler.join_warm_up()

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "running"
        workers = f" workers={self.workers}" if self.workers > 1 else ""
        return f"<voicelab Server {self.url} pace={self.pace}{workers} {state}>"
