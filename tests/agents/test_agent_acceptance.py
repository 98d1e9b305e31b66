"""Acceptance: one recorded conversation through the embedded server with every agent feature."""

from __future__ import annotations

import json
from pathlib import Path

import voicelab


def _app_events(recording: Path) -> list[dict]:
    rows = [
        json.loads(line) for line in (recording / "events.jsonl").read_text().splitlines() if line.strip()
    ]
    return [row for row in rows if row["dir"] == "app"]


def test_acceptance_conversation_recording(agents_demo_recording: Path) -> None:
    rec = voicelab.load_recording(agents_demo_recording)
    app = [e for e in rec.events if e["dir"] == "app"]
    calls = [e["event"] for e in app if e["type"] == "tool_call"]
    assert [(c["name"], c["stub_kind"], c["approval"], c["error"]) for c in calls] == [
        ("lookup_order", "template", None, None),
        ("check_stock", "manual", None, None),
        ("issue_refund", None, "approved", None),
        ("transfer_to_returns_desk", None, None, None),
    ]
    assert [c["output"] for c in calls] == [
        "Order A12 ships Friday.",
        "3 left",
        "Refund for A12 issued.",
        '{"assistant": "Returns Desk"}',
    ]
    assert json.loads(calls[0]["arguments"]) == {"order_number": "A12"}
    for call in calls:
        assert call["duration_ms"] >= 0 and call["started_ms"] > 0
    (approval,) = [e["event"] for e in app if e["type"] == "tool_approval_required"]
    assert approval == {
        "call_id": calls[2]["call_id"],
        "name": "issue_refund",
        "arguments": '{"order_number": "A12"}',
    }
    (trip,) = [e["event"] for e in app if e["type"] == "guardrail_tripped"]
    assert trip["guardrail"] == "no_competitor"
    assert "Globex" in trip["text"]
    assert trip["follow_up"] == "guardrail triggered: no_competitor"
    assert trip["played_ms"] is not None and trip["played_ms"] >= 0
    (handoff,) = [e["event"] for e in app if e["type"] == "handoff"]
    assert (handoff["from_agent"], handoff["to_agent"]) == ("Front Desk", "Returns Desk")
    client = [e for e in rec.events if e["dir"] == "client"]
    truncates = [e["event"] for e in client if e["type"] == "conversation.item.truncate"]
    assert [t["item_id"] for t in truncates] == [trip["item_id"]]
    assert truncates[0]["audio_end_ms"] == trip["played_ms"]
    follow_ups = [
        e["event"]["item"]["content"][0]["text"]
        for e in client
        if e["type"] == "conversation.item.create" and e["event"]["item"].get("role") == "user"
    ]
    assert "guardrail triggered: no_competitor" in follow_ups
    updates = [e["event"]["session"] for e in client if e["type"] == "session.update"]
    assert updates[-1]["instructions"].startswith("You are the returns desk")
    assert [t["name"] for t in updates[-1]["tools"]] == []
    outputs = [
        e["event"]["item"]
        for e in client
        if e["type"] == "conversation.item.create" and e["event"]["item"]["type"] == "function_call_output"
    ]
    assert [o["output"] for o in outputs] == [c["output"] for c in calls]
    assert rec.output.duration_ms > 0
