"""Agent definitions: session config, handoff tools, validation errors, clone, SDK conversion."""

from __future__ import annotations

import asyncio
import json

import pytest

from voicelab.agents import Agent, FunctionTool, TransferAgents, handoff, output_guardrail, tool
from voicelab.agents.handoffs import normalize_tool_name, transfer_message
from voicelab.config import SessionConfig
from voicelab.errors import ConfigError


@tool
def lookup_order(order_number: str) -> str:
    """Look up an order."""
    return f"order {order_number}"


@output_guardrail
def no_refunds(context: object, agent: object, text: str) -> bool:
    return "refund" in text


def make_agents() -> tuple[Agent, Agent]:
    returns = Agent(
        name="Returns Desk", instructions="You handle returns.", handoff_description="Returns and exchanges."
    )
    front = Agent(
        name="front",
        instructions="You greet callers.",
        tools=[lookup_order],
        handoffs=[returns],
        output_guardrails=[no_refunds],
        voice="marin",
        turn_detection=None,
    )
    return front, returns


def test_session_config_includes_tools_and_handoff_tools() -> None:
    front, _ = make_agents()
    config = front.session_config()
    assert isinstance(config, SessionConfig)
    assert config.instructions == "You greet callers."
    assert config.voice == "marin"
    assert config.turn_detection is None
    assert config.output_modalities == ["audio"]  # SessionConfig's default kept
    assert [t["name"] for t in config.tools] == ["lookup_order", "transfer_to_returns_desk"]
    assert config.tools[1] == {
        "type": "function",
        "name": "transfer_to_returns_desk",
        "description": "Handoff to the Returns Desk agent to handle the request. Returns and exchanges.",
        "parameters": {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
    }
    session = config.to_session()
    assert [t["name"] for t in session["tools"]] == ["lookup_order", "transfer_to_returns_desk"]


def test_name_normalisation_and_transfer_message() -> None:
    assert normalize_tool_name("transfer_to_Billing Team-2") == "transfer_to_billing_team_2"
    assert json.loads(transfer_message("Returns Desk")) == {"assistant": "Returns Desk"}


def test_instructions_functions_sync_and_async() -> None:
    sync_agent = Agent(
        name="a",
        instructions=lambda ctx, agent: f"Hi {ctx['user']} from {agent.name}",
        context={"user": "Ann"},
    )
    assert sync_agent.session_config().instructions == "Hi Ann from a"
    assert sync_agent.session_config({"user": "Bo"}).instructions == "Hi Bo from a"

    async def later(ctx: object, agent: Agent) -> str:
        return f"async {agent.name}"

    async_agent = Agent(name="b", instructions=later)
    assert async_agent.has_async_instructions
    assert async_agent.session_config().instructions == "async b"  # no running loop: resolved
    assert asyncio.run(async_agent.session_config_async()).instructions == "async b"

    async def in_loop() -> str | None:
        return async_agent.session_config().instructions

    assert asyncio.run(in_loop()) == ""  # inside a loop: the runtime sends them when the session starts
    with pytest.raises(ConfigError, match="returned int; return a str"):
        Agent(name="c", instructions=lambda c, a: 3).session_config()


def test_duplicate_names_across_tools_and_handoffs() -> None:
    other = Agent(name="x")
    with pytest.raises(ConfigError, match="'transfer_to_x' is used by a tool and a handoff"):
        Agent(name="a", tools=[FunctionTool.declared("transfer_to_x")], handoffs=[other])
    with pytest.raises(ConfigError, match="'lookup_order' is used by a tool and a tool"):
        Agent(name="a", tools=[lookup_order, lookup_order])
    agent = Agent(name="a", tools=[lookup_order])
    agent.tools.append(FunctionTool.declared("lookup_order"))
    with pytest.raises(ConfigError, match="must be unique"):
        agent.session_config()


def test_bad_definitions_fail_early() -> None:
    with pytest.raises(ConfigError, match="non-empty name"):
        Agent(name="")
    with pytest.raises(ConfigError, match="handoff target 'billing' is a name; pass the Agent object"):
        Agent(name="a", handoffs=["billing"])
    with pytest.raises(ConfigError, match="unknown handoff target 42"):
        Agent(name="a", handoffs=[42])
    with pytest.raises(ConfigError, match=r"tools must be @voicelab\.tool functions"):
        Agent(name="a", tools=["lookup"])
    with pytest.raises(ConfigError, match="instructions must be a string or a function"):
        Agent(name="a", instructions=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="voice='robot' is not a Realtime voice"):
        Agent(name="a", voice="robot").session_config()
    with pytest.raises(ConfigError, match="property 'q' must be a schema dict"):
        Agent(name="a", tools=[FunctionTool.declared("t", {"type": "object", "properties": {"q": 1}})])


def test_plain_functions_become_tools_and_guardrails() -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    agent = Agent(name="calc", tools=[add], output_guardrails=[lambda c, a, t: False])
    assert agent.function_tools["add"].parameters["required"] == ["a", "b"]
    assert agent.output_guardrails[0].name == "<lambda>"


def test_clone_copies_lists() -> None:
    front, _ = make_agents()
    copy = front.clone(instructions="Other.", voice="cedar")
    assert copy.instructions == "Other." and copy.voice == "cedar" and copy.name == "front"
    copy.tools.append(FunctionTool.declared("extra"))
    assert [t.name for t in front.tools] == ["lookup_order"]
    with pytest.raises(ConfigError, match=r"Agent\.clone"):
        front.clone(colour="red")


def test_custom_handoff_and_transfer_agents_tool() -> None:
    billing = Agent(name="billing", handoff_description="Invoices.")
    tech = Agent(name="tech", handoff_description="Broken devices.")
    custom = handoff(billing, tool_name="to_billing", tool_description="Send to billing.")
    transfer = TransferAgents([billing, tech])
    agent = Agent(name="triage", handoffs=[custom, transfer])
    tools = {t["name"]: t for t in agent.session_tools()}
    assert tools["to_billing"]["description"] == "Send to billing."
    params = tools["transferAgents"]["parameters"]
    assert params["required"] == ["rationale_for_transfer", "conversation_context", "destination_agent"]
    assert params["properties"]["destination_agent"]["enum"] == ["billing", "tech"]
    args = {"rationale_for_transfer": "r", "conversation_context": "c", "destination_agent": "tech"}
    assert transfer.parse_arguments(json.dumps(args)) == args
    assert asyncio.run(transfer.resolve(None, args)) is tech
    with pytest.raises(ValueError, match=r"destination_agent should be one of \['billing', 'tech'\]"):
        transfer.parse_arguments(json.dumps({**args, "destination_agent": "sales"}))
    with pytest.raises(ConfigError, match="duplicate names"):
        TransferAgents([billing, billing])


def test_cyclic_handoffs() -> None:
    a = Agent(name="a")
    b = Agent(name="b", handoffs=[a])
    a.handoffs.append(b)
    a.validate()
    assert [t["name"] for t in a.session_tools()] == ["transfer_to_b"]
    assert [t["name"] for t in b.session_tools()] == ["transfer_to_a"]


# -- the held-out probe's kinds of bad input, refused when the Agent is made (issue 8) ---------------------
def _lookup(order_number: str) -> str:
    """Look up an order."""
    return order_number


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: Agent(name="a", instructions=lambda: "x"), ("instructions", "(context, agent)")),
        (lambda: Agent(name="a", debounce_text_length=10**12), ("debounce_text_length", "100000", "-1")),
        (lambda: Agent(name="a").clone(vioce="ash"), ("vioce", "did you mean 'voice'")),
        (lambda: Agent(name="a").check_stubs(5), ("check_stubs", "Stubs")),
        (
            lambda: Agent(name="a", output_guardrails=[lambda text: False]),
            ("guardrail", "(context, agent, text"),
        ),
        (lambda: TransferAgents([5]), ("destinations[0]", "Agent")),
        (lambda: TransferAgents(Agent(name="b")), ("wrap the one you have",)),
        (lambda: handoff(Agent(name="b"), tool_description=5), ("tool_description", "str")),
        (lambda: handoff(Agent(name="b"), tool_name=""), ("tool_name", "empty")),
    ],
)
def test_bad_agent_definitions_fail_when_made(make, words) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    message = str(info.value)
    assert "\n" not in message, message
    for word in words:
        assert word.lower() in message.lower(), (word, message)


def test_good_agent_definitions_still_pass() -> None:
    agent = Agent(
        name="a",
        instructions=lambda context, agent: "hi",
        tools=[tool(_lookup)],
        output_guardrails=[output_guardrail(lambda context, agent, text: False)],
        debounce_text_length=-1,
    )
    assert agent.session_config().instructions == "hi"
    assert agent.clone(voice="ash").voice == "ash"
