"""Agent runtime overheads. Prints one JSON line per figure.

1. Tool round trip: from the server's `response.output_item.done` (a completed function_call) being received
   to the client's `function_call_output` being sent, read from the session recording's clock, for `--calls`
   calls of a tool answered by a fixed stub through the AgentRuntime, against the embedded server (pace fast).
   Baseline: the same conversation with a bare listener that answers each FunctionCall event with
   `send_function_output` directly (no agent runtime): the ratio is the runtime's cost on top of the session.
2. Guardrail cost per 100 characters of assistant transcript: AgentRuntime.on_event over TranscriptDelta
   events (10 characters each, debounce 100, a substring guardrail that never trips), per 100 characters;
   baseline: calling the same guardrail function directly at the same checkpoints.

    python bench/bench_agents.py [--calls 40] [--chars 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import voicelab
from voicelab.agents import Agent, FunctionTool, Stubs, output_guardrail
from voicelab.events import FunctionCall, ResponseStarted, TranscriptDelta, TranscriptDone
from voicelab.protocol.conversation import Conversation
from voicelab.server import serve_async

SCRIPT = Path(voicelab.__file__).parent / "data" / "scripts" / "agents_demo.yaml"
LOOKUP = FunctionTool.declared(
    "lookup_order",
    {"type": "object", "properties": {"order_number": {"type": "string"}}, "required": ["order_number"]},
)


def emit(bench: str, metric: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"bench": bench, "metric": metric, "value": round(value, 4), "unit": unit, **extra}))


def round_trips_ms(recording: Path) -> list[float]:
    """ms from each function_call output_item.done received to its function_call_output sent."""
    done_at: dict[str, float] = {}
    trips = []
    for line in (recording / "events.jsonl").read_text().splitlines():
        row = json.loads(line)
        event = row["event"]
        if row["dir"] == "server" and row["type"] == "response.output_item.done":
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                done_at[item["call_id"]] = row["t_ms"]
        elif row["dir"] == "client" and row["type"] == "conversation.item.create":
            item = event.get("item") or {}
            if item.get("type") == "function_call_output" and item.get("call_id") in done_at:
                trips.append(row["t_ms"] - done_at[item["call_id"]])
    return trips


class BareListener:
    """The baseline: answer every function call at once, nothing else."""

    async def on_event(self, session: Any, event: Any) -> None:
        if isinstance(event, FunctionCall):
            await session.send_function_output(event.call_id, "Ships Friday.", respond=True)


async def conversation(url: str, folder: Path, calls: int, use_agent: bool) -> list[float]:
    if use_agent:
        agent = Agent(
            name="bench",
            instructions="front desk",
            tools=[LOOKUP],
            stubs=Stubs().fixed("lookup_order", "Ships Friday."),
        )
        session = voicelab.connect(agent, url=url, record_dir=folder)
    else:
        session = voicelab.connect(
            {"instructions": "front desk", "tools": [LOOKUP.to_session_tool()]}, url=url, record_dir=folder
        )
        session.add_listener(BareListener())
    async with session:
        events = aiter(session)
        for index in range(calls):
            await session.send_text(f"Where is my order A{index}?")
            while True:
                event = await asyncio.wait_for(anext(events), 15)
                if isinstance(event, TranscriptDone) and event.role == "assistant":
                    break
    return round_trips_ms(folder)


async def tool_round_trip(calls: int) -> None:
    server = await serve_async(SCRIPT, pace="fast")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            await conversation(server.url, Path(tmp) / "warmup", 3, True)
            agent_trips = await conversation(server.url, Path(tmp) / "agent", calls, True)
            bare_trips = await conversation(server.url, Path(tmp) / "bare", calls, False)
    finally:
        await server.aclose()
    for name, values in (("p50", 50), ("p95", 95)):
        agent_value = (
            statistics.quantiles(agent_trips, n=100)[values - 1] if len(agent_trips) > 1 else agent_trips[0]
        )
        bare_value = (
            statistics.quantiles(bare_trips, n=100)[values - 1] if len(bare_trips) > 1 else bare_trips[0]
        )
        emit(
            "agents",
            f"tool_round_trip_{name}",
            agent_value,
            "ms",
            baseline=round(bare_value, 4),
            ratio=round(agent_value / bare_value, 3) if bare_value > 0 else None,
            calls=len(agent_trips),
        )


class _QuietSession:
    """What on_event needs of a session when no guardrail trips: a conversation to look items up in."""

    def __init__(self) -> None:
        self.conversation = Conversation()


async def guardrail_cost(chars: int) -> None:
    @output_guardrail
    def no_competitor(context: Any, agent: Any, text: str) -> bool:
        return "globex" in text.lower()

    agent = Agent(name="bench", output_guardrails=[no_competitor], debounce_text_length=100)
    deltas = [TranscriptDelta(f"item_{i // 1000}", "assistant", "abcdefghi ") for i in range(chars // 10)]
    runtime = agent.create_listener()
    session = _QuietSession()
    await runtime.on_event(session, ResponseStarted("resp_1"))
    start = time.perf_counter()
    for delta in deltas:
        await runtime.on_event(session, delta)
    await runtime.wait_idle()
    runtime_s = time.perf_counter() - start

    start = time.perf_counter()
    text = ""
    for index, delta in enumerate(deltas):
        text = delta.delta if index % 1000 == 0 else text + delta.delta
        if len(text) % 100 == 0:
            await no_competitor.run(None, agent, text)
    baseline_s = time.perf_counter() - start
    per_100 = runtime_s * 1e6 / (chars / 100)
    base_100 = baseline_s * 1e6 / (chars / 100)
    emit(
        "agents",
        "guardrail_cost_per_100_chars",
        per_100,
        "us",
        baseline=round(base_100, 4),
        ratio=round(per_100 / base_100, 3),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--chars", type=int, default=200_000)
    args = parser.parse_args()
    asyncio.run(tool_round_trip(args.calls))
    asyncio.run(guardrail_cost(args.chars))


if __name__ == "__main__":
    main()
