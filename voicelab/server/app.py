"""The embedded server on a socket: a `websockets` asyncio server that drives one `Engine` per connection.

Path `/v1/realtime?model=...`. Like the real API, handshake problems are reported after the
upgrade: an `error`
event then a close frame (3000 for auth, 4000 for the request shape; reason "<error.type>.<error.code>").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
from collections.abc import Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server as _WsServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from voicelab.audio.vad import prewarm_silero
from voicelab.errors import ConfigError
from voicelab.server.brains import Brain, ScriptedBrain
from voicelab.server.engine import Engine
from voicelab.server.ids import IdMaker
from voicelab.server.logs import server_logger
from voicelab.server.responses import Pace
from voicelab.server.services import EngineServices

logger = logging.getLogger("voicelab.server")
PATH = "/v1/realtime"
PING_INTERVAL_S = 20.0
MAX_FRAME_BYTES = 16 * 1024 * 1024  # the real API takes up to 15 MiB of audio per append
SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "data" / "scripts"
DEFAULT_SCRIPT = "returns_desk"

BrainSource = Brain | Callable[[], Brain]


def bundled_scripts() -> list[str]:
    return sorted(p.stem for p in SCRIPTS_DIR.glob("*.yaml"))


def resolve_script(script: str | Path | dict[str, Any] | None) -> ScriptedBrain:
    """A path, a bundled script name (e.g. "returns_desk"), a parsed dict, or None for the default script."""
    if script is None:
        script = DEFAULT_SCRIPT
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


def _handshake_error(code: str | None, message: str, kind: str = "invalid_request_error") -> str:
    error = {"type": kind, "code": code, "message": message, "param": None, "event_id": None}
    return json.dumps({"event_id": IdMaker().event(), "type": "error", "error": error})


class _Handler:
    """Accepts connections and runs one engine per connection."""

    def __init__(
        self, brain: BrainSource, token: str | None, pace: Pace, services: EngineServices | None = None
    ) -> None:
        self._brain = brain
        self._token = token
        self.pace: Pace = pace
        self.services = _cached(services or EngineServices.default())
        self.connections = 0
        prewarm_silero()  # the VAD model, loaded once for every connection, before the first one needs it
        if hasattr(brain, "reply") and brain.phrases:  # type: ignore[union-attr]
            phrases = list(brain.phrases)  # type: ignore[union-attr]
            threading.Thread(target=self._warm, args=(phrases,), daemon=True).start()

    def _warm(self, phrases: list[str]) -> None:
        """Build the transcription grammar before the first turn needs it."""
        with contextlib.suppress(Exception):  # a missing transcriber shows up as transcription.failed later
            self.services.transcriber(phrases)

    def _new_brain(self) -> Brain:
        brain = self._brain
        if hasattr(brain, "reply"):
            return brain  # type: ignore[return-value]
        return brain()  # type: ignore[operator]

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path.rstrip("/") != PATH:
            return connection.respond(
                HTTPStatus.NOT_FOUND, f"voicelab embedded server: use ws://HOST:PORT{PATH}\n"
            )
        return None

    async def _refuse(self, ws: ServerConnection, close_code: int, code: str | None, message: str) -> None:
        await ws.send(_handshake_error(code, message))
        await ws.close(close_code, f"invalid_request_error.{code}" if code else "invalid_request_error")

    async def __call__(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        headers = request.headers
        query = parse_qs(urlsplit(request.path).query)
        if self._token is not None:
            auth = headers.get("Authorization")
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
        if headers.get("OpenAI-Beta") is not None:
            await self._refuse(
                ws,
                4000,
                "beta_api_shape_disabled",
                "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API "
                "(drop the OpenAI-Beta header).",
            )
            return
        model = (query.get("model") or [""])[0]
        if not model:
            await self._refuse(
                ws,
                4000,
                "missing_model",
                "Missing required parameter: 'model'. Connect to /v1/realtime?model=...",
            )
            return
        await self._run(ws, model)

    async def _run(self, ws: ServerConnection, model: str) -> None:
        loop = asyncio.get_running_loop()
        origin = loop.time()

        def now_ms() -> float:
            return (loop.time() - origin) * 1000.0

        engine = Engine(self._new_brain(), model=model, pace=self.pace, services=self.services)
        self.connections += 1
        try:
            await self._send(ws, engine.start(now_ms()))
            while engine.closed is None:
                deadline = engine.next_deadline()
                try:
                    if deadline is None:
                        frame = await ws.recv()
                    else:
                        frame = await asyncio.wait_for(ws.recv(), max(0.0, deadline - now_ms()) / 1000.0)
                except asyncio.TimeoutError:
                    await self._send(ws, engine.advance(now_ms()))
                    continue
                # The engine runs on the loop: a frame's work (VAD over one chunk, a cached or short TTS
                # call, handing audio to the transcriber) is well under a millisecond or two, far less
                # than a thread hop under the GIL costs other connections. Decoding that takes longer
                # belongs in a worker process (EngineServices.pooled()).
                await self._send(ws, engine.receive(frame, now_ms()))
                due = engine.next_deadline()
                if due is not None and due <= now_ms():
                    await self._send(ws, engine.advance(now_ms()))
            await ws.close(*engine.closed)
        except ConnectionClosed:
            pass
        finally:
            self.connections -= 1

    @staticmethod
    async def _send(ws: ServerConnection, events: Sequence[dict[str, Any]]) -> None:
        for event in events:
            await ws.send(json.dumps(event))


class AsyncServer:
    """The embedded server inside the caller's running event loop (`await serve_async(...)`)."""

    def __init__(self, ws_server: _WsServer, handler: _Handler, host: str) -> None:
        self._ws_server = ws_server
        self._handler = handler
        self.host = host
        self.port: int = ws_server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{PATH}"

    @property
    def base_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1"

    @property
    def connections(self) -> int:
        return self._handler.connections

    async def aclose(self) -> None:
        self._ws_server.close()
        await self._ws_server.wait_closed()

    async def __aenter__(self) -> AsyncServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<voicelab AsyncServer {self.url} pace={self._handler.pace}>"


def _brain_source(script: str | Path | dict[str, Any] | None, brain: BrainSource | None) -> BrainSource:
    if brain is not None and script is not None:
        raise ConfigError("pass either script= or brain= to serve(), not both")
    return brain if brain is not None else resolve_script(script)


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
) -> AsyncServer:
    """Start the embedded server in the running event loop."""
    _check(pace, token)
    handler = _Handler(_brain_source(script, brain), token, pace, services)
    ws_server = await serve(
        handler,
        host,
        port,
        process_request=handler.process_request,
        ping_interval=PING_INTERVAL_S,
        ping_timeout=PING_INTERVAL_S,
        max_size=MAX_FRAME_BYTES,
        logger=server_logger(),  # redacted; a client gone before the upgrade is one line, not a traceback
    )
    return AsyncServer(ws_server, handler, host)


class Server:
    """The embedded server running in a background thread with its own event loop (works inside Jupyter)."""

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
    ) -> None:
        _check(pace, token)
        source = _brain_source(script, brain)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._inner: AsyncServer | None = None

        async def start() -> None:
            self._inner = await serve_async(
                brain=source, host=host, port=port, token=token, pace=pace, services=services
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
        self.host = host
        self.port = self._inner.port
        self.pace = pace

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{PATH}"

    @property
    def base_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1"

    @property
    def connections(self) -> int:
        return self._inner.connections if self._inner else 0

    @property
    def closed(self) -> bool:
        return not self._thread.is_alive()

    def close(self) -> None:
        if self.closed or self._inner is None:
            return
        inner = self._inner
        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(inner.aclose(), self._loop).result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=15)
        self._loop.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "running"
        return f"<voicelab Server {self.url} pace={self.pace} {state}>"
