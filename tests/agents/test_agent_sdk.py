"""Conversion of Agents SDK RealtimeAgent objects."""

from __future__ import annotations

import asyncio
import json

import pytest

from voicelab.agents import Agent, ToolContext
from voicelab.agents.sdk import from_realtime_agent
from voicelab.errors import ConfigError

agents = pytest.importorskip("agents")
from agents import GuardrailFunctionOutput, OutputGuardrail, function_tool  # noqa: E402
from agents.realtime import RealtimeAgent, realtime_handoff  # noqa: E402


@function_tool
def get_weather(city: str) -> str:
    """Weather for a city.

    Args:
        city: The city.
    """
    return f"sunny in {city}"


@function_tool(needs_approval=True)
async def refund(order_id: str) -> dict:
    """Refund an order."""
    return {"refunded": order_id}


def _no_swearing(ctx, agent, output: str) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info={"agent": agent.name}, tripwire_triggered="darn" in output)


def build() -> RealtimeAgent:
    billing = RealtimeAgent(name="Billing", instructions="Billing things.", handoff_description="Invoices.")
    support = RealtimeAgent(name="Support", handoff_description="Help.")
    entered: list[str] = []

    def on_enter(ctx) -> None:
        entered.append("support")

    front = RealtimeAgent(
        name="Front",
        instructions=lambda ctx, agent: f"You are {agent.name}.",
        tools=[get_weather, refund],
        handoffs=[billing, realtime_handoff(support, tool_name_override="go_support", on_handoff=on_enter)],
        output_guardrails=[OutputGuardrail(guardrail_function=_no_swearing, name="no_swearing")],
    )
    billing.handoffs.append(front)  # a cycle
    front.entered = entered  # type: ignore[attr-defined]
    return front


def test_conversion_keeps_tools_handoffs_guardrails() -> None:
    sdk_front = build()
    front = Agent.from_realtime_agent(sdk_front, voice="coral")
    assert front.name == "Front" and front.voice == "coral"
    assert asyncio.run(front.session_config_async()).instructions == "You are Front."
    tools = front.function_tools
    assert list(tools) == ["get_weather", "refund"]
    assert tools["get_weather"].parameters["properties"]["city"]["type"] == "string"
    assert tools["get_weather"].description == "Weather for a city."
    assert tools["refund"].needs_approval is True and tools["get_weather"].needs_approval is False
    assert list(front.handoff_tools) == ["transfer_to_billing", "go_support"]
    assert (
        front.handoff_tools["go_support"]
        .to_session_tool()["description"]
        .startswith("Handoff to the Support")
    )
    billing = front.handoff_tools["transfer_to_billing"].targets[0]
    assert billing.instructions == "Billing things."
    assert billing.handoff_tools["transfer_to_front"].targets[0] is front  # the cycle resolves to one agent


def test_converted_tools_and_guardrails_run() -> None:
    sdk_front = build()
    front = from_realtime_agent(sdk_front)
    out = asyncio.run(front.function_tools["get_weather"].invoke(ToolContext(call_id="c1"), {"city": "Oslo"}))
    assert out == "sunny in Oslo"
    refunded = asyncio.run(
        front.function_tools["refund"].invoke(ToolContext(call_id="c2"), {"order_id": "7"})
    )
    assert json.loads(refunded) == {"refunded": "7"}
    guardrail = front.output_guardrails[0]
    assert guardrail.name == "no_swearing"
    result = asyncio.run(guardrail.run(None, front, "oh darn"))
    assert result.tripwire_triggered is True and result.info == {"agent": "Front"}
    go_support = front.handoff_tools["go_support"]
    target = asyncio.run(go_support.resolve(None, {}))
    assert target.name == "Support" and sdk_front.entered == ["support"]


def test_sdk_agent_directly_in_handoffs_and_errors() -> None:
    sdk_support = RealtimeAgent(name="Support")
    agent = Agent(name="front", handoffs=[sdk_support])
    assert list(agent.handoff_tools) == ["transfer_to_support"]
    with pytest.raises(ConfigError, match=r"expected an agents\.realtime\.RealtimeAgent"):
        from_realtime_agent(agent)
