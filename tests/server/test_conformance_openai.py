"""The official openai client against a real `voicelab.serve(...)`: text, server-VAD audio, tools, barge-in.

Uses the real offline services: espeak-ng speech for the caller and the assistant, Silero server VAD,
pocketsphinx transcription over the script's example phrases. Every received event is validated.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from openai import AsyncOpenAI
from server_helpers import validate

from voicelab.audio.core import Audio
from voicelab.speech import synthesize

LOOKUP = {
    "type": "function",
    "name": "lookup_order",
    "description": "Look up an order",
    "parameters": {"type": "object", "properties": {"order_number": {"type": "string"}}},
}
VAD_SESSION = {
    "type": "realtime",
    "tools": [LOOKUP],
    "audio": {
        "input": {
            "transcription": {"model": "gpt-4o-transcribe"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
        }
    },
}


def caller(text: str, lead_ms: int = 600, tail_ms: int = 1000) -> Audio:
    """Caller speech with silence around it, as a microphone would send."""
    speech = synthesize(text, voice="echo")
    lead = np.zeros(lead_ms * 24, dtype=np.float32)
    tail = np.zeros(tail_ms * 24, dtype=np.float32)
    return Audio.from_array(np.concatenate([lead, speech.samples, tail]), 24000)


async def events_until(conn: Any, last: str, seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async def pump() -> list[dict[str, Any]]:
        async for event in conn:
            raw = event.to_dict()
            validate([raw])
            seen.append(raw)
            if raw["type"] == last:
                return seen
        raise AssertionError(f"connection ended before {last}")

    try:
        return await asyncio.wait_for(pump(), 30)
    except TimeoutError:
        names = [e["type"] for e in seen][-30:]
        raise AssertionError(f"no {last} after {names}") from None


def transcript_of(events: list[dict[str, Any]]) -> str:
    done = [e for e in events if e["type"] == "response.done"][-1]["response"]
    part = done["output"][0]["content"][0]
    return str(part.get("transcript") or part.get("text"))


async def connected(server: Any) -> AsyncIterator[Any]:
    client = AsyncOpenAI(api_key="sk-local", websocket_base_url=server.base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        yield conn


async def test_text_turn(fast_server: Any) -> None:
    async for conn in connected(fast_server):
        seen: list[dict[str, Any]] = []
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "I want to speak to a human."}],
        }
        await conn.conversation.item.create(item=item)  # type: ignore[arg-type]
        await conn.response.create()
        events = await events_until(conn, "rate_limits.updated", seen)
        assert events[0]["type"] == "session.created"
        assert events[1]["type"] == "session.updated"
        assert transcript_of(events) == "I can transfer you to a person. Would you like me to do that?"


async def test_audio_turn_with_server_vad_and_tool_call(fast_server: Any) -> None:
    async for conn in connected(fast_server):
        seen: list[dict[str, Any]] = []
        await conn.session.update(session=VAD_SESSION)  # type: ignore[arg-type]
        for chunk in caller("The order number is four five six seven.").chunks_b64(chunk_ms=40):
            await conn.input_audio_buffer.append(audio=chunk)
        events = await events_until(conn, "rate_limits.updated", seen)
        names = [e["type"] for e in events]
        assert names.index("input_audio_buffer.speech_started") < names.index(
            "input_audio_buffer.speech_stopped"
        )
        committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
        started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
        assert committed["item_id"] == started["item_id"]
        completed = next(
            e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"
        )
        assert completed["transcript"] == "The order number is four five six seven."
        call = next(e for e in events if e["type"] == "response.output_item.done")["item"]
        assert (call["type"], call["name"], call["arguments"]) == (
            "function_call",
            "lookup_order",
            '{"order_number": "four five six seven"}',
        )
        output = {
            "type": "function_call_output",
            "call_id": call["call_id"],
            "output": "It is a pair of blue shoes.",
        }
        await conn.conversation.item.create(item=output)  # type: ignore[arg-type]
        await conn.response.create()
        seen.clear()
        events = await events_until(conn, "rate_limits.updated", seen)
        assert transcript_of(events) == (
            "I found order four five six seven. It is a pair of blue shoes. Shall I send you a return label?"
        )
        audio = b"".join(
            base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
        )
        assert len(audio) > 24000 * 2  # more than a second of 24 kHz PCM16 speech


async def test_barge_in_cancels_with_turn_detected(paced_server: Any) -> None:
    async for conn in connected(paced_server):
        seen: list[dict[str, Any]] = []
        await conn.session.update(session=VAD_SESSION)  # type: ignore[arg-type]
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "I want to speak to a human."}],
        }
        await conn.conversation.item.create(item=item)  # type: ignore[arg-type]
        await conn.response.create()
        await events_until(conn, "response.output_audio.delta", seen)
        assistant_id = next(e for e in seen if e["type"] == "response.output_item.added")["item"]["id"]
        for chunk in caller("Thank you.", lead_ms=100).chunks_b64(chunk_ms=100):
            await conn.input_audio_buffer.append(audio=chunk)
        await events_until(conn, "response.done", seen)
        done = seen[-1]["response"]
        assert done["status"] == "cancelled"
        assert done["status_details"]["reason"] == "turn_detected"
        names = [e["type"] for e in seen]
        assert names.index("input_audio_buffer.speech_started") < len(names) - 1
        await conn.conversation.item.truncate(item_id=assistant_id, content_index=0, audio_end_ms=200)
        truncated = await events_until(conn, "conversation.item.truncated", seen)
        assert truncated[-1]["item_id"] == assistant_id and truncated[-1]["audio_end_ms"] == 200
        # the caller's "Thank you." then gets its own reply
        seen.clear()
        await events_until(conn, "response.done", seen)
        assert transcript_of(seen) == "You are welcome."
