"""The OpenAI Agents SDK (`agents.realtime`) against a real `voicelab.serve(...)`.

The SDK validates every server event with the openai types and reports failures as `error` session events,
so each test also asserts that no `error` event arrived. Covers a text turn with a function tool, an audio
turn with the SDK's default semantic_vad, a handoff, and a barge-in (the SDK sends the truncate).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner, RealtimeSession
from server_helpers import validate

from voicelab.speech import synthesize

ORDERS: list[str] = []


@function_tool
def lookup_order(order_number: str) -> str:
    """Look up an order by its number."""
    ORDERS.append(order_number)
    return "It is a pair of blue shoes."


HUMAN = RealtimeAgent(name="human", instructions="You are a person at the returns desk.")
DESK = RealtimeAgent(
    name="Returns desk",
    instructions="You are the returns desk of an online shop.",
    tools=[lookup_order],
    handoffs=[HUMAN],
)


def caller_pcm(text: str, lead_ms: int = 500, tail_ms: int = 1200) -> bytes:
    speech = synthesize(text, voice="echo").samples
    samples = np.concatenate([np.zeros(lead_ms * 24, np.float32), speech, np.zeros(tail_ms * 24, np.float32)])
    return (samples * 32767).astype("<i2").tobytes()


class Watcher:
    """Reads session events; keeps raw server events (validated again here) and fails on `error` events."""

    def __init__(self, session: RealtimeSession) -> None:
        self.session = session
        self.events: list[Any] = []
        self.raw: list[dict[str, Any]] = []

    async def until(self, predicate: Callable[[Any], bool], timeout: float = 30) -> Any:
        async def pump() -> Any:
            async for event in self.session:
                self.events.append(event)
                assert event.type != "error", f"the SDK reported an error: {event.error}"
                if event.type == "raw_model_event" and event.data.type == "raw_server_event":
                    self.raw.append(validate([event.data.data])[0])
                if predicate(event):
                    return event
            raise AssertionError("session ended")

        return await asyncio.wait_for(pump(), timeout)

    async def server_event(self, kind: str, timeout: float = 30) -> dict[str, Any]:
        start = len(self.raw)

        def seen(event: Any) -> bool:
            return any(e["type"] == kind for e in self.raw[start:])

        if not seen(None):
            await self.until(seen, timeout)
        return next(e for e in self.raw[start:] if e["type"] == kind)


def reply_text(done: dict[str, Any]) -> str:
    part = done["response"]["output"][0]["content"][0]
    return str(part.get("transcript") or part.get("text"))


async def open_session(server: Any) -> RealtimeSession:
    runner = RealtimeRunner(
        DESK, config={"model_settings": {"model_name": "gpt-realtime"}, "tracing_disabled": True}
    )
    return await runner.run(model_config={"url": server.url + "?model=gpt-realtime", "api_key": "sk-local"})


async def test_text_turn_with_function_tool_and_handoff(fast_server: Any) -> None:
    ORDERS.clear()
    async with await open_session(fast_server) as session:
        watch = Watcher(session)
        await session.send_message("The order number is four five six seven.")
        tool_end = await watch.until(lambda e: e.type == "tool_end")
        assert tool_end.tool.name == "lookup_order" and tool_end.output == "It is a pair of blue shoes."
        assert ORDERS == ["four five six seven"]
        start = len(watch.raw)
        while True:
            done = await watch.server_event("response.done")
            if done["response"]["output"][0]["type"] == "message":
                break
        assert reply_text(done) == (
            "I found order four five six seven. It is a pair of blue shoes. Shall I send you a return label?"
        )
        assert len(watch.raw) > start
        await session.send_message("Yes, please transfer me to a person.")
        handoff = await watch.until(lambda e: e.type == "handoff")
        assert (handoff.from_agent.name, handoff.to_agent.name) == ("Returns desk", "human")
        while True:
            done = await watch.server_event("response.done")
            if done["response"]["output"][0]["type"] == "message":
                break
        assert reply_text(done) == "Transferring you now. A person will be with you shortly."
        # the SDK switched the session to the human agent's instructions
        updated = [e for e in watch.raw if e["type"] == "session.updated"]
        assert updated[-1]["session"]["instructions"] == "You are a person at the returns desk."


async def test_audio_turn_with_the_sdk_default_semantic_vad(fast_server: Any) -> None:
    async with await open_session(fast_server) as session:
        watch = Watcher(session)
        updated = await watch.server_event("session.updated")
        detection = updated["session"]["audio"]["input"]["turn_detection"]
        assert detection["type"] == "semantic_vad"
        pcm = caller_pcm("Hi, I would like to return an order.")
        for offset in range(0, len(pcm), 4800):
            await session.send_audio(pcm[offset : offset + 4800])
        transcript = await watch.server_event("conversation.item.input_audio_transcription.completed")
        assert transcript["transcript"] == "Hi, I would like to return an order."
        done = await watch.server_event("response.done")
        assert reply_text(done) == "I can help with that. What is your order number?"
        kinds = [e.type for e in watch.events]
        assert "audio" in kinds and kinds.index("audio") < kinds.index("audio_end")


async def test_barge_in_is_cancelled_and_truncated(paced_server: Any) -> None:
    async with await open_session(paced_server) as session:
        watch = Watcher(session)
        await session.send_message("I want to speak to a human.")
        await watch.until(lambda e: e.type == "audio")
        await asyncio.sleep(0.3)
        pcm = caller_pcm("Thank you.", lead_ms=100)
        for offset in range(0, len(pcm), 2400):
            await session.send_audio(pcm[offset : offset + 2400])
        await watch.until(lambda e: e.type == "audio_interrupted")
        done = await watch.server_event("response.done")
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "turn_detected"
        truncated = await watch.server_event("conversation.item.truncated")
        assert truncated["item_id"] == done["response"]["output"][0]["id"]
        assert 0 < truncated["audio_end_ms"] < 3000
        following = await watch.server_event("response.done")
        assert reply_text(following) == "You are welcome."
