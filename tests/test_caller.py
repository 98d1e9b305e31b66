"""The scripted caller against a real embedded server."""

from __future__ import annotations

import pytest

import voicelab
from voicelab.caller import play_turns
from voicelab.demo import caller_turns
from voicelab.errors import ConfigError

VAD = {"type": "server_vad", "silence_duration_ms": 500}


@pytest.fixture(scope="module")
def server():
    with voicelab.serve("returns_desk", pace="fast") as running:
        yield running


async def test_each_turn_is_answered_before_the_next(server, tmp_path) -> None:
    turns = caller_turns("returns")[:2]
    config = voicelab.SessionConfig(turn_detection=VAD)
    async with voicelab.connect(
        config, url=server.url, api_key="sk-local", record_dir=tmp_path / "r"
    ) as session:
        report = await play_turns(session, turns, realtime=False)
    assert report.responses == 2
    kinds = [e.type for e in report.events]
    # speech of turn 2 starts only after the answer to turn 1 is done
    first_done = kinds.index("response_done")
    second_start = [i for i, k in enumerate(kinds) if k == "speech_started"][1]
    assert first_done < second_start
    assert "audio_interrupted" not in kinds
    assert report.turn_started_ms[0] == 0.0 and report.turn_started_ms[1] > 0


async def test_no_turns_is_a_clear_error(server) -> None:
    session = voicelab.connect(None, url=server.url, api_key="sk-local", record_dir=False)
    with pytest.raises(ConfigError, match="at least one turn"):
        await play_turns(session, [])
    with pytest.raises(ConfigError, match="chunk_ms"):
        await play_turns(session, caller_turns("human")[:1], chunk_ms=0)


class _NoSession:
    pass


@pytest.mark.parametrize(
    ("session", "turns", "options", "words"),
    [
        (None, 5, {}, ("turns must be a list",)),
        (None, "audio", {}, ("turns must be a list",)),
        (None, [5], {}, ("turns[0]", "Audio")),
        (None, ["hello"], {}, ("turns[0]", "read_audio")),
        (None, "single", {}, ()),
        (None, "ok", {"realtime": "no"}, ("realtime", "True or False")),
        (None, "ok", {"turn_timeout_s": float("nan")}, ("turn_timeout_s",)),
        (5, "ok", {}, ("open session", "voicelab.connect")),
        (_NoSession, "ok", {}, ("the class _NoSession",)),
    ],
)
async def test_play_turns_refuses_what_it_cannot_play(session, turns, options, words) -> None:
    """Before: bare TypeError/AttributeError from inside the loop, or a real-time run for realtime='no'."""
    audio = voicelab.Audio.from_array([0.0] * 2400, 24000)
    turns = {"ok": [audio], "single": audio}.get(turns, turns) if isinstance(turns, str) else turns
    target = (
        voicelab.connect(None, url="ws://127.0.0.1:1/v1/realtime", record_dir=False)
        if session is None
        else session
    )
    with pytest.raises(ConfigError) as info:
        await play_turns(target, turns, **options)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
