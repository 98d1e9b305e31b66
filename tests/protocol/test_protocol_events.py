"""Parsing server events and building client events."""

from __future__ import annotations

import json

import pytest
from openai.types.realtime import ResponseAudioDeltaEvent, SessionCreatedEvent

from voicelab.errors import LocalProtocolError, RemoteProtocolError
from voicelab.protocol import (
    CLIENT_EVENT_TYPES,
    SERVER_EVENT_TYPES,
    RawEvent,
    client_event,
    dumps_event,
    parse_server_event,
)
from voicelab.protocol.samples import audio_turn, function_call_turn, session_created, text_turn


def test_event_type_sets_match_the_sdk_unions() -> None:
    assert len(SERVER_EVENT_TYPES) == 46
    assert len(CLIENT_EVENT_TYPES) == 11
    assert "response.output_audio.delta" in SERVER_EVENT_TYPES
    assert "input_audio_buffer.append" in CLIENT_EVENT_TYPES


@pytest.mark.parametrize(
    "sequence",
    [text_turn(), audio_turn(b"\x01\x00" * 4800), function_call_turn(), [session_created()]],
    ids=["text", "audio", "function_call", "session"],
)
def test_every_sample_event_validates_against_openai_types(sequence: list[dict]) -> None:
    for event in sequence:
        parsed = parse_server_event(json.dumps(event))
        assert not isinstance(parsed, RawEvent), (event["type"], getattr(parsed, "problem", None))
        assert parsed.type == event["type"]


def test_extra_fields_are_kept() -> None:
    text = json.dumps(
        {
            "type": "response.output_audio.delta",
            "event_id": "event_1",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "AAAA",
            "obfuscation": "xyz",
        }
    )
    parsed = parse_server_event(text)
    assert isinstance(parsed, ResponseAudioDeltaEvent)
    assert parsed.model_extra == {"obfuscation": "xyz"}


def test_unknown_type_is_raw_and_never_raises() -> None:
    parsed = parse_server_event('{"type": "future.event", "x": 1}')
    assert parsed == RawEvent("future.event", {"type": "future.event", "x": 1}, None)


def test_invalid_known_type_is_raw_with_the_problem() -> None:
    parsed = parse_server_event('{"type": "session.created", "event_id": "e"}')
    assert isinstance(parsed, RawEvent)
    assert parsed.type == "session.created"
    assert parsed.problem is not None and "session" in parsed.problem


def test_session_created_parses() -> None:
    parsed = parse_server_event(json.dumps(session_created()))
    assert isinstance(parsed, SessionCreatedEvent)


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"no_type": 1}', '{"type": 3}', b"\xff\xfe"])
def test_malformed_frames_raise_remote_protocol_error(text: str | bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="Realtime"):
        parse_server_event(text)


def test_client_event_validates_and_drops_none() -> None:
    event = client_event("conversation.item.truncate", item_id="item_1", content_index=0, audio_end_ms=1500)
    assert event["type"] == "conversation.item.truncate"
    assert event["audio_end_ms"] == 1500
    assert event["event_id"].startswith("vl_")
    event = client_event("response.cancel", response_id=None)
    assert set(event) == {"type", "event_id"}
    assert json.loads(dumps_event(event)) == event


def test_client_event_rejects_unknown_type_and_bad_fields() -> None:
    with pytest.raises(LocalProtocolError, match="not a Realtime GA client event type"):
        client_event("session.close")
    with pytest.raises(LocalProtocolError, match="audio_end_ms"):
        client_event("conversation.item.truncate", item_id="i", content_index=0, audio_end_ms="soon")
    with pytest.raises(LocalProtocolError, match="session"):
        client_event("session.update", session={"type": "nope"})
