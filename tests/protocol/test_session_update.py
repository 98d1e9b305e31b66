"""One session.update merge rule for the client and the embedded server (issue 8, thin core): the session the
client believes in after `Session.update(dict)` is the one the server reports in `session.updated`."""

from __future__ import annotations

from typing import Any

import pytest

import voicelab
from voicelab.events import RawServerEvent
from voicelab.protocol.session_update import merge_session_update
from voicelab.server.validation import merge_session

CURRENT: dict[str, Any] = {
    "type": "realtime",
    "instructions": "Be brief.",
    "tool_choice": {"type": "function", "name": "a"},
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "gpt-4o-transcribe", "language": "de"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"},
    },
}


@pytest.mark.parametrize(
    ("update", "path", "expected"),
    [
        (
            {"audio": {"output": {"voice": "ash"}}},
            ("audio", "output", "format"),
            {"type": "audio/pcm", "rate": 24000},
        ),
        ({"audio": {"output": {"voice": "ash"}}}, ("audio", "output", "voice"), "ash"),
        (
            {"audio": {"input": {"transcription": {"model": "whisper-1"}}}},
            ("audio", "input", "transcription"),
            {"model": "whisper-1"},
        ),
        ({"tool_choice": "auto"}, ("tool_choice",), "auto"),
        (
            {"tool_choice": {"type": "function", "name": "b"}},
            ("tool_choice",),
            {"type": "function", "name": "b"},
        ),
        ({"instructions": "Be kind."}, ("instructions",), "Be kind."),
        ({"audio": {"input": {"turn_detection": None}}}, ("audio", "input", "turn_detection"), None),
        (
            {"audio": {"input": None}},
            ("audio", "input", "transcription"),
            {"model": "gpt-4o-transcribe", "language": "de"},
        ),
    ],
)
def test_the_merge_rule(update: dict[str, Any], path: tuple[str, ...], expected: Any) -> None:
    merged = merge_session_update(CURRENT, update)
    value: Any = merged
    for key in path:
        value = value[key]
    assert value == expected
    assert CURRENT["audio"]["output"]["voice"] == "alloy"  # the input is not changed


def test_the_server_uses_the_same_rule_plus_its_defaults() -> None:
    update = {
        "audio": {
            "input": {"transcription": {"model": "whisper-1"}, "turn_detection": {"type": "server_vad"}}
        }
    }
    server = merge_session(CURRENT, update)
    client = merge_session_update(CURRENT, update)
    assert server["audio"]["input"]["transcription"] == client["audio"]["input"]["transcription"]
    assert server["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 200  # the server's default
    assert client["audio"]["input"]["turn_detection"] == {"type": "server_vad"}


async def test_client_and_server_agree_after_an_update(fast_server: Any) -> None:
    config = voicelab.SessionConfig(transcription={"model": "gpt-4o-transcribe", "language": "de"})
    async with voicelab.connect(config, url=fast_server.url, record_dir=False) as session:
        await session.update(
            {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}
        )
        updated: dict[str, Any] = {}
        async for event in session:
            if isinstance(event, RawServerEvent) and event.event.get("type") == "session.updated":
                updated = event.event["session"]
                if updated["audio"]["input"]["transcription"]["model"] == "whisper-1":
                    break
        client = session.config.to_session()
    assert client["audio"]["input"]["transcription"] == updated["audio"]["input"]["transcription"]
    assert client["audio"]["input"]["transcription"] == {"model": "whisper-1"}
