"""What the engine needs from the rest of voicelab: speech synthesis, turn detection, transcription, G.711.

`EngineServices.default()` wires voicelab.speech and voicelab.audio (imported when first used); tests may pass
their own callables instead.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import typing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np


class TurnDetectorLike(Protocol):
    def push(self, samples: np.ndarray) -> list[Any]: ...  # SpeechStarted | SpeechStopped
    def clear(self) -> None: ...


# (text, voice, speed) -> (PCM16 24 kHz bytes, word marks [(char_offset, ms)] or None)
Synthesizer = Callable[[str, str, float], tuple[bytes, list[tuple[int, int]] | None]]
# (threshold, prefix_padding_ms, silence_duration_ms, input_rate) -> detector
TurnDetectorFactory = Callable[[float, int, int, int], TurnDetectorLike]
# phrases -> (PCM16 24 kHz bytes -> transcript); a `StreamingTranscriber` also decodes turns as they arrive
TranscriberFactory = Callable[[Sequence[str]], Callable[[bytes], str]]


@lru_cache(maxsize=256)
def _espeak(text: str, voice: str, speed: float) -> tuple[bytes, list[tuple[int, int]] | None]:
    from voicelab.speech.tts import synthesize_with_marks

    audio, marks = synthesize_with_marks(text, voice, speed)
    return audio.to_pcm16(), list(marks)


def espeak_synthesizer(text: str, voice: str, speed: float) -> tuple[bytes, list[tuple[int, int]] | None]:
    """Offline TTS through voicelab.speech (libespeak-ng); results are cached per (text, voice, speed)."""
    return _espeak(text, voice, float(speed))


def silero_turn_detector(
    threshold: float, prefix_ms: int, silence_ms: int, input_rate: int
) -> TurnDetectorLike:
    from voicelab.audio.turns import TurnDetection, TurnDetector

    return TurnDetector(TurnDetection(threshold, prefix_ms, silence_ms), "silero", input_rate)


class TranscriptStream(Protocol):
    """One user turn being transcribed while it is spoken (PCM16 24 kHz in)."""

    def feed(self, pcm16: bytes) -> None: ...
    def finish(self) -> Future[str]: ...  # the transcript; may still be decoding elsewhere
    def cancel(self) -> None: ...


class StreamingTranscriber:
    """A transcriber (PCM16 24 kHz bytes -> text) that can also decode a turn as it arrives (`stream()`)."""

    def __init__(self, transcribe: Callable[[bytes], str], stream: Callable[[], TranscriptStream]) -> None:
        self._transcribe = transcribe
        self.stream = stream

    def __call__(self, pcm16: bytes) -> str:
        return self._transcribe(pcm16)


class _LocalStream:
    """A turn decoded in this process, chunk by chunk as it is fed."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def feed(self, pcm16: bytes) -> None:
        self._stream.feed(pcm16)

    def finish(self) -> Future[str]:
        future: Future[str] = Future()
        try:
            future.set_result(self._stream.finish())
        except Exception as exc:
            future.set_exception(exc)
        return future

    def cancel(self) -> None:
        self._stream.cancel()


def grammar_transcriber(phrases: Sequence[str]) -> StreamingTranscriber:
    """pocketsphinx constrained to the script's example phrases (voicelab.speech.GrammarTranscriber)."""
    from voicelab.audio.core import Audio
    from voicelab.speech import GrammarTranscriber

    transcriber = GrammarTranscriber(list(phrases))

    def transcribe(pcm16: bytes) -> str:
        return str(transcriber.transcribe(Audio.from_pcm16(pcm16, 24000)))

    return StreamingTranscriber(transcribe, lambda: _LocalStream(transcriber.stream(24000)))


# --- transcription in a worker process ------------------------------------------------------------------
# pocketsphinx holds the GIL while it decodes, so a busy server decodes in a worker process. The worker keeps
# the open streams by id; one worker runs the calls in submission order, so feeds arrive before finish.

_POOL: Any = None
_POOL_LOCK = threading.Lock()
_STREAM_IDS = itertools.count(1)
_WORKER_STREAMS: dict[int, Any] = {}


@lru_cache(maxsize=16)
def _worker_transcriber(phrases: tuple[str, ...]) -> Any:
    from voicelab.speech import GrammarTranscriber

    return GrammarTranscriber(list(phrases))


def _transcribe_in_worker(phrases: tuple[str, ...], pcm16: bytes) -> str:
    from voicelab.audio.core import Audio

    return str(_worker_transcriber(phrases).transcribe(Audio.from_pcm16(pcm16, 24000)))


def _worker_open(phrases: tuple[str, ...], stream_id: int) -> None:
    _WORKER_STREAMS[stream_id] = _worker_transcriber(phrases).stream(24000)


def _worker_feed(stream_id: int, pcm16: bytes) -> None:
    _WORKER_STREAMS[stream_id].feed(pcm16)


def _worker_finish(stream_id: int) -> str:
    return str(_WORKER_STREAMS.pop(stream_id).finish())


def _worker_cancel(stream_id: int) -> None:
    stream = _WORKER_STREAMS.pop(stream_id, None)
    if stream is not None:
        stream.cancel()


class _PooledStream:
    """A turn decoded in the worker process; feeds do not wait, `finish` returns the worker's future."""

    def __init__(self, pool: Any, phrases: tuple[str, ...]) -> None:
        self._pool = pool
        self._id = next(_STREAM_IDS)
        self._opened = pool.submit(_worker_open, phrases, self._id)

    def feed(self, pcm16: bytes) -> None:
        self._pool.submit(_worker_feed, self._id, pcm16)

    def finish(self) -> Future[str]:
        return typing.cast("Future[str]", self._pool.submit(_worker_finish, self._id))

    def cancel(self) -> None:
        self._pool.submit(_worker_cancel, self._id)


def pooled_transcriber(phrases: Sequence[str]) -> StreamingTranscriber:
    """Like `grammar_transcriber`, but decoding runs in a worker process (shared by the server's sessions).

    pocketsphinx holds the GIL while it decodes (about 20 ms per second of audio), which would stall every
    other connection of a busy server; a worker process keeps the server's event loop responsive.
    """
    global _POOL
    key = tuple(phrases)
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    pool = _POOL
    pool.submit(_worker_transcriber, key)  # build the grammar ahead of the first turn

    def transcribe(pcm16: bytes) -> str:
        return str(pool.submit(_transcribe_in_worker, key, pcm16).result())

    return StreamingTranscriber(transcribe, lambda: _PooledStream(pool, key))


def decode_g711(data: bytes, law: str) -> np.ndarray:
    """G.711 bytes (8 kHz) -> int16 samples."""
    from voicelab.audio.g711 import alaw_decode, ulaw_decode

    return ulaw_decode(data) if law == "audio/pcmu" else alaw_decode(data)


def pcm16_24k_from(data: bytes, fmt: str) -> bytes:
    """Input-format bytes -> PCM16 24 kHz (for transcription)."""
    if fmt == "audio/pcm":
        return data
    import soxr

    samples = decode_g711(data, fmt).astype(np.float32) / 32768.0
    return (np.clip(soxr.resample(samples, 8000, 24000), -1, 1) * 32767).astype("<i2").tobytes()


def pcm16_24k_to(pcm16: bytes, fmt: str) -> bytes:
    """PCM16 24 kHz -> output-format bytes."""
    if fmt == "audio/pcm":
        return pcm16
    import soxr

    from voicelab.audio.g711 import alaw_encode, ulaw_encode

    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
    narrow = (np.clip(soxr.resample(samples, 24000, 8000), -1, 1) * 32767).astype(np.int16)
    return ulaw_encode(narrow) if fmt == "audio/pcmu" else alaw_encode(narrow)


@dataclass(frozen=True)
class EngineServices:
    synthesize: Synthesizer
    turn_detector: TurnDetectorFactory
    transcriber: TranscriberFactory

    @classmethod
    def default(cls) -> EngineServices:
        return cls(espeak_synthesizer, silero_turn_detector, grammar_transcriber)

    @classmethod
    def pooled(cls) -> EngineServices:
        """Default services with transcription in a worker process (for servers with many sessions)."""
        return cls(espeak_synthesizer, silero_turn_detector, pooled_transcriber)
