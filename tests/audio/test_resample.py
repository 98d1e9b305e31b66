"""The VAD's streaming resampler: chunking-exact, prompt (1 ms of lookahead), and a proper low-pass."""

from __future__ import annotations

import numpy as np
import pytest

from voicelab.audio.resample import VadResampler
from voicelab.audio.turns import TurnDetection, TurnDetector, detect_turns
from voicelab.audio.vad import StreamingVad
from voicelab.errors import ConfigError

RATES = [(24000, 16000), (8000, 16000), (48000, 16000), (44100, 16000), (16000, 8000)]


def whole(rin: int, rout: int, signal: np.ndarray) -> np.ndarray:
    r = VadResampler(rin, rout)
    return np.concatenate([r.resample_chunk(signal), r.resample_chunk(np.zeros(0), last=True)])


@pytest.mark.parametrize(("rin", "rout"), RATES)
@pytest.mark.parametrize("chunk", [1, 13, 960, 4801])
def test_any_chunking_gives_the_whole_signal_bit_for_bit(rin: int, rout: int, chunk: int) -> None:
    signal = (np.random.default_rng(rin + chunk).normal(0, 0.2, rin)).astype(np.float32)
    expected = whole(rin, rout, signal)
    assert len(expected) == -(-len(signal) * rout // rin)
    r = VadResampler(rin, rout)
    parts = [r.resample_chunk(signal[i : i + chunk]) for i in range(0, len(signal), chunk)]
    parts.append(r.resample_chunk(np.zeros(0), last=True))
    np.testing.assert_array_equal(np.concatenate(parts), expected)


@pytest.mark.parametrize(("rin", "rout"), RATES)
def test_outputs_wait_only_for_the_filter_half_length(rin: int, rout: int) -> None:
    """After k input samples, every output up to about (k - lookahead) is out: no block buffering."""
    r = VadResampler(rin, rout)
    assert r.lookahead * 1000 / rin <= 2.5  # ms (1.1 ms at 24 kHz)
    received, produced = 0, 0
    step = rin // 25  # 40 ms chunks
    rng = np.random.default_rng(1)
    for _ in range(50):
        produced += len(r.resample_chunk(rng.normal(0, 0.1, step).astype(np.float32)))
        received += step
        assert produced >= (received - r.lookahead) * rout / rin - 1


@pytest.mark.parametrize(
    ("freq", "low", "high"), [(1000, -0.05, 0.05), (6000, -0.1, 0.05), (9000, -200, -60)]
)
def test_pass_band_and_stop_band_at_24_to_16_khz(freq: float, low: float, high: float) -> None:
    t = np.arange(48000) / 24000
    tone = np.sin(2 * np.pi * freq * t).astype(np.float32)
    out = whole(24000, 16000, tone)[800:-800]
    gain_db = 20 * np.log10(np.sqrt(2 * np.mean(out.astype(np.float64) ** 2)) + 1e-12)
    assert low <= gain_db <= high


def test_a_vad_frame_is_scored_once_its_audio_has_arrived() -> None:
    """40 ms chunks at 24 kHz: each 32 ms frame is scored in the push that completes it (soxr's block
    buffering held frames back a chunk or two)."""
    vad = StreamingVad("silero", 24000)
    rng = np.random.default_rng(2)
    received_ms = 0
    for _ in range(40):
        vad.push(rng.normal(0, 0.05, 960).astype(np.float32))
        received_ms += 40
        assert vad.frames_done == (received_ms - 2) // 32  # all but the 1.1 ms of lookahead


def test_streaming_turns_still_equal_offline_turns() -> None:
    from voicelab.audio.core import Audio
    from voicelab.speech import synthesize

    rng = np.random.default_rng(3)
    speech = synthesize("Yes, please send me the return label.", voice="echo").samples
    gap = np.zeros(24000, dtype=np.float32)
    signal = np.concatenate([gap, speech, gap, speech, gap]).astype(np.float32)
    signal += rng.normal(0, 0.001, len(signal)).astype(np.float32)
    config = TurnDetection(silence_duration_ms=300)
    offline = detect_turns(Audio.from_array(signal, 24000), config).turns
    detector = TurnDetector(config, "silero", 24000)
    events = []
    for i in range(0, len(signal), 1234):
        events += detector.push(signal[i : i + 1234])
    events += detector.flush()
    from voicelab.audio.turns import turns_from_events

    assert turns_from_events(events) == offline and len(offline) == 2


@pytest.mark.parametrize("rate", [0, -8000, 16000.0, True])
def test_bad_rates_are_config_errors(rate: object) -> None:
    with pytest.raises(ConfigError, match="positive integer sample rate"):
        VadResampler(rate, 16000)  # type: ignore[arg-type]
