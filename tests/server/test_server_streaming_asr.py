"""The engine transcribes a server-VAD turn while it is spoken, and never blocks on a slow transcript."""

from __future__ import annotations

import base64
from concurrent.futures import Future
from typing import Any

from server_helpers import FAKE_SERVICES, SCRIPT, EnergyDetector, fake_tts, send, types_of, validate

from voicelab.server.brains import ScriptedBrain
from voicelab.server.engine import Engine
from voicelab.server.services import EngineServices, StreamingTranscriber, grammar_transcriber
from voicelab.speech import synthesize

TRANSCRIBED = {"type": "realtime", "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}}


class SpyStream:
    """Records what it is fed; its transcript is resolved by the test."""

    def __init__(self, log: list[Any]) -> None:
        self.fed = bytearray()
        self.future: Future[str] = Future()
        self.cancelled = False
        log.append(self)

    def feed(self, pcm16: bytes) -> None:
        self.fed.extend(pcm16)

    def finish(self) -> Future[str]:
        return self.future

    def cancel(self) -> None:
        self.cancelled = True


def spy_services(log: list[Any]) -> EngineServices:
    def factory(phrases: Any) -> StreamingTranscriber:
        def whole(pcm16: bytes) -> str:
            raise AssertionError("the turn must come from its stream, not a whole-segment decode")

        return StreamingTranscriber(whole, lambda: SpyStream(log))

    return EngineServices(fake_tts, EnergyDetector, factory)


def chunks(pcm: bytes, chunk_ms: int = 40) -> list[str]:
    step = chunk_ms * 48
    return [base64.b64encode(pcm[i : i + step]).decode() for i in range(0, len(pcm), step)]


def tone_then_silence() -> bytes:
    import numpy as np

    tone = (0.3 * np.sin(np.arange(24000) * 2 * np.pi * 220 / 24000) * 32767).astype("<i2").tobytes()
    return bytes(500 * 48) + tone + bytes(400 * 48)


def test_the_stream_gets_exactly_the_committed_segment_and_pings_do_not_wait() -> None:
    log: list[SpyStream] = []
    engine = Engine(ScriptedBrain(SCRIPT), pace="fast", services=spy_services(log), seed=1)
    validate(engine.start(0.0))
    send(engine, {"type": "session.update", "session": TRANSCRIBED})
    events: list[dict[str, Any]] = []
    for piece in chunks(tone_then_silence()):
        events += send(engine, {"type": "input_audio_buffer.append", "audio": piece}, 10.0)
        events += validate(engine.advance(10.0))
    names = types_of(events)
    assert names[:5] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert "response.created" not in names  # the transcript is not ready: the response waits for it
    (stream,) = log
    # speech_started at 500 ms with 300 ms padding; speech_stopped at 1500 + 200 ms of silence
    assert (events[0]["audio_start_ms"], events[1]["audio_end_ms"]) == (200, 1700)
    assert bytes(stream.fed) == tone_then_silence()[200 * 48 : 1700 * 48]
    # a ping is answered at once while the transcript is being finalised elsewhere
    (ping,) = send(engine, {"type": "conversation.item.retrieve", "item_id": "nope", "event_id": "p1"}, 11.0)
    assert ping["type"] == "error" and ping["error"]["event_id"] == "p1"
    assert engine.next_deadline() is not None
    stream.future.set_result("hello there")
    follow = validate(engine.advance(20.0))
    assert types_of(follow)[:3] == [
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
    ]
    assert follow[1]["transcript"] == "hello there"
    done = next(e for e in follow if e["type"] == "response.output_audio_transcript.done")
    assert done["transcript"] == "Hi, how can I help?"


def test_clearing_the_buffer_mid_turn_cancels_the_stream() -> None:
    log: list[SpyStream] = []
    engine = Engine(ScriptedBrain(SCRIPT), pace="fast", services=spy_services(log), seed=1)
    validate(engine.start(0.0))
    for piece in chunks(tone_then_silence()[: 800 * 48]):
        send(engine, {"type": "input_audio_buffer.append", "audio": piece})
    (stream,) = log
    assert not stream.cancelled
    assert types_of(send(engine, {"type": "input_audio_buffer.clear"})) == ["input_audio_buffer.cleared"]
    assert stream.cancelled


def test_real_speech_is_transcribed_from_the_stream_exactly() -> None:
    phrase = "Hi, I would like to return an order."
    real = grammar_transcriber([phrase, "Thank you."])
    whole_calls: list[bytes] = []

    def factory(phrases: Any) -> StreamingTranscriber:
        def whole(pcm16: bytes) -> str:
            whole_calls.append(pcm16)
            return real(pcm16)

        return StreamingTranscriber(whole, real.stream)

    script = {"rules": [{"match": "return", "examples": [phrase, "Thank you."], "say": "Sure."}]}
    services = EngineServices(FAKE_SERVICES.synthesize, FAKE_SERVICES.turn_detector, factory)
    engine = Engine(ScriptedBrain(script), pace="fast", services=services, seed=2)
    validate(engine.start(0.0))
    send(engine, {"type": "session.update", "session": TRANSCRIBED})
    speech = synthesize(phrase, voice="echo").to_pcm16()
    events: list[dict[str, Any]] = []
    for piece in chunks(bytes(300 * 48) + speech + bytes(1000 * 48)):
        events += send(engine, {"type": "input_audio_buffer.append", "audio": piece})
        events += validate(engine.advance(0.0))
    completed = [e for e in events if e["type"].endswith("transcription.completed")]
    assert [e["transcript"] for e in completed] == [phrase]
    assert whole_calls == []
    said = [e["transcript"] for e in events if e["type"] == "response.output_audio_transcript.done"]
    assert said == ["Sure."]
