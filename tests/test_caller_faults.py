"""The scripted caller does not talk over the assistant (issue 8, item 13): its first turn waits for an
answer that is still arriving or playing when play_turns starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import voicelab
from voicelab.caller import play_turns
from voicelab.demo import caller_turns
from voicelab.errors import ConfigError
from voicelab.recording import load_recording

VAD = {"type": "server_vad", "silence_duration_ms": 500}


@pytest.fixture(scope="module")
def server() -> Any:
    with voicelab.serve("returns_desk", pace="fast") as running:
        yield running


async def test_the_first_turn_waits_for_an_answer_in_progress(server: Any, tmp_path: Path) -> None:
    config = voicelab.SessionConfig(turn_detection=VAD)
    async with voicelab.connect(config, url=server.url, record_dir=tmp_path / "r") as session:
        await session.send_text("Hello, I would like to return something.")  # an answer starts now
        report = await play_turns(session, caller_turns("returns")[:1], realtime=False)
    assert report.responses >= 1
    events = load_recording(tmp_path / "r").events
    first_done = next(e["t_ms"] for e in events if e["dir"] == "server" and e["type"] == "response.done")
    first_append = next(
        e["t_ms"] for e in events if e["dir"] == "client" and e["type"] == "input_audio_buffer.append"
    )
    assert first_append >= first_done
    kinds = [e.type for e in report.events]
    assert "audio_interrupted" not in kinds


@pytest.mark.parametrize(
    "sizes",
    [
        {"chunk_ms": 10**9},
        {"chunk_ms": 0},
        {"pause_ms": 10**9},
        {"tail_ms": -1},
        {"settle_ms": 10**12},
        {"turn_timeout_s": float("inf")},
        {"turn_timeout_s": 0},
        {"chunk_ms": 1.5},
    ],
)
async def test_play_turns_sizes_are_bounded(server: Any, sizes: dict[str, Any]) -> None:
    session = voicelab.connect(None, url=server.url, record_dir=False)
    name = next(iter(sizes))
    with pytest.raises(ConfigError, match=name):
        await play_turns(session, caller_turns("human")[:1], **sizes)
