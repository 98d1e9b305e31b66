"""Shared helpers for the embedded server tests: validation against the openai types, fake services."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from openai.types.realtime import RealtimeServerEvent
from pydantic import Field, TypeAdapter

from voicelab.audio.turns import SpeechStarted, SpeechStopped
from voicelab.server.brains import Brain, ScriptedBrain
from voicelab.server.engine import Engine
from voicelab.server.services import EngineServices

SERVER_EVENTS: TypeAdapter[Any] = TypeAdapter(Annotated[RealtimeServerEvent, Field(discriminator="type")])


def validate(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every event must validate against the openai server event union (as the Agents SDK checks)."""
    for event in events:
        SERVER_EVENTS.validate_python(event)
        SERVER_EVENTS.validate_json(json.dumps(event))
    return list(events)


class EnergyDetector:
    """A deterministic server_vad stand-in: 20 ms frames, speech when RMS > 0.05."""

    def __init__(self, threshold: float, prefix_ms: int, silence_ms: int, rate: int) -> None:
        self.frame = rate // 50
        self.prefix_ms, self.silence_ms = prefix_ms, silence_ms
        self.pending = np.zeros(0, dtype=np.float32)
        self.frames = 0
        self.onset: int | None = None
        self.offset = 0
        self.floor = 0

    def push(self, samples: np.ndarray) -> list[Any]:
        self.pending = np.concatenate([self.pending, samples.astype(np.float32)])
        events: list[Any] = []
        while len(self.pending) >= self.frame:
            chunk, self.pending = self.pending[: self.frame], self.pending[self.frame :]
            start, end = self.frames * 20, self.frames * 20 + 20
            self.frames += 1
            if float(np.sqrt(np.mean(chunk**2))) > 0.05:
                if self.onset is None:
                    self.onset = start
                    events.append(SpeechStarted(max(self.floor, start - self.prefix_ms, 0), start))
                self.offset = end
            elif self.onset is not None and end - self.offset >= self.silence_ms:
                events.append(SpeechStopped(self.offset + self.silence_ms, self.offset))
                self.floor = self.offset + self.silence_ms
                self.onset = None
        return events

    def clear(self) -> None:
        self.onset = None
        self.floor = self.frames * 20


def fake_tts(text: str, voice: str, speed: float) -> tuple[bytes, list[tuple[int, int]] | None]:
    """100 ms of a constant tone per word, with word marks."""
    words = text.split(" ")
    marks: list[tuple[int, int]] = []
    offset = 0
    for index, word in enumerate(words):
        marks.append((offset, index * 100))
        offset += len(word) + 1
    samples = np.full(2400 * len(words), 1000, dtype="<i2")
    return samples.tobytes(), marks


def fake_transcriber(phrases: Sequence[str]) -> Any:
    """'Transcribes' by the audio's length in 100 ms units: the n-th phrase (a test convention)."""

    def transcribe(pcm16: bytes) -> str:
        index = int(len(pcm16) / 4800) % max(1, len(phrases))
        return phrases[index] if phrases else ""

    return transcribe


FAKE_SERVICES = EngineServices(fake_tts, EnergyDetector, fake_transcriber)

SCRIPT: dict[str, Any] = {
    "rules": [
        {"match": "hello", "examples": ["hello there"], "say": "Hi, how can I help?"},
        {
            "match": r"weather in (?P<city>\w+)",
            "examples": ["what is the weather in Paris"],
            "call": {"name": "get_weather", "arguments": {"city": "{city}"}},
            "say": "In {city} it is {output.sky}.",
        },
        {"match": "long", "say": "one two three four five six seven eight nine ten"},
    ],
    "fallback": "No rule for that.",
}


def make_engine(brain: Brain | None = None, pace: str = "fast", **kwargs: Any) -> Engine:
    return Engine(brain or ScriptedBrain(SCRIPT), pace=pace, services=FAKE_SERVICES, seed=7, **kwargs)  # type: ignore[arg-type]


def send(engine: Engine, event: dict[str, Any], now_ms: float = 0.0) -> list[dict[str, Any]]:
    return validate(engine.receive(json.dumps(event), now_ms))


def types_of(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def started(brain: Brain | None = None, pace: str = "fast", **kwargs: Any) -> Engine:
    eng = make_engine(brain, pace, **kwargs)
    validate(eng.start(0.0))
    return eng
