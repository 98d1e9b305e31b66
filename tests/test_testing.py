"""`voicelab.testing.ConnectionPair`: the client protocol against the embedded server's engine with no socket
and a clock the test moves. Every test here is synchronous and deterministic."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import voicelab
from voicelab import events as ev
from voicelab.config import SessionConfig
from voicelab.errors import ConfigError, SessionError
from voicelab.server import EchoBrain
from voicelab.speech import synthesize
from voicelab.testing import ConnectionPair

TEXT = SessionConfig(output_modalities=["text"])
LOOKUP = {
    "type": "function",
    "name": "lookup_order",
    "description": "Look up an order by its number.",
    "parameters": {"type": "object", "properties": {"order_number": {"type": "string"}}},
}


def server_types(pair: ConnectionPair) -> list[str]:
    return [e["type"] for e in pair.server_events]


def test_a_text_turn_runs_in_memory_in_the_ga_order() -> None:
    pair = ConnectionPair(TEXT, script="returns_desk")
    pair.client.send_text("I would like to return my order")
    pair.run_until_idle()
    assert [e["type"] for e in pair.client_events] == [
        "session.update",
        "conversation.item.create",
        "response.create",
    ]
    kinds = server_types(pair)
    assert kinds[:4] == [
        "session.created",
        "session.updated",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert kinds[-2:] == ["response.done", "rate_limits.updated"]
    assert pair.types().count("response_done") == 1 and "error" not in pair.types()
    assert pair.client.history[-1].text == "I can help with that. What is your order number?"
    assert not pair.client.responding and pair.now_ms == 0.0  # pace="fast": nothing waited for


def test_runs_are_deterministic() -> None:
    def run() -> list[tuple[str, Any]]:
        pair = ConnectionPair(TEXT, script="returns_desk")
        pair.client.send_text("I would like to return my order")
        pair.run_until_idle()
        return [(e["type"], e.get("item", {}).get("id")) for e in pair.server_events]

    assert run() == run()


def test_a_function_call_answered_by_the_test() -> None:
    pair = ConnectionPair(SessionConfig(output_modalities=["text"], tools=[LOOKUP]), script="returns_desk")
    pair.client.send_text("The order number is 4567")
    pair.run_until_idle()
    call = next(e for e in pair.events if isinstance(e, ev.FunctionCall))
    assert (call.name, call.arguments) == ("lookup_order", '{"order_number": "4567"}')
    pair.client.send_function_output(call.call_id, {"status": "delivered"})
    pair.run_until_idle()
    assert pair.types().count("response_done") == 2
    assert "Shall I send you a return label?" in pair.client.history[-1].text


def test_a_second_create_waits_for_the_first_response_to_end() -> None:
    pair = ConnectionPair(None, script="returns_desk", pace="realtime")
    pair.client.send_text("I would like to return my order")
    assert pair.client.conversation.active_response_id is not None  # audio is paced: still responding
    pair.client.create_response(instructions="Say it again.")
    assert len(pair.sent("response.create")) == 1  # queued, not sent
    pair.run_until_idle()
    creates = pair.sent("response.create")
    assert len(creates) == 2 and creates[1]["response"] == {"instructions": "Say it again."}
    assert pair.types().count("response_done") == 2 and "error" not in pair.types()
    assert pair.now_ms > 1000.0  # the paced audio took simulated time, not wall time


def test_interrupt_truncates_at_the_pair_clock_and_cancels() -> None:
    pair = ConnectionPair(None, script="returns_desk", pace="realtime")
    pair.client.send_text("I would like to return my order")
    pair.advance(700)
    assert pair.client.interrupt() == 700.0  # the default tracker plays on the pair's clock
    pair.run_until_idle()
    (truncate,) = pair.sent("conversation.item.truncate")
    assert truncate["audio_end_ms"] == 700
    assert [e["type"] for e in pair.client_events][-2:] == ["conversation.item.truncate", "response.cancel"]
    truncated = next(e for e in pair.server_events if e["type"] == "conversation.item.truncated")
    assert (truncated["item_id"], truncated["audio_end_ms"]) == (truncate["item_id"], 700)
    done = next(e for e in pair.events if isinstance(e, ev.ResponseDone))
    assert done.status == "cancelled"
    interrupted = next(e for e in pair.events if isinstance(e, ev.AudioInterrupted))
    assert interrupted.played_ms == 700.0
    assert pair.client.conversation.get(truncate["item_id"]).truncated_ms == 700


def test_a_barge_in_from_the_server_truncates_and_the_client_cancels() -> None:
    config = SessionConfig(turn_detection={"type": "server_vad", "interrupt_response": False})
    pair = ConnectionPair(config, script="returns_desk", pace="realtime")
    pair.client.send_text("I would like to return my order")
    pair.advance(450)
    speech = {
        "type": "input_audio_buffer.speech_started",
        "event_id": "s",
        "audio_start_ms": 0,
        "item_id": "u",
    }
    got = pair.receive(speech)  # as the server's VAD would say it
    assert [e.type for e in got][:2] == ["speech_started", "audio_interrupted"]
    assert [e["type"] for e in pair.client_events][-2:] == ["conversation.item.truncate", "response.cancel"]
    assert pair.sent("conversation.item.truncate")[0]["audio_end_ms"] == 450
    pair.run_until_idle()
    assert next(e for e in pair.events if isinstance(e, ev.ResponseDone)).status == "cancelled"


def test_server_vad_turns_from_sent_audio() -> None:
    pair = ConnectionPair(None, brain=EchoBrain(), pace="realtime")
    speech = synthesize("I would like to return my order.")
    silence = voicelab.Audio.from_array(np.zeros(24000), 24000)
    for clip in (speech, silence):
        for start in range(0, int(clip.duration_ms), 100):  # streamed in real time on the pair's clock
            pair.client.send_audio(clip.slice_ms(start, min(start + 100, clip.duration_ms)))
            pair.advance(100)
    kinds = server_types(pair)
    assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.speech_stopped")
    assert kinds.index("input_audio_buffer.committed") < kinds.index("response.created")
    assert len(pair.sent("input_audio_buffer.append")) == 10 + int(np.ceil(speech.duration_ms / 100))


def test_an_engine_that_closes_closes_the_client() -> None:
    pair = ConnectionPair(SessionConfig(model="gpt-nonexistent"), script="returns_desk")
    assert pair.closed is not None and pair.closed[0] == 4000
    assert [e.code for e in pair.events if isinstance(e, ev.Error)] == ["invalid_model"]
    with pytest.raises(SessionError, match="closed"):
        pair.client.send_text("hello?")


def test_raw_frames_reach_the_client_only() -> None:
    pair = ConnectionPair(TEXT, script="returns_desk")
    got = pair.receive("not json", {"type": "future.event", "event_id": "f"})
    assert [type(e) for e in got] == [ev.Error, ev.RawServerEvent]
    assert "future.event" not in server_types(pair)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ConfigError, match="ConnectionPair"):
        ConnectionPair(42)
    with pytest.raises(ConfigError, match="not an instance"):
        ConnectionPair(SessionConfig)
    with pytest.raises(ConfigError, match="not both"):
        ConnectionPair(script="returns_desk", brain=EchoBrain())
    with pytest.raises(ConfigError, match="reply"):
        ConnectionPair(brain=object())  # type: ignore[arg-type]
    pair = ConnectionPair(TEXT)
    with pytest.raises(ConfigError, match=">= 0"):
        pair.advance(-5)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: ConnectionPair(pace="slow"), ("pace", "'realtime'")),
        (lambda: ConnectionPair(services=5), ("services", "EngineServices")),
        (lambda: ConnectionPair(seed="x"), ("seed",)),
        (lambda: ConnectionPair(scrpt="returns_desk"), ("scrpt", "did you mean 'script'")),
        (lambda: ConnectionPair(TEXT).advance(1e12), ("ms", "86400000")),
        (lambda: ConnectionPair(TEXT).run_until_idle(-1), ("max_ms",)),
        (lambda: ConnectionPair(TEXT).sent(5), ("event_type", "str")),
        (lambda: ConnectionPair(TEXT).receive(5), ("dicts or raw text", "int")),
    ],
)
def test_pair_arguments_are_checked(make, words) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))
