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
from voicelab.server.logs import LOGGER_NAME, ServerLogFilter

KEY = "sk-proj-SERVERSIDESECRET42"
TOKEN = "plain-token-not-key-shaped"


@pytest.fixture(scope="module")
def server() -> Any:
    with Server(brain=ScriptedBrain(SCRIPT), pace="fast", token=TOKEN, services=FAKE_SERVICES) as srv:
        yield srv


def _wait_for(predicate: Any, seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not predicate() and time.monotonic() < end:
        time.sleep(0.02)


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
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(request_bytes)
    _wait_for(lambda: any("handshake" in r.getMessage() for r in caplog.records if r.name == LOGGER_NAME))
    records = [r for r in caplog.records if r.name.startswith(("voicelab.server", "websockets.server"))]
    assert records, "the server logged nothing"
    assert not [r for r in records if r.levelno >= logging.WARNING], _formatted(records)
    lines = _formatted(records)
    assert not any("Traceback" in line for line in lines), lines
    if request_bytes != b"GET /v1/realtime HTTP/1.1\r\n\r\n":
        failed = [r for r in records if "opening handshake failed" in r.getMessage()]
        assert len(failed) == 1 and "\n" not in failed[0].getMessage()


async def test_the_server_log_at_debug_never_shows_the_key(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = server.url + f"?model=gpt-realtime&api_key={KEY}&token={TOKEN}"
    async with connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}", "api-key": KEY}) as ws:
        await asyncio.wait_for(ws.recv(), 10)
        await ws.send(
            '{"type": "conversation.item.create", "item": {"type": "message", "role": "user", '
            f'"content": [{{"type": "input_text", "text": "my key is {KEY}"}}]}}}}'
        )
        await asyncio.wait_for(ws.recv(), 10)
    _wait_for(
        lambda: any("connection closed" in r.getMessage() for r in caplog.records if r.name == LOGGER_NAME)
    )
    server_lines = _formatted([r for r in caplog.records if r.name.startswith("voicelab")])
    assert any("Authorization" in line for line in server_lines)  # the handshake was logged ...
    for line in server_lines:  # ... without a secret
        assert KEY not in line and TOKEN not in line, line


async def test_a_session_and_the_server_in_one_process_log_no_key(
    server: Server, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    caplog.set_level(logging.DEBUG)
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
        ("text frame with sk-live-ABCDEFG123 inside", "sk-live-ABCDEFG123"),
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
