"""The input audio buffer of one connection: appends, server VAD turns, commit/clear, and its caps.

`InputBuffer` owns the uncommitted audio and the turn detector. It knows nothing of items or responses: a
turn's start and end go to a `TurnSink` (the engine) by explicit calls, which return the server events:

    sink.turn_started(item_id, audio_start_ms, now_ms)                         # speech_started, ...
    sink.turn_stopped(item_id, audio_end_ms, audio, transcript, now_ms, forced) # speech_stopped, commit, ...

Caps (the real API documents none beyond 15 MiB per append and a ~60-minute session; an embedded server
shared by many sessions must bound each one):
- manual commit (`turn_detection: null`): the buffer holds at most MAX_BUFFER_MS of audio. An append that
  would go past it is refused as a whole with an `error` (code `input_audio_buffer_full`, the append's
  event_id): what was buffered stays as it was, nothing is dropped unannounced. Commit or clear to go on.
- server VAD: a turn is committed at the latest MAX_TURN_MS after it started (`speech_stopped` at the end of
  the append that reached the cap, then the commit, as for a pause), and the speech that goes on is a new
  turn (`speech_started` at once, at that same ms): no audio is lost; no response is created for a cut turn
  (the user is still speaking), only for the turn that ends in silence.
- outside a turn, audio older than VAD_KEEP_MS plus the prefix padding is dropped (silence does not pile up).
"""

from __future__ import annotations

import binascii
import contextlib
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, Protocol

import numpy as np

from voicelab.audio.b64 import b64decode
from voicelab.protocol.wire_audio import bytes_per_ms
from voicelab.server.ids import IdMaker
from voicelab.server.services import EngineServices, TranscriptStream, TurnDetectorLike, decode_g711
from voicelab.server.validation import ClientEventError

# semantic_vad is emulated: eagerness picks the silence that ends a turn (an approximation of the real
# turn-detection model, which waits up to 8 s / 4 s / 2 s for low / medium / high).
SEMANTIC_SILENCE_MS = {"low": 1000, "medium": 600, "auto": 600, "high": 300}
MIN_COMMIT_MS = 100.0
# Under server VAD, audio before the current turn is kept only this far back (plus the prefix padding):
# enough for a turn's start, not ten minutes of silence.
VAD_KEEP_MS = 2000.0
VAD_MAX_PADDING_KEPT_MS = 10_000.0  # a huge prefix_padding_ms must not make the idle buffer unbounded again
MAX_BUFFER_MS = 5 * 60_000.0  # manual commit: at most 5 minutes buffered (14.4 MB of 24 kHz PCM)
MAX_TURN_MS = 60_000.0  # server VAD: a turn is committed after a minute of speech; the rest is a new turn
STREAM_FEED_BYTES = 9600  # a turn's audio goes to its transcription stream in blocks of at least 200 ms


class TurnSink(Protocol):
    """Who hears about turns (the engine): each call returns the server events of that moment."""

    def turn_started(self, item_id: str, audio_start_ms: int, now_ms: float) -> list[dict[str, Any]]: ...

    def turn_stopped(
        self,
        item_id: str,
        audio_end_ms: int,
        audio: bytes,
        transcript: Future[str] | None,
        now_ms: float,
        forced: bool,
    ) -> list[dict[str, Any]]: ...


class InputBuffer:
    """One connection's uncommitted input audio and its turn detection (see the module docstring)."""

    def __init__(
        self,
        ids: IdMaker,
        services: EngineServices,
        session: Callable[[], Mapping[str, Any]],
        sink: TurnSink,
        open_stream: Callable[[], TranscriptStream | None],
    ) -> None:
        self._ids = ids
        self._services = services
        self._session = session
        self._sink = sink
        self._open_stream_for_turn = open_stream
        self.input_ms = 0.0  # total ms written this session
        self.buffer = bytearray()  # the uncommitted audio, which starts at `buffer_start_ms`
        self.buffer_start_ms = 0.0
        self._odd_byte = (
            b""  # the first half of a PCM sample an append ended on: the next append completes it
        )
        self.detector: TurnDetectorLike | None = None
        self._detector_key: tuple[Any, ...] | None = None
        self._detector_offset_ms = 0.0
        self.speech_item_id: str | None = None  # the turn being spoken
        self._speech_start_ms = 0
        # the turn being transcribed while it is spoken: its stream and how far into the buffer it was fed
        self._stream: TranscriptStream | None = None
        self._stream_pos = 0
        # a batched detector (voicelab.server.vad_batch) scores appends on another thread; the I/O layer may
        # set on_vad_ready (called from that thread) to be told when to call advance() for their events
        self.on_vad_ready: Callable[[], None] | None = None

    # --- session ---------------------------------------------------------------------------------------

    def turn_detection(self) -> dict[str, Any] | None:
        value = ((self._session().get("audio") or {}).get("input") or {}).get("turn_detection")
        return value if isinstance(value, dict) else None

    def input_format(self) -> str:
        fmt = ((self._session().get("audio") or {}).get("input") or {}).get("format") or {}
        return str(fmt.get("type", "audio/pcm"))

    def bytes_per_ms(self) -> float:
        return bytes_per_ms({"type": self.input_format()})

    def format_changing(self, new_format: str) -> None:
        """Before a session.update to `new_format`: half a sample of the old format must not carry over."""
        if new_format != self.input_format():
            self._odd_byte = b""

    def configure(self) -> None:
        """(Re)build the turn detector for the session's turn_detection (after session.created/updated)."""
        detection = self.turn_detection()
        if detection is None:
            self.detector, self._detector_key = None, None
            return
        if detection.get("type") == "semantic_vad":
            silence = SEMANTIC_SILENCE_MS.get(str(detection.get("eagerness") or "auto"), 600)
            key: tuple[Any, ...] = (0.5, 300, silence)
        else:
            threshold: Any = detection.get("threshold")
            padding: Any = detection.get("prefix_padding_ms")
            silence_ms: Any = detection.get("silence_duration_ms")
            key = (
                float(threshold if threshold is not None else 0.5),
                int(padding if padding is not None else 300),
                int(silence_ms if silence_ms is not None else 200),
            )
        rate = 24000 if self.input_format() == "audio/pcm" else 8000
        key = (*key, rate)
        if key != self._detector_key:
            self.detector = self._services.turn_detector(key[0], key[1], key[2], rate)
            if hasattr(self.detector, "wakeup"):
                self.detector.wakeup = self._vad_ready  # type: ignore[union-attr]
            self._detector_key = key
            self._detector_offset_ms = self.input_ms
            self.speech_item_id = None
            self.drop_stream()

    def vad_busy(self) -> bool:
        """A batched detector still scores appends: their events come from `vad_results`."""
        return bool(getattr(self.detector, "busy", False))

    def _vad_ready(self) -> None:
        if self.on_vad_ready is not None:
            self.on_vad_ready()

    # --- appends ---------------------------------------------------------------------------------------

    def append(self, audio: Any, now_ms: float) -> list[dict[str, Any]]:
        """One `input_audio_buffer.append`: the audio into the buffer and through the turn detector."""
        try:
            data = b64decode(audio, validate=True) if isinstance(audio, str) else None
        except (binascii.Error, ValueError):
            data = None
        if data is None:
            raise ClientEventError(
                "invalid_value",
                "Invalid 'audio': expected base64-encoded audio in the session input format.",
                "audio",
            )
        fmt = self.input_format()
        per_ms = bytes_per_ms({"type": fmt})
        if self.detector is None:
            self._check_room(len(self._odd_byte) + len(data), per_ms)
        if fmt == "audio/pcm":
            if self._odd_byte:
                data, self._odd_byte = self._odd_byte + data, b""
            if len(data) % 2:
                data, self._odd_byte = data[:-1], data[-1:]
        self.buffer.extend(data)
        self.input_ms += len(data) / per_ms
        if self.detector is None or not data:
            return []
        pcm16 = np.frombuffer(data, dtype="<i2") if fmt == "audio/pcm" else decode_g711(data, fmt)
        submit = getattr(self.detector, "submit", None)
        if submit is not None:  # batched: this append's events come from vad_results once scored
            submit(pcm16, self.input_ms)  # int16 in: scaled by 1/32768 there, the very same floats
            return self.vad_results(now_ms, wait=False)
        samples = pcm16.astype(np.float32) / 32768.0
        return self._after_vad(self.detector.push(samples), self.input_ms, now_ms)

    def _check_room(self, incoming: int, per_ms: float) -> None:
        """Manual commit: refuse an append that would take the buffer past MAX_BUFFER_MS."""
        if len(self.buffer) + incoming <= MAX_BUFFER_MS * per_ms:
            return
        held_ms = len(self.buffer) / per_ms
        raise ClientEventError(
            "input_audio_buffer_full",
            f"The input audio buffer is full: it holds {held_ms / 1000:.1f} s and takes at most "
            f"{MAX_BUFFER_MS / 60_000:.0f} minutes without turn detection. This append was not added; "
            "send input_audio_buffer.commit (or clear) before appending more.",
            "audio",
        )

    def vad_results(self, now_ms: float, wait: bool) -> list[dict[str, Any]]:
        """The events of appends a batched detector has scored (all of them when `wait`), in order."""
        detector = self.detector
        if detector is None or not getattr(detector, "busy", False):
            return []
        out: list[dict[str, Any]] = []
        for input_ms, turn_events in detector.wait() if wait else detector.completed():  # type: ignore[attr-defined]
            if self.detector is not detector:
                break  # a session.update replaced the detector meanwhile
            out.extend(self._after_vad(turn_events, input_ms, now_ms))
        return out

    def _after_vad(self, turn_events: list[Any], input_ms: float, now_ms: float) -> list[dict[str, Any]]:
        """An append's work once its VAD is known (`input_ms`: the session's input audio up to its end)."""
        out: list[dict[str, Any]] = []
        for turn_event in turn_events:
            if hasattr(turn_event, "audio_start_ms"):
                at = int(turn_event.audio_start_ms + self._detector_offset_ms)
                out.extend(self._speech_started(at, now_ms))
            else:
                at = int(turn_event.audio_end_ms + self._detector_offset_ms)
                out.extend(self._speech_stopped(at, now_ms))
        per_ms = self.bytes_per_ms()
        end = len(self.buffer)
        if input_ms != self.input_ms:  # later appends are in the buffer already
            end = max(0, min(end, round((input_ms - self.buffer_start_ms) * per_ms)))
        if self._stream is not None and end - self._stream_pos >= STREAM_FEED_BYTES:
            self._feed_stream(end)
        if self.speech_item_id is None:
            self._trim_idle_buffer(per_ms, input_ms)
        elif input_ms - self._speech_start_ms >= MAX_TURN_MS:
            out.extend(self._cut_turn(int(input_ms), now_ms))
        return out

    def _cut_turn(self, at_ms: int, now_ms: float) -> list[dict[str, Any]]:
        """A turn that reached MAX_TURN_MS: committed up to `at_ms`; the speech goes on as a new turn."""
        out = self._speech_stopped(at_ms, now_ms, forced=True)
        out.extend(self._speech_started(at_ms, now_ms))
        return out

    def _trim_idle_buffer(self, per_ms: float, input_ms: float | None = None) -> None:
        """Outside a turn, drop input audio older than VAD_KEEP_MS + the prefix padding: a turn that starts
        later still gets its padding, and silence does not pile up (10 minutes would be 29 MB of PCM)."""
        input_ms = self.input_ms if input_ms is None else input_ms
        if self.input_ms - self.buffer_start_ms <= 2 * VAD_KEEP_MS:  # the common case: nothing to trim yet
            return
        detection = self.turn_detection() or {}
        padding = detection.get("prefix_padding_ms")
        padding_ms = float(padding) if isinstance(padding, (int, float)) else 300.0
        keep_ms = VAD_KEEP_MS + min(padding_ms, VAD_MAX_PADDING_KEPT_MS)
        excess_ms = (input_ms - self.buffer_start_ms) - 2 * keep_ms
        if excess_ms <= 0:  # trim in steps of keep_ms, not on every append
            return
        drop = int((input_ms - self.buffer_start_ms - keep_ms) * per_ms)
        drop -= drop % 2
        del self.buffer[:drop]
        self.buffer_start_ms += drop / per_ms

    # --- turns -----------------------------------------------------------------------------------------

    def _open_stream(self) -> None:
        """Start decoding the turn that just started (PCM input and a streaming transcriber only)."""
        self.drop_stream()
        if self.input_format() != "audio/pcm":
            return
        stream = self._open_stream_for_turn()
        if stream is None:
            return
        start = round((self._speech_start_ms - self.buffer_start_ms) * 48)
        self._stream = stream
        self._stream_pos = max(0, start - start % 2)

    def _feed_stream(self, end: int) -> None:
        if self._stream is not None and end > self._stream_pos:
            self._stream.feed(bytes(self.buffer[self._stream_pos : end]))
            self._stream_pos = end

    def drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.cancel()

    def _speech_started(self, audio_start_ms: int, now_ms: float) -> list[dict[str, Any]]:
        self.speech_item_id = self._ids.item()
        self._speech_start_ms = max(audio_start_ms, int(self.buffer_start_ms))
        try:
            self._open_stream()
        except Exception:  # transcription problems surface at the end of the turn
            self._stream = None
        return self._sink.turn_started(self.speech_item_id, audio_start_ms, now_ms)

    def _speech_stopped(self, audio_end_ms: int, now_ms: float, forced: bool = False) -> list[dict[str, Any]]:
        item_id = self.speech_item_id or self._ids.item()
        self.speech_item_id = None
        per_ms = self.bytes_per_ms()
        start = round((self._speech_start_ms - self.buffer_start_ms) * per_ms)
        end = round((audio_end_ms - self.buffer_start_ms) * per_ms)
        start, end = max(0, start - start % 2), max(0, end - end % 2)
        segment = bytes(self.buffer[start:end])
        transcript: Future[str] | None = None
        if self._stream is not None:
            self._feed_stream(end)
            stream, self._stream = self._stream, None
            with contextlib.suppress(Exception):  # on failure the whole segment is transcribed instead
                transcript = stream.finish()
        del self.buffer[:end]
        self.buffer_start_ms = float(audio_end_ms)
        return self._sink.turn_stopped(item_id, audio_end_ms, segment, transcript, now_ms, forced)

    # --- commit, clear, idle timeout ---------------------------------------------------------------------

    def commit(self) -> tuple[str, bytes]:
        """`input_audio_buffer.commit`: the item id and the audio it gets (the buffer is emptied)."""
        buffered_ms = len(self.buffer) / self.bytes_per_ms()
        if buffered_ms < MIN_COMMIT_MS:
            raise ClientEventError(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS:.0f}ms of "
                f"audio, but buffer only has {buffered_ms:.2f}ms of audio.",
            )
        item_id = self.speech_item_id or self._ids.item()
        self.speech_item_id = None
        self.drop_stream()
        if self.detector is not None:
            self.detector.clear()
        audio = bytes(self.buffer)
        self.buffer.clear()
        self._odd_byte = b""  # half a sample cannot be committed; it must not start the next turn either
        self.buffer_start_ms = self.input_ms
        return item_id, audio

    def clear(self) -> None:
        """`input_audio_buffer.clear`."""
        self.buffer.clear()
        self._odd_byte = b""
        self.buffer_start_ms = self.input_ms
        self.speech_item_id = None
        self.drop_stream()
        if self.detector is not None:
            self.detector.clear()

    def take_for_timeout(self) -> tuple[int, int, bytes]:
        """The idle timeout: (audio_start_ms, audio_end_ms, audio) of the buffer, which is emptied."""
        span = (int(self.buffer_start_ms), int(self.input_ms))
        audio = bytes(self.buffer)
        self.buffer.clear()
        self.buffer_start_ms = self.input_ms
        self.drop_stream()
        if self.detector is not None:
            self.detector.clear()
        return span[0], span[1], audio


__all__ = [
    "MAX_BUFFER_MS",
    "MAX_TURN_MS",
    "MIN_COMMIT_MS",
    "SEMANTIC_SILENCE_MS",
    "InputBuffer",
    "TurnSink",
    "bytes_per_ms",
]
