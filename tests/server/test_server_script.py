"""Script loading and validation, the bundled returns desk script, and the brains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicelab.errors import ScriptError
from voicelab.server.app import SCRIPTS_DIR, resolve_script
from voicelab.server.brains import BrainInput, Call, EchoBrain, ReplayBrain, Say, ScriptedBrain
from voicelab.server.script import fill, load_script

RETURNS = ScriptedBrain(SCRIPTS_DIR / "returns_desk.yaml")
ALL_TOOLS = ("lookup_order", "create_return_label", "transfer_to_human")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "rules:\n  - match: hi\n    say: [unclosed\n")
    with pytest.raises(ScriptError, match=r"bad\.yaml, line 4, column 1: invalid YAML"):
        load_script(path)


def test_json_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", '{"rules": [\n  {"match": "hi", "say": "x"},\n  ]\n}')
    with pytest.raises(ScriptError, match=r"bad\.json, line 3, column 3: invalid JSON"):
        load_script(path)


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("  - match: '(unclosed'\n    say: x\n", r"bad regex in 'match'"),
        ("  - match: hi\n    sey: x\n", r"unknown key 'sey'"),
        ("  - match: hi\n    examples: [a]\n", r"the rule has neither 'say' nor 'call'"),
        (
            "  - match: hi (?P<name>\\w+)\n    say: hello {nme}\n",
            r"placeholder \{nme\} in 'say' is not a named group",
        ),
        (
            "  - match: hi\n    say: result {output}\n",
            r"placeholder \{output\} in 'say' .* only available in the 'say' of a rule with a 'call'",
        ),
        (
            "  - match: hi\n    call: {name: f, arguments: {a: '{x}'}}\n",
            r"placeholder \{x\} in 'call.arguments'",
        ),
        ("  - match: hi\n    instructions: '[bad'\n    say: x\n", r"bad regex in 'instructions'"),
    ],
)
def test_schema_problems_name_the_rule_and_its_line(tmp_path: Path, rule: str, problem: str) -> None:
    text = "fallback: nothing\nrules:\n  - match: ok\n    say: fine\n" + rule
    path = write(tmp_path, "s.yaml", text)
    with pytest.raises(ScriptError, match=rf"s\.yaml, line 5: rule 2: {problem}"):
        load_script(path)


def test_json_schema_problem_has_rule_line(tmp_path: Path) -> None:
    data = {"rules": [{"match": "a", "say": "b"}, {"match": "c"}]}
    path = write(tmp_path, "s.json", json.dumps(data, indent=1))
    with pytest.raises(ScriptError, match=r"s\.json, line 7: rule 2: the rule has neither"):
        load_script(path)


def test_top_level_problems(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="unknown top-level key 'rule'"):
        load_script(write(tmp_path, "a.yaml", "rule: []\n"))
    with pytest.raises(ScriptError, match="'rules' is missing"):
        load_script(write(tmp_path, "b.yaml", "fallback: x\n"))
    with pytest.raises(ScriptError, match="cannot read the script"):
        load_script(tmp_path / "missing.yaml")


def test_fill_placeholders() -> None:
    assert fill(
        "Order {n}: {output.item.name} ({output}) {{literal}}", {"n": "12"}, '{"item": {"name": "shoes"}}'
    ) == ('Order 12: shoes ({"item": {"name": "shoes"}}) {literal}')
    assert fill("{output.missing}|{output.x}", {}, "not json") == "|"


def test_returns_desk_answers_the_fixture_lines() -> None:
    lines = {
        "Hi, I would like to return an order.": Say("I can help with that. What is your order number?"),
        "No, that is all. Thank you, goodbye.": Say("You are welcome. Goodbye!"),
        "Hello, I need to update the name on my account.": Say(
            "Sure. What is the correct last name? Please spell it for me."
        ),
        "my last name is smith s m i t h": Say("Thank you. I have smith. Is that correct?"),
        "Yes, that is correct.": Say(
            "Great, I have updated the name on your account. Is there anything else?"
        ),
        "I want to speak to a human.": Say("I can transfer you to a person. Would you like me to do that?"),
        "Thank you.": Say("You are welcome."),
        "something else entirely": Say("Sorry, I did not catch that. Could you say it again?"),
    }
    for text, expected in lines.items():
        assert RETURNS.reply(BrainInput(text, "", ALL_TOOLS)) == expected, text
    assert len(RETURNS.phrases) == 10
    assert RETURNS.phrases[0] == "Hi, I would like to return an order."


def test_returns_desk_tool_rules_and_their_follow_up() -> None:
    reply = RETURNS.reply(BrainInput("the order number is four five six seven", "", ALL_TOOLS))
    assert isinstance(reply, Call)
    assert (reply.name, dict(reply.arguments)) == ("lookup_order", {"order_number": "four five six seven"})
    follow = RETURNS.reply(
        BrainInput(None, "", ALL_TOOLS, function_output="Blue shoes.", call_note=reply.note)
    )
    assert follow == Say("I found order four five six seven. Blue shoes. Shall I send you a return label?")
    # without the tool declared, the say-only rule answers
    assert RETURNS.reply(BrainInput("the order number is four five six seven", "", ())) == Say(
        "Thank you. Order four five six seven can be returned. Shall I send you a return label?"
    )
    handoff = RETURNS.reply(BrainInput("Yes, please transfer me to a person.", "", ALL_TOOLS))
    assert isinstance(handoff, Call) and handoff.name == "transfer_to_human"
    after = BrainInput(
        None, "You are a human agent", (), function_output='{"assistant": "human"}', call_note=handoff.note
    )
    assert RETURNS.reply(after) == Say("Transferring you now. A person will be with you shortly.")


def test_instructions_rules_are_per_agent() -> None:
    brain = ScriptedBrain(
        {
            "rules": [
                {"match": "hello", "instructions": "billing", "say": "Billing here."},
                {"match": "hello", "say": "Front desk here."},
            ]
        }
    )
    assert brain.reply(BrainInput("hello", "You are the Billing agent.", ())) == Say("Billing here.")
    assert brain.reply(BrainInput("hello", "You are the triage agent.", ())) == Say("Front desk here.")


def test_resolve_script_by_bundled_name_and_error() -> None:
    assert resolve_script("returns_desk").phrases == RETURNS.phrases
    with pytest.raises(ValueError, match=r"neither a file nor a bundled script; .* returns_desk"):
        resolve_script("no_such_script")


def test_echo_brain() -> None:
    brain = EchoBrain(["hi"])
    assert list(brain.phrases) == ["hi"]
    assert brain.reply(BrainInput("repeat me", "", ())) == Say("repeat me")
    assert brain.reply(BrainInput(None, "", (), function_output="42")) == Say("42")
    assert "could not transcribe" in brain.reply(BrainInput(None, "", ())).text  # type: ignore[union-attr]


def test_replay_brain_from_a_recording(tmp_path: Path) -> None:
    def server(event: dict[str, object]) -> str:
        return json.dumps({"t_ms": 1.0, "dir": "server", "type": event["type"], "event": event})

    lines = [
        json.dumps(
            {"t_ms": 0.0, "dir": "client", "type": "response.create", "event": {"type": "response.create"}}
        ),
        server(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "transcript": "where is my order",
            }
        ),
        server(
            {
                "type": "response.done",
                "response": {
                    "output": [{"type": "function_call", "name": "lookup_order", "arguments": '{"n": "1"}'}]
                },
            }
        ),
        server(
            {
                "type": "response.done",
                "response": {
                    "output": [
                        {
                            "type": "message",
                            "content": [{"type": "output_audio", "transcript": "It shipped."}],
                        }
                    ]
                },
            }
        ),
    ]
    write(tmp_path, "events.jsonl", "\n".join(lines) + "\n")
    brain = ReplayBrain.from_recording(tmp_path)
    assert list(brain.phrases) == ["where is my order"]
    assert brain.remaining == 2
    first = brain.reply(BrainInput("x", "", ()))
    assert isinstance(first, Call) and (first.name, dict(first.arguments)) == ("lookup_order", {"n": "1"})
    assert brain.reply(BrainInput("x", "", ())) == Say("It shipped.")
    assert brain.reply(BrainInput("x", "", ())) == Say("The recording has no more assistant turns to replay.")
    with pytest.raises(ScriptError, match="cannot read the recording"):
        ReplayBrain.from_recording(tmp_path / "nope")


def test_handoff_without_say_lets_the_new_agent_answer() -> None:
    brain = ScriptedBrain(
        {
            "rules": [
                {"match": "billing", "instructions": "triage", "call": {"name": "transfer_to_billing"}},
                {"match": "billing", "instructions": "billing agent", "say": "Billing here, how can I help?"},
            ]
        }
    )
    call = brain.reply(BrainInput("I have a billing question", "You are triage.", ("transfer_to_billing",)))
    assert isinstance(call, Call) and call.name == "transfer_to_billing"
    after = BrainInput(
        "I have a billing question",
        "You are the billing agent.",
        (),
        function_output='{"assistant": "billing"}',
        function_name="transfer_to_billing",
        call_note=call.note,
    )
    assert brain.reply(after) == Say("Billing here, how can I help?")
    plain = BrainInput(None, "", (), function_output="42", function_name="lookup", call_note=None)
    assert brain.reply(plain) == Say("42")
