"""Shared pieces of the agents tests: the demo agents, an event collector, and the acceptance recording.

`agents_demo_recording` (a session-scoped fixture in conftest.py) returns the folder of ONE recorded
conversation through a real embedded server (voicelab/data/scripts/agents_demo.yaml) that calls a stubbed
tool, a manual stub answered by code, a tool needing approval (approved), trips an output guardrail and hands
off.
`record_agents_demo(folder)` makes the same recording from anywhere (e.g. the tables tests).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import voicelab
from voicelab.agents import (
    Agent,
    FunctionTool,
    GuardrailTripped,
    Stubs,
    ToolApprovalRequired,
    ToolCall,
    output_guardrail,
    tool,
)
from voicelab.agents.events import AgentHandoff
from voicelab.events import AppEvent, TranscriptDone
from voicelab.server import serve_async

SCRIPT = Path(voicelab.__file__).parent / "data" / "scripts" / "agents_demo.yaml"
FRONT_INSTRUCTIONS = "You are the front desk of a small shop. Be brief."
RETURNS_INSTRUCTIONS = "You are the returns desk of a small shop. Open returns."


@tool
def lookup_order(order_number: str) -> str:
    """Look up an order.

    Args:
        order_number: The order's number, e.g. A12.
    """
    return f"Order {order_number} is in the warehouse."


@tool(needs_approval=True)
def issue_refund(order_number: str) -> str:
    """Refund an order (needs a human's approval)."""
    return f"Refund for {order_number} issued."


@tool
def explode() -> str:
    """A tool that always fails."""
    raise RuntimeError("the tool blew up")


check_stock = FunctionTool.declared(
    "check_stock",
    {"type": "object", "properties": {"product": {"type": "string"}}, "required": ["product"]},
    "How many of a product are in stock.",
)


@output_guardrail
def no_competitor(context: Any, agent: Any, text: str) -> bool:
    return "globex" in text.lower()


def demo_agents(stubs: Stubs | None = None, **front_changes: Any) -> tuple[Agent, Agent]:
    """The front desk (tools, guardrail, handoff) and the returns desk it hands off to."""
    returns = Agent(
        name="Returns Desk",
        instructions=RETURNS_INSTRUCTIONS,
        handoff_description="Returns and refunds of delivered items.",
    )
    settings: dict[str, Any] = {
        "name": "Front Desk",
        "instructions": FRONT_INSTRUCTIONS,
        "tools": [lookup_order, check_stock, issue_refund, explode],
        "handoffs": [returns],
        "output_guardrails": [no_competitor],
        "debounce_text_length": 20,
        "stubs": stubs if stubs is not None else Stubs(),
        **front_changes,
    }
    return Agent(**settings), returns


class Collector:
    """Reads a session's app events in the background so tests can wait for the ones they need."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.events: list[AppEvent] = []
        self._changed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for event in self.session:
            self.events.append(event)
            self._changed.set()

    async def wait_for(
        self, predicate: Callable[[AppEvent], bool], *, after: int = 0, timeout: float = 15.0
    ) -> AppEvent:
        """The first event from index `after` on that satisfies `predicate`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self.events[after:]:
                if predicate(event):
                    return event
            remaining = deadline - loop.time()
            if remaining <= 0 or self._task.done():
                kinds = [e.type for e in self.events[after:]]
                raise AssertionError(f"no matching event; got {kinds}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def mark(self) -> int:
        return len(self.events)

    async def turn(self, text: str, *, timeout: float = 15.0) -> str:
        """Send a user text and return the assistant's final transcript of the reply that follows."""
        start = self.mark()
        await self.session.send_text(text)
        done = await self.wait_for(
            lambda e: isinstance(e, TranscriptDone) and e.role == "assistant", after=start, timeout=timeout
        )
        assert isinstance(done, TranscriptDone)
        return done.transcript

    async def settle(self) -> None:
        """Wait until no response is active and the runtime has no work left."""
        runtime = self.session.runtime
        for _ in range(200):
            await runtime.wait_idle()
            if not self.session.responding:
                return
            await asyncio.sleep(0.02)

    def of_type(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def record_agents_demo_async(folder: Path) -> Path:
    """One conversation exercising a stub, a manual stub, an approval, a guardrail trip and a handoff."""
    stubs = Stubs().template("lookup_order", "Order {order_number} ships Friday.").manual("check_stock")
    front, _ = demo_agents(stubs)
    server = await serve_async(SCRIPT, pace="fast")
    try:
        async with voicelab.connect(front, url=server.url, record_dir=folder) as session:
            events = Collector(session)
            assert "ships Friday" in await events.turn("Where is my order A12?")
            mark = events.mark()
            await session.send_text("Do you have blue mugs in stock?")
            pending = await stubs.wait_pending("check_stock")
            pending.answer("3 left")
            await events.wait_for(
                lambda e: isinstance(e, TranscriptDone) and "3 left" in e.transcript, after=mark
            )
            mark = events.mark()
            await session.send_text("Please refund order A12.")
            request = await events.wait_for(lambda e: isinstance(e, ToolApprovalRequired), after=mark)
            assert isinstance(request, ToolApprovalRequired)
            request.approve()
            await events.wait_for(
                lambda e: isinstance(e, TranscriptDone) and "Refund" in e.transcript, after=mark
            )
            mark = events.mark()
            await session.send_text("Is there anything cheaper?")
            await events.wait_for(lambda e: isinstance(e, GuardrailTripped), after=mark)
            await events.wait_for(
                lambda e: isinstance(e, TranscriptDone) and "own shop" in e.transcript, after=mark
            )
            await events.settle()
            mark = events.mark()
            await session.send_text("I want to return an item.")
            await events.wait_for(lambda e: isinstance(e, AgentHandoff), after=mark)
            await events.wait_for(
                lambda e: isinstance(e, TranscriptDone) and "Transferring" in e.transcript, after=mark
            )
            await events.settle()
            assert "Returns desk here" in await events.turn("I want to return the blue mug.")
            await events.settle()
            assert len(events.of_type(ToolCall)) == 4
            await events.close()
    finally:
        await server.aclose()
    return folder


def record_agents_demo(folder: str | Path) -> Path:
    """`record_agents_demo_async` from synchronous code (no running event loop)."""
    return asyncio.run(record_agents_demo_async(Path(folder)))
