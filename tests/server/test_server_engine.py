"""The sans-I/O engine: GA event order, session rules, audio buffer and VAD, responses, errors."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import numpy as np
import pytest
from server_helpers import SCRIPT, make_engine, send, started, types_of, validate

from voicelab.errors import ArgumentError, ConfigError
from voicelab.server.brains import EchoBrain, ScriptedBrain
from voicelab.server.engine import Engine
from voicelab.server.responses import Timing
from voicelab.server.services import EngineServices
from voicelab.server.validation import DEFAULT_INSTRUCTIONS

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def user_text(text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    }


def tone(ms: int, amplitude: float = 0.3) -> bytes:
    n = ms * 24
    samples = (amplitude * np.sin(np.arange(n) * 2 * np.pi * 220 / 24000) * 32767).astype("<i2")
    return samples.tobytes()


def silence(ms: int) -> bytes:
    return bytes(ms * 48)


def append(engine: Engine, pcm: bytes, now_ms: float = 0.0, chunk_ms: int = 100) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    step = chunk_ms * 48
    for offset in range(0, len(pcm), step):
        audio = base64.b64encode(pcm[offset : offset + step]).decode()
        out += send(engine, {"type": "input_audio_buffer.append", "audio": audio}, now_ms)
        out += validate(engine.advance(now_ms))  # deferred turn work: transcription and the response
    return out


AUDIO_TURN = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
]
AUDIO_TAIL = [
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "conversation.item.done",
    "response.output_item.done",
    "response.done",
    "rate_limits.updated",
]


def strip_deltas(names: list[str]) -> list[str]:
    return [n for n in names if not n.endswith(".delta")]


# --- session ------------------------------------------------------------------------------------------


def test_session_created_has_the_observed_ga_defaults() -> None:
    engine = make_engine(model="gpt-realtime-mini", wall_clock=lambda: 1000.0)
    (event,) = validate(engine.start(0.0))
    session = event["session"]
    assert event["type"] == "session.created"
    assert re.fullmatch(r"event_[A-Za-z0-9]{21}", event["event_id"])
    assert re.fullmatch(r"sess_[A-Za-z0-9]{21}", session["id"])
    assert session["model"] == "gpt-realtime-mini"
    assert session["expires_at"] == 4600
    assert session["instructions"] == DEFAULT_INSTRUCTIONS
    assert "not a language model" in session["instructions"]
    assert session["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }
    assert session["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "alloy",
        "speed": 1.0,
    }
    assert (session["output_modalities"], session["tool_choice"], session["max_output_tokens"]) == (
        ["audio"],
        "auto",
        "inf",
    )


def test_session_update_returns_the_full_effective_config() -> None:
    engine = started()
    (event,) = send(
        engine,
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}},
            },
        },
    )
    assert event["type"] == "session.updated"
    session = event["session"]
    assert session["instructions"] == "Be brief."
    assert session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
    assert session["audio"]["input"]["turn_detection"]["prefix_padding_ms"] == 300
    assert session["audio"]["output"]["voice"] == "alloy"
    assert session["tool_choice"] == "auto"


def error_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert types_of(events) == ["error"], types_of(events)
    return events[0]["error"]


def test_unknown_parameters_are_rejected_with_their_path_and_the_update_is_discarded() -> None:
    engine = started()
    cases = {
        "session.bogus_field": {"type": "realtime", "instructions": "changed", "bogus_field": 1},
        "session.audio.input.turn_detection.bogus": {
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "semantic_vad", "bogus": 1}}},
        },
        "session.tools[0].strict": {"type": "realtime", "tools": [{**WEATHER_TOOL, "strict": True}]},
        "session.temperature": {"type": "realtime", "temperature": 0.8},
    }
    for path, session in cases.items():
        error = error_of(send(engine, {"type": "session.update", "event_id": "evt_1", "session": session}))
        assert error == {
            "type": "invalid_request_error",
            "code": "unknown_parameter",
            "message": f"Unknown parameter: '{path}'.",
            "param": path,
            "event_id": "evt_1",
        }
    assert engine.session["instructions"] == DEFAULT_INSTRUCTIONS


def test_bad_values_and_missing_type() -> None:
    engine = started()
    error = error_of(send(engine, {"type": "session.update", "session": {"instructions": "x"}}))
    assert (error["code"], error["param"]) == ("missing_required_parameter", "session.type")
    error = error_of(
        send(
            engine,
            {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["video"]}},
        )
    )
    assert (error["code"], error["param"]) == ("invalid_value", "session.output_modalities[0]")
    voice = {"type": "realtime", "audio": {"output": {"voice": "nobody"}}}
    error = error_of(send(engine, {"type": "session.update", "session": voice}))
    assert (error["code"], error["param"]) == ("invalid_value", "session.audio.output.voice")
    rate = {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}
    error = error_of(send(engine, {"type": "session.update", "session": rate}))
    assert (error["code"], error["param"]) == ("integer_below_min_value", "session.audio.input.format.rate")
    error = error_of(send(engine, {"type": "session.update", "session": {"type": "transcription"}}))
    assert (error["code"], error["param"]) == ("invalid_value", "session.type")


def test_voice_cannot_change_after_audio_was_produced() -> None:
    engine = started()
    coral = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"output": {"voice": "coral"}}},
    }
    assert types_of(send(engine, coral)) == ["session.updated"]
    send(engine, user_text("hello"))
    send(engine, {"type": "response.create"})
    marin = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"output": {"voice": "marin"}}},
    }
    error = error_of(send(engine, marin))
    assert error["code"] == "cannot_update_voice"
    assert engine.session["audio"]["output"]["voice"] == "coral"


# --- responses ----------------------------------------------------------------------------------------


def test_text_turn_follows_the_observed_ga_order() -> None:
    engine = started()
    events = send(engine, user_text("hello"))
    assert types_of(events) == ["conversation.item.added", "conversation.item.done"]
    user_id = events[0]["item"]["id"]
    assert re.fullmatch(r"item_[A-Za-z0-9]{21}", user_id)
    events = send(engine, {"type": "response.create", "response": {"output_modalities": ["text"]}})
    assert types_of(events) == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 5,
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    by_type = {e["type"]: e for e in events}
    assert (
        "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        == "Hi, how can I help?"
    )
    assert by_type["conversation.item.added"]["previous_item_id"] == user_id
    assert by_type["response.output_text.done"]["text"] == "Hi, how can I help?"
    done = by_type["response.done"]["response"]
    assert re.fullmatch(r"resp_[A-Za-z0-9]{21}", done["id"])
    assert done["status"] == "completed"
    assert done["output"][0]["content"] == [{"type": "output_text", "text": "Hi, how can I help?"}]
    assert done["usage"]["output_tokens"] == 5  # 19 characters / 4, rounded up
    assert re.fullmatch(r"conv_[A-Za-z0-9]{21}", done["conversation_id"])


def test_audio_response_streams_interleaved_deltas_in_ga_order() -> None:
    engine = started()
    send(engine, user_text("long"))
    events = send(engine, {"type": "response.create"})
    names = types_of(events)
    assert strip_deltas(names) == AUDIO_TURN + AUDIO_TAIL
    audio = [e for e in events if e["type"] == "response.output_audio.delta"]
    transcript = [e for e in events if e["type"] == "response.output_audio_transcript.delta"]
    # 10 words x 100 ms of audio in 100 ms chunks; transcript deltas run ahead of the audio
    assert len(audio) == 10
    assert all(len(base64.b64decode(e["delta"])) == 4800 for e in audio)
    assert "".join(e["delta"] for e in transcript) == "one two three four five six seven eight nine ten"
    assert names.index("response.output_audio_transcript.delta") < names.index("response.output_audio.delta")
    last_transcript = max(i for i, n in enumerate(names) if n == "response.output_audio_transcript.delta")
    last_audio = max(i for i, n in enumerate(names) if n == "response.output_audio.delta")
    assert last_transcript < last_audio
    item = events[names.index("conversation.item.done")]["item"]
    assert item["content"] == [
        {"type": "output_audio", "transcript": "one two three four five six seven eight nine ten"}
    ]
    assert events[names.index("response.content_part.added")]["part"] == {"type": "audio", "transcript": ""}


def test_realtime_pace_releases_audio_at_its_real_time_rate() -> None:
    engine = make_engine(
        pace="realtime", timing=Timing(pace="realtime", audio_lead_ms=300, transcript_lead_ms=300)
    )
    validate(engine.start(0.0))
    send(engine, user_text("long"), 0.0)
    first = send(engine, {"type": "response.create"}, 1000.0)
    # at once: the headers and the audio within the 300 ms lead (chunks at 0, 100, 200, 300 ms)
    assert types_of(first).count("response.output_audio.delta") == 4
    assert "response.done" not in types_of(first)
    assert engine.next_deadline() == 1100.0
    assert types_of(validate(engine.advance(1099.0))).count("response.output_audio.delta") == 0
    assert types_of(validate(engine.advance(1100.0))).count("response.output_audio.delta") == 1
    rest = validate(engine.advance(1600.0))
    assert types_of(rest).count("response.output_audio.delta") == 5
    assert "response.done" in types_of(rest)
    assert engine.next_deadline() is None


def test_function_call_round_trip() -> None:
    engine = started()
    send(engine, {"type": "session.update", "session": {"type": "realtime", "tools": [WEATHER_TOOL]}})
    send(engine, user_text("what is the weather in Paris"))
    events = send(engine, {"type": "response.create"})
    assert strip_deltas(types_of(events)) == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.function_call_arguments.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    added = events[1]["item"]
    assert (added["type"], added["status"], added["name"], added["arguments"]) == (
        "function_call",
        "in_progress",
        "get_weather",
        "",
    )
    assert re.fullmatch(r"call_[A-Za-z0-9]{16}", added["call_id"])
    deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert "".join(e["delta"] for e in deltas) == '{"city": "Paris"}'
    assert all(e["call_id"] == added["call_id"] for e in deltas)
    arguments_done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert (arguments_done["name"], arguments_done["arguments"]) == ("get_weather", '{"city": "Paris"}')
    done = next(e for e in events if e["type"] == "response.output_item.done")["item"]
    assert (done["status"], done["arguments"]) == ("completed", '{"city": "Paris"}')
    output = {"type": "function_call_output", "call_id": added["call_id"], "output": '{"sky": "sunny"}'}
    assert types_of(send(engine, {"type": "conversation.item.create", "item": output})) == [
        "conversation.item.added",
        "conversation.item.done",
    ]
    events = send(engine, {"type": "response.create"})
    assert events[-3]["type"] == "response.output_item.done"
    assert events[-3]["item"]["content"][0]["transcript"] == "In Paris it is sunny."


def test_call_rules_apply_only_when_the_tool_is_declared() -> None:
    engine = started()
    send(engine, user_text("what is the weather in Paris"))
    events = send(engine, {"type": "response.create", "response": {"output_modalities": ["text"]}})
    assert events[-3]["item"]["content"][0]["text"] == "No rule for that."


def test_one_active_response_and_cancel() -> None:
    engine = make_engine(pace="realtime")
    validate(engine.start(0.0))
    send(engine, user_text("long"))
    send(engine, {"type": "response.create"}, 0.0)
    error = error_of(send(engine, {"type": "response.create", "event_id": "c2"}, 10.0))
    assert (error["code"], error["event_id"]) == ("conversation_already_has_active_response", "c2")
    events = send(engine, {"type": "response.cancel"}, 20.0)
    assert types_of(events) == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    done = events[5]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["output"][0]["status"] == "incomplete"
    error = error_of(send(engine, {"type": "response.cancel"}, 30.0))
    assert error["code"] == "response_cancel_not_active"
    assert engine.next_deadline() is None


def test_out_of_band_response_does_not_touch_the_conversation() -> None:
    engine = started()
    send(engine, user_text("hello"))
    before = engine.items
    params = {"conversation": "none", "output_modalities": ["text"], "metadata": {"topic": "x"}}
    events = send(engine, {"type": "response.create", "response": params})
    assert "conversation.item.added" not in types_of(events)
    done = events[-2]["response"]
    assert done["conversation_id"] is None and done["metadata"] == {"topic": "x"}
    assert engine.items == before


def test_response_instructions_and_input_override_the_session() -> None:
    brain = ScriptedBrain({"rules": [{"match": "hello", "instructions": "^agent b", "say": "B speaking."}]})
    engine = started(brain)
    send(engine, user_text("hello"))
    events = send(engine, {"type": "response.create", "response": {"output_modalities": ["text"]}})
    assert events[-3]["item"]["content"][0]["text"] == "Sorry, I have no scripted reply for that."
    params = {"output_modalities": ["text"], "instructions": "agent B here"}
    events = send(engine, {"type": "response.create", "response": params})
    assert events[-3]["item"]["content"][0]["text"] == "B speaking."
    params = {"output_modalities": ["text"], "instructions": "agent B", "input": []}
    events = send(engine, {"type": "response.create", "response": params})
    assert events[-3]["item"]["content"][0]["text"] == "Sorry, I have no scripted reply for that."


def test_max_output_tokens_makes_the_response_incomplete() -> None:
    engine = started()
    send(engine, user_text("long"))
    params = {"output_modalities": ["text"], "max_output_tokens": 2}
    done = send(engine, {"type": "response.create", "response": params})[-2]["response"]
    assert done["status"] == "incomplete"
    assert done["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    assert done["output"][0]["content"][0]["text"] == "one two"


def test_g711_output_format() -> None:
    engine = started()
    fmt = {"type": "realtime", "audio": {"output": {"format": {"type": "audio/pcmu"}}}}
    send(engine, {"type": "session.update", "session": fmt})
    send(engine, user_text("hello"))
    events = send(engine, {"type": "response.create"})
    audio = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    assert len(audio) == 5 * 100 * 8  # 5 words x 100 ms at 8 bytes/ms


# --- items ----------------------------------------------------------------------------------------------


def test_item_create_previous_item_id_root_and_unknown() -> None:
    engine = started()
    first = send(engine, user_text("a"))[0]["item"]["id"]
    event = {**user_text("b"), "previous_item_id": "root"}
    added = send(engine, event)[0]
    assert added["previous_item_id"] is None
    assert [i["id"] for i in engine.items][1] == first
    error = error_of(send(engine, {**user_text("c"), "previous_item_id": "item_nope", "event_id": "e9"}))
    assert (error["code"], error["param"], error["event_id"]) == ("invalid_value", "previous_item_id", "e9")
    event = {**user_text("d"), "previous_item_id": first}
    assert send(engine, event)[0]["previous_item_id"] == first


def test_item_retrieve_delete_and_missing_ids() -> None:
    engine = started()
    item_id = send(engine, user_text("hello"))[0]["item"]["id"]
    (retrieved,) = send(engine, {"type": "conversation.item.retrieve", "item_id": item_id})
    assert retrieved["type"] == "conversation.item.retrieved"
    assert retrieved["item"]["content"] == [{"type": "input_text", "text": "hello"}]
    (deleted,) = send(engine, {"type": "conversation.item.delete", "item_id": item_id})
    assert deleted == {
        "event_id": deleted["event_id"],
        "type": "conversation.item.deleted",
        "item_id": item_id,
    }
    assert engine.items == []
    error = error_of(send(engine, {"type": "conversation.item.delete", "item_id": item_id}))
    assert error["code"] == "item_not_found"
    error = error_of(send(engine, {"type": "conversation.item.retrieve"}))
    assert (error["code"], error["param"]) == ("missing_required_parameter", "item_id")


def test_assistant_audio_items_cannot_be_created() -> None:
    engine = started()
    item = {"type": "message", "role": "assistant", "content": [{"type": "output_audio", "transcript": "x"}]}
    error = error_of(send(engine, {"type": "conversation.item.create", "item": item}))
    assert (error["code"], error["param"]) == ("invalid_value", "item.content[0].type")


def test_truncate_cuts_audio_and_transcript_and_checks_length() -> None:
    engine = started()
    send(engine, user_text("long"))
    events = send(engine, {"type": "response.create"})
    item_id = events[1]["item"]["id"]
    error = error_of(
        send(
            engine,
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 1500,
            },
        )
    )
    assert error == {
        "type": "invalid_request_error",
        "code": None,
        "message": "Audio content of 1000ms is already shorter than 1500ms",
        "param": "audio_end_ms",
        "event_id": None,
    }
    truncate = {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": 250,
    }
    (event,) = send(engine, truncate)
    assert event["type"] == "conversation.item.truncated" and event["audio_end_ms"] == 250
    (retrieved,) = send(engine, {"type": "conversation.item.retrieve", "item_id": item_id})
    content = retrieved["item"]["content"][0]
    assert content["transcript"] == "one two three"  # words starting before 250 ms
    assert len(base64.b64decode(content["audio"])) == 250 * 48
    user_id = engine.items[0]["id"]
    error = error_of(send(engine, {**truncate, "item_id": user_id, "audio_end_ms": 0}))
    assert (error["code"], error["message"]) == (
        "unsupported_content_type",
        "Only model output audio messages can be truncated.",
    )


# --- input audio ----------------------------------------------------------------------------------------


def manual(engine: Engine) -> None:
    update = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
    assert types_of(send(engine, {"type": "session.update", "session": update})) == ["session.updated"]


def test_commit_needs_100_ms_and_does_not_respond() -> None:
    engine = started()
    manual(engine)
    append(engine, silence(60))
    error = error_of(send(engine, {"type": "input_audio_buffer.commit"}))
    assert error["code"] == "input_audio_buffer_commit_empty"
    assert "buffer only has 60.00ms of audio" in error["message"]
    append(engine, silence(60))
    events = send(engine, {"type": "input_audio_buffer.commit"})
    assert types_of(events) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert events[2]["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    (retrieved,) = send(engine, {"type": "conversation.item.retrieve", "item_id": events[0]["item_id"]})
    assert len(base64.b64decode(retrieved["item"]["content"][0]["audio"])) == 120 * 48


def test_clear_empties_the_buffer() -> None:
    engine = started()
    manual(engine)
    append(engine, silence(200))
    assert types_of(send(engine, {"type": "input_audio_buffer.clear"})) == ["input_audio_buffer.cleared"]
    assert (
        error_of(send(engine, {"type": "input_audio_buffer.commit"}))["code"]
        == "input_audio_buffer_commit_empty"
    )


def test_server_vad_turn_commits_transcribes_and_responds() -> None:
    engine = started(brain=ScriptedBrain(SCRIPT))
    transcription = {
        "type": "realtime",
        "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}},
    }
    send(engine, {"type": "session.update", "session": transcription})
    events = append(engine, silence(500) + tone(500) + silence(400))
    names = types_of(events)
    assert strip_deltas(names) == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
        *AUDIO_TURN,
        *AUDIO_TAIL,
    ]
    started_ev, stopped = events[0], events[1]
    assert started_ev["audio_start_ms"] == 200  # speech at 500 ms minus 300 ms prefix padding
    assert stopped["audio_end_ms"] == 1200  # speech ends at 1000 ms plus 200 ms silence
    item_id = started_ev["item_id"]
    assert stopped["item_id"] == item_id == events[2]["item_id"] == events[4]["item"]["id"]
    completed = events[names.index("conversation.item.input_audio_transcription.completed")]
    # the fake transcriber picks phrase (1000 ms / 100) % 2 = 0 -> "hello there"
    assert completed["transcript"] == "hello there"
    assert completed["usage"] == {"type": "duration", "seconds": 1.0}
    assert events[names.index("response.output_audio_transcript.done")]["transcript"] == "Hi, how can I help?"
    (retrieved,) = send(engine, {"type": "conversation.item.retrieve", "item_id": item_id})
    assert retrieved["item"]["content"][0]["transcript"] == "hello there"


def test_vad_create_response_false_only_commits() -> None:
    engine = started()
    vad = {"type": "server_vad", "create_response": False}
    send(
        engine,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": vad}}},
        },
    )
    events = append(engine, tone(300) + silence(300))
    assert types_of(events) == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]


def test_barge_in_cancels_the_paced_response_with_turn_detected() -> None:
    engine = make_engine(pace="realtime")
    validate(engine.start(0.0))
    send(engine, user_text("long"), 0.0)
    send(engine, {"type": "response.create"}, 0.0)
    events = append(engine, tone(200), now_ms=400.0)
    names = types_of(events)
    # audio released up to 400 ms comes first, then the barge-in
    assert names.index("input_audio_buffer.speech_started") < names.index("response.done")
    assert names.count("response.done") == 1
    done = next(e for e in events if e["type"] == "response.done")["response"]
    assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert done["status"] == "cancelled"
    assert engine.active_response_ids == []


def test_semantic_vad_is_accepted_and_emulated_by_eagerness() -> None:
    engine = started()
    vad = {"type": "semantic_vad", "eagerness": "high", "create_response": False}
    (updated,) = send(
        engine,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": vad}}},
        },
    )
    assert updated["session"]["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "high",
        "create_response": False,
        "interrupt_response": True,
    }
    events = append(engine, tone(300) + silence(400))
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    assert stopped["audio_end_ms"] == 300 + 300  # high eagerness: 300 ms of silence


def test_idle_timeout_triggers_a_response() -> None:
    engine = make_engine(pace="fast")
    validate(engine.start(0.0))
    vad = {"type": "server_vad", "idle_timeout_ms": 5000}
    send(
        engine,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": vad}}},
        },
    )
    send(engine, user_text("hello"), 0.0)
    send(engine, {"type": "response.create"}, 0.0)
    # 5 words = 500 ms of audio: playback ends at 500 ms, the timeout fires 5 s later
    assert engine.next_deadline() == 5500.0
    assert validate(engine.advance(5499.0)) == []
    events = validate(engine.advance(5500.0))
    assert types_of(events)[:4] == [
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert events[-2]["response"]["output"][0]["content"][0]["transcript"] == "No rule for that."


# --- protocol errors --------------------------------------------------------------------------------------


def test_frame_errors_do_not_close_anything() -> None:
    engine = started()
    error = error_of(validate(engine.receive(b"\x00\x01", 0.0)))
    assert error["code"] == "invalid_event"
    error = error_of(validate(engine.receive("{not json", 0.0)))
    assert error["code"] == "invalid_json"
    error = error_of(send(engine, {"type": "response.bogus", "event_id": "mine"}))
    assert (error["code"], error["param"], error["event_id"]) == ("invalid_value", "type", "mine")
    assert "'session.update'" in error["message"]
    error = error_of(send(engine, {"type": "input_audio_buffer.append", "audio": "@@@"}))
    assert (error["code"], error["param"]) == ("invalid_value", "audio")
    error = error_of(send(engine, {"type": "response.create", "bogus": 1}))
    assert (error["code"], error["param"]) == ("unknown_parameter", "bogus")
    assert engine.closed is None
    assert types_of(send(engine, user_text("hello"))) == ["conversation.item.added", "conversation.item.done"]


def test_echo_brain_over_engine() -> None:
    engine = started(brain=EchoBrain())
    send(engine, user_text("say this back"))
    events = send(engine, {"type": "response.create", "response": {"output_modalities": ["text"]}})
    assert events[-3]["item"]["content"][0]["text"] == "say this back"


def test_failing_brain_gives_a_failed_response() -> None:
    class Broken:
        phrases: tuple[str, ...] = ()

        def reply(self, context: object) -> object:
            raise RuntimeError("no idea")

    engine = started(brain=Broken())  # type: ignore[arg-type]
    send(engine, user_text("x"))
    events = send(engine, {"type": "response.create"})
    assert types_of(events) == ["response.created", "response.done", "rate_limits.updated"]
    assert events[1]["response"]["status"] == "failed"
    assert (
        json.dumps(events[1]["response"]["status_details"]["error"]["message"]) == '"RuntimeError: no idea"'
    )


def test_vad_turn_work_is_deferred_to_the_next_advance() -> None:
    engine = started()
    events: list[dict[str, Any]] = []
    pcm = tone(300) + silence(300)
    for offset in range(0, len(pcm), 4800):
        audio = base64.b64encode(pcm[offset : offset + 4800]).decode()
        events += send(engine, {"type": "input_audio_buffer.append", "audio": audio}, 50.0)
        if "input_audio_buffer.speech_stopped" in types_of(events):
            break
    # receive() answers with the VAD events and the commit; the slower turn work waits for advance()
    assert types_of(events)[-3:] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert engine.next_deadline() == 50.0
    follow = validate(engine.advance(50.0))
    assert strip_deltas(types_of(follow)) == AUDIO_TURN + AUDIO_TAIL
    assert engine.next_deadline() is None


def test_g711_input_is_decoded_for_vad() -> None:
    from voicelab.audio.g711 import ulaw_encode

    engine = started()
    fmt = {
        "type": "realtime",
        "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}},
    }
    send(engine, {"type": "session.update", "session": fmt})
    narrow = np.frombuffer(tone(400) + silence(400), dtype="<i2")[::3]  # 8 kHz
    law = ulaw_encode(narrow)
    assert len(law) == 800 * 8
    events: list[dict[str, Any]] = []
    for offset in range(0, len(law), 800):
        audio = base64.b64encode(law[offset : offset + 800]).decode()
        events += send(engine, {"type": "input_audio_buffer.append", "audio": audio})
        events += validate(engine.advance(0.0))
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    assert stopped["audio_end_ms"] == 600  # 400 ms of speech + 200 ms silence, on the 8 bytes/ms clock
    committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
    (retrieved,) = send(engine, {"type": "conversation.item.retrieve", "item_id": committed["item_id"]})
    assert len(base64.b64decode(retrieved["item"]["content"][0]["audio"])) == 600 * 8
    audio_out = [e for e in events if e["type"] == "response.output_audio.delta"]
    assert sum(len(base64.b64decode(e["delta"])) for e in audio_out) == 5 * 100 * 8


BAD_ENGINES: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("pace", {"pace": "slow"}, ConfigError, "Engine: pace='slow' is not valid; use one of 'realtime'"),
    ("services", {"services": 5}, ConfigError, r"services must be a voicelab.server.EngineServices.*got int"),
    ("services-class", {"services": EngineServices}, ConfigError, "got the class EngineServices"),
    ("timing", {"timing": "fast"}, ConfigError, r"timing must be .*Timing\(pace='fast'\).*got str"),
    ("intent", {"intent": "transcribe"}, ConfigError, "intent='transcribe' is not valid"),
    ("pase", {"pase": "fast"}, ArgumentError, "Engine\\(\\) has no argument 'pase'; did you mean 'pace'?"),
    ("brain-class", {"brain": EchoBrain}, ConfigError, r"got the class EchoBrain; create one first"),
    ("brain-int", {"brain": 5}, ConfigError, r"needs a brain .*got int; e.g. Engine\(voicelab.server"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "error", "message"), [b[1:] for b in BAD_ENGINES], ids=[b[0] for b in BAD_ENGINES]
)
def test_an_engine_with_a_bad_argument_names_the_fix(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    kwargs = {"brain": EchoBrain(), **kwargs}
    with pytest.raises(error, match=message) as info:
        Engine(**kwargs)
    assert isinstance(info.value, ValueError)  # what Engine raised before, for callers that catch it
    assert "\n" not in str(info.value)
