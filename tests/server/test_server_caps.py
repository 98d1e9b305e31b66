"""The input buffer is bounded: manual commit refuses appends past MAX_BUFFER_MS (nothing already buffered is
dropped), and a server-VAD turn is committed every MAX_TURN_MS of speech without losing any of it."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest
from server_helpers import started, types_of, validate

import voicelab.server.input_buffer as input_buffer


def b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode()


def tone(ms: int) -> bytes:
    return (0.3 * np.sin(np.arange(ms * 24) * 2 * np.pi * 220 / 24000) * 32767).astype("<i2").tobytes()


def send(engine: Any, event: dict[str, Any], now_ms: float = 0.0) -> list[dict[str, Any]]:
    return validate(engine.receive(json.dumps(event), now_ms))


def test_manual_commit_refuses_an_append_past_the_cap_and_keeps_what_it_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(input_buffer, "MAX_BUFFER_MS", 1000.0)
    engine = started()
    send(
        engine,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        },
    )
    kept = bytes(range(256)) * 150  # 38400 bytes = 800 ms
    assert send(engine, {"type": "input_audio_buffer.append", "audio": b64(kept)}) == []
    over = send(
        engine, {"type": "input_audio_buffer.append", "audio": b64(bytes(9600 * 2)), "event_id": "a2"}
    )
    assert types_of(over) == ["error"]
    error = over[0]["error"]
    assert (error["code"], error["param"], error["event_id"]) == ("input_audio_buffer_full", "audio", "a2")
    assert "commit" in error["message"] and "1 minutes" not in error["message"]
    fits = bytes(4800 * 2)  # 200 ms: exactly up to the cap
    assert send(engine, {"type": "input_audio_buffer.append", "audio": b64(fits)}) == []
    committed = send(engine, {"type": "input_audio_buffer.commit"})
    item_id = committed[0]["item_id"]
    retrieved = send(engine, {"type": "conversation.item.retrieve", "item_id": item_id})
    audio = base64.b64decode(retrieved[0]["item"]["content"][0]["audio"])
    assert audio == kept + fits  # every byte that was accepted, nothing of the refused append
    # after the commit the buffer takes audio again
    assert send(engine, {"type": "input_audio_buffer.append", "audio": b64(bytes(9600 * 2))}) == []


def test_an_endless_vad_turn_is_committed_in_pieces_without_losing_audio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(input_buffer, "MAX_TURN_MS", 1000.0)
    engine = started()
    session = {
        "type": "realtime",
        "audio": {"input": {"turn_detection": {"type": "server_vad", "prefix_padding_ms": 0}}},
    }
    send(engine, {"type": "session.update", "session": session})
    speech = tone(3500)
    pcm = bytes(200 * 48) + speech + bytes(600 * 48)
    events: list[dict[str, Any]] = []
    for offset in range(0, len(pcm), 1920):
        events += send(
            engine, {"type": "input_audio_buffer.append", "audio": b64(pcm[offset : offset + 1920])}
        )
        events += validate(engine.advance(0.0))
    turns = [e for e in events if e["type"].startswith("input_audio_buffer.speech")]
    kinds = types_of(turns)
    assert kinds == ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped"] * 4
    # each cut ends one turn and starts the next at the same ms
    for stopped, next_started in zip(turns[1:-1:2], turns[2::2], strict=True):
        assert stopped["audio_end_ms"] == next_started["audio_start_ms"]
        assert next_started["audio_start_ms"] - turns[turns.index(stopped) - 1]["audio_start_ms"] <= 1000 + 40
    # one response, for the turn that ended in silence; the cut turns are committed and not answered
    assert types_of(events).count("response.created") == 1
    last_stop = max(i for i, e in enumerate(events) if e["type"] == "input_audio_buffer.speech_stopped")
    assert types_of(events).index("response.created") > last_stop
    committed = [e["item_id"] for e in events if e["type"] == "input_audio_buffer.committed"]
    assert len(committed) == 4
    audio = b"".join(
        base64.b64decode(
            send(engine, {"type": "conversation.item.retrieve", "item_id": i})[0]["item"]["content"][0][
                "audio"
            ]
        )
        for i in committed
    )
    start_ms, end_ms = turns[0]["audio_start_ms"], turns[-1]["audio_end_ms"]
    assert audio == pcm[start_ms * 48 : end_ms * 48]  # the pieces add up to the whole turn, no gap
