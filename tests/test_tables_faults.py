"""Tables agree with the session and never report an impossible latency (issue 8, item 13)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from test_tables import Builder

import voicelab
from voicelab import tables
from voicelab.protocol.conversation import Conversation, place_item


def _vad_turn(b: Builder, *, append_step_ms: float, stopped_at: float, first_audio_at: float) -> None:
    vad = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 400}
    b.server(5, "session.updated", session={"type": "realtime", "audio": {"input": {"turn_detection": vad}}})
    b._in_ms = 250.0
    for i in range(30):  # 3 s of audio
        b.append(250 + i * append_step_ms)
    b.server(stopped_at - 50, "input_audio_buffer.speech_started", audio_start_ms=400, item_id="item_U1")
    b.server(stopped_at, "input_audio_buffer.speech_stopped", audio_end_ms=2300, item_id="item_U1")
    b.server(stopped_at + 10, "input_audio_buffer.committed", item_id="item_U1", previous_item_id=None)
    b.user_item(stopped_at + 20, "item_U1", None)
    b.response_created(stopped_at + 40, "resp_1")
    b.assistant_start(stopped_at + 50, "resp_1", "item_A1", "item_U1")
    b.audio_delta(first_audio_at, "resp_1", "item_A1")
    b.assistant_done(first_audio_at + 100, "resp_1", "item_A1", "Hello.")
    b.response_done(first_audio_at + 150, "resp_1", "completed", [], None)


@pytest.mark.parametrize("step_ms", [0.0, 1.0, 10.0, 50.0])
def test_audio_sent_faster_than_real_time_gives_nan_not_a_negative_latency(
    tmp_path: Path, step_ms: float
) -> None:
    b = Builder()
    _vad_turn(b, append_step_ms=step_ms, stopped_at=400 + 30 * step_ms, first_audio_at=500 + 30 * step_ms)
    t = tables.turns(b.write(tmp_path / "fast"))
    assert math.isnan(t["speech_end_to_first_audio_ms"].iloc[0])
    assert math.isnan(t["speech_end_ms"].iloc[0])
    assert t["eos_to_first_audio_ms"].iloc[0] == 100.0  # the server's own end of turn is still known


def test_real_time_audio_keeps_its_latency(tmp_path: Path) -> None:
    b = Builder()
    _vad_turn(b, append_step_ms=100, stopped_at=2600, first_audio_at=2800)
    t = tables.turns(b.write(tmp_path / "rt"))
    assert t["speech_end_to_first_audio_ms"].tolist() == [2800.0 - 2150.0]


# --- one ordering rule for the session and the tables ---------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([("a", ...), ("b", ...), ("c", None)], ["c", "a", "b"]),
        ([("a", ...), ("b", ...), ("c", "root")], ["c", "a", "b"]),
        ([("a", None), ("b", "a"), ("c", "a")], ["a", "c", "b"]),
        ([("a", None), ("b", "zz")], ["a", "b"]),
        ([("a", None), ("b", "a"), ("c", "b")], ["a", "b", "c"]),
    ],
)
def test_place_item(steps: list[tuple[str, Any]], expected: list[str]) -> None:
    order: list[str] = []
    for item_id, previous in steps:
        place_item(order, item_id, previous)
    assert order == expected


async def test_tables_history_and_session_history_agree_on_root_inserts(
    fast_server: Any, tmp_path: Path
) -> None:
    def message(text: str) -> dict[str, Any]:
        return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}

    async with voicelab.connect(
        {"output_modalities": ["text"]}, url=fast_server.url, record_dir=tmp_path / "r"
    ) as session:
        await session.create_item(message("first"))
        await session.create_item(message("second"))
        await session.create_item(message("at the root"), previous_item_id="root")
        await session.create_item(message("last"))
        seen = 0
        async for event in session:
            if event.type == "history_added":
                seen += 1
                if seen == 4:
                    break
        live = [item.id for item in session.history]
    table = tables.history(tmp_path / "r")["item_id"].tolist()
    assert table == live
    texts = tables.history(tmp_path / "r")["text"].tolist()
    assert texts == ["at the root", "first", "second", "last"]


def test_conversation_uses_the_same_rule() -> None:
    conv = Conversation()
    for item_id, previous in (("a", None), ("b", "a"), ("c", None)):
        item = {"id": item_id, "type": "message", "role": "user", "content": []}
        conv.apply({"type": "conversation.item.added", "item": item, "previous_item_id": previous})
    assert [i.id for i in conv.items] == ["c", "a", "b"]


def test_engine_and_client_state_order_items_alike() -> None:
    """The engine places a created item with the same rule the client uses on the server's events."""
    import json

    from voicelab.server.brains import EchoBrain
    from voicelab.server.engine import Engine

    engine = Engine(EchoBrain(), pace="fast", seed=3)
    conv = Conversation()
    for event in engine.start(0):
        conv.apply(event)

    def create(item_id: str, previous: Any = None) -> None:
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": item_id}],
        }
        body: dict[str, Any] = {"type": "conversation.item.create", "item": item}
        if previous is not None:
            body["previous_item_id"] = previous
        for event in engine.receive(json.dumps(body), 0):
            assert event["type"] != "error", event
            conv.apply(event)

    create("item_a")
    create("item_b")
    create("item_r", "root")
    create("item_m", "item_a")
    create("item_z")
    create("item_r2", "root")
    expected = ["item_r2", "item_r", "item_a", "item_m", "item_b", "item_z"]
    assert [i["id"] for i in engine.items] == expected
    assert [i.id for i in conv.items] == expected
