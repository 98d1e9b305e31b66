"""Turn detection with the Realtime API ``server_vad`` semantics, streaming and offline.

Frame ``i`` of a VAD track covers ``[i * frame_ms, (i + 1) * frame_ms)`` ms from the start of the stream.

- Speech starts at the first frame whose probability is ``>= threshold``; its start is the onset
  (``speech_start_ms``).
- Speech goes on while frames are ``>= threshold``; the offset (``speech_end_ms``) is the end of the last
  such frame. It stops at ``offset + silence_duration_ms`` once the frames after the offset have stayed
  below the threshold that long (gaps shorter than that do not split a turn): every frame that ends by then,
  and the frame that straddles that point too, unless its level blocks up to there are at the noise floor
  (see below). With that evidence a streaming detector decides as soon as the stream reaches the point,
  without waiting for the straddling frame, and a loud straddling frame starts the next turn there.
- The openai types define the event fields (``openai.types.realtime``):
  ``InputAudioBufferSpeechStartedEvent.audio_start_ms``: "Milliseconds from the start of all audio written to
  the buffer during the session when speech was first detected. This will correspond to the beginning of audio
  sent to the model, and thus includes the `prefix_padding_ms` configured in the Session."
  ``InputAudioBufferSpeechStoppedEvent.audio_end_ms``: "Milliseconds since the session started when speech
  stopped. This will correspond to the end of audio sent to the model, and thus includes the
  `min_silence_duration_ms` configured in the Session."
  Hence ``audio_start_ms = max(0, onset - prefix_padding_ms)`` and
  ``audio_end_ms = offset + silence_duration_ms``.
  The prefix padding can only reach back to audio still in the input buffer: ``audio_start_ms`` is also never
  earlier than the previous turn's ``audio_end_ms`` or the last ``clear()``.
- At the end of the stream (``flush``) a turn still open stops there: ``speech_end_ms`` is the offset and
  ``audio_end_ms`` is the end of the stream (there is no more audio to send), both clamped to the stream
  length.

Offset refinement (``TurnDetection.refine_offset``, on by default). A model's probability stays above the
threshold for a frame or more after speech ends (Silero's hangover is 40-80 ms in noise; webrtc's smoothing
adds more), which makes offsets and ``speech_stopped`` late. When the VAD track carries block levels
(``VadTrack.levels_db``: the RMS dBFS of 8 ms blocks of the very frames the engine scored; measured for the
engines with ``lags_offsets``, not for ``energy`` nor for hand-made tracks), the detector keeps the noise
floor, the median level of the blocks of the last ``NOISE_WINDOW_MS`` (1024 ms) of frames below the
threshold. When the probability first drops below the threshold after speech, the offset (the end of the
last frame ``>= threshold``) moves back over the trailing blocks whose level is at most
``REFINE_MARGIN_DB`` (3 dB) above that floor: at most ``REFINE_MAX_MS`` (96 ms), never back to the onset.
The floor needs ``NOISE_MIN_MS`` (256 ms) of non-speech frames: when fewer were seen at the drop (speech from
the start of the stream), the offset is refined with the frames before the drop as soon as the quiet frames
after it complete the floor, if the turn has not stopped by then. The
``silence_duration_ms`` countdown runs from the refined offset to ``stop = refined offset +
silence_duration_ms``; a frame ``>= threshold`` before then continues the turn as before (and the next drop
is refined again). The frame that straddles ``stop`` is not needed when its level blocks that end by
``stop`` are all within ``REFINE_MARGIN_DB`` of the floor (less than a block is left unjudged): then
``speech_stopped`` fires once the stream reaches ``stop`` (streaming) and a loud straddling frame starts the
next turn at ``stop``; otherwise that frame decides as before, once scored. Without levels (hand-made tracks,
the energy engine), without a floor or with ``refine_offset=False`` the straddling frame always decides.
The refinement only looks at frames already seen when it happens, so streaming still equals offline.
The constants were chosen on conversations of ``make_corpus(seed=1000)`` (bench/bench_vad.py reports on
seed 0).

All times are integer ms. ``TurnDetector`` (streaming) and ``detect_turns`` (offline) agree exactly.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from voicelab.audio.vad import StreamingVad, VadEngine, VadTrack, frame_probabilities
from voicelab.checks import checked, checked_class
from voicelab.errors import AudioError, ConfigError

if TYPE_CHECKING:
    from voicelab.audio.core import Audio


MAX_TURN_MS = 600_000  # ten minutes: a longer padding or silence means nothing for a turn


@checked_class
@dataclass(frozen=True)
class TurnDetection:
    """``server_vad`` settings: activation threshold, padding kept before speech, silence that ends a turn.

    ``refine_offset`` moves an offset back over trailing blocks at the noise floor (module docstring); it
    only acts on tracks with block levels (silero, webrtc), so hand-made probabilities keep exact frames.
    """

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    refine_offset: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.refine_offset, bool):
            raise ConfigError(f"refine_offset must be True or False, got {self.refine_offset!r}")
        t = self.threshold
        if (
            isinstance(t, bool)
            or not isinstance(t, (int, float))
            or not math.isfinite(t)
            or not 0.0 <= t <= 1.0
        ):
            raise ConfigError(f"threshold must be a number from 0.0 to 1.0, got {t!r}")
        for name in ("prefix_padding_ms", "silence_duration_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be a whole number of ms >= 0, got {value!r}")
            if value > MAX_TURN_MS:
                raise ConfigError(
                    f"{name}={value!r} is out of range: at most {MAX_TURN_MS} ms (ten minutes); e.g. 500"
                )


@dataclass(frozen=True)
class SpeechStarted:
    """As ``input_audio_buffer.speech_started``; ``speech_start_ms`` is the onset without padding."""

    audio_start_ms: int
    speech_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    """As ``input_audio_buffer.speech_stopped``; ``speech_end_ms`` is the offset without the silence."""

    audio_end_ms: int
    speech_end_ms: int


TurnEvent = SpeechStarted | SpeechStopped


@dataclass(frozen=True)
class Turn:
    """One user turn: ``start_ms``/``end_ms`` are ``audio_start_ms``/``audio_end_ms`` in server_vad terms."""

    start_ms: int
    end_ms: int
    speech_start_ms: int
    speech_end_ms: int


@dataclass(frozen=True)
class TurnAnalysis:
    turns: list[Turn]
    track: VadTrack
    config: TurnDetection = field(default_factory=TurnDetection)


REFINE_MAX_MS = 96
REFINE_MARGIN_DB = 3.0
NOISE_WINDOW_MS = 1024
NOISE_MIN_MS = 256


class _TurnMachine:
    """The server_vad state machine over frame probabilities (and block levels, when given)."""

    def __init__(self, config: TurnDetection, frame_ms: int) -> None:
        self.config = config
        self.frame_ms = frame_ms
        self.frames = 0
        self.buffer_start_ms = 0
        self.onset_ms: int | None = None
        self.offset_ms = 0
        self._quiet = False  # in a turn, after its offset: every frame since was below the threshold
        # the level frames up to the offset, kept while the noise floor needed to refine it is not known yet
        self._unrefined: list[list[float]] | None = None
        self._blocks = 0  # level blocks per frame, known from the first levels fed
        self._recent: deque[list[float]] = deque(maxlen=-(-REFINE_MAX_MS // frame_ms))
        self._noise: deque[float] = deque()

    @property
    def speaking(self) -> bool:
        return self.onset_ms is not None

    def feed(
        self,
        probs: np.ndarray,
        levels_db: np.ndarray | None = None,
        reached_ms: float | None = None,
        tail_levels_db: Callable[[], np.ndarray | None] | None = None,
    ) -> list[TurnEvent]:
        """The next frames' probabilities (and block levels); `reached_ms`: where the stream is once they
        are scored, and `tail_levels_db()` gives the levels of the complete blocks of the next, unfinished
        frame (a turn may stop before that frame is scored, see `reach`; called only then)."""
        events: list[TurnEvent] = []
        threshold = self.config.threshold
        probs_list = np.asarray(probs, dtype=np.float64).tolist()
        levels: list[list[float]] | None = None
        if levels_db is not None and probs_list:
            levels = np.asarray(levels_db, dtype=np.float64).reshape(len(probs_list), -1).tolist()
            if levels and not self._blocks:
                self._blocks = len(levels[0])
                self._noise = deque(maxlen=NOISE_WINDOW_MS * self._blocks // self.frame_ms)
        for i, p in enumerate(probs_list):
            start = self.frames * self.frame_ms
            end = start + self.frame_ms
            self.frames += 1
            stop_at = self._stop_at
            if (
                self.onset_ms is not None
                and self._quiet
                and start < stop_at < end
                and p >= threshold
                and self._quiet_before(levels[i] if levels is not None else None, start, stop_at)
            ):
                # a loud frame straddles the turn's end, but its blocks up to there are at the noise floor:
                # the speech resumed after the silence was complete; the turn stopped, this frame starts one
                events.append(self._stop(stop_at))
            if p >= threshold:
                if self.onset_ms is None:
                    # a frame that began before the last turn's end (or a clear) speaks from there on
                    self.onset_ms = max(start, self.buffer_start_ms)
                    padded = max(0, self.onset_ms - self.config.prefix_padding_ms, self.buffer_start_ms)
                    events.append(SpeechStarted(audio_start_ms=padded, speech_start_ms=self.onset_ms))
                self.offset_ms = end
                self._quiet = False
                self._unrefined = None
            elif self.onset_ms is not None:
                if not self._quiet:  # the first quiet frame after speech: the offset is refined once
                    self._quiet = True
                    if levels is not None and self.config.refine_offset:
                        self._unrefined = list(self._recent)
                if self._unrefined is not None and self._floor_known():
                    # refined with the frames before the drop, as soon as the noise floor is known
                    self.offset_ms = self._refined_offset(self._unrefined)
                    self._unrefined = None
                if end >= self._stop_at:
                    events.append(self._stop(self._stop_at))
            if levels is not None:
                self._recent.append(levels[i])
                if p < threshold:
                    self._noise.extend(levels[i])
        if reached_ms is not None:
            events.extend(self.reach(reached_ms, tail_levels_db))
        return events

    def reach(
        self, stream_ms: float, tail_levels_db: Callable[[], np.ndarray | None] | None = None
    ) -> list[TurnEvent]:
        """The stream has reached `stream_ms`: a turn in its silence stops there once the stream reaches the
        silence's end, when every frame that ends by then was scored (quiet, or it would have continued the
        turn) and the frame that straddles it, not finished yet, is at the noise floor in its complete
        blocks up to there (`tail_levels_db`, see `_quiet_before`). Otherwise the straddling frame decides
        once scored, in `feed`."""
        if self.onset_ms is None or not self._quiet:
            return []
        stop_at = self._stop_at
        boundary = stop_at // self.frame_ms  # the frames that end by stop_at are those before this one
        if stream_ms < stop_at or self.frames != boundary:
            return []  # not there yet, or the straddling frame was scored (feed decided)
        straddling = boundary * self.frame_ms
        if stop_at == straddling or (
            tail_levels_db is not None and self._quiet_before(tail_levels_db(), straddling, stop_at)
        ):
            return [self._stop(stop_at)]
        return []

    def _quiet_before(self, frame_levels: Any, start: int, stop_at: int) -> bool:
        """True when the blocks of the frame starting at `start` that end by `stop_at` are all at most
        REFINE_MARGIN_DB above the noise floor: evidence that the silence lasted to `stop_at` (what is left
        before it is less than a block). Needs block levels, a known floor and `refine_offset` on."""
        if (
            frame_levels is None
            or not self.config.refine_offset
            or not self._blocks
            or not self._floor_known()
        ):
            return False
        block_ms = self.frame_ms / self._blocks
        n = int((stop_at - start) // block_ms)
        if len(frame_levels) < n:
            return False  # those blocks are not all in yet
        limit = self._noise_limit()
        return all(level <= limit for level in list(frame_levels)[:n])

    @property
    def _stop_at(self) -> int:
        """Where the open turn stops once silent: the (refined) offset + silence_duration_ms."""
        return self.offset_ms + self.config.silence_duration_ms

    def _floor_known(self) -> bool:
        return len(self._noise) * self.frame_ms >= NOISE_MIN_MS * self._blocks

    def _noise_limit(self) -> float:
        """The level (dBFS) a block may have and still count as the noise floor."""
        return statistics.median(self._noise) + REFINE_MARGIN_DB

    def _refined_offset(self, recent: list[list[float]]) -> int:
        """The offset moved back over the trailing blocks of `recent` (the frames up to the offset) at the
        noise floor (see the module docstring)."""
        offset = self.offset_ms
        if self.onset_ms is None:
            return offset
        limit = self._noise_limit()
        block_ms = self.frame_ms / self._blocks
        earliest = max(self.onset_ms + block_ms, offset - REFINE_MAX_MS)
        moved = 0
        for frame in reversed(recent):
            for level in reversed(frame):
                if level > limit or offset - (moved + 1) * block_ms < earliest:
                    return offset - round(moved * block_ms)
                moved += 1
        return offset - round(moved * block_ms)

    def _stop(self, audio_end_ms: int) -> SpeechStopped:
        event = SpeechStopped(audio_end_ms=audio_end_ms, speech_end_ms=self.offset_ms)
        self.onset_ms = None
        self._quiet = False
        self._unrefined = None
        self.buffer_start_ms = audio_end_ms
        return event

    def finish(self, stream_end_ms: int) -> list[TurnEvent]:
        if self.onset_ms is None:
            return []
        self.offset_ms = min(self.offset_ms, stream_end_ms)
        return [self._stop(max(stream_end_ms, self.offset_ms))]

    def clear(self, now_ms: int) -> None:
        self.onset_ms = None
        self._quiet = False
        self._unrefined = None
        self.buffer_start_ms = now_ms


class TurnDetector:
    """Streaming server_vad: ``push`` PCM chunks as they arrive, get speech started/stopped events.

    ``samples`` are mono float in [-1, 1] or int16 at ``input_rate``. ``flush()`` ends the stream;
    ``clear()`` drops an open turn without an event (after ``input_audio_buffer.clear``/``commit``) and keeps
    the clock and the VAD state. ``config`` may be replaced between pushes (``session.update``).
    """

    def __init__(
        self,
        config: TurnDetection | None = None,
        engine: str | VadEngine = "silero",
        input_rate: int = 24000,
    ) -> None:
        self.vad = StreamingVad(engine, input_rate)
        self._machine = _TurnMachine(config or TurnDetection(), self.vad.frame_ms)
        self.last_probs = np.zeros(0, dtype=np.float32)

    @property
    def config(self) -> TurnDetection:
        return self._machine.config

    @config.setter
    def config(self, value: TurnDetection) -> None:
        self._machine.config = value

    @property
    def speaking(self) -> bool:
        """True between a SpeechStarted and its SpeechStopped."""
        return self._machine.speaking

    @property
    def now_ms(self) -> int:
        """Milliseconds of audio pushed so far (the stream clock)."""
        return self.vad.samples_in * 1000 // self.vad.input_rate

    def push(self, samples: np.ndarray) -> list[TurnEvent]:
        self.last_probs = self.vad.push(samples)
        return self._machine.feed(self.last_probs, self.vad.levels_db, self.reached_ms, self._pending_levels)

    def _pending_levels(self) -> np.ndarray | None:
        return self.vad.pending_levels_db

    @property
    def reached_ms(self) -> float:
        """Where the stream is, exactly (`now_ms` is it in whole ms)."""
        return self.vad.samples_in * 1000 / self.vad.input_rate

    def flush(self) -> list[TurnEvent]:
        """End of stream: score the buffered tail and close a turn still open at the stream end."""
        self.last_probs = self.vad.flush()
        events = self._machine.feed(self.last_probs, self.vad.levels_db, self.reached_ms)
        return events + self._machine.finish(self.now_ms)

    def clear(self) -> None:
        """Forget an open turn (no SpeechStopped); the next turn's padding starts no earlier than now."""
        self._machine.clear(self.now_ms)


def turns_from_events(events: list[TurnEvent]) -> list[Turn]:
    """Pair SpeechStarted/SpeechStopped events into turns (an unpaired start is dropped)."""
    turns: list[Turn] = []
    started: SpeechStarted | None = None
    for event in events:
        if isinstance(event, SpeechStarted):
            started = event
        elif started is not None:
            turns.append(
                Turn(started.audio_start_ms, event.audio_end_ms, started.speech_start_ms, event.speech_end_ms)
            )
            started = None
    return turns


@checked
def detect_turns(
    audio: Audio | VadTrack,
    config: TurnDetection | None = None,
    engine: str | VadEngine = "silero",
) -> TurnAnalysis:
    """Offline turns of ``audio`` (or of a precomputed ``VadTrack``, whose ``engine`` then wins)."""
    from voicelab.audio.core import Audio  # at call time: core imports this module's neighbours

    if not isinstance(audio, (Audio, VadTrack)):
        raise AudioError(
            f"detect_turns needs an Audio (or a VadTrack), got {type(audio).__name__}; wrap samples with "
            "Audio.from_array(samples, rate), or read a file with voicelab.read_audio(path)."
        )
    if config is not None and not isinstance(config, TurnDetection):
        raise ConfigError(
            f"detect_turns config must be a TurnDetection, got {type(config).__name__}; e.g. "
            "TurnDetection(silence_duration_ms=500)."
        )
    config = config or TurnDetection()
    if isinstance(audio, VadTrack):
        track = audio
        stream_end_ms = track.duration_ms
    else:
        track = frame_probabilities(audio, engine)
        stream_end_ms = len(audio.samples) * 1000 // int(audio.rate)
    machine = _TurnMachine(config, track.frame_ms)
    events = machine.feed(track.probs, track.levels_db, stream_end_ms) + machine.finish(stream_end_ms)
    return TurnAnalysis(turns_from_events(events), track, config)


__all__ = [
    "SpeechStarted",
    "SpeechStopped",
    "Turn",
    "TurnAnalysis",
    "TurnDetection",
    "TurnDetector",
    "TurnEvent",
    "detect_turns",
    "turns_from_events",
]
