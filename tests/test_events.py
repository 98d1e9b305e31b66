"""App events: type strings, frozen, to_record without audio bytes."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import ClassVar

import pytest

from voicelab import events as ev
from voicelab.protocol import Item


def test_type_strings() -> None:
    expected = {
        ev.AudioChunk: "audio",
        ev.AudioEnd: "audio_end",
        ev.AudioInterrupted: "audio_interrupted",
        ev.TranscriptDelta: "transcript_delta",
        ev.TranscriptDone: "transcript_done",
        ev.HistoryAdded: "history_added",
        ev.HistoryUpdated: "history_updated",
        ev.ResponseStarted: "response_started",
        ev.ResponseDone: "response_done",
        ev.FunctionCall: "function_call",
        ev.SpeechStarted: "speech_started",
        ev.SpeechStopped: "speech_stopped",
        ev.InputAudioTimeout: "input_audio_timeout",
        ev.Error: "error",
        ev.RawServerEvent: "raw_server_event",
        ev.Disconnected: "disconnected",
    }
    for cls, name in expected.items():
        assert cls.type == name
        assert issubclass(cls, ev.AppEvent)


def test_frozen_and_no_audio_bytes_in_record() -> None:
    chunk = ev.AudioChunk(item_id="i", content_index=0, response_id="r", payload=b"\x00" * 480)
    with pytest.raises(dataclasses.FrozenInstanceError):
        chunk.item_id = "x"  # type: ignore[misc]
    assert chunk.duration_ms == 10.0
    assert chunk.to_record() == {
        "item_id": "i",
        "content_index": 0,
        "response_id": "r",
        "data": {"$bytes": 480},
    }
    assert "\\x00" not in repr(chunk)


def test_audio_chunk_decodes_base64_lazily() -> None:
    chunk = ev.AudioChunk("i", 0, "r", "AAECAwQF")  # base64 of 6 bytes, as received
    assert chunk.nbytes == 6 and chunk.duration_ms == 6 / 48
    assert chunk.to_record()["data"] == {"$bytes": 6}
    assert chunk.data == bytes([0, 1, 2, 3, 4, 5])
    assert chunk.payload == bytes([0, 1, 2, 3, 4, 5])  # decoded once, then kept


def test_records_are_json() -> None:
    item = Item(id="item_1", role="user", content=[{"type": "input_text", "text": "hi"}])
    records = [
        ev.ResponseDone("r", "cancelled", "turn_detected", {"total_tokens": 3}).to_record(),
        ev.HistoryAdded(item).to_record(),
        ev.HistoryUpdated((item,)).to_record(),
        ev.Error("boom", "server_error", fatal=True, raw={"type": "error"}).to_record(),
    ]
    json.dumps(records)
    assert records[0] == {
        "response_id": "r",
        "status": "cancelled",
        "reason": "turn_detected",
        "usage": {"total_tokens": 3},
    }
    assert records[1]["item"]["id"] == "item_1"
    assert records[2] == {"item_ids": ["item_1"]}
    assert records[3]["fatal"] is True


def test_subclassing_by_other_packages() -> None:
    @dataclass(frozen=True)
    class Handoff(ev.AppEvent):
        type: ClassVar[str] = "handoff"
        from_agent: str
        to_agent: str

    event = Handoff("a", "b")
    assert event.type == "handoff" and event.recorded
    assert event.to_record() == {"from_agent": "a", "to_agent": "b"}


def test_hot_path_constructors_build_the_same_events() -> None:
    chunk = ev.AudioChunk._new("i", 1, "r", "AAAA")
    assert chunk == ev.AudioChunk("i", 1, "r", "AAAA") and hash(chunk) == hash(
        ev.AudioChunk("i", 1, "r", "AAAA")
    )
    assert chunk.data == b"\x00\x00\x00" and chunk.duration_ms == 3 / 48
    with pytest.raises(dataclasses.FrozenInstanceError):
        chunk.item_id = "j"  # type: ignore[misc]
    delta = ev.TranscriptDelta._new("i", "assistant", "hi")
    assert delta == ev.TranscriptDelta("i", "assistant", "hi") and repr(delta) == repr(
        ev.TranscriptDelta("i", "assistant", "hi")
    )
