"""voicelab's Session against a real embedded server, `voicelab.serve(...)` (returns_desk script).

Real offline services on the server side: espeak-ng speech, Silero server VAD, pocketsphinx transcription
over the script's example phrases. The caller audio comes from the labelled fixtures.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

import voicelab
from voicelab import events as ev
from voicelab.audio.core import Audio
from voicelab.config import SessionConfig
from voicelab.playback import PlaybackTracker
from voicelab.recording import load_recording

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "utterances"
LOOKUP = {
    "type": "function",
    "name": "lookup_order",
    "description": "Look up an order",
    "parameters": {"type": "object", "properties": {"order_number": {"type": "string"}}},
}
VAD = {"type": "server_vad", "silence_duration_ms": 500}


def fixture(name: str, tail_ms: int = 1000) -> Audio:
    """A fixture utterance plus trailing silence, as a microphone keeps sending after the caller stops."""
    data, rate = sf.read(FIXTURES / name, dtype="float32")
    return Audio.from_array(np.concatenate([data, np.zeros(tail_ms * rate // 1000, np.float32)]), rate)


async def until(
    session: voicelab.Session, predicate: Any, seen: list[ev.AppEvent], timeout: float = 30
) -> ev.AppEvent:
    async def pump() -> ev.AppEvent:
        async for event in session:
            seen.append(event)
            if predicate(event):
                return event
        raise AssertionError(f"session ended; last events {[e.type for e in seen][-20:]}")

    try:
        return await asyncio.wait_for(pump(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out; last events {[e.type for e in seen][-20:]}") from None


def is_type(name: str) -> Any:
    return lambda event: event.type == name


async def test_text_turn(fast_server: Any, tmp_path: Path) -> None:
    seen: list[ev.AppEvent] = []
    config = SessionConfig(output_modalities=["text"])
    async with voicelab.connect(
        config, url=fast_server.url, api_key="sk-local", record_dir=tmp_path / "t"
    ) as s:
        await s.send_text("I want to speak to a human.")
        done = await until(s, is_type("response_done"), seen)
    assert isinstance(done, ev.ResponseDone) and done.status == "completed"
    user, assistant = s.history
    assert user.content == [{"type": "input_text", "text": "I want to speak to a human."}]
    assert assistant.text == "I can transfer you to a person. Would you like me to do that?"
    assert not [e for e in seen if isinstance(e, ev.Error)]
    rec = load_recording(tmp_path / "t")
    assert [e["type"] for e in rec.events if e["dir"] == "server"][:2] == [
        "session.created",
        "session.updated",
    ]


async def test_audio_turn_with_server_vad_and_tool_round_trip(fast_server: Any, tmp_path: Path) -> None:
    seen: list[ev.AppEvent] = []
    config = SessionConfig(tools=[LOOKUP], transcription={"model": "gpt-4o-transcribe"}, turn_detection=VAD)
    async with voicelab.connect(
        config, url=fast_server.url, api_key="sk-local", record_dir=tmp_path / "a"
    ) as s:
        await s.send_audio(fixture("order_number_cedar_slow.flac"))
        call = await until(s, is_type("function_call"), seen)
        assert isinstance(call, ev.FunctionCall)
        assert (call.name, call.arguments) == ("lookup_order", '{"order_number": "four five six seven"}')
        await until(s, is_type("response_done"), seen)
        await s.send_function_output(call.call_id, "It is a pair of blue shoes.")
        await until(s, lambda e: isinstance(e, ev.TranscriptDone) and e.role == "assistant", seen)
        await until(s, is_type("response_done"), seen)
        if not any(isinstance(e, ev.TranscriptDone) and e.role == "user" for e in seen):
            await until(s, lambda e: isinstance(e, ev.TranscriptDone) and e.role == "user", seen)
    names = [e.type for e in seen]
    assert names.index("speech_started") < names.index("speech_stopped") < names.index("function_call")
    user = next(e for e in seen if isinstance(e, ev.TranscriptDone) and e.role == "user")
    assert user.transcript == "The order number is four five six seven."
    answer = [e for e in seen if isinstance(e, ev.TranscriptDone) and e.role == "assistant"][-1]
    assert answer.transcript == (
        "I found order four five six seven. It is a pair of blue shoes. Shall I send you a return label?"
    )
    audio_ms = sum(e.duration_ms for e in seen if isinstance(e, ev.AudioChunk))
    assert audio_ms > 1000
    kinds = [i.type for i in s.history]
    assert kinds[:3] == ["message", "function_call", "function_call_output"]
    assert s.history[-1].role == "assistant" and s.history[-1].audio_ms == pytest.approx(audio_ms)
    assert not [e for e in seen if isinstance(e, ev.Error)]
    rec = load_recording(tmp_path / "a")
    assert rec.input.duration_ms >= 4000
    assert rec.output.duration_ms >= audio_ms


async def test_barge_in_truncates_at_what_was_played(paced_server: Any, tmp_path: Path) -> None:
    seen: list[ev.AppEvent] = []
    tracker = PlaybackTracker()
    config = SessionConfig(transcription={"model": "gpt-4o-transcribe"}, turn_detection=VAD)
    async with voicelab.connect(
        config, url=paced_server.url, api_key="sk-local", record_dir=tmp_path / "b", playback=tracker
    ) as s:
        await s.send_text("I want to speak to a human.")
        first = await until(s, is_type("audio"), seen)
        assert isinstance(first, ev.AudioChunk)
        await until(
            s, lambda e: sum(x.duration_ms for x in seen if isinstance(x, ev.AudioChunk)) >= 400, seen
        )
        tracker.on_played(first.item_id, 300)  # the player reports 300 ms heard
        await s.send_audio(fixture("thank_you_echo.flac", tail_ms=800))
        interrupted = await until(s, is_type("audio_interrupted"), seen)
        cancelled = await until(s, is_type("response_done"), seen)
        await until(s, lambda e: s.conversation.get(first.item_id).truncated_ms is not None, seen)
        follow_up = await until(
            s, lambda e: isinstance(e, ev.ResponseDone) and e.response_id != cancelled.response_id, seen
        )
    assert isinstance(interrupted, ev.AudioInterrupted)
    assert (interrupted.item_id, interrupted.played_ms) == (first.item_id, 300.0)
    assert isinstance(cancelled, ev.ResponseDone)
    assert (cancelled.status, cancelled.reason) == ("cancelled", "turn_detected")
    assert s.conversation.get(first.item_id).truncated_ms == 300
    assert isinstance(follow_up, ev.ResponseDone) and follow_up.status == "completed"
    assert s.history[-1].transcript == "You are welcome."
    assert not [e for e in seen if isinstance(e, ev.Error)]
