"""The agent runtime on real sessions against the embedded server (voicelab/data/scripts/agents_demo.yaml)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agents_helpers import FRONT_INSTRUCTIONS, SCRIPT, Collector, demo_agents

import voicelab
from voicelab.agents import (
    DEFAULT_REJECTION_MESSAGE,
    Agent,
    AgentHandoff,
    GuardrailTripped,
    Stubs,
    ToolApprovalRequired,
    ToolCall,
    ToolContext,
    TransferAgents,
    output_guardrail,
    send_message,
    tool,
    update_history,
)
from voicelab.events import Error, TranscriptDone
from voicelab.server import serve_async


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    server = await serve_async(SCRIPT, pace="fast")
    yield server.url
    await server.aclose()


async def _run(agent: Agent, url: str, record: Path | bool = False) -> tuple[Any, Collector]:
    session = voicelab.connect(agent, url=url, record_dir=record)
    await session.open()
    return session, Collector(session)


async def _close(session: Any, events: Collector) -> None:
    await events.close()
    await session.close()


def _client_events(recording: Path, kind: str) -> list[dict]:
    rows = [json.loads(line) for line in (recording / "events.jsonl").read_text().splitlines()]
    return [r["event"] for r in rows if r["dir"] == "client" and r["type"] == kind]


async def test_stubbed_tool_overrides_implementation(server_url: str) -> None:
    stubs = Stubs().sequence("lookup_order", ["Ships Friday."], then="error")
    front, _ = demo_agents(stubs)
    session, events = await _run(front, server_url)
    assert await events.turn("Where is my order A12?") == "Here is what I found: Ships Friday."
    reply = await events.turn("Where is my order B7?")
    assert reply.startswith("Here is what I found: An error occurred while running the tool lookup_order.")
    first, second = events.of_type(ToolCall)
    assert (first.stub_kind, first.output, first.error) == ("sequence", "Ships Friday.", None)
    assert second.error == "stub sequence for 'lookup_order' has only 1 outputs (call 2)"
    assert [e.code for e in events.of_type(Error)] == ["tool_error"]
    await _close(session, events)


async def test_implementation_runs_with_a_history_snapshot(server_url: str) -> None:
    seen: list[tuple[int, str, str]] = []

    @tool(name="lookup_order")
    async def lookup(ctx: ToolContext, order_number: str) -> dict:
        """Look up an order."""
        users = [i for i in ctx.history if getattr(i, "role", None) == "user"]
        seen.append((len(users), ctx.agent.name, ctx.call_id))
        return {"order": order_number, "status": "packed"}

    agent = Agent(name="shop", instructions=FRONT_INSTRUCTIONS, tools=[lookup])
    session, events = await _run(agent, server_url)
    reply = await events.turn("Where is my order A12?")
    assert reply == 'Here is what I found: {"order": "A12", "status": "packed"}'
    (call,) = events.of_type(ToolCall)
    assert seen == [(1, "shop", call.call_id)]
    assert call.stub_kind is None and call.approval is None and call.agent == "shop"
    await _close(session, events)


async def test_manual_stub_answered_through_the_runtime(server_url: str) -> None:
    front, _ = demo_agents(Stubs().manual("check_stock", timeout=5))
    session, events = await _run(front, server_url)
    runtime = session.runtime
    await session.send_text("Do you have blue mugs in stock?")
    pending = await runtime.stubs.wait_pending("check_stock")
    assert pending.arguments == {"product": "blue mugs"}
    assert [p.call_id for p in runtime.stubs.pending()] == [pending.call_id]
    runtime.stubs.answer(pending.call_id, {"count": 3})
    done = await events.wait_for(lambda e: isinstance(e, TranscriptDone) and "Stock" in e.transcript)
    assert done.transcript == 'Stock check: {"count": 3}'
    (call,) = events.of_type(ToolCall)
    assert (call.stub_kind, call.output) == ("manual", '{"count": 3}')
    await _close(session, events)


async def test_approval_reject_default_message_then_always(server_url: str) -> None:
    front, _ = demo_agents()
    session, events = await _run(front, server_url)
    runtime = session.runtime
    await session.send_text("Please refund order A12.")
    request = await events.wait_for(lambda e: isinstance(e, ToolApprovalRequired))
    assert (request.name, json.loads(request.arguments)) == ("issue_refund", {"order_number": "A12"})
    assert runtime.pending_approvals() == {request.call_id: "issue_refund"}
    request.reject()
    await events.wait_for(lambda e: isinstance(e, TranscriptDone) and "Refund" in e.transcript)
    await events.settle()
    mark = events.mark()
    await session.send_text("Please refund order B7.")
    second = await events.wait_for(lambda e: isinstance(e, ToolApprovalRequired), after=mark)
    runtime.reject(second.call_id, "Refunds need a manager.", always=True)
    await events.wait_for(lambda e: isinstance(e, TranscriptDone) and "Refund" in e.transcript, after=mark)
    await events.settle()
    reply = await events.turn("Please refund order C3.")
    assert reply == "Refund update: Refunds need a manager."
    calls = events.of_type(ToolCall)
    assert [(c.approval, c.output) for c in calls] == [
        ("rejected", DEFAULT_REJECTION_MESSAGE),
        ("always_rejected", "Refunds need a manager."),
        ("always_rejected", "Refunds need a manager."),
    ]
    assert len(events.of_type(ToolApprovalRequired)) == 2  # the third call was decided by "always"
    await _close(session, events)


async def test_approve_always(server_url: str) -> None:
    front, _ = demo_agents()
    session, events = await _run(front, server_url)
    await session.send_text("Please refund order A12.")
    request = await events.wait_for(lambda e: isinstance(e, ToolApprovalRequired))
    request.approve(always=True)
    await events.wait_for(lambda e: isinstance(e, TranscriptDone) and "Refund" in e.transcript)
    await events.settle()
    assert await events.turn("Please refund order B7.") == "Refund update: Refund for B7 issued."
    assert [c.approval for c in events.of_type(ToolCall)] == ["always_approved", "always_approved"]
    assert len(events.of_type(ToolApprovalRequired)) == 1
    await _close(session, events)


async def test_failing_tools_unknown_tools_and_bad_arguments(server_url: str, tmp_path: Path) -> None:
    front, _ = demo_agents()
    session, events = await _run(front, server_url, record=tmp_path / "rec")
    reply = await events.turn("Make the tool explode.")
    assert reply == (
        "The tool said: An error occurred while running the tool explode. "
        "Error: RuntimeError: the tool blew up"
    )
    await events.settle()
    reply = await events.turn("Try a broken lookup.")
    assert reply.startswith(
        "The lookup said: Invalid arguments: arguments for lookup_order do not fit its schema:"
    )
    assert "order_number: Input should be a valid string" in reply
    await events.settle()
    mystery = {
        "type": "function",
        "name": "mystery_tool",
        "description": "?",
        "parameters": {"type": "object"},
    }
    await session.update(session.config.replace(tools=[*session.config.tools, mystery]))
    assert await events.turn("Call the mystery tool.") == "The mystery tool said: Tool mystery_tool not found"
    await events.settle()
    reply = await events.turn("Do you have blue mugs in stock?")  # declared, no stub
    assert "has no implementation and no stub" in reply
    calls = events.of_type(ToolCall)
    assert [c.name for c in calls] == ["explode", "lookup_order", "mystery_tool", "check_stock"]
    assert calls[0].error == "RuntimeError: the tool blew up"
    assert calls[2].error.startswith("unknown tool 'mystery_tool' (agent 'Front Desk' has: lookup_order,")
    assert all(c.error for c in calls)
    assert [e.code for e in events.of_type(Error)] == ["tool_error"] * 4
    await _close(session, events)
    outputs = [
        e["item"]["output"]
        for e in _client_events(tmp_path / "rec", "conversation.item.create")
        if e["item"]["type"] == "function_call_output"
    ]
    assert outputs == [c.output for c in calls]


async def test_handoff_then_the_new_agent_answers(server_url: str, tmp_path: Path) -> None:
    front, returns = demo_agents()
    session, events = await _run(front, server_url, record=tmp_path / "rec")
    assert await events.turn("I want to return an item.") == "Transferring you to the returns desk."
    (handoff,) = events.of_type(AgentHandoff)
    assert (handoff.from_agent, handoff.to_agent) == ("Front Desk", "Returns Desk")
    assert session.runtime.agent is returns
    assert session.config.instructions == returns.instructions
    await events.settle()
    assert (
        await events.turn("I want to return the blue mug.")
        == "Returns desk here. I have opened a return for the blue mug."
    )
    await _close(session, events)
    (transfer,) = [
        e["item"]
        for e in _client_events(tmp_path / "rec", "conversation.item.create")
        if e["item"]["type"] == "function_call_output"
    ]
    assert json.loads(transfer["output"]) == {"assistant": "Returns Desk"}


async def test_transfer_agents_tool_with_rationale(server_url: str) -> None:
    front, returns = demo_agents()
    received: list[dict] = []
    front = front.clone(
        handoffs=[TransferAgents([returns], on_handoff=lambda ctx, args: received.append(args))]
    )
    session, events = await _run(front, server_url)
    assert await events.turn("Let me talk to a specialist.") == "One moment, a specialist will help you."
    (handoff,) = events.of_type(AgentHandoff)
    assert handoff.to_agent == "Returns Desk"
    assert received == [
        {
            "rationale_for_transfer": "The caller asked for a specialist.",
            "conversation_context": "Wants to return an item.",
            "destination_agent": "Returns Desk",
        }
    ]
    assert json.loads(handoff.arguments)["destination_agent"] == "Returns Desk"
    await _close(session, events)


async def test_voice_change_after_audio_is_refused(server_url: str) -> None:
    front, returns = demo_agents(voice="marin")
    returns.voice = "cedar"
    session, events = await _run(front, server_url)
    assert await events.turn("Hello.") == "Hello, how can I help you today?"
    await events.settle()
    await events.turn("I want to return an item.")
    (call,) = events.of_type(ToolCall)
    assert "would change the voice from marin to 'cedar' after the session produced audio" in call.error
    assert call.output.startswith("An error occurred while running the tool transfer_to_returns_desk.")
    assert events.of_type(AgentHandoff) == []
    assert session.runtime.agent is front
    assert [e.code for e in events.of_type(Error)] == ["handoff_error"]
    await _close(session, events)


async def test_voice_change_before_any_audio_is_allowed(server_url: str) -> None:
    front, returns = demo_agents(voice="marin")
    returns.voice = "cedar"
    session, events = await _run(front, server_url)
    await events.turn("I want to return an item.")
    assert [h.to_agent for h in events.of_type(AgentHandoff)] == ["Returns Desk"]
    assert session.config.voice == "cedar"
    await _close(session, events)


async def test_guardrail_end_only_without_follow_up(server_url: str, tmp_path: Path) -> None:
    front, _ = demo_agents(debounce_text_length=-1, guardrail_follow_up=None)
    session, events = await _run(front, server_url, record=tmp_path / "rec")
    await session.send_text("Is there anything cheaper?")
    trip = await events.wait_for(lambda e: isinstance(e, GuardrailTripped))
    assert trip.text == (
        "Honestly, between us, the shop across the road called Globex sells the same thing for less, "
        "so you could try Globex instead."
    )
    assert trip.follow_up is None and trip.guardrail == "no_competitor"
    await events.settle()
    await _close(session, events)
    users = [
        e
        for e in _client_events(tmp_path / "rec", "conversation.item.create")
        if e["item"].get("role") == "user"
    ]
    assert len(users) == 1  # no follow-up message
    assert len(_client_events(tmp_path / "rec", "conversation.item.truncate")) <= 1


async def test_guardrail_on_text_output(server_url: str) -> None:
    front, _ = demo_agents(output_modalities=["text"])
    session, events = await _run(front, server_url)
    await session.send_text("Is there anything cheaper?")
    trip = await events.wait_for(lambda e: isinstance(e, GuardrailTripped))
    assert trip.played_ms is None  # no audio was playing: nothing to truncate
    assert trip.follow_up == "guardrail triggered: no_competitor"
    assert "Globex" in trip.text
    follow = await events.wait_for(lambda e: isinstance(e, TranscriptDone) and "own shop" in e.transcript)
    assert follow.transcript == "Sorry, I can only talk about our own shop. What else can I do for you?"
    await events.settle()
    assert len(events.of_type(GuardrailTripped)) == 1
    await _close(session, events)


async def test_guardrail_that_raises_is_reported_and_skipped(server_url: str) -> None:
    @output_guardrail
    def broken(context: Any, agent: Any, text: str) -> bool:
        raise ValueError("no model")

    front, _ = demo_agents(output_guardrails=[broken], guardrail_follow_up="custom follow-up")
    session, events = await _run(front, server_url)
    reply = await events.turn("Is there anything cheaper?")
    assert "Globex" in reply
    await events.settle()
    errors = events.of_type(Error)
    assert errors and {e.code for e in errors} == {"guardrail_error"}
    assert "output guardrail 'broken' raised ValueError: no model" in errors[0].message
    assert events.of_type(GuardrailTripped) == []
    await _close(session, events)


async def test_async_instructions_are_sent_when_the_session_starts(server_url: str) -> None:
    async def instructions(context: Any, agent: Agent) -> str:
        return f"You are the front desk for {context['shop']}."

    front, _ = demo_agents(instructions=instructions, context={"shop": "Mugs & Co"})
    session, events = await _run(front, server_url)
    assert await events.turn("Hello.") == "Hello, how can I help you today?"
    await session.runtime.wait_idle()
    assert session.config.instructions == "You are the front desk for Mugs & Co."
    await _close(session, events)


async def test_history_helpers(server_url: str, tmp_path: Path) -> None:
    agent = Agent(name="plain", instructions="You are the front desk.")
    session, events = await _run(agent, server_url, record=tmp_path / "rec")
    await send_message(session, "Hello.")
    await events.wait_for(lambda e: isinstance(e, TranscriptDone) and e.role == "assistant")
    await events.settle()
    first_user, reply = session.history[0], session.history[1]
    kept = {
        "type": "message",
        "id": "item_note",
        "role": "user",
        "content": [{"type": "input_text", "text": "Note."}],
    }
    changes = await update_history(session, [reply, kept])
    assert changes == {"deleted": [first_user.id], "created": ["item_note"]}
    await events.settle()
    for _ in range(50):
        if [i.id for i in session.history] == [reply.id, "item_note"]:
            break
        await events.wait_for(lambda e: True, after=events.mark(), timeout=1)
    assert [i.id for i in session.history] == [reply.id, "item_note"]
    await _close(session, events)
    deletes = _client_events(tmp_path / "rec", "conversation.item.delete")
    assert [d["item_id"] for d in deletes] == [first_user.id]
    created = [e for e in _client_events(tmp_path / "rec", "conversation.item.create") if e["item"].get("id")]
    assert created[-1]["previous_item_id"] == reply.id


def test_the_runtime_is_attached_to_its_session_before_the_first_event() -> None:
    agent = voicelab.Agent(name="front", instructions="Be brief.")
    session = voicelab.connect(agent, url="ws://127.0.0.1:9/v1/realtime", api_key="sk-x", record_dir=False)
    assert session.runtime is not None and session.runtime.session is session


async def test_closing_the_session_closes_the_runtime() -> None:
    agent = voicelab.Agent(name="front", instructions="Be brief.")
    with voicelab.serve("returns_desk", pace="fast") as server:
        async with voicelab.connect(agent, url=server.url, api_key="sk-local", record_dir=False) as session:
            runtime = session.runtime
        assert runtime._closed
        assert runtime.running == 0
