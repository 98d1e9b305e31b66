"""`voicelab replay` and `voicelab export`, and the replay API behind the first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicelab.cli import main
from voicelab.demo import returns_desk_agent
from voicelab.prompts import Prompt
from voicelab.replay import agent_from_recording, replay

AGENT_FILE = """
from voicelab import Agent

def make():
    return Agent(name="no_tools", instructions="You are the returns desk without tools.",
                 turn_detection={"type": "server_vad", "silence_duration_ms": 500})
"""


@pytest.fixture(scope="module")
def recording(returns_recording: Path) -> Path:
    return returns_recording


STABLE = [
    "turns",
    "responses",
    "tool_calls",
    "tool_errors",
    "guardrail_trips",
    "interruptions",
    "total_tokens",
]


async def test_replays_are_deterministic_and_match_the_original(recording, tmp_path) -> None:
    first = await replay(recording, out_dir=tmp_path / "one")
    second = await replay(recording, out_dir=tmp_path / "two")
    assert first.turns.equals(second.turns)
    assert first.compare.loc["replay", STABLE].equals(second.compare.loc["replay", STABLE])
    # the recording's own agent, rebuilt from meta.json, answers as the original did
    assert first.turns["same"].all() and len(first.turns) == 3
    assert list(first.compare.loc["original", STABLE]) == list(first.compare.loc["replay", STABLE])
    assert first.turns.loc[1, "replay_tools"] == 'lookup_order({"order_number": "four five six seven"})'


def test_agent_from_recording(recording) -> None:
    agent = agent_from_recording(recording)
    assert agent.name == "returns_desk"
    assert agent.instructions == returns_desk_agent().instructions
    assert sorted(t.name for t in agent.tools) == ["create_return_label", "lookup_order", "transfer_to_human"]
    assert agent.stubs is not None and agent.stubs.kind("lookup_order") == "recorded"
    assert agent.stubs.kind("transfer_to_human") == "fixed"


def test_cli_replay_against_another_agent(recording, tmp_path, capsys) -> None:
    agent_file = tmp_path / "other_agent.py"
    agent_file.write_text(AGENT_FILE)
    status = main(["replay", str(recording), "--agent", f"{agent_file}:make", "--out", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert status == 0
    assert "turn 1: caller: The order number is four five six seven." in out
    assert "  replay  : Thank you. Order four five six seven can be returned." in out
    assert "1 of 3 turns answered the same." in out
    assert (tmp_path / "r" / "runs" / "replay__replay__0" / "events.jsonl").is_file()


def test_cli_replay_errors_are_one_line(tmp_path, capsys) -> None:
    assert main(["replay", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("voicelab replay: error: recording folder") and err.count("\n") == 1
    assert main(["replay", str(tmp_path), "--agent", "no_such_module_xyz:agent"]) == 2
    assert "cannot import 'no_such_module_xyz'" in capsys.readouterr().err


def test_cli_export(recording, tmp_path, capsys) -> None:
    agent_file = tmp_path / "my_agent.py"
    agent_file.write_text(AGENT_FILE)
    assert main(["export", f"{agent_file}:make", "--format", "session-update"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["type"] == "session.update" and event["session"]["instructions"].endswith("without tools.")
    target = tmp_path / "desk.md"
    assert main(["export", str(recording), "-f", "markdown", "-o", str(target)]) == 0
    assert f"wrote {target}" in capsys.readouterr().out
    assert (
        Prompt.parse(target.read_text()).render().strip()
        == Prompt.parse(returns_desk_agent().instructions).render().strip()
    )
    assert main(["export", f"{agent_file}:make", "-f", "yaml"]) == 2
    assert "invalid choice: 'yaml'" in capsys.readouterr().err
    assert main(["export", f"{agent_file}:missing", "-f", "markdown"]) == 2
    assert "has no 'missing'" in capsys.readouterr().err


def test_cli_replay_with_other_settings_and_prompt(recording, tmp_path, capsys) -> None:
    prompt = tmp_path / "prompt.md"
    prompt.write_text("# Role and Objective\nYou are the returns desk, now terser.\n")
    status = main(
        [
            "replay",
            str(recording),
            "--prompt",
            str(prompt),
            "--set",
            'turn_detection={"type": "server_vad", "silence_duration_ms": 300}',
            "--set",
            'voice="echo"',
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert status == 0, capsys.readouterr().err
    meta = json.loads((tmp_path / "r" / "runs" / "replay__replay__0" / "meta.json").read_text())
    assert meta["config"]["instructions"] == prompt.read_text()
    assert meta["config"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 300
    assert meta["config"]["audio"]["output"]["voice"] == "echo"
    assert "3 of 3 turns answered the same." in capsys.readouterr().out
    assert main(["replay", str(recording), "--set", "colour=1"]) == 2
    assert "must be FIELD=JSON" in capsys.readouterr().err
    assert main(["replay", str(recording), "--set", "voice=echo"]) == 2
    assert "is not JSON" in capsys.readouterr().err


def test_an_agent_module_that_fails_is_one_line_not_a_traceback(tmp_path, capsys) -> None:
    (tmp_path / "raises.py").write_text("raise RuntimeError('no database')\n")
    (tmp_path / "syntax.py").write_text("def (:\n")
    (tmp_path / "factory.py").write_text("def make():\n    raise KeyError('model')\n")
    for spec, words in [
        (f"{tmp_path / 'raises.py'}:agent", ("RuntimeError: no database", "fix the module")),
        (f"{tmp_path / 'syntax.py'}:agent", ("line 1", "invalid syntax", "fix the syntax")),
        (f"{tmp_path / 'factory.py'}:make", ("KeyError", "fix the function")),
    ]:
        assert main(["export", spec, "-f", "markdown"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("voicelab export: error:") and err.count("\n") == 1, err
        for word in words:
            assert word in err, (word, err)


def test_replay_helpers_refuse_the_wrong_kinds() -> None:
    from voicelab.errors import ConfigError
    from voicelab.replay import changed_agent, load_agent

    with pytest.raises(ConfigError, match="module:name"):
        load_agent(5)
    with pytest.raises(ConfigError, match=r"takes a voicelab\.Agent"):
        changed_agent(5, None, [])
    with pytest.raises(ConfigError, match="list of 'FIELD=JSON'"):
        changed_agent(returns_desk_agent(), None, 'voice="ash"')
    with pytest.raises(ConfigError, match=r"agent must be a voicelab\.Agent"):
        import asyncio

        asyncio.run(replay("/nonexistent", agent=5))
