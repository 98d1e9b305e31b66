"""The voice agents guide's Python example (the Agents SDK's chained `VoicePipeline` with a
`SingleAgentVoiceWorkflow` and a `get_weather` function tool) runs unchanged against the embedded server,
offline, with buffered and streamed audio input; its audio output transcribes back to the scripted answer.

The example code below is the guide's, with `sounddevice` playback replaced by collecting the audio."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

agents = pytest.importorskip("agents")
pytest.importorskip("agents.voice")

from agents import Agent, function_tool, set_default_openai_client, set_tracing_disabled  # noqa: E402
from agents.extensions.handoff_prompt import prompt_with_handoff_instructions  # noqa: E402
from agents.voice import (  # noqa: E402
    AudioInput,
    SingleAgentVoiceWorkflow,
    StreamedAudioInput,
    VoicePipeline,
)
from openai import AsyncOpenAI  # noqa: E402

import voicelab  # noqa: E402
from voicelab.speech import GrammarTranscriber  # noqa: E402
from voicelab.speech.tts import synthesize  # noqa: E402

QUESTION = "What is the weather in Tokyo?"
CHOICES = ["sunny", "cloudy", "rainy", "snowy"]


# --- the guide's example -----------------------------------------------------------------------------------
@function_tool
def get_weather(city: str) -> str:
    """Get the weather for a given city."""
    print(f"[debug] get_weather called with city: {city}")
    choices = ["sunny", "cloudy", "rainy", "snowy"]
    return f"The weather in {city} is {random.choice(choices)}."


spanish_agent = Agent(
    name="Spanish",
    handoff_description="A spanish speaking agent.",
    instructions=prompt_with_handoff_instructions(
        "You're speaking to a human, so be polite and concise. Speak in Spanish.",
    ),
    model="gpt-4.1",
)

agent = Agent(
    name="Assistant",
    instructions=prompt_with_handoff_instructions(
        "You're speaking to a human, so be polite and concise. If the user speaks in Spanish, handoff to the "
        "spanish agent.",
    ),
    model="gpt-4.1",
    handoffs=[spanish_agent],
    tools=[get_weather],
)
# -----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weather_server() -> Iterator[Any]:
    with voicelab.serve("weather", pace="fast") as srv:
        yield srv


@pytest.fixture
def server(weather_server: Any) -> Any:
    """The offline client of the issue: AsyncOpenAI(base_url=..., websocket_base_url=..., api_key="sk-local"),
    made the Agents SDK's default (one per test: its connections belong to the test's event loop)."""
    srv = weather_server
    client = AsyncOpenAI(base_url=srv.http_base_url, websocket_base_url=srv.base_url, api_key="sk-local")
    set_default_openai_client(client, use_for_tracing=False)
    set_tracing_disabled(True)  # no trace export: the test runs without network
    return srv


def caller() -> np.ndarray:
    """The caller's question as int16 PCM at 24 kHz, as the guide's `AudioInput(buffer=...)` takes it."""
    return (synthesize(QUESTION).samples * 32767).astype(np.int16)


def expected(seed: int) -> str:
    random.seed(seed)
    return f"The weather in Tokyo is {random.choice(CHOICES)}."


def heard(chunks: list[np.ndarray]) -> str:
    audio = np.concatenate(chunks).astype(np.int16)
    assert len(audio) > 24000  # more than a second of speech
    answers = [f"The weather in Tokyo is {c}." for c in CHOICES]
    return str(
        GrammarTranscriber([*answers, QUESTION]).transcribe(voicelab.Audio.from_pcm16(audio.tobytes(), 24000))
    )


async def test_buffered_input(server: Any) -> None:
    pipeline = VoicePipeline(workflow=SingleAgentVoiceWorkflow(agent))
    buffer = caller()
    audio_input = AudioInput(buffer=buffer)

    answer = expected(11)
    random.seed(11)
    result = await pipeline.run(audio_input)
    chunks: list[np.ndarray] = []
    kinds: list[str] = []
    async for event in result.stream():
        kinds.append(event.type)
        if event.type == "voice_stream_event_audio":
            chunks.append(event.data)
    assert "voice_stream_event_error" not in kinds
    assert heard(chunks) == answer


async def test_streamed_input(server: Any) -> None:
    pipeline = VoicePipeline(workflow=SingleAgentVoiceWorkflow(agent))
    audio_input = StreamedAudioInput()
    answer = expected(5)
    random.seed(5)
    result = await pipeline.run(audio_input)
    speech = np.concatenate([caller(), np.zeros(24000 * 2, dtype=np.int16)])  # the question, then silence
    for start in range(0, len(speech), 2400):
        await audio_input.add_audio(speech[start : start + 2400])
    chunks: list[np.ndarray] = []
    kinds: list[str] = []
    async for event in result.stream():
        kinds.append(event.type)
        if event.type == "voice_stream_event_audio":
            chunks.append(event.data)
        elif event.type == "voice_stream_event_lifecycle" and event.event == "turn_ended":
            await audio_input.add_audio(None)  # the caller hangs up after the answer
    assert "voice_stream_event_error" not in kinds
    assert heard(chunks) == answer
