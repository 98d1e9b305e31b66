"""A thin WebSocket client moving Realtime text frames (websockets' asyncio API, versions 15 and 16)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.uri import parse_uri

from voicelab.checks import api_key_text
from voicelab.errors import SessionError
from voicelab.redact import SECRET_HEADERS, SECRET_QUERY_KEYS, redact_text, redact_url

OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"
MAX_FRAME_BYTES = 32 * 1024 * 1024  # an append may carry up to 15 MiB of base64


_URL_HINT = (
    "use ws://HOST:PORT/v1/realtime (e.g. a voicelab.serve() server's .url; an IPv6 host in brackets: "
    "ws://[::1]:PORT/v1/realtime) or leave url=None for the OpenAI API"
)


def realtime_url(url: str | None, model: str) -> str:
    """The URL to open: OpenAI's when None; `model=` appended when there is no model/intent/call_id.
    Raises SessionError naming the problem for anything that is not a usable ws:// or wss:// URL."""
    if url is None:
        url = OPENAI_REALTIME_URL
    if not isinstance(url, str):
        raise SessionError(f"url must be a str, got {type(url).__name__}; {_URL_HINT}.")
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
        host = parts.hostname
    except ValueError as exc:
        raise SessionError(f"{shown!r} is not a valid WebSocket URL ({exc}); {_URL_HINT}.") from None
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise SessionError(f"{shown!r} is not a WebSocket URL; {_URL_HINT}.")
    if not host or (":" in host and not parts.netloc.startswith("[")) or port == 0:
        problem = "no host" if not host else "port 0" if port == 0 else "an IPv6 host without brackets"
        raise SessionError(f"{shown!r} is not a valid WebSocket URL ({problem}); {_URL_HINT}.")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(key in ("model", "intent", "call_id") for key, _ in query):
        query.append(("model", model))
    full = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
    try:
        parse_uri(full)
    except (InvalidURI, ValueError) as exc:
        raise SessionError(f"{shown!r} is not a valid WebSocket URL ({exc}); {_URL_HINT}.") from None
    return full


def is_openai_url(url: str) -> bool:
    return urlsplit(url).hostname in ("api.openai.com",)


def auth_headers(url: str, api_key: str | None, headers: Mapping[str, str] | None) -> dict[str, str]:
    """Bearer auth (never an OpenAI-Beta header). Raises SessionError when the OpenAI API needs a key, and
    ConfigError when the key it would use from OPENAI_API_KEY cannot be carried in a header."""
    out = {k: v for k, v in (headers or {}).items() if k.lower() != "openai-beta"}
    if not any(k.lower() in ("authorization", "api-key") for k in out):
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if key and api_key is None and is_openai_url(url):  # a key from the environment, for the real API
            api_key_text(key, "OPENAI_API_KEY", fix="set it to the key alone (export OPENAI_API_KEY=sk-...)")
        if key:
            out["Authorization"] = f"Bearer {key}"
        elif is_openai_url(url):
            raise SessionError(
                "no API key for the OpenAI Realtime API; set OPENAI_API_KEY, pass api_key=..., or pass "
                "url=voicelab.serve().url to run offline against the embedded server."
            )
    return out


class _RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs request lines and headers at DEBUG: mask secrets before they reach any handler."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__(logging.getLogger("websockets.client"), {})
        self.secrets = secrets

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            kwargs.pop("stacklevel", None)
            self.logger.log(level, "%s", redact_text(text, self.secrets), **kwargs)


class WebSocketTransport:
    """Moves text frames; knows nothing of events. Create with `await WebSocketTransport.connect(...)`."""

    def __init__(self, connection: ClientConnection, url: str) -> None:
        self._connection = connection
        self.url = url

    @classmethod
    async def connect(
        cls, url: str, headers: Mapping[str, str] | None = None, open_timeout: float = 10.0
    ) -> WebSocketTransport:
        """Open the connection; any failure is a SessionError naming the problem, within `open_timeout`."""
        shown = redact_url(url)
        try:
            connection = await asyncio.wait_for(
                websockets.connect(
                    url,
                    additional_headers=dict(headers or {}),
                    open_timeout=open_timeout,
                    max_size=MAX_FRAME_BYTES,
                    ping_interval=20,
                    ping_timeout=20,
                    compression="deflate",
                    logger=_RedactingLogger(_secrets_of(url, headers)),
                ),
                timeout=open_timeout + 1.0,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            hint = (
                "check the API key (OPENAI_API_KEY or api_key=)"
                if status in (401, 403)
                else "check the URL path (…/v1/realtime)"
                if status == 404
                else "check the URL and the server"
            )
            raise SessionError(
                f"the server at {shown} rejected the WebSocket handshake (HTTP {status}); {hint}."
            ) from None
        except InvalidURI:
            raise SessionError(
                f"{shown!r} is not a valid WebSocket URL; use ws://HOST:PORT/v1/realtime."
            ) from None
        except (TimeoutError, asyncio.TimeoutError):
            raise SessionError(
                f"no WebSocket handshake from {shown} within {open_timeout:g} s; check that the server is "
                "running and reachable, or raise open_timeout."
            ) from None
        except InvalidHandshake as exc:
            raise SessionError(
                f"the WebSocket handshake with {shown} failed ({exc}); check the URL."
            ) from None
        except OSError as exc:
            raise SessionError(
                f"cannot connect to {shown} ({exc.strerror or exc}); check that the server is running "
                "(e.g. voicelab.serve()) and that host and port are right."
            ) from None
        return cls(connection, url)

    async def send(self, text: str) -> None:
        """Send one text frame; SessionError if the connection is closed."""
        try:
            await self._connection.send(text)
        except ConnectionClosed as exc:
            raise SessionError(
                f"cannot send: the connection is closed ({_close_text(exc)}); reconnect."
            ) from None

    async def recv(self) -> str:
        """The next text frame; raises ConnectionClosed (websockets) when the peer closes."""
        frame = await self._connection.recv()
        return frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace")

    @property
    def recv_frame(self) -> Callable[[], Awaitable[str | bytes]]:
        """The connection's own receive: the next frame as sent (str for text, bytes for binary). The
        session's reader awaits it directly, saving a coroutine per frame; raises ConnectionClosed."""
        return self._connection.recv

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._connection.close(code, reason)

    @property
    def close_code(self) -> int | None:
        return self._connection.close_code

    @property
    def close_reason(self) -> str | None:
        return self._connection.close_reason

    def __repr__(self) -> str:
        return f"WebSocketTransport(url={redact_url(self.url)!r})"


def _secrets_of(url: str, headers: Mapping[str, str] | None) -> tuple[str, ...]:
    found = [v for k, v in (headers or {}).items() if k.lower() in SECRET_HEADERS]
    found += [v.split(" ", 1)[-1] for v in found if " " in v]  # the bare token of "Bearer <token>"
    found += [v for k, v in parse_qsl(urlsplit(url).query) if k.lower() in SECRET_QUERY_KEYS]
    return tuple(s for s in found if s)


def _close_text(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "no close frame"
    return f"code {frame.code}" + (f", {frame.reason}" if frame.reason else "")


__all__ = ["OPENAI_REALTIME_URL", "WebSocketTransport", "auth_headers", "is_openai_url", "realtime_url"]
