"""The prompt builder: render/parse round trips, validation findings, replace and diff."""

from __future__ import annotations

import pytest

from voicelab.agents import Agent, tool
from voicelab.errors import ConfigError
from voicelab.prompts import Prompt, State, Transition, diff


@tool
def lookup_order(order_number: str) -> str:
    """Look up an order."""
    return "ok"


def full_prompt() -> Prompt:
    return Prompt(
        role="You are the returns desk of an online shop. Your goal: a return label sent.",
        identity="A calm clerk who has handled returns for years.",
        task="Help callers return orders.",
        demeanor="Patient.",
        tone="Warm and brief.",
        enthusiasm="Calm.",
        formality="Polite but plain.",
        emotion="Matter-of-fact.",
        filler_words="None.",
        pacing="Even.",
        other_details="Never promise a refund date.",
        context="The shop sells shoes.\n\n### Policy\nThirty days.",
        pronunciations='- "SKU": say "skew"',
        tools="Use `lookup_order` before promising anything.",
        instructions=["Ask one question at a time.", "When the caller gives a number, repeat it back."],
        flow="Greet, get the order number, look it up, offer a label.",
        states=[
            {
                "id": "1_greeting",
                "description": "Greet the caller.",
                "instructions": ["Say hello."],
                "examples": ["Hello, returns desk."],
                "transitions": [{"next_step": "2_order_number", "condition": "Once greeted."}],
            },
            State(
                "2_order_number",
                "Collect the order number.",
                ("Ask for the order number digit by digit.",),
                (),
                (Transition("1_greeting", "If the caller starts over."),),
            ),
        ],
        safety="If the caller is upset, offer a person.",
        extra=[("Sample phrases", "- Let me check that for you.")],
    )


def test_render_parse_round_trip_is_exact() -> None:
    prompt = full_prompt()
    text = prompt.render()
    assert Prompt.parse(text) == prompt
    assert Prompt.parse(text).render() == text
    # the layout: guide sections in order, Personality subsections, states as a JSON block
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings[:3] == ["# Role and Objective", "# Personality and Tone", "## Identity"]
    assert "## Level of Enthusiasm" in headings and "# Conversation States" in headings
    assert headings.index("# Safety and Escalation") < headings.index("# Sample phrases")
    assert "```json" in text and '"next_step": "2_order_number"' in text
    assert "### Policy" in text  # deeper headings stay inside their section
    assert Prompt().render() == "" and Prompt.parse("") == Prompt()


def test_parse_is_tolerant_of_hand_written_prompts() -> None:
    text = """You are a helpful support agent.

## Personality & Tone
- Friendly, never pushy.

## Rules
- Always confirm the account number.

## Tone stuff
Keep it short.

## Conversation Flow
1. Greet 2. Help
"""
    prompt = Prompt.parse(text)
    assert prompt.role == "You are a helpful support agent."
    assert prompt.other_details == "- Friendly, never pushy."
    assert prompt.instructions == "- Always confirm the account number."
    assert prompt.flow == "1. Greet 2. Help"
    assert prompt.extra == (("Tone stuff", "Keep it short."),)
    assert Prompt.parse(prompt.render()) == prompt


def test_parse_keeps_a_broken_state_graph_for_validate() -> None:
    text = (
        '# Conversation States\n```json\n[{"id": "a", "transitions": [{"next_step": "b"}]},'
        ' {"id": "a"}]\n```\n'
    )
    prompt = Prompt.parse(text)  # a hand-written prompt is read as it is ...
    codes = [f.code for f in prompt.validate()]
    assert codes == ["duplicate-state", "unknown-transition"]  # ... and its problems are reported
    with pytest.raises(ConfigError, match="not valid"):
        Prompt.parse("# Conversation States\n```json\n[{oops}]\n```")


def test_every_validation_finding() -> None:
    agent = Agent(name="desk", instructions="", tools=[lookup_order])
    prompt = Prompt(
        role="Use `lookup_order`, then `create_label()`, and hand over with `transfer_to_billing`.",
        states=[
            {"id": "1_start", "description": "Ask for the caller's name.", "transitions": ["2_end"]},
            {"id": "2_end", "description": "Say goodbye."},
            {"id": "3_orphan", "description": "Never reached."},
        ],
    )
    findings = {f.code: f for f in prompt.validate(agent)}
    assert set(findings) == {"unreachable-state", "unknown-tool", "unknown-agent", "missing-repeat-back"}
    assert "'3_orphan'" in findings["unreachable-state"].message
    unknown_tool = findings["unknown-tool"].message
    assert "'create_label'" in unknown_tool and "lookup_order" in unknown_tool
    assert "transfer_to_billing" in findings["unknown-agent"].message
    assert "'1_start'" in findings["missing-repeat-back"].message
    # the fixes make the findings go away
    billing = Agent(name="billing", instructions="")
    fixed_agent = Agent(
        name="desk",
        instructions="",
        tools=[lookup_order, tool(lambda: "x", name="create_label")],
        handoffs=[billing],
    )
    fixed = prompt.replace(
        states=prompt.states[:2], instructions="When the caller gives a name, repeat it back to confirm."
    )
    assert fixed.validate(fixed_agent) == []


def test_a_state_graph_that_does_not_hold_is_refused_when_made() -> None:
    with pytest.raises(ConfigError, match=r"state id 'a' is used by more than one state"):
        Prompt(states=[{"id": "a"}, {"id": "a"}])
    with pytest.raises(ConfigError, match=r"'a' moves to 'z', which is not a state"):
        Prompt(states=[{"id": "a", "transitions": [{"next_step": "z", "condition": "later"}]}])


def test_bad_sections_are_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="prompt section 'tone' must be text, got int"):
        Prompt(tone=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="would start a new section"):
        Prompt(context="# Another top section")
    with pytest.raises(ConfigError, match="unknown keys"):
        Prompt(states=[{"id": "a", "next": "b"}])
    with pytest.raises(ConfigError, match="unknown section 'tonne'"):
        Prompt().replace(tonne="x")
    with pytest.raises(ConfigError, match="known section"):
        Prompt(extra=[("Tools", "x")])


def test_replace_and_diff() -> None:
    a = full_prompt()
    b = a.replace(tone="Crisp.", safety="")
    assert b.tone == "Crisp." and a.tone == "Warm and brief."
    assert a.hash != b.hash and len(a.hash) == 12
    text = diff(a, b, a_name="v1", b_name="v2")
    assert text.startswith("changed: tone, safety\n")
    assert "--- v1" in text and "-Warm and brief." in text and "+Crisp." in text
    assert "-If the caller is upset, offer a person." in text
    assert a.diff(a) == ""


def test_prompt_as_agent_instructions() -> None:
    base = Agent(name="desk", instructions="old", tools=[lookup_order])
    prompt = full_prompt()
    agent = prompt.agent(base, voice="echo")
    assert agent.instructions == prompt.render() and agent.voice == "echo"
    assert base.instructions == "old"
    assert prompt._repr_markdown_() == prompt.render()
    assert "hash=" in repr(prompt)


REALTIME_GUIDE_STYLE = """# Role & Objective
You are a customer service bot for a shoe shop. Success means the caller's return is arranged.

# Personality & Tone
## Personality
- Friendly, calm and approachable.
## Tone
- Warm, concise, confident.
## Length
- 2-3 sentences per turn.
## Language
- Reply in the caller's language.

# Reference Pronunciations
- Pronounce "SQL" as "sequel".

# Instructions / Rules
- When the caller gives an order number, repeat it back to confirm it.

# Conversation States
[
  {"id": "1_greeting", "description": "Greet the caller.",
   "transitions": [{"next_step": "2_order", "condition": "After the greeting."}]},
  {"id": "2_order", "description": "Collect the order number."}
]

# Safety & Escalation
- Transfer to a human after two failed attempts.
"""


def test_a_realtime_guide_style_prompt_is_read_by_section() -> None:
    prompt = Prompt.parse(REALTIME_GUIDE_STYLE)
    assert prompt.role.startswith("You are a customer service bot")
    assert prompt.tone == "- Warm, concise, confident."
    assert prompt.other_details == (
        "### Personality\n- Friendly, calm and approachable.\n\n### Length\n- 2-3 sentences per turn.\n\n"
        "### Language\n- Reply in the caller's language."
    )
    assert prompt.pronunciations == '- Pronounce "SQL" as "sequel".'
    assert prompt.instructions.startswith("- When the caller gives an order number")
    assert [s.id for s in prompt.states] == ["1_greeting", "2_order"]
    assert prompt.safety == "- Transfer to a human after two failed attempts."
    assert prompt.validate() == []  # the repeat-back rule is there
    assert Prompt.parse(prompt.render()) == prompt


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: Prompt(role="x").agent(5), ("Prompt.agent(base)", "Agent")),
        (lambda: Prompt(role="x").agent(None), ("Agent",)),
        (lambda: Prompt(role="x").agent(Agent), ("the class Agent",)),
        (lambda: Prompt(role="x").validate(5), ("Prompt.validate(agent)",)),
        (lambda: Prompt(rol="x"), ("rol", "did you mean 'role'")),
    ],
)
def test_prompt_calls_with_the_wrong_kind_of_agent(call, words) -> None:
    with pytest.raises(ConfigError) as info:
        call()
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))
