"""Regression tests from a review of the agents runtime against the Agents SDK's realtime session:
handoffs keep the session settings the new agent does not set, nothing is left waiting after close,
failures of the runtime's own work reach the app, manual answers are taken once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agents_helpers import SCRIPT, Collector, demo_agents

import voicelab
from voicelab.agents import Agent, AgentHandoff, Stubs, ToolApprovalRequired
from voicelab.agents.runtime import AgentRuntime
from voicelab.errors import ConfigError
from voicelab.events import Disconnected, Error, FunctionCall, ResponseDone
from voicelab.server import serve_async


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    server = await serve_async(SCRIPT, pace="fast")
    yield server.url
    await server.aclose()


def _session_updates(recording: Path) -> list[dict]:
    rows = [json.loads(line) for line in (recording / "events.jsonl").read_text().splitlines()]
    return [r["event"]["session"] for r in rows if r["dir"] == "client" and r["type"] == "session.update"]


async def test_handoff_keeps_session_settings_the_target_leaves_unset(
    server_url: str, tmp_path: Path
) -> None:
    semantic = {
        "type": "semantic_vad",
        "eagerness": "low",
        "create_response": True,
        "interrupt_response": True,
    }
    front, returns = demo_agents(voice="marin", turn_detection=semantic)
    session = voicelab.connect(front, url=server_url, record_dir=tmp_path / "rec", model="gpt-realtime-mini")
    await session.open()
    events = Collector(session)
    assert await events.turn("Hello.") == "Hello, how can I help you today?"  # audio: the voice is locked
    await events.settle()
    assert await events.turn("I want to return an item.") == "Transferring you to the returns desk."
    await events.settle()
    assert [(h.from_agent, h.to_agent) for h in events.of_type(AgentHandoff)] == [
        ("Front Desk", "Returns Desk")
    ]
    assert [e.code for e in events.of_type(Error)] == []
    assert session.config.voice == "marin"
    assert session.config.turn_detection == semantic
    assert session.config.model == "gpt-realtime-mini"
    assert session.config.instructions == returns.instructions
    await events.close()
    await session.close()
    last = _session_updates(tmp_path / "rec")[-1]
    assert last["audio"]["output"]["voice"] == "marin"
    assert last["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"
    assert last["model"] == "gpt-realtime-mini"
    assert last["instructions"] == returns.instructions


async def test_update_agent_keeps_session_settings(server_url: str) -> None:
    front, returns = demo_agents(voice="marin")
    session = voicelab.connect(front, url=server_url, record_dir=False)
    await session.open()
    events = Collector(session)
    await events.wait_for(lambda e: True)  # the runtime knows its session from the first event on
    await session.runtime.update_agent(returns)
    assert session.config.voice == "marin"
    assert session.config.instructions == returns.instructions
    assert session.runtime.agent is returns
    await events.close()
    await session.close()


async def test_close_releases_waiting_manual_stubs_and_approvals(server_url: str) -> None:
    front, _ = demo_agents(Stubs().manual("check_stock"))  # no timeout: waits for ever
    session = voicelab.connect(front, url=server_url, record_dir=False)
    await session.open()
    events = Collector(session)
    runtime = session.runtime
    await session.send_text("Do you have blue mugs in stock?")
    await runtime.stubs.wait_pending("check_stock")
    await events.wait_for(lambda e: isinstance(e, ResponseDone))
    await session.send_text("Please refund order A12.")
    await events.wait_for(lambda e: isinstance(e, ToolApprovalRequired))
    assert runtime.running == 2
    await session.close()
    assert runtime.running == 0
    assert runtime.stubs.pending() == []
    assert runtime.pending_approvals() == {}
    with pytest.raises(ConfigError, match=r"no tool call .* is waiting"):
        runtime.stubs.answer("call_x", "late")
    await events.close()


class _BrokenSession:
    """A session whose sends fail, to see what the runtime does with errors of its own work."""

    def __init__(self) -> None:
        self.emitted: list[Any] = []
        self.history: list[Any] = []

    def emit(self, event: Any) -> None:
        self.emitted.append(event)

    async def send_function_output(self, call_id: str, output: str, respond: bool = True) -> None:
        raise RuntimeError("socket gone")


async def test_a_failing_runtime_task_is_reported_as_an_error_event() -> None:
    agent = Agent(name="a", tools=[])
    runtime = AgentRuntime(agent, stubs=Stubs().fixed("ping", "pong"))
    session = _BrokenSession()
    await runtime.on_event(session, FunctionCall(call_id="c1", name="ping", arguments="{}", item_id="i1"))
    with pytest.raises(RuntimeError):
        await runtime.wait_idle()
    await asyncio.sleep(0)
    errors = [e for e in session.emitted if isinstance(e, Error)]
    assert len(errors) == 1
    assert errors[0].code == "agent_runtime_error"
    assert "RuntimeError: socket gone" in errors[0].message
    assert "ping" in errors[0].message


async def test_runtime_ignores_events_after_disconnect() -> None:
    agent = Agent(name="a", tools=[])
    runtime = AgentRuntime(agent, stubs=Stubs().manual("ping"))
    session = _BrokenSession()
    await runtime.on_event(session, FunctionCall(call_id="c1", name="ping", arguments="{}", item_id="i1"))
    await runtime.stubs.wait_pending("ping")
    await runtime.on_event(session, Disconnected(1000, "closed by client"))
    assert runtime.running == 0 and runtime.stubs.pending() == []
    await runtime.on_event(session, FunctionCall(call_id="c2", name="ping", arguments="{}", item_id="i2"))
    assert runtime.running == 0


def test_a_manual_call_takes_one_answer() -> None:
    stubs = Stubs().manual("lookup")

    async def scenario() -> str:
        task = asyncio.create_task(stubs.resolve("call_1", "lookup", {}))
        pending = await stubs.wait_pending("lookup")
        pending.answer("first")
        with pytest.raises(ConfigError, match="no tool call 'call_1' is waiting"):
            stubs.answer("call_1", "second")
        return await task

    assert asyncio.run(scenario()) == "first"
    assert stubs.to_json()["stubs"]["lookup"] == {"kind": "fixed", "output": "first"}


class _GuardrailSession:
    """Records what the runtime does when a guardrail trips."""

    def __init__(self) -> None:
        self.emitted: list[Any] = []
        self.history: list[Any] = []
        self.actions: list[tuple[str, Any]] = []
        self.closed = False

    def emit(self, event: Any) -> None:
        self.emitted.append(event)

    async def interrupt(self) -> float | None:
        self.actions.append(("interrupt", None))
        return 1250.0

    async def send_text(self, text: str, respond: bool = True) -> None:
        self.actions.append(("send_text", text))


def _guarded_runtime(debounce: int, trip_at: int | None, seen: list[str]) -> AgentRuntime:
    def watch(context: Any, agent: Any, text: str) -> bool:
        seen.append(text)
        return trip_at is not None and len(text) >= trip_at

    agent = Agent(name="g", output_guardrails=[watch], debounce_text_length=debounce)
    return AgentRuntime(agent)


async def _stream(
    runtime: AgentRuntime, session: Any, response: str, item: str, text: str, step: int
) -> None:
    from voicelab.events import ResponseStarted, TranscriptDelta, TranscriptDone

    await runtime.on_event(session, ResponseStarted(response))
    for start in range(0, len(text), step):
        await runtime.on_event(session, TranscriptDelta(item, "assistant", text[start : start + step]))
        await runtime.wait_idle()
    await runtime.on_event(session, TranscriptDone(item, "assistant", text))
    await runtime.wait_idle()


@pytest.mark.parametrize(
    ("step", "expected"),
    [(1, [10, 20, 30, 35]), (10, [10, 20, 30, 35]), (7, [14, 21, 35]), (35, [35])],
)
async def test_guardrails_run_at_each_multiple_of_the_threshold_and_at_the_end(
    step: int, expected: list[int]
) -> None:
    seen: list[str] = []
    runtime = _guarded_runtime(10, None, seen)
    await _stream(runtime, _GuardrailSession(), "r1", "i1", "x" * 35, step)
    assert [len(text) for text in seen] == expected


async def test_guardrails_end_only_with_minus_one() -> None:
    seen: list[str] = []
    runtime = _guarded_runtime(-1, None, seen)
    await _stream(runtime, _GuardrailSession(), "r1", "i1", "y" * 250, 10)
    assert seen == ["y" * 250]


async def test_a_trip_cuts_once_per_response_and_sends_one_follow_up() -> None:
    seen: list[str] = []
    runtime = _guarded_runtime(10, 20, seen)
    session = _GuardrailSession()
    await _stream(runtime, session, "r1", "i1", "z" * 45, 5)
    from voicelab.agents import GuardrailTripped

    trips = [e for e in session.emitted if isinstance(e, GuardrailTripped)]
    assert [len(t.text) for t in trips] == [20]
    assert (trips[0].played_ms, trips[0].response_id, trips[0].follow_up) == (
        1250.0,
        "r1",
        "guardrail triggered: watch",
    )
    assert session.actions == [("interrupt", None), ("send_text", "guardrail triggered: watch")]
    assert [len(text) for text in seen] == [10, 20]  # nothing more is checked in the tripped response
    await _stream(runtime, session, "r2", "i2", "z" * 25, 25)  # the next response is checked again
    assert len([e for e in session.emitted if isinstance(e, GuardrailTripped)]) == 2


async def test_a_late_trip_does_not_cancel_the_next_response() -> None:
    """A slow guardrail that trips after its response ended must not cancel the response now streaming (a
    tool's answer, say): like the SDK, a stale response gets no cancel and no follow-up."""
    from types import SimpleNamespace

    from voicelab.agents import GuardrailTripped
    from voicelab.events import ResponseStarted, TranscriptDelta, TranscriptDone

    release = asyncio.Event()

    async def slow(context: Any, agent: Any, text: str) -> bool:
        await release.wait()
        return True

    runtime = AgentRuntime(Agent(name="g", output_guardrails=[slow], debounce_text_length=-1))
    session = _GuardrailSession()
    session.conversation = SimpleNamespace(active_response_id="r1", get=lambda item_id: None)  # type: ignore[attr-defined]
    await runtime.on_event(session, ResponseStarted("r1"))
    await runtime.on_event(session, TranscriptDelta("i1", "assistant", "try Globex"))
    await runtime.on_event(session, TranscriptDone("i1", "assistant", "try Globex"))
    session.conversation.active_response_id = "r2"  # type: ignore[attr-defined]
    await runtime.on_event(session, ResponseStarted("r2"))
    release.set()
    await runtime.wait_idle()
    (trip,) = [e for e in session.emitted if isinstance(e, GuardrailTripped)]
    assert (trip.response_id, trip.follow_up) == ("r1", None)
    assert session.actions == []


class _ToolSession(_GuardrailSession):
    def __init__(self) -> None:
        super().__init__()
        from voicelab.config import SessionConfig

        self.config = SessionConfig()
        self.outputs: dict[str, str] = {}

    async def update(self, config: Any) -> None:
        self.config = config
        self.actions.append(("update", config.instructions))

    async def send_function_output(self, call_id: str, output: str, respond: bool = True) -> None:
        self.outputs[call_id] = output
        self.actions.append(("output", call_id))


async def test_a_tool_call_in_the_same_response_as_a_handoff_runs_with_the_agent_that_made_it() -> None:
    from voicelab.agents import tool

    @tool
    def ping() -> str:
        """Answer pong."""
        return "pong"

    returns = Agent(name="Returns", instructions="returns")
    front = Agent(name="Front", instructions="front", tools=[ping], handoffs=[returns])
    runtime = AgentRuntime(front)
    session = _ToolSession()
    await runtime.on_event(session, FunctionCall("c1", "transfer_to_returns", "{}", "i1", "r1"))
    await runtime.on_event(session, FunctionCall("c2", "ping", "{}", "i2", "r1"))
    await runtime.wait_idle()
    assert session.outputs == {"c1": '{"assistant": "Returns"}', "c2": "pong"}
    assert runtime.agent is returns
    assert [(c.name, c.agent, c.error) for c in runtime.tool_calls] == [
        ("transfer_to_returns", "Front", None),
        ("ping", "Front", None),
    ]
