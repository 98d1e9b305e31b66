"""Batched Silero VAD across sessions (voicelab.server.vad_batch): exactly the single-stream results."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect

from voicelab.audio.core import Audio
from voicelab.audio.turns import TurnDetection, TurnDetector, detect_turns
from voicelab.audio.vad import frame_probabilities
from voicelab.errors import AudioError
from voicelab.server import EngineServices, Server
from voicelab.server.app import resolve_script
from voicelab.server.engine import Engine
from voicelab.server.services import silero_turn_detector
from voicelab.server.vad_batch import BatchedTurnDetector, SileroBatcher, batched_turn_detector
from voicelab.speech import synthesize

LINES = ["Hi, I would like to return an order.", "Yes, that is correct.", "Thank you, goodbye."]


def caller(index: int, rate: int = 24000) -> np.ndarray:
    """Speech, pauses and a noise floor (never digital silence), different for every index."""
    rng = np.random.default_rng(index)
    speech = synthesize(LINES[index % len(LINES)], voice="echo").resample(rate).samples
    pause = np.zeros(int(rate * (0.9 + 0.2 * index)), dtype=np.float32)
    signal = np.concatenate([pause, speech, pause, speech[: len(speech) // 2], pause]).astype(np.float32)
    return (signal + rng.normal(0, 0.001, signal.size)).astype(np.float32)


def chunked(samples: np.ndarray, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out, at = [], 0
    while at < len(samples):
        size = int(rng.integers(1, 3000))
        out.append(samples[at : at + size])
        at += size
    return out


def test_interleaved_streams_get_the_offline_probabilities_and_turns_exactly() -> None:
    batcher = SileroBatcher()
    signals = [caller(i) for i in range(5)]
    config = TurnDetection(silence_duration_ms=500)
    detectors = [BatchedTurnDetector(config, 24000, batcher) for _ in signals]
    pieces = [chunked(s, seed=10 + i) for i, s in enumerate(signals)]
    probs: list[list[np.ndarray]] = [[] for _ in signals]
    events: list[list[Any]] = [[] for _ in signals]
    for step in range(max(len(p) for p in pieces)):
        for i, detector in enumerate(detectors):
            if step < len(pieces[i]):
                detector.submit(pieces[i][step], tag=step)
            if step % 3 == 2:  # some streams collect as they go, the others at the end
                for _, found in detector.completed():
                    events[i].extend(found)
                probs[i].append(detector.last_probs)
    for i, detector in enumerate(detectors):
        for _, found in detector.wait():
            events[i].extend(found)
        probs[i].append(detector.last_probs)
        assert not detector.busy
    assert batcher.frames > batcher.calls  # rows were really batched
    for i, signal in enumerate(signals):
        offline = frame_probabilities(Audio(signal, 24000), "silero").probs
        got = np.concatenate(probs[i])
        # a stream not flushed lacks the resampler's tail and the zero-padded last frame of the offline track
        assert np.array_equal(got, offline[: len(got)])
        assert len(offline) - len(got) <= 2
        single = TurnDetector(config, "silero", 24000)
        expected = [e for piece in pieces[i] for e in single.push(piece)]
        assert events[i] == expected
        assert len(expected) >= 4  # two turns: the comparison is not vacuous
        offline_turns = detect_turns(Audio(signal, 24000), config).turns
        assert [e.audio_start_ms for e in expected[::2]] == [t.start_ms for t in offline_turns]


def test_push_is_synchronous_and_clear_refuses_chunks_in_flight() -> None:
    detector = batched_turn_detector(0.5, 300, 500, 16000)
    signal = caller(1, rate=16000)
    reference = TurnDetector(TurnDetection(silence_duration_ms=500), "silero", 16000)
    assert detector.push(signal) == reference.push(signal)
    detector.submit(signal[:8000])
    with pytest.raises(AudioError, match="wait"):
        detector.clear()
    detector.wait()
    detector.clear()
    assert detector.now_ms == reference.now_ms + 500


def appends(signal: np.ndarray) -> list[dict[str, Any]]:
    pcm = (np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes()
    return [
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i : i + 1920]).decode()}
        for i in range(0, len(pcm), 1920)
    ]


def run_engine(services: EngineServices, like_the_app: bool) -> list[dict[str, Any]]:
    """A server-VAD session over the engine, sans I/O. `like_the_app`: after each frame, wait for the
    batched VAD's wake-up (when it is batched) and call advance() while something is due, as app.py does."""
    from server_helpers import fake_transcriber, fake_tts

    services = EngineServices(fake_tts, services.turn_detector, fake_transcriber)
    engine = Engine(
        resolve_script("returns_desk"), pace="fast", services=services, seed=7, wall_clock=lambda: 0.0
    )
    ready = threading.Event()
    batched = services.turn_detector is batched_turn_detector
    if like_the_app and batched:
        engine.on_vad_ready = ready.set
    session = {
        "type": "realtime",
        "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}},
    }
    out = engine.start(0.0)
    now = 0.0
    out += engine.receive(json.dumps({"type": "session.update", "session": session}), now)
    ping = {"type": "conversation.item.retrieve", "item_id": "item_missing"}
    frames = [frame for i, e in enumerate(appends(caller(0))) for frame in ([e, ping] if i % 7 == 3 else [e])]
    for event in frames:
        now += 40.0 if event is not ping else 0.0
        out += engine.receive(json.dumps(event), now)
        if not like_the_app:
            continue
        while batched and (engine._detector.busy or engine._held):  # type: ignore[union-attr]
            # frames went to the model, or wait for its results: the app then calls advance()
            if engine._detector.busy:  # type: ignore[union-attr]
                assert ready.wait(10)
                ready.clear()
            out += engine.advance(now)
        while (due := engine.next_deadline()) is not None and due <= now:
            out += engine.advance(now)
    for _ in range(2000):
        now += 40.0
        time.sleep(0.001)  # a driver waits until next_deadline(); the model thread runs meanwhile
        out += engine.advance(now)
        if engine.next_deadline() is None:
            break
    return out


def test_engine_events_with_the_batched_detector_equal_the_single_stream_ones() -> None:
    single_services = EngineServices(None, silero_turn_detector, None)  # type: ignore[arg-type]
    batched_services = EngineServices(None, batched_turn_detector, None)  # type: ignore[arg-type]
    single = run_engine(single_services, like_the_app=True)
    assert run_engine(batched_services, like_the_app=True) == single
    kinds = [e["type"] for e in single]
    assert kinds.count("input_audio_buffer.speech_stopped") == 2
    assert kinds.count("error") > 10  # the pings' answers, in their place among the VAD events
    assert "response.done" in kinds

    def turns(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
        return [
            (e["type"], e.get("audio_start_ms", e.get("audio_end_ms")))
            for e in events
            if e["type"].startswith("input_audio_buffer.speech")
        ]

    # a driver that never waits (no wake-up callback) gets the same turns, later: next_deadline() asks it
    # to poll
    late = run_engine(batched_services, like_the_app=False)
    assert turns(late) == turns(single)


def test_server_with_pooled_services_wakes_the_connection_for_vad_events() -> None:
    signal = caller(2)
    expected = detect_turns(Audio(signal, 24000), TurnDetection(silence_duration_ms=500)).turns

    async def session(url: str) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        async with connect(url + "?model=gpt-realtime", max_size=None) as ws:
            update = {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "audio": {
                        "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}
                    },
                },
            }
            await ws.send(json.dumps(update))
            for event in appends(signal):
                await ws.send(json.dumps(event))
            while sum(e["type"] == "input_audio_buffer.speech_stopped" for e in seen) < len(expected):
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        return seen

    with Server("returns_desk", pace="fast", services=EngineServices.pooled()) as server:
        seen = asyncio.run(session(server.url))
    started = [e["audio_start_ms"] for e in seen if e["type"] == "input_audio_buffer.speech_started"]
    stopped = [e["audio_end_ms"] for e in seen if e["type"] == "input_audio_buffer.speech_stopped"]
    assert started == [t.start_ms for t in expected]
    assert stopped == [t.end_ms for t in expected]
