"""Faults the engine must survive (issue 8): any frame gives an `error` at worst, audio bytes are never lost,
bad numbers are refused, one request's cost is bounded, and idle input audio is not held forever."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest
from server_helpers import make_engine, send, started, types_of, validate

from voicelab.protocol.events import MAX_EVENT_DEPTH
from voicelab.server.brains import BrainInput, EchoBrain, ScriptedBrain
from voicelab.server.engine import MAX_REPLY_CHARS, Engine
from voicelab.server.script import MAX_INSTRUCTIONS_MATCH_CHARS, MAX_MATCH_CHARS


def user_text(text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- 1. any frame: an error event at worst ---------------------------------------------------------------

HOSTILE_FRAMES = [
    "[" * 100_000,
    "{" * 100_000,
    '{"a":' * 50_000,
    json.dumps({"type": "session.update", "session": {"instructions": "x"}})[:-1] + "," + "[" * 5000,
    "1" * 100_000,  # a number too long to convert
    '{"type": "response.create", "response": ' + "[" * 900 + "]" * 900 + "}",  # parses; too deep to use
    '"\\ud800"',
    "\x00",
    "",
    "null",
]


@pytest.mark.parametrize("frame", HOSTILE_FRAMES, ids=range(len(HOSTILE_FRAMES)))
def test_any_text_frame_gives_an_error_event_and_the_engine_goes_on(frame: str) -> None:
    engine = started()
    out = validate(engine.receive(frame, 0.0))
    assert types_of(out) == ["error"]
    assert engine.closed is None
    json.dumps(out)  # what goes back on the wire serializes
    again = send(engine, user_text("hello"))
    assert types_of(again) == ["conversation.item.added", "conversation.item.done"]


def test_nesting_deeper_than_the_limit_is_named_in_the_error() -> None:
    engine = started()
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    deep: Any = "x"
    for _ in range(MAX_EVENT_DEPTH + 5):
        deep = [deep]
    item["metadata"] = deep
    (error,) = validate(engine.receive(json.dumps({"type": "conversation.item.create", "item": item}), 0))
    assert error["error"]["code"] == "invalid_json"
    assert "nested" in error["error"]["message"]


def test_binary_frames_of_any_size_give_an_error_event() -> None:
    engine = started()
    for frame in (b"", b"\xff" * 1000, bytearray(b"{}")):
        (error,) = validate(engine.receive(frame, 0.0))
        assert error["type"] == "error"


# --- 2. odd-sized appends carry their last byte over -----------------------------------------------------


@pytest.mark.parametrize("piece", [4801, 1, 3, 777])
def test_odd_sized_appends_keep_every_sample(piece: int) -> None:
    engine = started()
    send(
        engine,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        },
    )
    pcm = (np.arange(12000, dtype=np.int64) * 7 % 30000 - 15000).astype("<i2").tobytes()
    for offset in range(0, len(pcm), piece):
        send(engine, {"type": "input_audio_buffer.append", "audio": b64(pcm[offset : offset + piece])})
    out = send(engine, {"type": "input_audio_buffer.commit"})
    item_id = out[0]["item_id"]
    got = send(engine, {"type": "conversation.item.retrieve", "item_id": item_id})
    audio = base64.b64decode(got[0]["item"]["content"][0]["audio"])
    assert audio == pcm


def test_a_half_sample_left_at_commit_is_dropped_not_carried_into_the_next_turn() -> None:
    engine = started()
    send(
        engine,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        },
    )
    send(engine, {"type": "input_audio_buffer.append", "audio": b64(b"\x01\x02" * 2400 + b"\x03")})
    send(engine, {"type": "input_audio_buffer.commit"})
    send(engine, {"type": "input_audio_buffer.append", "audio": b64(b"\x04\x05" * 2400)})
    out = send(engine, {"type": "input_audio_buffer.commit"})
    got = send(engine, {"type": "conversation.item.retrieve", "item_id": out[0]["item_id"]})
    assert base64.b64decode(got[0]["item"]["content"][0]["audio"]) == b"\x04\x05" * 2400


# --- 3. numbers out of range are refused -----------------------------------------------------------------


def _assistant_audio(engine: Engine) -> str:
    out = send(engine, user_text("long"))
    out += send(engine, {"type": "response.create"})
    return next(e["item"]["id"] for e in out if e["type"] == "response.output_item.done")


@pytest.mark.parametrize("end_ms", [-1, -1000, -(2**40)])
def test_truncate_with_a_negative_audio_end_ms_is_an_error(end_ms: int) -> None:
    engine = started()
    item_id = _assistant_audio(engine)
    event = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0}
    (error,) = send(engine, {**event, "audio_end_ms": end_ms})
    assert error["type"] == "error" and error["error"]["param"] == "audio_end_ms"
    assert "audio_end_ms" in error["error"]["message"]
    (done,) = send(engine, {**event, "audio_end_ms": 100})
    assert done["type"] == "conversation.item.truncated"


@pytest.mark.parametrize("index", [-1, -5])
def test_truncate_with_a_negative_content_index_is_an_error(index: int) -> None:
    engine = started()
    item_id = _assistant_audio(engine)
    event = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": index}
    (error,) = send(engine, {**event, "audio_end_ms": 0})
    assert error["type"] == "error" and error["error"]["param"] == "content_index"


# --- 4. an unknown model is refused like the real API ----------------------------------------------------


@pytest.mark.parametrize("model", ["m", "gpt-4o", "whisper-1", "", " gpt-realtime"])
def test_unknown_model_gets_invalid_model_and_close_4000(model: str) -> None:
    engine = make_engine(model=model)
    (error,) = validate(engine.start(0.0))
    assert error["type"] == "error" and error["error"]["code"] == "invalid_model"
    assert engine.closed is not None and engine.closed[0] == 4000
    assert "invalid_model" in engine.closed[1]


@pytest.mark.parametrize(
    "model", ["gpt-realtime", "gpt-realtime-mini", "gpt-realtime-2025-08-28", "gpt-4o-realtime-preview"]
)
def test_realtime_models_are_accepted(model: str) -> None:
    engine = make_engine(model=model)
    (created,) = validate(engine.start(0.0))
    assert created["type"] == "session.created" and engine.closed is None


# --- 5. what one request may cost ------------------------------------------------------------------------


def test_a_rule_sees_at_most_max_match_chars_of_the_user_text() -> None:
    script = {"rules": [{"match": r"\b(yes|yeah)\b.*\bcorrect\b", "say": "Great."}], "fallback": "Sorry?"}
    brain = ScriptedBrain(script)
    seen: list[int] = []
    rule = brain.script.rules[0]
    original = rule.match

    class Spy:
        def search(self, text: str) -> Any:
            seen.append(len(text))
            return original.search(text)

    object.__setattr__(rule, "match", Spy())
    reply = brain.reply(BrainInput("yes " * 4000 + "correct", "x"))
    assert seen == [MAX_MATCH_CHARS]
    assert reply.text == "Sorry?"  # type: ignore[union-attr]
    reply = brain.reply(BrainInput("yes that is correct", "x"))
    assert reply.text == "Great."  # type: ignore[union-attr]


def test_instructions_a_rule_looks_at_are_bounded_too() -> None:
    script = {"rules": [{"match": "hi", "instructions": "pirate$", "say": "Arr."}], "fallback": "Hello."}
    brain = ScriptedBrain(script)
    long_instructions = "x" * MAX_INSTRUCTIONS_MATCH_CHARS + " pirate"
    assert brain.reply(BrainInput("hi", "talk like a pirate")).text == "Arr."  # type: ignore[union-attr]
    # only the first MAX_INSTRUCTIONS_MATCH_CHARS characters are searched: the word at the end is not seen
    assert brain.reply(BrainInput("hi", long_instructions)).text == "Hello."  # type: ignore[union-attr]


class _Synth:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, text: str, voice: str, speed: float) -> tuple[bytes, None]:
        self.texts.append(text)
        return bytes(48 * 10), None


def test_a_long_reply_is_cut_at_max_reply_chars_and_ends_incomplete() -> None:
    from server_helpers import FAKE_SERVICES

    from voicelab.server.services import EngineServices

    synth = _Synth()
    services = EngineServices(synth, FAKE_SERVICES.turn_detector, FAKE_SERVICES.transcriber)
    engine = Engine(EchoBrain(), pace="fast", services=services, seed=1)
    validate(engine.start(0))
    words = "word " * (MAX_REPLY_CHARS // 2)
    send(engine, user_text(words))
    out = send(engine, {"type": "response.create"})
    done = next(e for e in out if e["type"] == "response.done")["response"]
    assert done["status"] == "incomplete"
    assert done["status_details"]["reason"] == "max_output_tokens"
    (spoken,) = synth.texts
    assert len(spoken) <= MAX_REPLY_CHARS
    transcript = done["output"][0]["content"][0]["transcript"]
    assert transcript == spoken and words.startswith(transcript)


def test_a_long_function_output_read_back_is_bounded() -> None:
    engine = started(EchoBrain())
    send(engine, {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}})
    send(
        engine,
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        },
    )
    send(
        engine,
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "c1", "output": "z" * 100_000},
        },
    )
    out = send(engine, {"type": "response.create"})
    text = next(e for e in out if e["type"] == "response.output_text.done")["text"]
    assert len(text) <= MAX_REPLY_CHARS


# --- 6. idle input audio under server VAD is not held ----------------------------------------------------


def test_silence_under_server_vad_does_not_grow_the_input_buffer() -> None:
    engine = started()
    send(
        engine,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad"}}}},
        },
    )
    chunk = b64(bytes(4800))  # 100 ms of silence
    for _ in range(600):  # one minute
        send(engine, {"type": "input_audio_buffer.append", "audio": chunk})
    assert len(engine._buffer) <= 48 * 5000  # a few seconds at most, not a minute


def test_a_turn_after_long_silence_still_keeps_its_prefix_padding() -> None:
    engine = started()
    send(
        engine,
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "prefix_padding_ms": 300}}},
            },
        },
    )
    silence, tone = bytes(4800), (np.full(2400, 8000, dtype="<i2")).tobytes()
    out: list[dict[str, Any]] = []
    for _ in range(300):  # 30 s of silence
        out += send(engine, {"type": "input_audio_buffer.append", "audio": b64(silence)})
    for _ in range(10):  # 1 s of speech
        out += send(engine, {"type": "input_audio_buffer.append", "audio": b64(tone)})
    for _ in range(10):
        out += send(engine, {"type": "input_audio_buffer.append", "audio": b64(silence)})
        out += validate(engine.advance(0))
    started_event = next(e for e in out if e["type"] == "input_audio_buffer.speech_started")
    stopped = next(e for e in out if e["type"] == "input_audio_buffer.speech_stopped")
    assert started_event["audio_start_ms"] == 30_000 - 300
    item_id = stopped["item_id"]
    got = send(engine, {"type": "conversation.item.retrieve", "item_id": item_id})
    audio = base64.b64decode(got[0]["item"]["content"][0]["audio"])
    assert len(audio) == (stopped["audio_end_ms"] - started_event["audio_start_ms"]) * 48
    assert audio[: 300 * 48] == bytes(300 * 48)  # the padding is the silence before the speech


# --- tools the real API refuses ------------------------------------------------------------------------

BAD_TOOLS = [
    ({"type": "function", "name": "bad name!", "parameters": {"type": "object"}}, "name", "invalid_value"),
    ({"type": "function", "name": "x" * 65}, "name", "invalid_value"),
    ({"type": "function", "name": "ok", "parameters": 5}, "parameters", "invalid_type"),
    ({"type": "function", "name": "ok", "parameters": "{}"}, "parameters", "invalid_type"),
]


@pytest.mark.parametrize(("tool", "field", "code"), BAD_TOOLS, ids=range(len(BAD_TOOLS)))
def test_a_tool_the_real_api_refuses_is_refused_in_session_update(
    tool: dict[str, Any], field: str, code: str
) -> None:
    engine = started()
    (error,) = send(engine, {"type": "session.update", "session": {"type": "realtime", "tools": [tool]}})
    assert error["type"] == "error" and error["error"]["code"] == code
    assert error["error"]["param"] == f"session.tools[0].{field}"
    assert engine.session["tools"] == []  # the whole update was discarded


@pytest.mark.parametrize(("tool", "field", "code"), BAD_TOOLS, ids=range(len(BAD_TOOLS)))
def test_a_tool_the_real_api_refuses_is_refused_in_response_create(
    tool: dict[str, Any], field: str, code: str
) -> None:
    engine = started()
    send(engine, user_text("hello"))
    (error,) = send(engine, {"type": "response.create", "response": {"tools": [tool]}})
    assert error["error"]["code"] == code and error["error"]["param"] == f"response.tools[0].{field}"
    assert engine.active_response_ids == []


@pytest.mark.parametrize(
    "response",
    [{"max_output_tokens": 0}, {"max_output_tokens": 99999}, {"audio": {"output": {"voice": "robot"}}}],
)
def test_response_values_out_of_range_are_refused(response: dict[str, Any]) -> None:
    engine = started()
    send(engine, user_text("hello"))
    (error,) = send(engine, {"type": "response.create", "response": response})
    assert error["type"] == "error" and error["error"]["param"].startswith("response.")


def test_a_huge_prefix_padding_does_not_unbound_the_idle_buffer() -> None:
    engine = started()
    detection = {"type": "server_vad", "prefix_padding_ms": 10**8}
    send(
        engine,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": detection}}},
        },
    )
    chunk = b64(bytes(4800))
    for _ in range(600):  # one minute of silence
        send(engine, {"type": "input_audio_buffer.append", "audio": chunk})
    assert len(engine._buffer) <= 48 * 25_000


# --- any field of any event, of any JSON type: a clean `error`, never an internal one --------------------

WEIRD_VALUES: list[Any] = [None, 5, -1, 1e308, "x", "", [], {}, [1], {"a": 1}, True, "\ud800", "x" * 100_000]
FIELDS = {
    "session.update": ["session"],
    "input_audio_buffer.append": ["audio"],
    "conversation.item.create": ["item", "previous_item_id"],
    "conversation.item.truncate": ["item_id", "content_index", "audio_end_ms"],
    "conversation.item.delete": ["item_id"],
    "conversation.item.retrieve": ["item_id"],
    "response.create": ["response"],
    "response.cancel": ["response_id"],
}
NESTED = [
    ("session.update", {"session": {"type": "realtime", "audio": 5}}),
    ("session.update", {"session": {"type": "realtime", "audio": {"input": 5}}}),
    ("session.update", {"session": {"type": "realtime", "audio": {"output": []}}}),
    ("session.update", {"session": {"type": "realtime", "tools": [5]}}),
    ("response.create", {"response": {"input": 5}}),
    ("response.create", {"response": {"input": [5]}}),
    ("response.create", {"response": {"input": [{"type": "item_reference", "id": 5}]}}),
    ("response.create", {"response": {"audio": {"output": {"format": 5}}}}),
    ("conversation.item.create", {"item": {"type": "message", "role": "user", "content": "x"}}),
    ("conversation.item.create", {"item": {"type": "message", "role": "user", "content": [5]}}),
    ("conversation.item.create", {"item": {"type": "function_call_output", "call_id": 5, "output": 5}}),
]


def _no_internal_error(events: list[dict[str, Any]]) -> None:
    validate(events)
    for event in events:
        if event["type"] == "error":
            assert event["error"]["code"] != "server_error", event["error"]["message"]


@pytest.mark.parametrize("kind", sorted(FIELDS))
def test_any_json_value_in_any_field_is_a_clean_error(kind: str) -> None:
    for field in FIELDS[kind]:
        for value in WEIRD_VALUES:
            engine = started()
            _no_internal_error(engine.receive(json.dumps({"type": kind, field: value}), 0))
            _no_internal_error(send(engine, user_text("hello")))  # and the engine goes on


@pytest.mark.parametrize(("kind", "body"), NESTED, ids=range(len(NESTED)))
def test_nested_values_of_the_wrong_type_are_clean_errors(kind: str, body: dict[str, Any]) -> None:
    engine = started()
    _no_internal_error(engine.receive(json.dumps({"type": kind, **body}), 0))
    _no_internal_error(engine.receive(json.dumps({"type": "response.create"}), 0))
