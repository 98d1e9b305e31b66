"""The server's own log (issue 8, items 7 and 10): no secret at any level, and a client that leaves before the
WebSocket upgrade is one INFO line, not a traceback."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import pytest
from server_helpers import FAKE_SERVICES, SCRIPT
from websockets.asyncio.client import connect

import voicelab
from voicelab.redact import redact_log_text
from voicelab.server import ScriptedBrain, Server
from voicelab.server.logs import ServerLogFilter

KEY = "sk-" + "proj-SERVERSIDESECRET42"
SERVER_LOGGERS = ("voicelab.server", "websockets.server", "uvicorn")
TOKEN = "plain-token-not-key-shaped"


@pytest.fixture(scope="module")
def server() -> Any:
    with Server(brain=ScriptedBrain(SCRIPT), pace="fast", token=TOKEN, services=FAKE_SERVICES) as srv:
        yield srv


def _formatted(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    return [formatter.format(r) for r in records]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"",
        b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: x\r\n",  # cut inside the headers
        b"GET /v1/realtime HTTP/1.1\r\n\r\n",  # no upgrade headers at all
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on a plain port
    ],
    ids=["nothing", "cut", "not-websocket", "tls"],
)
def test_a_client_gone_before_the_upgrade_is_one_info_line(
    server: Server, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="uvicorn.error")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(request_bytes)
    time.sleep(0.5)  # the server logs what it saw of the connection
    records = [r for r in caplog.records if r.name.startswith(SERVER_LOGGERS)]
    assert not [r for r in records if r.levelno >= logging.WARNING], _formatted(records)
    lines = _formatted(records)
    assert not any("Traceback" in line for line in lines), lines
    assert all("\n" not in r.getMessage() for r in records)


async def test_the_server_log_at_debug_never_shows_the_key(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="uvicorn.error")  # a user debugging the server in a notebook
    url = server.url + f"?model=gpt-realtime&api_key={KEY}&token={TOKEN}"
    async with connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}", "api-key": KEY}) as ws:
        await asyncio.wait_for(ws.recv(), 10)
        await ws.send(
            '{"type": "conversation.item.create", "item": {"type": "message", "role": "user", '
            f'"content": [{{"type": "input_text", "text": "my key is {KEY}"}}]}}}}'
        )
        await asyncio.wait_for(ws.recv(), 10)
    await asyncio.sleep(0.5)
    server_lines = _formatted([r for r in caplog.records if r.name.startswith(SERVER_LOGGERS)])
    assert any("authorization" in line.lower() for line in server_lines)  # the handshake was logged ...
    for line in server_lines:  # ... without a secret
        assert KEY not in line and TOKEN not in line, line


async def test_a_session_and_the_server_in_one_process_log_no_key(
    server: Server, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="uvicorn.error")
    async with voicelab.connect(
        None, url=server.url + f"?model=gpt-realtime&api_key={KEY}", api_key=TOKEN, record_dir=tmp_path / "r"
    ) as session:
        await session.send_text("hello")
        async for event in session:
            if event.type == "response_done":
                break
    for line in _formatted(caplog.records):
        assert KEY not in line and TOKEN not in line, line


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("< Authorization: Bearer abc.def-123", "abc.def-123"),
        ("< authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("< api-key: 0123456789abcdef", "0123456789abcdef"),
        ("< X-Api-Key: zzz-top", "zzz-top"),
        ("< Cookie: session=s3cr3t", "s3cr3t"),
        ("< GET /v1/realtime?model=m&api_key=k-123 HTTP/1.1", "k-123"),
        ("< GET /v1/realtime?token=t0k3n&model=m HTTP/1.1", "t0k3n"),
        ("< GET /v1/realtime?model=m&client_secret=ek_abc HTTP/1.1", "ek_abc"),
        ("text frame with sk-" + "live-ABCDEFG123 inside", "sk-" + "live-ABCDEFG123"),
    ],
)
def test_log_redaction_masks_credentials_it_was_not_told_about(text: str, secret: str) -> None:
    redacted = redact_log_text(text)
    assert secret not in redacted and "***" in redacted


def test_the_filter_redacts_arguments_and_tracebacks() -> None:
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "< %s: %s", ("Authorization", f"Bearer {KEY}"), None
    )
    try:
        raise RuntimeError(f"failed with {KEY}")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert ServerLogFilter().filter(record)
    text = logging.Formatter().format(record)
    assert KEY not in text and "Traceback" in text  # other errors keep their traceback, redacted


def test_the_servers_own_logger_is_protected_too(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="voicelab.server")
    try:
        raise ValueError(f"bad request to /v1/realtime?model=gpt-realtime&api_key={KEY}")
    except ValueError:
        logging.getLogger("voicelab.server").debug("realtime connection ended with an error", exc_info=True)
    (record,) = [r for r in caplog.records if r.name == "voicelab.server"]
    text = logging.Formatter().format(record)
    assert KEY not in text and "api_key=***" in text
