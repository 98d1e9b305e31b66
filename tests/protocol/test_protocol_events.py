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
    parse_server_dict,
    parse_server_event,
)
from voicelab.protocol.events import DELTA_EVENT_TYPES, decode_frame, is_valid_delta
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


def _delta(
    event_type: str = "response.output_audio_transcript.delta", **changes: object
) -> dict[str, object]:
    event: dict[str, object] = {
        "type": event_type,
        "event_id": "e",
        "response_id": "r",
        "item_id": "i",
        "output_index": 0,
        "content_index": 0,
        "delta": "AAAA" if event_type == "response.output_audio.delta" else "hi",
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not None}


@pytest.mark.parametrize("event_type", sorted(DELTA_EVENT_TYPES))
def test_cheap_delta_check_never_accepts_what_the_sdk_rejects(event_type: str) -> None:
    valid = _delta(event_type, obfuscation="xyz")  # unknown fields are allowed, as in the openai models
    assert is_valid_delta(valid) and not isinstance(parse_server_dict(valid), RawEvent)
    for change in (
        {"delta": None},
        {"item_id": None},
        {"event_id": 7},
        {"content_index": "0"},  # coercible: left to pydantic
        {"output_index": 1.0},
        {"response_id": None},
    ):
        assert not is_valid_delta(_delta(event_type, **change)), change


def test_decode_frame_is_json_loads() -> None:
    for text in ('{"type":"x","a":[1,2.5,null,true]}', ' {"type": "x"} \n', "[1]", '"s"', '{"k":"\\u00e9"}'):
        assert decode_frame(text) == json.loads(text)
    for bad in ("", "{", '{"a":1}x', "not json", '{"a": }'):
        with pytest.raises(ValueError):
            decode_frame(bad)


@pytest.mark.parametrize(
    "event",
    [
        {
            "type": "conversation.item.done",
            "event_id": "e",
            "previous_item_id": None,
            "item": {
                "id": "i",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "audio", "transcript": "hi"}, {"type": "text", "text": "hi"}],
            },
        },
        {
            "type": "response.content_part.added",
            "event_id": "e",
            "response_id": "r",
            "item_id": "i",
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "output_audio", "transcript": ""},
        },
        {
            "type": "response.done",
            "event_id": "e",
            "response": {
                "id": "r",
                "object": "realtime.response",
                "status": "completed",
                "output": [
                    {
                        "id": "i",
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "text", "text": "x"}],
                    }
                ],
            },
        },
    ],
    ids=["beta item content", "GA part", "beta content in response.done"],
)
def test_both_content_spellings_are_accepted(event: dict[str, object]) -> None:
    parsed = parse_server_dict(event)
    assert isinstance(parsed, RawEvent) and parsed.problem is None and parsed.data is event


def test_a_real_schema_problem_is_still_reported() -> None:
    event = _delta("response.content_part.added", delta=None)
    event["part"] = {"type": "video"}
    parsed = parse_server_dict(event)
    assert isinstance(parsed, RawEvent) and parsed.problem is not None and "part.type" in parsed.problem
