"""What the engine needs from the rest of voicelab: speech synthesis, turn detection, transcription, G.711.

`EngineServices.default()` wires voicelab.speech and voicelab.audio (imported when first used); tests may pass
their own callables instead.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from voicelab.server.asr_cache import cached_transcriber


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
    """pocketsphinx constrained to the script's example phrases (voicelab.speech.GrammarTranscriber);
    transcripts are cached by audio hash (`voicelab.server.asr_cache`)."""
    from voicelab.audio.core import Audio
    from voicelab.speech import GrammarTranscriber

    transcriber = GrammarTranscriber(list(phrases))

    def transcribe(pcm16: bytes) -> str:
        return str(transcriber.transcribe(Audio.from_pcm16(pcm16, 24000)))

    local = StreamingTranscriber(transcribe, lambda: _LocalStream(transcriber.stream(24000)))
    return cached_transcriber(local, phrases)  # a replayed turn is decoded once per process


# --- transcription in a worker process ------------------------------------------------------------------
# pocketsphinx holds the GIL while it decodes, so a busy server decodes in a worker process. Messages go over
# one pipe: the event loop only appends to an in-process queue (no pickling, no syscall, no waiting on a full
# pipe); a sender thread writes them out and a reader thread resolves the futures of finished turns. One
# worker handles the messages in order, so a turn's feeds always arrive before its finish.


def _asr_worker_main(conn: Any) -> None:
    """The worker process: open/feed/finish/cancel transcription streams, transcribe whole clips."""
    from voicelab.audio.core import Audio
    from voicelab.speech import GrammarTranscriber

    transcribers: dict[tuple[str, ...], Any] = {}
    streams: dict[int, Any] = {}
    failed: dict[int, str] = {}  # streams whose open or feed failed: their finish reports why

    def transcriber(phrases: tuple[str, ...]) -> Any:
        if phrases not in transcribers:
            transcribers[phrases] = GrammarTranscriber(list(phrases))
        return transcribers[phrases]

    while True:
        try:
            op, ident, payload = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if op == "open":
                streams[ident] = transcriber(payload).stream(24000)
            elif op == "feed":
                streams[ident].feed(payload)
            elif op == "finish":
                if ident in failed:
                    conn.send(("error", ident, failed.pop(ident)))
                else:
                    conn.send(("ok", ident, str(streams.pop(ident).finish())))
            elif op == "cancel":
                failed.pop(ident, None)
                stream = streams.pop(ident, None)
                if stream is not None:
                    stream.cancel()
            elif op == "prepare":
                transcriber(payload)
            elif op == "transcribe":
                phrases, pcm16 = payload
                conn.send(("ok", ident, str(transcriber(phrases).transcribe(Audio.from_pcm16(pcm16, 24000)))))
        except Exception as exc:  # reported to the turn it belongs to; the worker goes on
            streams.pop(ident, None)
            message = f"transcription failed ({type(exc).__name__}: {exc})"
            if op in ("finish", "transcribe"):
                conn.send(("error", ident, message))
            elif op in ("open", "feed"):
                failed[ident] = message


class _AsrWorker:
    """The server side of the transcription worker process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_asr_worker_main, args=(child,), daemon=True)
        self._process.start()
        child.close()
        self._outbox: queue.SimpleQueue[tuple[str, int, Any] | None] = queue.SimpleQueue()
        self._futures: dict[int, Future[str]] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._send_loop, name="voicelab-asr-send", daemon=True).start()
        threading.Thread(target=self._receive_loop, name="voicelab-asr-receive", daemon=True).start()

    def post(self, op: str, ident: int, payload: Any = None) -> None:
        self._outbox.put((op, ident, payload))

    def request(self, op: str, ident: int, payload: Any = None) -> Future[str]:
        future: Future[str] = Future()
        with self._lock:
            self._futures[ident] = future
        self.post(op, ident, payload)
        return future

    def _send_loop(self) -> None:
        while True:
            message = self._outbox.get()
            try:
                self._conn.send(message)
            except (OSError, ValueError) as exc:  # the worker is gone: fail every turn still waiting
                self._fail_all(f"the transcription worker stopped ({exc})")
                return

    def _receive_loop(self) -> None:
        while True:
            try:
                status, ident, text = self._conn.recv()
            except (EOFError, OSError) as exc:
                self._fail_all(f"the transcription worker stopped ({exc})")
                return
            with self._lock:
                future = self._futures.pop(ident, None)
            if future is None:
                continue
            if status == "ok":
                future.set_result(text)
            else:
                future.set_exception(RuntimeError(text))

    def _fail_all(self, message: str) -> None:
        with self._lock:
            waiting, self._futures = list(self._futures.values()), {}
        for future in waiting:
            if not future.done():
                future.set_exception(RuntimeError(message))


_WORKER: _AsrWorker | None = None
_WORKER_LOCK = threading.Lock()
_IDS = itertools.count(1)


def _worker() -> _AsrWorker:
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = _AsrWorker()
        return _WORKER


class _PooledStream:
    """A turn decoded in the worker process: feeds do not wait; `finish` returns the transcript's future."""

    def __init__(self, worker: _AsrWorker, phrases: tuple[str, ...]) -> None:
        self._worker = worker
        self._id = next(_IDS)
        worker.post("open", self._id, phrases)

    def feed(self, pcm16: bytes) -> None:
        self._worker.post("feed", self._id, pcm16)

    def finish(self) -> Future[str]:
        return self._worker.request("finish", self._id)

    def cancel(self) -> None:
        self._worker.post("cancel", self._id)


def pooled_transcriber(phrases: Sequence[str]) -> StreamingTranscriber:
    """Like `grammar_transcriber`, but decoding runs in a worker process (shared by the server's sessions).

    pocketsphinx holds the GIL while it decodes (about 20 ms per second of audio), which would stall every
    other connection of a busy server; a worker process keeps the server's event loop responsive.
    """
    key = tuple(phrases)
    worker = _worker()
    worker.post("prepare", 0, key)  # build the grammar ahead of the first turn

    def transcribe(pcm16: bytes) -> str:
        return worker.request("transcribe", next(_IDS), (key, pcm16)).result()

    return cached_transcriber(StreamingTranscriber(transcribe, lambda: _PooledStream(worker, key)), phrases)


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
    def pooled(cls, batch_vad: bool = True) -> EngineServices:
        """Services for servers with many sessions: transcription in a worker process and, with
        `batch_vad`, the Silero VAD of every session scored in batched calls on its own thread
        (`voicelab.server.vad_batch`; the same events, a few ms later)."""
        if batch_vad:
            from voicelab.server.vad_batch import batched_turn_detector

            return cls(espeak_synthesizer, batched_turn_detector, pooled_transcriber)
        return cls(espeak_synthesizer, silero_turn_detector, pooled_transcriber)
