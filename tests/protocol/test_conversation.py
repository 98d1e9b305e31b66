"""Client conversation state fed with recorded GA sequences (synchronous)."""

from __future__ import annotations

import json

from voicelab.protocol import Conversation, parse_server_event
from voicelab.protocol.conversation import b64_decoded_len, bytes_per_ms
from voicelab.protocol.samples import audio_turn, function_call_turn, session_created, text_turn


def feed(conv: Conversation, events: list[dict]) -> None:
    for event in events:
        conv.apply(parse_server_event(json.dumps(event)))


def test_text_turn_state() -> None:
    conv = Conversation()
    feed(conv, [session_created(), *text_turn("Hello there", "Hi! How can I help?")])
    assert [(i.id, i.role, i.status) for i in conv.items] == [
        ("item_user1", "user", "completed"),
        ("item_asst1", "assistant", "completed"),
    ]
    user, asst = conv.items
    assert user.content == [{"type": "input_text", "text": "Hello there"}]
    assert asst.text == "Hi! How can I help?"
    assert asst.response_id == "resp_text1"
    response = conv.responses["resp_text1"]
    assert response.status == "completed"
    assert response.output_item_ids == ["item_asst1"]
    assert response.usage is not None and response.usage["total_tokens"] == 30
    assert conv.active_response_id is None


def test_text_deltas_accumulate_before_done() -> None:
    conv = Conversation()
    events = text_turn("Hi", "one two three")
    deltas_end = next(i for i, e in enumerate(events) if e["type"] == "response.output_text.done")
    feed(conv, events[:deltas_end])
    assert conv.get("item_asst1").text == "one two three"
    assert conv.active_response_id == "resp_text1"
    assert conv.responses["resp_text1"].status == "in_progress"


def test_audio_turn_counts_audio_and_merges_transcripts() -> None:
    conv = Conversation()
    pcm = b"\x00\x01" * 24000  # 1 s at 24 kHz
    feed(conv, [session_created(), *audio_turn(pcm, "Sure, one moment.", user_transcript="what time is it")])
    user, asst = conv.items
    assert user.id == "item_user2" and asst.id == "item_asst2"
    assert asst.audio_bytes == 48000
    assert asst.audio_ms == 1000.0
    assert asst.transcript == "Sure, one moment."
    assert user.input_transcript == "what time is it"
    assert user.input_transcript_done
    assert user.content[0]["transcript"] == "what time is it"


def test_input_transcript_deltas_then_final() -> None:
    conv = Conversation()
    conv.apply({"type": "conversation.item.input_audio_transcription.delta", "item_id": "u", "delta": "hel"})
    conv.apply({"type": "conversation.item.input_audio_transcription.delta", "item_id": "u", "delta": "lo"})
    assert conv.get("u").input_transcript == "hello"
    conv.apply(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u",
            "transcript": "Hello.",
        }
    )
    assert conv.get("u").input_transcript == "Hello."


def test_function_call_turn() -> None:
    conv = Conversation()
    feed(conv, function_call_turn("get_weather", '{"city":"Paris"}', call_id="call_X", item_id="item_F"))
    (call,) = conv.items
    assert (call.type, call.name, call.call_id, call.arguments, call.status) == (
        "function_call",
        "get_weather",
        "call_X",
        '{"city":"Paris"}',
        "completed",
    )
    assert conv.responses["resp_call1"].output_item_ids == ["item_F"]


def test_order_follows_previous_item_id() -> None:
    conv = Conversation()

    def add(item_id: str, **kw: object) -> None:
        conv.apply({"type": "conversation.item.added", "item": {"id": item_id, "type": "message"}, **kw})

    add("a", previous_item_id=None)
    add("b", previous_item_id="a")
    add("c", previous_item_id="a")  # inserted right after a
    add("d", previous_item_id="root")  # first
    add("e")  # absent: append
    add("f", previous_item_id="unknown")  # unknown: append
    assert [i.id for i in conv.items] == ["d", "a", "c", "b", "e", "f"]
    add("c", previous_item_id="e")  # seen again: never moves
    assert [i.id for i in conv.items] == ["d", "a", "c", "b", "e", "f"]
    conv.apply({"type": "conversation.item.deleted", "item_id": "c", "event_id": "x"})
    assert [i.id for i in conv.items] == ["d", "a", "b", "e", "f"]


def test_beta_spellings_are_accepted() -> None:
    conv = Conversation()
    conv.apply(
        {
            "type": "conversation.item.created",
            "previous_item_id": None,
            "item": {"id": "a1", "type": "message", "role": "assistant", "content": []},
        }
    )
    conv.apply({"type": "response.audio.delta", "item_id": "a1", "delta": "AAAAAA=="})
    conv.apply({"type": "response.audio_transcript.delta", "item_id": "a1", "delta": "hi "})
    conv.apply({"type": "response.text.delta", "item_id": "a1", "delta": "t"})
    item = conv.get("a1")
    assert item.audio_bytes == 4
    assert item.transcript == "hi "
    assert item.text == "t"
    conv.apply(
        {
            "type": "conversation.item.done",
            "item": {
                "id": "a1",
                "role": "assistant",
                "content": [{"type": "audio", "transcript": "hi there"}],
            },
        }
    )
    assert item.transcript == "hi there"
    # a snapshot without a transcript never erases a known one
    conv.apply(
        {"type": "conversation.item.done", "item": {"id": "a1", "content": [{"type": "output_audio"}]}}
    )
    assert item.transcript == "hi there"


def test_truncate_and_g711_audio_length() -> None:
    conv = Conversation()
    conv.apply(session_created(audio={"output": {"format": {"type": "audio/pcmu"}, "voice": "alloy"}}))
    conv.apply({"type": "response.output_audio.delta", "item_id": "a", "delta": "A" * 1600})  # 1200 bytes
    item = conv.get("a")
    assert item.audio_ms == 150.0
    conv.apply(
        {"type": "conversation.item.truncated", "item_id": "a", "content_index": 0, "audio_end_ms": 80}
    )
    assert item.truncated_ms == 80


def test_cancelled_response_keeps_status_details() -> None:
    conv = Conversation()
    conv.apply({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}})
    assert conv.active_response_id == "r1"
    conv.apply(
        {
            "type": "response.done",
            "response": {
                "id": "r1",
                "status": "cancelled",
                "status_details": {"type": "cancelled", "reason": "turn_detected"},
            },
        }
    )
    assert conv.responses["r1"].status == "cancelled"
    assert conv.responses["r1"].reason == "turn_detected"
    assert conv.active_response_id is None


def test_helpers() -> None:
    assert b64_decoded_len("") == 0
    assert b64_decoded_len("AAAA") == 3
    assert b64_decoded_len("AAA=") == 2
    assert b64_decoded_len("AA==") == 1
    assert bytes_per_ms({"type": "audio/pcm", "rate": 24000}) == 48.0
    assert bytes_per_ms("g711_alaw") == 8.0
    assert bytes_per_ms({"type": "audio/pcma"}) == 8.0


def test_unknown_events_are_ignored() -> None:
    conv = Conversation()
    assert conv.apply({"type": "rate_limits.updated", "rate_limits": []}) is None
    assert conv.apply({"type": "something.new"}) is None
    assert len(conv) == 0
