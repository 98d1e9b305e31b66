"""WebSocket transport: URLs, auth headers, failures that surface fast with a clear SessionError."""

from __future__ import annotations

import asyncio
import socket

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from voicelab.errors import SessionError
from voicelab.transports.websocket import WebSocketTransport, auth_headers, realtime_url


def test_realtime_url() -> None:
    assert realtime_url(None, "gpt-realtime") == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert realtime_url("ws://127.0.0.1:9/v1/realtime", "m") == "ws://127.0.0.1:9/v1/realtime?model=m"
    assert realtime_url("ws://h/v1/realtime?model=x", "m") == "ws://h/v1/realtime?model=x"
    assert (
        realtime_url("ws://h/v1/realtime?intent=transcription", "m")
        == "ws://h/v1/realtime?intent=transcription"
    )
    with pytest.raises(SessionError, match="not a WebSocket URL"):
        realtime_url("http://example.com/v1/realtime", "m")
    with pytest.raises(SessionError, match="not a WebSocket URL"):
        realtime_url("nonsense", "m")


def test_auth_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert auth_headers("ws://h/v1/realtime", "sk-abc", None) == {"Authorization": "Bearer sk-abc"}
    assert auth_headers("ws://h/v1/realtime", None, {"OpenAI-Beta": "realtime=v1"}) == {}
    assert auth_headers("ws://h/x", "k", {"api-key": "azure"}) == {"api-key": "azure"}
    with pytest.raises(SessionError, match="OPENAI_API_KEY"):
        auth_headers("wss://api.openai.com/v1/realtime?model=m", None, None)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert auth_headers("wss://api.openai.com/v1/realtime", None, None) == {"Authorization": "Bearer sk-env"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_refused_connection() -> None:
    url = f"ws://127.0.0.1:{_free_port()}/v1/realtime?model=m"
    with pytest.raises(SessionError, match=r"cannot connect to .*server is running"):
        await WebSocketTransport.connect(url, open_timeout=5)


async def test_silent_server_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(SessionError, match=r"no WebSocket handshake .* within 0\.3 s"):
            await WebSocketTransport.connect(f"ws://127.0.0.1:{port}/v1/realtime", open_timeout=0.3)
    finally:
        server.close()


async def test_handshake_rejection_and_round_trip() -> None:
    seen: dict[str, Headers] = {}

    def check(connection: ServerConnection, request: Request) -> Response | None:
        seen["headers"] = request.headers
        if request.headers.get("Authorization") != "Bearer sk-good":
            return connection.respond(401, "bad key\n")
        return None

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, process_request=check) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/v1/realtime?model=m"
        with pytest.raises(SessionError, match=r"HTTP 401.*API key"):
            await WebSocketTransport.connect(url, auth_headers(url, "sk-bad", None))
        transport = await WebSocketTransport.connect(url, auth_headers(url, "sk-good", None))
        assert "OpenAI-Beta" not in seen["headers"]
        await transport.send('{"type":"x"}')
        assert await transport.recv() == '{"type":"x"}'
        assert "sk-good" not in repr(transport)
        await transport.close()
        with pytest.raises(SessionError, match="connection is closed"):
            await transport.send("{}")
