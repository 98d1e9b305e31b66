"""What the engine needs from the rest of voicelab: speech synthesis, turn detection, transcription, G.711.

`EngineServices.default()` wires voicelab.speech and voicelab.audio (imported when first used); tests may pass
their own callables instead.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
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
# phrases -> (PCM16 24 kHz bytes -> transcript)
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


def grammar_transcriber(phrases: Sequence[str]) -> Callable[[bytes], str]:
    """pocketsphinx constrained to the script's example phrases (voicelab.speech.GrammarTranscriber)."""
    from voicelab.audio.core import Audio
    from voicelab.speech import GrammarTranscriber

    transcriber = GrammarTranscriber(list(phrases))

    def transcribe(pcm16: bytes) -> str:
        return str(transcriber.transcribe(Audio.from_pcm16(pcm16, 24000)))

    return transcribe


_POOL: Any = None
_POOL_LOCK = threading.Lock()


@lru_cache(maxsize=16)
def _worker_transcriber(phrases: tuple[str, ...]) -> Callable[[bytes], str]:
    return grammar_transcriber(phrases)


def _transcribe_in_worker(phrases: tuple[str, ...], pcm16: bytes) -> str:
    return _worker_transcriber(phrases)(pcm16)


def pooled_transcriber(phrases: Sequence[str]) -> Callable[[bytes], str]:
    """Like `grammar_transcriber`, but decoding runs in a worker process.

    pocketsphinx holds the GIL while it decodes (about 25 ms per second of audio), which would stall every
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

    return transcribe


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
