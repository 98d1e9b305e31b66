"""Scenarios: turns, stubs, expectations, save/load, from a recording."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import voicelab
from voicelab import clips
from voicelab.audio.io import write_audio
from voicelab.demo import returns_desk_agent
from voicelab.errors import ConfigError
from voicelab.scenarios import RunFacts, Scenario, expect


@pytest.fixture(scope="module")
def recording(returns_recording: Path) -> Path:
    return returns_recording


def test_save_load_round_trip(tmp_path) -> None:
    tone = voicelab.Audio.from_array(np.sin(np.arange(24000) / 10).astype(np.float32) * 0.3, 24000)
    file = tmp_path / "turn.wav"
    write_audio(file, tone.resample(16000))
    stubs = (
        voicelab.Stubs()
        .fixed("lookup_order", {"status": "delivered"})
        .sequence("create_return_label", ["a", "b"])
    )
    scenario = Scenario(
        "order-return",
        ["Hi, I would like to return an order.", tone, file],
        stubs=stubs,
        expect=[
            expect.tool("lookup_order", {"order_number": "four.*"}, match="pattern"),
            expect.says("return label"),
            expect.never_says("sorry"),
            expect.handoff("human"),
            expect.no_guardrail_trip(),
            expect.first_audio_within(1500),
        ],
        description="a caller returning shoes",
    )
    folder = scenario.save(tmp_path / "scenario")
    manifest = json.loads((folder / "scenario.json").read_text())
    assert manifest["format"] == "voicelab-scenario" and manifest["version"] == 1
    assert manifest["turns"][0] == {"text": "Hi, I would like to return an order."}
    assert [t.get("file") for t in manifest["turns"][1:]] == ["turn-002.wav", "turn-003.wav"]
    loaded = Scenario.load(folder)
    assert loaded.name == "order-return" and loaded.description == "a caller returning shoes"
    assert [e.label for e in loaded.expect] == [e.label for e in scenario.expect]
    assert loaded.stubs is not None and loaded.stubs.to_json() == stubs.to_json()
    audio = loaded.audio_turns()
    assert audio[1].to_pcm16() == tone.to_pcm16()
    assert audio[2].rate == 24000 and abs(audio[2].duration_ms - 1000) < 1
    assert audio[0].duration_ms > 500  # spoken by the offline TTS
    with pytest.raises(ConfigError, match="not empty"):
        scenario.save(folder)


def test_missing_or_unreadable_clip_names_the_file(tmp_path) -> None:
    scenario = Scenario("s", [voicelab.Audio.from_array(np.ones(2400, np.float32) * 0.1, 24000)])
    folder = scenario.save(tmp_path / "s")
    (folder / "turn-001.wav").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match=r"turn-001\.wav cannot be read .*replace it"):
        Scenario.load(folder)
    (folder / "turn-001.wav").unlink()
    with pytest.raises(ConfigError, match=r"turn-001\.wav is missing; restore it"):
        Scenario.load(folder)
    with pytest.raises(ConfigError, match=r"no scenario\.json"):
        Scenario.load(tmp_path)


def test_bad_definitions_are_one_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="non-empty list of turns"):
        Scenario("s", [])
    with pytest.raises(ConfigError, match="scenario name"):
        Scenario("a/b", ["hi"])
    with pytest.raises(ConfigError, match="turn 1 is a int"):
        Scenario("s", [3])
    with pytest.raises(ConfigError, match="does not exist"):
        Scenario("s", [tmp_path / "nope.wav"])
    with pytest.raises(ConfigError, match="callable stub cannot be saved"):
        Scenario("s", ["hi"], stubs=voicelab.Stubs().callable("x", lambda: 1))
    with pytest.raises(ConfigError, match="not a regex"):
        expect.tool("x", {"a": "("}, match="pattern")
    with pytest.raises(ConfigError, match="positive number of ms"):
        expect.first_audio_within(0)
    with pytest.raises(ConfigError, match="same expectation twice"):
        Scenario("s", ["hi"], expect=[expect.says("a"), expect.says("a")])


def test_expectation_naming_a_tool_the_agent_lacks() -> None:
    agent = returns_desk_agent()
    scenario = Scenario("s", ["hi"], expect=[expect.tool("refund_order")])
    with pytest.raises(ConfigError, match="expects a call of 'refund_order' but agent 'returns_desk' has no"):
        scenario.check_agent(agent)
    with pytest.raises(ConfigError, match="cannot hand off to it"):
        Scenario("s", ["hi"], expect=[expect.handoff("billing")]).check_agent(agent)
    Scenario("s", ["hi"], expect=[expect.tool("transfer_to_human"), expect.handoff("human")]).check_agent(
        agent
    )


def test_expectations_check_what_a_run_did() -> None:
    facts = RunFacts(
        assistant_text="I found order four five six seven.\nThe Return   label is on its way.",
        tool_calls=[("lookup_order", {"order_number": "four five six seven"})],
        handoffs=["human"],
        guardrail_trips=[],
        first_audio_ms=[520.0, 610.0],
    )
    passing = [
        expect.tool("lookup_order"),
        expect.tool("lookup_order", {"order_number": "four five six seven"}),
        expect.tool("lookup_order", {"order_number": r"four( \w+)+"}, match="pattern"),
        expect.says("return label"),
        expect.never_says("sorry"),
        expect.handoff("human"),
        expect.no_guardrail_trip(),
        expect.first_audio_within(610),
    ]
    failing = [
        expect.tool("create_return_label"),
        expect.tool("lookup_order", {"order_number": "1234"}),
        expect.tool("lookup_order", {"order_number": "five.*"}, match="pattern"),
        expect.says("goodbye"),
        expect.never_says("found order"),
        expect.handoff("billing"),
        expect.first_audio_within(600),
    ]
    assert all(e.check(facts).passed for e in passing)
    assert not any(e.check(facts).passed for e in failing)
    assert expect.first_audio_within(600).check(facts).detail == "slowest turn 610 ms"
    assert not expect.no_guardrail_trip().check(RunFacts(guardrail_trips=["pii"])).passed


def test_from_recording_uses_its_caller_audio_and_tool_outputs(recording, tmp_path) -> None:
    scenario = Scenario.from_recording(recording, expect=[expect.tool("lookup_order")])
    assert scenario.name == "rec"
    found = clips.recorded_turns(recording)
    assert [t.to_pcm16() for t in scenario.audio_turns()] == [t.audio.to_pcm16() for t in found]
    assert scenario.turns[0].text == "Hi, I would like to return an order."
    assert scenario.stubs is not None and scenario.stubs.kind("lookup_order") == "recorded"
    recorded = scenario.stubs.to_json()["stubs"]["lookup_order"]["outputs"]
    assert recorded == [
        "It was delivered on March third and is within the thirty day return window (four five six seven)."
    ]
    # saved and loaded like any scenario
    again = Scenario.load(scenario.save(tmp_path / "from-rec"))
    assert [t.to_pcm16() for t in again.audio_turns()] == [t.to_pcm16() for t in scenario.audio_turns()]


def test_from_turns_folder(recording, tmp_path) -> None:
    folder = clips.save_turns(recording, tmp_path / "my-caller")
    scenario = Scenario.from_turns(folder, expect=[expect.says("order number")])
    assert scenario.name == "my-caller" and len(scenario.turns) == 3
    assert scenario.turns[1].text == "The order number is four five six seven."


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: Scenario("s", ["hi"], voice="robot"), ("voice", "alloy")),
        (lambda: Scenario("s", ["hi"], voice=5), ("voice",)),
        (lambda: Scenario("s", ["hi"], description=5), ("description", "str")),
        (lambda: Scenario("s", ["hi"], expect=5), ("expect", "list")),
        (lambda: Scenario("s", ["x" * 5000]), ("5000 characters", "split it")),
        (lambda: Scenario("s", ["hi"], stubs={"bad name!": "x"}), ("stub",)),
        (lambda: Scenario("s", ["hi"]).check_agent(5), ("check_agent", "Agent")),
        (lambda: Scenario.load(5), ("folder must be a path",)),
        (lambda: Scenario.from_turns(5), ("folder must be a path",)),
        (lambda: Scenario.from_recording(5), ("recording must be a path",)),
        (lambda: expect.tool("t", {"a": object()}), ("JSON values",)),
    ],
)
def test_bad_scenarios_fail_when_made(make, words) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))


def test_scenario_save_under_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="which is a file"):
        Scenario("s", ["hi"]).save(a_file / "scenario")
