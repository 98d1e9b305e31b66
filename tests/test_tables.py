"""voicelab.tables on hand-built recordings (every t_ms known) and on a real embedded-server session."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import Field, TypeAdapter

import voicelab
from voicelab import tables
from voicelab.errors import ConfigError

SERVER = TypeAdapter(Annotated[RealtimeServerEvent, Field(discriminator="type")])
CLIENT = TypeAdapter(Annotated[RealtimeClientEvent, Field(discriminator="type")])


def _audio_ref(track: str, start_ms: float, duration_ms: float) -> dict[str, Any]:
    return {"$audio": {"track": track, "start_ms": start_ms, "duration_ms": duration_ms}}


class Builder:
    """Writes a recording folder in the ARCHITECTURE.md format; GA events are validated with openai types."""

    def __init__(self, agent: str | None = "triage") -> None:
        self.meta = {
            "voicelab": "0.1.0",
            "model": "gpt-realtime",
            "url": "ws://127.0.0.1/v1/realtime",
            "config": {},
            "agent": agent,
            "started_at": "2026-11-22T00:00:00+00:00",
            "versions": {},
        }
        self.events: list[dict[str, Any]] = []
        self._next_event = 0
        self._out_ms = 0.0
        self._in_ms = 0.0

    def server(self, t: float, type_: str, **fields: Any) -> None:
        self._next_event += 1
        event = {"type": type_, "event_id": f"event_{self._next_event:04d}", **fields}
        check = dict(event)
        if isinstance(check.get("delta"), dict):
            check["delta"] = "AAAA"
        SERVER.validate_python(check)
        self.events.append({"t_ms": t, "dir": "server", "type": type_, "event": event})

    def client(self, t: float, type_: str, **fields: Any) -> None:
        event = {"type": type_, **fields}
        check = dict(event)
        if isinstance(check.get("audio"), dict):
            check["audio"] = "AAAA"
        CLIENT.validate_python(check)
        self.events.append({"t_ms": t, "dir": "client", "type": type_, "event": event})

    def app(self, t: float, type_: str, **fields: Any) -> None:
        self.events.append({"t_ms": t, "dir": "app", "type": type_, "event": {"type": type_, **fields}})

    # -- composite steps

    def append(self, t: float, ms: float = 100.0) -> None:
        self.client(t, "input_audio_buffer.append", audio=_audio_ref("input", self._in_ms, ms))
        self._in_ms += ms

    def user_item(self, t: float, item_id: str, previous: str | None, done: float | None = None) -> None:
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "object": "realtime.item",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.server(t, "conversation.item.added", item=item, previous_item_id=previous)
        self.server(
            done if done is not None else t + 10,
            "conversation.item.done",
            item=item,
            previous_item_id=previous,
        )

    def response_created(self, t: float, response_id: str) -> None:
        self.server(
            t,
            "response.created",
            response={
                "id": response_id,
                "object": "realtime.response",
                "status": "in_progress",
                "output": [],
            },
        )

    def response_done(
        self,
        t: float,
        response_id: str,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        reason: str | None = None,
    ) -> None:
        response: dict[str, Any] = {
            "id": response_id,
            "object": "realtime.response",
            "status": status,
            "output": output,
            "usage": usage,
        }
        if reason:
            response["status_details"] = {"type": status, "reason": reason}
        self.server(t, "response.done", response=response)

    def assistant_start(self, t: float, response_id: str, item_id: str, previous: str) -> dict[str, Any]:
        item = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "object": "realtime.item",
            "status": "in_progress",
            "content": [],
        }
        self.server(t, "response.output_item.added", response_id=response_id, output_index=0, item=item)
        self.server(t + 5, "conversation.item.added", item=item, previous_item_id=previous)
        self.server(
            t + 10,
            "response.content_part.added",
            response_id=response_id,
            item_id=item_id,
            output_index=0,
            content_index=0,
            part={"type": "audio", "transcript": ""},
        )
        return item

    def transcript_delta(self, t: float, response_id: str, item_id: str, delta: str) -> None:
        self.server(
            t,
            "response.output_audio_transcript.delta",
            response_id=response_id,
            item_id=item_id,
            output_index=0,
            content_index=0,
            delta=delta,
        )

    def audio_delta(self, t: float, response_id: str, item_id: str, ms: float = 100.0) -> None:
        self.server(
            t,
            "response.output_audio.delta",
            response_id=response_id,
            item_id=item_id,
            output_index=0,
            content_index=0,
            delta=_audio_ref("output", self._out_ms, ms),
        )
        self._out_ms += ms

    def assistant_done(self, t: float, response_id: str, item_id: str, transcript: str) -> dict[str, Any]:
        common = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        self.server(t, "response.output_audio.done", **common)
        self.server(t, "response.output_audio_transcript.done", transcript=transcript, **common)
        self.server(
            t, "response.content_part.done", part={"type": "audio", "transcript": transcript}, **common
        )
        item = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "object": "realtime.item",
            "status": "completed",
            "content": [{"type": "output_audio", "transcript": transcript}],
        }
        self.server(t, "conversation.item.done", item=item)
        self.server(t, "response.output_item.done", response_id=response_id, output_index=0, item=item)
        return item

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.json").write_text(json.dumps(self.meta))
        with (folder / "events.jsonl").open("w") as fh:
            for record in sorted(self.events, key=lambda r: r["t_ms"]):
                fh.write(json.dumps(record) + "\n")
        return folder


def usage_of(
    inp: int, out: int, text_in: int, audio_in: int, text_out: int, audio_out: int, cached: int = 0
) -> dict[str, Any]:
    return {
        "total_tokens": inp + out,
        "input_tokens": inp,
        "output_tokens": out,
        "input_token_details": {"text_tokens": text_in, "audio_tokens": audio_in, "cached_tokens": cached},
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }


def support_call(b: Builder) -> None:
    """Three server-VAD turns: a tool call, a barged-in handoff reply, a guardrail trip."""
    for i in range(30):
        b.append(700 + i * 100)
    # turn 0: "where is my order" -> function call -> tool output -> spoken answer
    b.server(1000, "input_audio_buffer.speech_started", audio_start_ms=700, item_id="item_U1")
    b.server(2500, "input_audio_buffer.speech_stopped", audio_end_ms=2300, item_id="item_U1")
    b.server(2510, "input_audio_buffer.committed", item_id="item_U1", previous_item_id=None)
    b.user_item(2520, "item_U1", None)
    b.response_created(2540, "resp_1")
    call = {
        "id": "item_F1",
        "type": "function_call",
        "object": "realtime.item",
        "status": "in_progress",
        "call_id": "call_1",
        "name": "lookup_order",
        "arguments": "",
    }
    b.server(2600, "response.output_item.added", response_id="resp_1", output_index=0, item=call)
    b.server(2605, "conversation.item.added", item=call, previous_item_id="item_U1")
    b.server(
        2700,
        "response.function_call_arguments.done",
        response_id="resp_1",
        item_id="item_F1",
        output_index=0,
        call_id="call_1",
        name="lookup_order",
        arguments='{"order_id": "A17"}',
    )
    call = {**call, "status": "completed", "arguments": '{"order_id": "A17"}'}
    b.server(2710, "conversation.item.done", item=call, previous_item_id="item_U1")
    b.server(2710, "response.output_item.done", response_id="resp_1", output_index=0, item=call)
    b.response_done(2720, "resp_1", "completed", [call], usage_of(100, 20, 40, 60, 20, 0, cached=30))
    b.server(
        2800,
        "conversation.item.input_audio_transcription.completed",
        item_id="item_U1",
        content_index=0,
        transcript="where is my order",
        usage={"type": "duration", "seconds": 1.6},
    )
    b.app(
        2722,
        "tool_start",
        call_id="call_1",
        name="lookup_order",
        arguments='{"order_id": "A17"}',
        agent="triage",
    )
    b.app(
        2900,
        "tool_call",
        call_id="call_1",
        name="lookup_order",
        arguments='{"order_id": "A17"}',
        output='{"status": "shipped"}',
        stub_kind="fixed",
        approval=None,
        started_ms=12.0,  # the agent runtime's own clock
        duration_ms=150.0,
        error=None,
    )
    output_item = {
        "id": "item_O1",
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"status": "shipped"}',
    }
    b.client(2905, "conversation.item.create", item=output_item)
    b.server(
        2910,
        "conversation.item.added",
        item={**output_item, "object": "realtime.item", "status": "completed"},
        previous_item_id="item_F1",
    )
    b.client(2915, "response.create")
    b.response_created(2950, "resp_2")
    b.assistant_start(2960, "resp_2", "item_A1", "item_O1")
    b.transcript_delta(3000, "resp_2", "item_A1", "Your order ")
    b.audio_delta(3050, "resp_2", "item_A1")
    b.transcript_delta(3060, "resp_2", "item_A1", "has shipped.")
    b.audio_delta(3100, "resp_2", "item_A1")
    b.audio_delta(3150, "resp_2", "item_A1")
    a1 = b.assistant_done(3200, "resp_2", "item_A1", "Your order has shipped.")
    b.response_done(3210, "resp_2", "completed", [a1], usage_of(150, 80, 90, 60, 20, 60))
    # turn 1: a handoff, then the reply is interrupted by turn 2
    b.app(4000, "handoff", from_agent="triage", to_agent="billing")
    b.server(5000, "input_audio_buffer.speech_started", audio_start_ms=4700, item_id="item_U2")
    b.server(5600, "input_audio_buffer.speech_stopped", audio_end_ms=5400, item_id="item_U2")
    b.server(5610, "input_audio_buffer.committed", item_id="item_U2", previous_item_id="item_A1")
    b.user_item(5620, "item_U2", "item_A1")
    b.response_created(5630, "resp_3")
    b.assistant_start(5640, "resp_3", "item_A2", "item_U2")
    b.transcript_delta(5700, "resp_3", "item_A2", "Let me check")
    b.audio_delta(5720, "resp_3", "item_A2")
    b.audio_delta(5740, "resp_3", "item_A2")
    b.audio_delta(5760, "resp_3", "item_A2")
    b.server(6000, "input_audio_buffer.speech_started", audio_start_ms=5900, item_id="item_U3")
    a2 = {
        "id": "item_A2",
        "type": "message",
        "role": "assistant",
        "object": "realtime.item",
        "status": "incomplete",
        "content": [{"type": "output_audio", "transcript": "Let me check"}],
    }
    b.response_done(
        6010, "resp_3", "cancelled", [a2], usage_of(200, 30, 100, 100, 10, 20), reason="turn_detected"
    )
    b.app(6020, "audio_interrupted", item_id="item_A2", content_index=0, played_ms=150.0)
    b.client(6030, "conversation.item.truncate", item_id="item_A2", content_index=0, audio_end_ms=150)
    b.server(6040, "conversation.item.truncated", item_id="item_A2", content_index=0, audio_end_ms=150)
    # turn 2: the reply trips a guardrail
    b.server(6500, "input_audio_buffer.speech_stopped", audio_end_ms=6400, item_id="item_U3")
    b.server(6510, "input_audio_buffer.committed", item_id="item_U3", previous_item_id="item_A2")
    b.user_item(6520, "item_U3", "item_A2")
    b.response_created(6530, "resp_4")
    b.assistant_start(6540, "resp_4", "item_A3", "item_U3")
    b.audio_delta(6600, "resp_4", "item_A3")
    b.transcript_delta(6650, "resp_4", "item_A3", "You will surely get a refund")
    b.app(
        6800,
        "guardrail_tripped",
        guardrail="no_refund_promises",
        item_id="item_A3",
        text="You will surely get a refund",
        played_ms=80.0,
        follow_up="I cannot promise a refund.",
    )
    a3 = b.assistant_done(6890, "resp_4", "item_A3", "You will surely get a refund")
    b.response_done(6900, "resp_4", "completed", [a3], None)


@pytest.fixture
def support(tmp_path: Path) -> Path:
    b = Builder()
    support_call(b)
    return b.write(tmp_path / "support")


# ----------------------------------------------------------------------------------------------------
# schemas


def _dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in frame.dtypes.items()}


TABLES = {
    "history": (tables.history, tables.HISTORY_COLUMNS),
    "turns": (tables.turns, tables.TURN_COLUMNS),
    "tool_calls": (tables.tool_calls, tables.TOOL_CALL_COLUMNS),
    "guardrail_trips": (tables.guardrail_trips, tables.GUARDRAIL_COLUMNS),
    "usage": (tables.usage, tables.USAGE_COLUMNS),
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_columns_and_dtypes(name: str, support: Path) -> None:
    build, schema = TABLES[name]
    frame = build(support)
    assert list(frame.columns) == list(schema)
    assert _dtypes(frame) == schema


@pytest.mark.parametrize("name", sorted(TABLES))
def test_empty_recording_gives_empty_frames_with_the_schema(name: str, tmp_path: Path) -> None:
    folder = Builder().write(tmp_path / "empty")
    build, schema = TABLES[name]
    frame = build(folder)
    assert len(frame) == 0
    assert list(frame.columns) == list(schema)
    assert _dtypes(frame) == schema


def test_exact_schemas() -> None:
    assert list(tables.HISTORY_COLUMNS) == [
        "item_id",
        "previous_item_id",
        "role_or_type",
        "agent",
        "text",
        "audio_ms",
        "status",
        "interrupted",
        "truncated_ms",
        "start_ms",
        "end_ms",
    ]
    assert tables.HISTORY_COLUMNS["audio_ms"] == "float64"
    assert tables.HISTORY_COLUMNS["interrupted"] == "bool"
    assert list(tables.USAGE_COLUMNS)[:2] == ["response_id", "status"]
    assert tables.USAGE_COLUMNS["cached_tokens"] == "Int64"
    assert tables.TOOL_CALL_COLUMNS["arguments"] == "object"


# ----------------------------------------------------------------------------------------------------
# exact values


def test_history_exact(support: Path) -> None:
    h = tables.history(support)
    assert h["item_id"].tolist() == [
        "item_U1",
        "item_F1",
        "item_O1",
        "item_A1",
        "item_U2",
        "item_A2",
        "item_U3",
        "item_A3",
    ]
    assert h["previous_item_id"].tolist() == [
        pd.NA,
        "item_U1",
        "item_F1",
        "item_O1",
        "item_A1",
        "item_U2",
        "item_A2",
        "item_U3",
    ]
    assert h["role_or_type"].tolist() == [
        "user",
        "function_call",
        "function_call_output",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert h["agent"].tolist() == ["triage"] * 4 + ["billing"] * 4
    assert h["text"].tolist() == [
        "where is my order",
        'lookup_order({"order_id": "A17"})',
        '{"status": "shipped"}',
        "Your order has shipped.",
        pd.NA,
        "Let me check",
        pd.NA,
        "You will surely get a refund",
    ]
    assert h["audio_ms"].tolist() == [1600.0, 0.0, 0.0, 300.0, 700.0, 300.0, 500.0, 100.0]
    assert h["status"].tolist() == [
        "completed",
        "completed",
        "completed",
        "completed",
        "completed",
        "incomplete",
        "completed",
        "completed",
    ]
    assert h["interrupted"].tolist() == [False] * 5 + [True, False, False]
    assert h.loc[5, "truncated_ms"] == 150.0
    assert h["truncated_ms"].drop(index=5).isna().all()
    assert h["start_ms"].tolist() == [1000.0, 2600.0, 2910.0, 2960.0, 5000.0, 5640.0, 6000.0, 6540.0]
    assert h["end_ms"].tolist() == [2530.0, 2720.0, 2910.0, 3210.0, 5630.0, 6040.0, 6530.0, 6900.0]


def test_turns_exact(support: Path) -> None:
    t = tables.turns(support)
    assert t["turn"].tolist() == [0, 1, 2]
    assert t["item_id"].tolist() == ["item_U1", "item_U2", "item_U3"]
    assert t["kind"].tolist() == ["vad"] * 3
    assert t["speech_start_ms"].tolist() == [1000.0, 5000.0, 6000.0]
    assert t["speech_stop_ms"].tolist() == [2500.0, 5600.0, 6500.0]
    assert t["audio_start_ms"].tolist() == [700.0, 4700.0, 5900.0]
    assert t["audio_end_ms"].tolist() == [2300.0, 5400.0, 6400.0]
    assert t["committed_ms"].tolist() == [2510.0, 5610.0, 6510.0]
    assert t["response_id"].tolist() == ["resp_1", "resp_3", "resp_4"]
    assert t["response_created_ms"].tolist() == [2540.0, 5630.0, 6530.0]
    assert t["first_audio_ms"].tolist() == [3050.0, 5720.0, 6600.0]
    assert t["first_transcript_ms"].tolist() == [3000.0, 5700.0, 6650.0]
    assert t["response_done_ms"].tolist() == [3210.0, 6010.0, 6900.0]
    assert t["status"].tolist() == ["completed", "cancelled", "completed"]
    assert t["eos_to_first_audio_ms"].tolist() == [550.0, 120.0, 100.0]
    assert t["eos_to_first_transcript_ms"].tolist() == [500.0, 100.0, 150.0]
    assert t["tool_ms"].tolist() == [150.0, 0.0, 0.0]
    assert t["interrupted"].tolist() == [False, True, False]


def test_tool_calls_from_app_events(support: Path) -> None:
    calls = tables.tool_calls(support)
    assert len(calls) == 1
    row = calls.iloc[0]
    assert row["call_id"] == "call_1"
    assert row["name"] == "lookup_order"
    assert row["arguments"] == {"order_id": "A17"}
    assert row["output"] == '{"status": "shipped"}'
    assert row["stub_kind"] == "fixed"
    assert row["approval"] is pd.NA
    assert row["started_ms"] == 2722.0  # the tool_start app event, on the session clock
    assert row["duration_ms"] == 150.0
    assert row["error"] is pd.NA


def test_tool_call_start_without_a_tool_start_event(support: Path) -> None:
    lines = (support / "events.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["type"] != "tool_start"]
    (support / "events.jsonl").write_text("\n".join(kept) + "\n")
    assert tables.tool_calls(support)["started_ms"].tolist() == [2750.0]  # t_ms 2900 - duration 150


def test_tool_calls_from_items_when_there_are_no_app_events(support: Path) -> None:
    lines = (support / "events.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["type"] != "tool_call"]
    (support / "events.jsonl").write_text("\n".join(kept) + "\n")
    calls = tables.tool_calls(support)
    assert calls["call_id"].tolist() == ["call_1"]
    assert calls["arguments"].tolist() == [{"order_id": "A17"}]
    assert calls["output"].tolist() == ['{"status": "shipped"}']
    # from the function_call item's last event (response.done at 2720) to the client's output at 2905
    assert calls["started_ms"].tolist() == [2720.0]
    assert calls["duration_ms"].tolist() == [185.0]
    assert calls[["stub_kind", "approval", "error"]].isna().all().all()
    assert tables.turns(support)["tool_ms"].tolist() == [185.0, 0.0, 0.0]


def test_guardrail_trips_exact(support: Path) -> None:
    g = tables.guardrail_trips(support)
    assert g.to_dict("records") == [
        {
            "guardrail": "no_refund_promises",
            "item_id": "item_A3",
            "text": "You will surely get a refund",
            "played_ms": 80.0,
            "follow_up": "I cannot promise a refund.",
            "t_ms": 6800.0,
        }
    ]


def test_usage_exact(support: Path) -> None:
    u = tables.usage(support)
    assert u["response_id"].tolist() == ["resp_1", "resp_2", "resp_3", "resp_4"]
    assert u["status"].tolist() == ["completed", "completed", "cancelled", "completed"]
    assert u["input_tokens"].tolist() == [100, 150, 200, pd.NA]
    assert u["output_tokens"].tolist() == [20, 80, 30, pd.NA]
    assert u["total_tokens"].tolist() == [120, 230, 230, pd.NA]
    assert u["input_text_tokens"].tolist() == [40, 90, 100, pd.NA]
    assert u["input_audio_tokens"].tolist() == [60, 60, 100, pd.NA]
    assert u["output_text_tokens"].tolist() == [20, 20, 10, pd.NA]
    assert u["output_audio_tokens"].tolist() == [0, 60, 20, pd.NA]
    assert u["cached_tokens"].tolist() == [30, 0, 0, pd.NA]
    assert u["t_ms"].tolist() == [2720.0, 3210.0, 6010.0, 6900.0]


def test_compare_runs(support: Path, tmp_path: Path) -> None:
    manual = manual_recording(tmp_path / "manual")
    c = tables.compare({"v1": support, "v2": manual})
    assert c.index.tolist() == ["v1", "v2"]
    assert c.index.name == "run"
    assert list(c.columns) == list(tables.COMPARE_COLUMNS)
    assert _dtypes(c) == tables.COMPARE_COLUMNS
    v1 = c.loc["v1"]
    assert v1["turns"] == 3
    assert v1["responses"] == 4
    assert v1["median_eos_to_first_audio_ms"] == 120.0
    assert v1["median_eos_to_first_transcript_ms"] == 150.0
    assert v1["tool_calls"] == 1
    assert v1["tool_errors"] == 0
    assert v1["guardrail_trips"] == 1
    assert v1["interruptions"] == 1
    assert v1["input_tokens"] == 450
    assert v1["output_tokens"] == 130
    assert v1["total_tokens"] == 580
    assert c.loc["v2", "turns"] == 2
    assert c.loc["v2", "median_eos_to_first_audio_ms"] == 245.0


def test_compare_empty_mapping_and_bad_argument() -> None:
    c = tables.compare({})
    assert len(c) == 0 and list(c.columns) == list(tables.COMPARE_COLUMNS)
    with pytest.raises(ConfigError, match="mapping of run label"):
        tables.compare([1, 2])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------
# manual commits and text turns


def manual_recording(folder: Path) -> Path:
    b = Builder(agent=None)
    for i in range(8):  # 800 ms, committed by the client
        b.append(100 + i * 100)
    b.client(1000, "input_audio_buffer.commit")
    b.server(1020, "input_audio_buffer.committed", item_id="item_M1", previous_item_id=None)
    b.user_item(1030, "item_M1", None)
    b.client(1040, "response.create")
    b.response_created(1100, "resp_m1")
    b.assistant_start(1110, "resp_m1", "item_MA1", "item_M1")
    b.transcript_delta(1200, "resp_m1", "item_MA1", "Hi")
    b.audio_delta(1220, "resp_m1", "item_MA1")
    done = b.assistant_done(1300, "resp_m1", "item_MA1", "Hi")
    b.response_done(1310, "resp_m1", "completed", [done], usage_of(10, 5, 10, 0, 5, 0))
    # a typed user message
    b.client(
        2000,
        "conversation.item.create",
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks"}]},
    )
    text_item = {
        "id": "item_T1",
        "type": "message",
        "role": "user",
        "object": "realtime.item",
        "status": "completed",
        "content": [{"type": "input_text", "text": "Thanks"}],
    }
    b.server(2010, "conversation.item.added", item=text_item, previous_item_id="item_MA1")
    b.server(2020, "conversation.item.done", item=text_item, previous_item_id="item_MA1")
    b.client(2030, "response.create")
    b.response_created(2040, "resp_m2")
    b.assistant_start(2050, "resp_m2", "item_MA2", "item_T1")
    b.transcript_delta(2200, "resp_m2", "item_MA2", "You are welcome")
    b.audio_delta(2300, "resp_m2", "item_MA2")
    # a cleared buffer does not count towards the next commit
    b.append(2400)
    b.client(2500, "input_audio_buffer.clear")
    b.server(2510, "input_audio_buffer.cleared")
    done = b.assistant_done(2600, "resp_m2", "item_MA2", "You are welcome")
    b.response_done(2610, "resp_m2", "completed", [done], usage_of(20, 6, 20, 0, 6, 0))
    return b.write(folder)


def test_manual_and_text_turns(tmp_path: Path) -> None:
    folder = manual_recording(tmp_path / "manual")
    t = tables.turns(folder)
    assert t["kind"].tolist() == ["manual", "text"]
    assert t["item_id"].tolist() == ["item_M1", "item_T1"]
    assert t["speech_stop_ms"].isna().all()
    assert t["committed_ms"].tolist() == [1020.0, 2010.0]
    assert t["eos_to_first_audio_ms"].tolist() == [200.0, 290.0]
    assert t["eos_to_first_transcript_ms"].tolist() == [180.0, 190.0]
    h = tables.history(folder)
    assert h["item_id"].tolist() == ["item_M1", "item_MA1", "item_T1", "item_MA2"]
    assert h["audio_ms"].tolist() == [800.0, 100.0, 0.0, 100.0]
    assert h["text"].tolist() == [pd.NA, "Hi", "Thanks", "You are welcome"]
    assert h["agent"].isna().all()


# ----------------------------------------------------------------------------------------------------
# inputs


class FakeRecording:
    def __init__(self, folder: Path) -> None:
        self.meta = json.loads((folder / "meta.json").read_text())
        self.events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


class FakeSession:
    def __init__(self, folder: Path | None) -> None:
        self.recording_path = folder


def test_accepts_recording_objects_sessions_and_event_files(support: Path) -> None:
    expected = tables.turns(support)
    pd.testing.assert_frame_equal(tables.turns(FakeRecording(support)), expected)
    pd.testing.assert_frame_equal(tables.turns(FakeSession(support)), expected)
    pd.testing.assert_frame_equal(tables.turns(str(support / "events.jsonl")), expected)


def test_a_session_that_records_nothing_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="record_dir=False"):
        tables.turns(FakeSession(None))


def test_a_partly_written_last_line_is_skipped(support: Path) -> None:
    with (support / "events.jsonl").open("a") as fh:
        fh.write('{"t_ms": 7000.0, "dir": "server", "type": "response.cre')
    assert len(tables.usage(support)) == 4


def test_a_corrupt_line_in_the_middle_is_an_error(support: Path) -> None:
    lines = (support / "events.jsonl").read_text().splitlines()
    lines.insert(3, "{not json")
    (support / "events.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="line 4 is not valid JSON"):
        tables.history(support)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        tables.history(tmp_path / "nope")


def test_folder_without_events_is_not_a_recording(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a voicelab recording"):
        tables.turns(tmp_path)


def test_unknown_object_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="cannot read a int"):
        tables.usage(42)


def test_unknown_event_types_and_raw_base64_audio(tmp_path: Path) -> None:
    b = Builder()
    b.events.append({"t_ms": 1.0, "dir": "server", "type": "some.future.event", "event": {"x": 1}})
    b.response_created(10, "resp_x")
    b.assistant_start(20, "resp_x", "item_X", "root")
    # audio kept inline (not replaced by a $audio reference): 4800 bytes = 100 ms of PCM16 at 24 kHz
    b.events.append(
        {
            "t_ms": 50.0,
            "dir": "server",
            "type": "response.output_audio.delta",
            "event": {
                "type": "response.output_audio.delta",
                "response_id": "resp_x",
                "item_id": "item_X",
                "output_index": 0,
                "content_index": 0,
                "delta": base64.b64encode(bytes(4800)).decode(),
            },
        }
    )
    folder = b.write(tmp_path / "raw")
    h = tables.history(folder)
    assert h["audio_ms"].tolist() == [100.0]
    assert h["previous_item_id"].tolist() == ["root"]
    assert len(tables.turns(folder)) == 0  # a response with no user turn before it belongs to no turn


# ----------------------------------------------------------------------------------------------------
# real recordings from the embedded server


def _check_turn_order(t: pd.DataFrame) -> None:
    """Times of every answered turn follow the protocol's order on the session clock."""
    eos = t["speech_stop_ms"].fillna(t["committed_ms"])
    assert (eos <= t["committed_ms"]).all()
    assert (t["committed_ms"] <= t["response_created_ms"]).all()
    assert (t["response_created_ms"] < t["first_audio_ms"]).all()
    assert (t["first_audio_ms"] <= t["response_done_ms"]).all()
    assert (t["eos_to_first_audio_ms"] > 0).all()
    assert (t["eos_to_first_transcript_ms"] > 0).all()
    assert (t["eos_to_first_audio_ms"] == t["first_audio_ms"] - eos).all()


@pytest.fixture(scope="module")
def agents_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The agents engineer's acceptance conversation (tests/agents/agents_helpers.py), recorded once."""
    sys.path.insert(0, str(Path(__file__).parent / "agents"))
    try:
        from agents_helpers import record_agents_demo
    finally:
        sys.path.pop(0)
    return record_agents_demo(tmp_path_factory.mktemp("tables_agents") / "recording")


def test_agents_acceptance_conversation(agents_demo: Path) -> None:
    rec = voicelab.load_recording(agents_demo)
    server_done = [e for e in rec.events if e["dir"] == "server" and e["type"] == "response.done"]

    calls = tables.tool_calls(rec)
    assert calls["name"].tolist() == [
        "lookup_order",
        "check_stock",
        "issue_refund",
        "transfer_to_returns_desk",
    ]
    assert calls["stub_kind"].tolist() == ["template", "manual", pd.NA, pd.NA]
    assert calls["approval"].tolist() == [pd.NA, pd.NA, "approved", pd.NA]
    assert calls["arguments"].tolist() == [
        {"order_number": "A12"},
        {"product": "blue mugs"},
        {"order_number": "A12"},
        {},
    ]
    assert calls["output"].tolist()[:3] == ["Order A12 ships Friday.", "3 left", "Refund for A12 issued."]
    assert calls["error"].isna().all()
    assert (calls["duration_ms"] >= 0).all()

    h = tables.history(rec)
    assert h["item_id"].is_unique
    assert h["previous_item_id"].iloc[1:].tolist() == h["item_id"].iloc[:-1].tolist()
    handoff_at = h.index[h["role_or_type"].eq("function_call") & h["text"].str.startswith("transfer_to")][0]
    assert set(h["agent"].iloc[: handoff_at + 1]) == {"Front Desk"}
    assert set(h["agent"].iloc[handoff_at + 1 :]) == {"Returns Desk"}
    assert h["text"].iloc[-1].startswith("Returns desk here")
    assistant = h[h["role_or_type"] == "assistant"]
    assert (assistant["audio_ms"] > 0).all()
    assert (h["end_ms"] >= h["start_ms"]).all()

    trips = tables.guardrail_trips(rec)
    assert trips["guardrail"].tolist() == ["no_competitor"]
    tripped = h.set_index("item_id").loc[trips["item_id"].iloc[0]]
    assert tripped["role_or_type"] == "assistant"
    assert bool(tripped["interrupted"])
    assert trips["follow_up"].iloc[0] in h["text"].tolist()  # the follow-up was sent as a user message

    t = tables.turns(rec)
    user_texts = h[h["role_or_type"] == "user"]
    assert t["item_id"].tolist() == user_texts["item_id"].tolist()
    assert set(t["kind"]) == {"text"}
    _check_turn_order(t)
    assert (t["tool_ms"] > 0).tolist() == [True, True, True, False, False, True, False]
    assert t["interrupted"].tolist() == [False, False, False, True, False, False, False]
    assert t.loc[t["tool_ms"] > 0, "tool_ms"].sum() == pytest.approx(calls["duration_ms"].sum())

    u = tables.usage(rec)
    assert u["response_id"].tolist() == [e["event"]["response"]["id"] for e in server_done]
    assert (u["total_tokens"] == u["input_tokens"] + u["output_tokens"]).all()

    summary = tables.compare({"acceptance": rec}).loc["acceptance"]
    assert summary["turns"] == len(t)
    assert summary["responses"] == len(server_done)
    assert summary["tool_calls"] == 4
    assert summary["guardrail_trips"] == 1
    assert summary["interruptions"] == 1
    assert summary["total_tokens"] == u["total_tokens"].sum()
    assert summary["median_eos_to_first_audio_ms"] == t["eos_to_first_audio_ms"].median()


RETURNS_LINES = [
    "Hi, I would like to return an order.",
    "The order number is four five six seven.",
    "Yes, please send me the return label.",
    "No, that is all. Thank you, goodbye.",
]


async def test_voice_session_through_server_vad(tmp_path: Path) -> None:
    from voicelab.caller import play_turns
    from voicelab.server import serve_async
    from voicelab.speech import synthesize

    @voicelab.tool
    def lookup_order(order_number: str) -> str:
        """Look up an order by its number."""
        raise NotImplementedError

    @voicelab.tool
    def create_return_label(delivery: str = "email") -> str:
        """Create a prepaid return label."""
        raise NotImplementedError

    stubs = (
        voicelab.Stubs()
        .template("lookup_order", "Order {order_number} can be returned.")
        .template("create_return_label", "Label sent by {delivery}.")
    )
    agent = voicelab.Agent(
        name="returns_desk",
        tools=[lookup_order, create_return_label],
        stubs=stubs,
        turn_detection={"type": "server_vad", "silence_duration_ms": 500},
        transcription={"model": "gpt-4o-mini-transcribe"},
    )
    server = await serve_async("returns_desk", pace="fast")
    try:
        async with voicelab.connect(agent, url=server.url, record_dir=tmp_path / "rec") as session:
            await play_turns(session, [synthesize(line) for line in RETURNS_LINES], realtime=False)
    finally:
        await server.aclose()
    rec = voicelab.load_recording(tmp_path / "rec")

    h = tables.history(rec)
    assert h["role_or_type"].tolist() == [
        "user", "assistant",
        "user", "function_call", "function_call_output", "assistant",
        "user", "function_call", "function_call_output", "assistant",
        "user", "assistant",
    ]  # fmt: skip
    users = h[h["role_or_type"] == "user"]
    assert users["text"].tolist() == RETURNS_LINES  # input transcription (grammar ASR, exact on these lines)
    assert set(h["agent"]) == {"returns_desk"}
    assert not h["interrupted"].any()

    t = tables.turns(rec)
    assert len(t) == 4
    assert set(t["kind"]) == {"vad"}
    assert t["item_id"].tolist() == users["item_id"].tolist()
    assert (t["speech_start_ms"] < t["speech_stop_ms"]).all()
    _check_turn_order(t)
    # user audio in history is the server VAD span of its turn
    assert users["audio_ms"].tolist() == (t["audio_end_ms"] - t["audio_start_ms"]).tolist()
    assert ((users["audio_ms"] > 1000) & (users["audio_ms"] < 5000)).all()
    assert (t["tool_ms"] > 0).tolist() == [False, True, True, False]
    assert t["status"].tolist() == ["completed"] * 4
    assert not t["interrupted"].any()

    calls = tables.tool_calls(rec)
    assert calls["name"].tolist() == ["lookup_order", "create_return_label"]
    assert calls["output"].tolist() == ["Order four five six seven can be returned.", "Label sent by email."]
    assert calls["stub_kind"].tolist() == ["template", "template"]

    u = tables.usage(rec)
    assert len(u) == 6  # one per answer, plus one per function call
    assert u["status"].tolist() == ["completed"] * 6


def test_inserted_and_deleted_items(tmp_path: Path) -> None:
    b = Builder()
    for t, item_id, previous in ((10, "item_a", None), (20, "item_b", "item_a"), (30, "item_c", "item_a")):
        item = {
            "id": item_id,
            "type": "message",
            "role": "system",
            "object": "realtime.item",
            "status": "completed",
            "content": [{"type": "input_text", "text": item_id[-1]}],
        }
        b.server(t, "conversation.item.added", item=item, previous_item_id=previous)
    b.server(40, "conversation.item.deleted", item_id="item_b")
    h = tables.history(b.write(tmp_path / "insert"))
    assert h["item_id"].tolist() == ["item_a", "item_c", "item_b"]  # item_c was inserted after item_a
    assert h["previous_item_id"].tolist() == [pd.NA, "item_a", "item_a"]
    assert h["status"].tolist() == ["completed", "completed", "deleted"]
    assert h["text"].tolist() == ["a", "c", "b"]
    assert h["role_or_type"].tolist() == ["system"] * 3


def test_speech_end_from_the_vad_span_and_the_silence_setting(tmp_path: Path) -> None:
    """speech_end_ms = first input audio position + audio_end_ms - silence_duration_ms (server_vad)."""
    b = Builder()
    vad = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 400}
    b.server(5, "session.updated", session={"type": "realtime", "audio": {"input": {"turn_detection": vad}}})
    b._in_ms = 250.0  # the first input chunk sits at 250 ms on the session clock
    for i in range(30):
        b.append(250 + i * 100)
    b.server(1000, "input_audio_buffer.speech_started", audio_start_ms=400, item_id="item_U1")
    b.server(2600, "input_audio_buffer.speech_stopped", audio_end_ms=2300, item_id="item_U1")
    b.server(2610, "input_audio_buffer.committed", item_id="item_U1", previous_item_id=None)
    b.user_item(2620, "item_U1", None)
    b.response_created(2640, "resp_1")
    b.assistant_start(2650, "resp_1", "item_A1", "item_U1")
    b.audio_delta(2800, "resp_1", "item_A1")
    b.assistant_done(2900, "resp_1", "item_A1", "Hello.")
    b.response_done(2950, "resp_1", "completed", [], None)
    t = tables.turns(b.write(tmp_path / "rec"))
    assert t["speech_end_ms"].tolist() == [250.0 + 2300.0 - 400.0]
    assert t["speech_end_to_first_audio_ms"].tolist() == [2800.0 - 2150.0]
    assert t["eos_to_first_audio_ms"].tolist() == [200.0]  # from speech_stopped at 2600


def test_speech_end_is_unknown_without_server_vad_settings(support: Path) -> None:
    t = tables.turns(support)  # no session.updated in this recording: the silence duration is unknown
    assert t["speech_end_ms"].isna().all() and t["speech_end_to_first_audio_ms"].isna().all()


def test_the_tables_of_one_recording_parse_its_events_once(monkeypatch, tmp_path) -> None:
    """The tables of one Recording share one parse of its events; a changed one is parsed again."""
    import voicelab.tables as tables_module

    rec = voicelab.Recording(path=tmp_path, meta={}, events=[], input=None, output=None)  # type: ignore[arg-type]
    built: list[int] = []
    original = tables_module._Conversation.__init__

    def counting(self, source):  # type: ignore[no-untyped-def]
        built.append(len(source.events))
        original(self, source)

    monkeypatch.setattr(tables_module._Conversation, "__init__", counting)
    tables_module.history(rec)
    tables_module.turns(rec)
    tables_module.tool_calls(rec)
    assert built == [0]
    rec.events.append({"t_ms": 1.0, "dir": "client", "type": "session.update", "event": {}})
    tables_module.history(rec)
    assert built == [0, 1]
