"""Bad input fails where it is written (issue 8): one ConfigError (or AudioError) whose message names the
problem and the fix, never a bare TypeError/AttributeError, a pydantic dump, or nothing until connect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import voicelab
from voicelab import SessionConfig
from voicelab.agents import Agent, FunctionTool, Stubs, handoff, tool
from voicelab.audio.turns import detect_turns
from voicelab.errors import AudioError, ConfigError


def _one_clear_line(exc: BaseException, *words: str) -> None:
    message = str(exc)
    assert "\n" not in message and len(message) < 400, message
    for word in words:
        assert word.lower() in message.lower(), (word, message)


class _Weird:
    pass


def _weird_tool(x: _Weird) -> str:
    return ""


def _plain(x: int) -> str:
    return str(x)


def _other(x: int) -> str:
    return str(x)


CASES: list[tuple[str, Callable[[], Any], type[Exception], tuple[str, ...]]] = [
    ("detect_turns(ndarray)", lambda: detect_turns(np.zeros(16000)), AudioError, ("Audio.from_array",)),
    ("detect_turns(list)", lambda: detect_turns([0.0] * 100), AudioError, ("Audio",)),
    ("declared parameters=5", lambda: FunctionTool.declared("t", 5), ConfigError, ("parameters", "dict")),
    ("declared parameters=str", lambda: FunctionTool.declared("t", "x"), ConfigError, ("parameters",)),
    ("declared name=5", lambda: FunctionTool.declared(5, {}), ConfigError, ("name",)),  # type: ignore[arg-type]
    ("output_modalities=5", lambda: SessionConfig(output_modalities=5), ConfigError, ("output_modalities",)),
    (
        "output_modalities='audio'",
        lambda: SessionConfig(output_modalities="audio"),
        ConfigError,
        ("['audio']",),
    ),
    ("tools=5", lambda: SessionConfig(tools=5), ConfigError, ("tools",)),
    ("voice=5", lambda: SessionConfig(voice=5), ConfigError, ("voice",)),
    ("turn_detection=5", lambda: SessionConfig(turn_detection=5), ConfigError, ("turn_detection",)),
    ("replace(colour=)", lambda: SessionConfig().replace(colour="red"), ConfigError, ("colour", "voice")),
    ("replace(vioce=)", lambda: SessionConfig().replace(vioce="ash"), ConfigError, ("did you mean", "voice")),
    (
        "duplicate tool dicts",
        lambda: SessionConfig(
            tools=[{"type": "function", "name": "a", "parameters": {}}, {"type": "function", "name": "a"}]
        ),
        ConfigError,
        ("duplicate", "rename"),
    ),
    ("Agent(debounce='x')", lambda: Agent(name="a", debounce_text_length="x"), ConfigError, ("debounce",)),
    ("Agent(debounce=True)", lambda: Agent(name="a", debounce_text_length=True), ConfigError, ("debounce",)),
    ("Agent(debounce=0)", lambda: Agent(name="a", debounce_text_length=0), ConfigError, ("debounce",)),
    (
        "Agent(voice='robot')",
        lambda: Agent(name="a", voice="robot"),
        ConfigError,
        ("Agent 'a'", "robot", "alloy"),
    ),
    (
        "Agent negative silence",
        lambda: Agent(name="a", turn_detection={"type": "server_vad", "silence_duration_ms": -5}),
        ConfigError,
        ("Agent 'a'", "silence_duration_ms"),
    ),
    ("Agent(speed=9)", lambda: Agent(name="a", speed=9), ConfigError, ("Agent 'a'", "speed")),
    ("Agent(model=5)", lambda: Agent(name="a", model=5), ConfigError, ("Agent 'a'", "model")),
    (
        "Agent(guardrail_follow_up=5)",
        lambda: Agent(name="a", guardrail_follow_up=5),
        ConfigError,
        ("guardrail_follow_up",),
    ),
    (
        "Agent(handoff_description=5)",
        lambda: Agent(name="a", handoff_description=5),
        ConfigError,
        ("handoff_description",),
    ),
    ("@tool unsupported annotation", lambda: tool(_weird_tool), ConfigError, ("'x'", "_Weird", "str, int")),
    (
        "Agent duplicate tools",
        lambda: Agent(name="a", tools=[tool(_plain), tool(_plain)]),
        ConfigError,
        ("_plain", "rename"),
    ),
    (
        "misspelt stub",
        lambda: Agent(name="a", tools=[tool(_plain)], stubs=Stubs().fixed("_plian", "1")),
        ConfigError,
        ("_plian", "did you mean", "_plain"),
    ),
    ("stub template", lambda: Stubs().template("t", "{oops"), ConfigError, ("{{",)),
    ("handoff(5)", lambda: handoff(5), ConfigError, ("handoff", "Agent")),  # type: ignore[arg-type]
    ("Stubs().fixed(5, x)", lambda: Stubs().fixed(5, "x"), ConfigError, ("stub", "name")),  # type: ignore[arg-type]
    ("Stubs().sequence(x, 5)", lambda: Stubs().sequence("x", 5), ConfigError, ("list of outputs",)),
    ("Stubs().sequence(x, 'ab')", lambda: Stubs().sequence("x", "ab"), ConfigError, ("list of outputs",)),
    ("Stubs().template(x, 5)", lambda: Stubs().template("x", 5), ConfigError, ("template", "str")),
    ("Stubs().manual(timeout=-1)", lambda: Stubs().manual("x", timeout=-1), ConfigError, ("timeout",)),
    (
        "SessionConfig tool 'bad name!'",
        lambda: SessionConfig(tools=[{"type": "function", "name": "bad name!"}]),
        ConfigError,
        ("bad name!", "letters"),
    ),
    (
        "SessionConfig tool parameters=5",
        lambda: SessionConfig(tools=[{"type": "function", "name": "x", "parameters": 5}]),
        ConfigError,
        ("parameters", "dict"),
    ),
    (
        "from_dict(audio=5)",
        lambda: SessionConfig.from_dict({"type": "realtime", "audio": 5}),
        ConfigError,
        ("audio",),
    ),
    (
        "from_dict(audio.input=5)",
        lambda: SessionConfig.from_dict({"type": "realtime", "audio": {"input": 5}}),
        ConfigError,
        ("audio.input",),
    ),
    ("serve(5)", lambda: voicelab.serve(5), ConfigError, ("script", "returns_desk")),  # type: ignore[arg-type]
    ("read_audio(5)", lambda: voicelab.read_audio(5), AudioError, ("path",)),  # type: ignore[arg-type]
    ("connect(Agent class)", lambda: voicelab.connect(Agent), ConfigError, ("class Agent", "Agent(")),
    ("connect(SessionConfig class)", lambda: voicelab.connect(SessionConfig), ConfigError, ("instance",)),
    ("connect(42)", lambda: voicelab.connect(42), ConfigError, ("SessionConfig",)),  # type: ignore[arg-type]
    (
        "connect(api_key=5)",
        lambda: voicelab.connect(None, url="ws://h:1/v1/realtime", api_key=5),
        ConfigError,
        ("api_key",),
    ),
    (
        "connect(model='')",
        lambda: voicelab.connect(None, url="ws://h:1/v1/realtime", model=""),
        ConfigError,
        ("model",),
    ),
    (
        "connect(headers=5)",
        lambda: voicelab.connect(None, url="ws://h:1/v1/realtime", api_key="k", headers=5),
        ConfigError,
        ("headers",),
    ),
    (
        "connect(open_timeout=0)",
        lambda: voicelab.connect(None, url="ws://h:1/v1/realtime", api_key="k", open_timeout=0),
        ConfigError,
        ("open_timeout",),
    ),
    (
        "connect(response_timeout=-1)",
        lambda: voicelab.connect(None, url="ws://h:1/v1/realtime", api_key="k", response_timeout=-1),
        ConfigError,
        ("response_timeout",),
    ),
    (
        "connect(open_timeout=nan)",
        lambda: voicelab.connect(None, url="ws://h:1/v1/realtime", api_key="k", open_timeout=float("nan")),
        ConfigError,
        ("open_timeout",),
    ),
    (
        "connect(playback=5)",
        lambda: voicelab.connect(None, url="ws://h:1/v1/realtime", api_key="k", playback=5),
        ConfigError,
        ("PlaybackTracker",),
    ),
    (
        "connect(record_dir=True-ish int)",
        lambda: voicelab.connect(None, url="ws://h:1/v1/realtime", api_key="k", record_dir=3),
        ConfigError,
        ("record_dir",),
    ),
]


@pytest.mark.parametrize(("what", "make", "error", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_when_made_with_one_clear_message(
    what: str, make: Callable[[], Any], error: type[Exception], words: tuple[str, ...]
) -> None:
    with pytest.raises(error) as info:
        make()
    _one_clear_line(info.value, *words)


def test_stubs_are_checked_against_every_agent_reachable_by_handoff() -> None:
    returns = Agent(name="returns", tools=[tool(_other)])
    stubs = Stubs().fixed("_other", "1").fixed("_plain", "2")
    Agent(name="front", tools=[tool(_plain)], handoffs=[handoff(returns)], stubs=stubs)  # both are known
    with pytest.raises(ConfigError, match="_nope"):
        Agent(name="front", tools=[tool(_plain)], handoffs=[returns], stubs=Stubs().fixed("_nope", "x"))


def test_a_stub_added_after_the_agent_is_checked_when_the_runtime_starts() -> None:
    stubs = Stubs()
    agent = Agent(name="a", tools=[tool(_plain)], stubs=stubs)
    stubs.fixed("_plian", "1")
    with pytest.raises(ConfigError, match="did you mean '_plain'"):
        agent.create_listener()
    with pytest.raises(ConfigError, match="_plian"):
        Agent(name="b", tools=[tool(_plain)]).create_listener(stubs=stubs)


def test_the_stub_template_error_shows_the_braces_to_write() -> None:
    with pytest.raises(ConfigError) as info:
        Stubs().template("t", "{oops")
    assert "{{ and }}" in str(info.value) and "{{{{" not in str(info.value)


async def test_send_event_needs_a_dict(fast_server: Any) -> None:
    async with voicelab.connect(None, url=fast_server.url, record_dir=False) as session:
        with pytest.raises(ConfigError, match="send_event takes a client event dict"):
            await session.send_event(5)  # type: ignore[arg-type]


def test_a_record_dir_that_is_a_file_fails_at_connect(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        voicelab.connect(None, url="ws://h:1/v1/realtime", api_key="k", record_dir=tmp_path / "f" / "r")
