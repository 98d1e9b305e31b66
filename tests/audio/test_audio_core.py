from __future__ import annotations

import base64

import numpy as np
import pytest

from voicelab.audio.core import (
    REALTIME_RATE,
    Audio,
    float_to_int16,
    float_to_pcm16,
    int16_to_float,
    pcm16_duration_ms,
    pcm16_to_float,
)
from voicelab.errors import AudioError


def sine(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# -- module conversions ------


def test_int16_float_round_trip_is_exact_for_every_value() -> None:
    every = np.arange(-32768, 32768, dtype=np.int16)
    as_float = int16_to_float(every)
    assert as_float.dtype == np.float32
    assert as_float[0] == -1.0
    assert as_float[-1] == np.float32(32767 / 32768)
    np.testing.assert_array_equal(float_to_int16(as_float), every)


def test_float_to_int16_rounds_to_nearest_and_clips() -> None:
    values = np.array([0.0, 1.0, -1.0, 2.0, -2.0, 0.4 / 32768, 0.6 / 32768, -0.6 / 32768, 1.5 / 32768])
    np.testing.assert_array_equal(float_to_int16(values), [0, 32767, -32768, 32767, -32768, 0, 1, -1, 2])


def test_pcm16_bytes_are_little_endian() -> None:
    assert float_to_pcm16(np.array([1 / 32768, -1 / 32768, 0.5])) == b"\x01\x00\xff\xff\x00\x40"
    np.testing.assert_array_equal(pcm16_to_float(b"\x01\x00\xff\xff\x00\x40"), [1 / 32768, -1 / 32768, 0.5])


def test_pcm16_round_trip() -> None:
    data = np.arange(-32768, 32768, 7, dtype="<i2").tobytes()
    assert float_to_pcm16(pcm16_to_float(data)) == data
    assert pcm16_to_float(bytearray(data)).size == len(data) // 2
    assert pcm16_to_float(memoryview(data)).size == len(data) // 2


def test_odd_pcm16_length_is_rejected() -> None:
    with pytest.raises(AudioError, match="odd number of bytes"):
        pcm16_to_float(b"\x00\x01\x02")


def test_float_to_int16_rejects_nan_and_non_float() -> None:
    with pytest.raises(AudioError, match="NaN"):
        float_to_int16(np.array([0.0, np.nan]))
    with pytest.raises(AudioError, match="float array"):
        float_to_int16(np.array([1, 2], dtype=np.int16))
    with pytest.raises(AudioError, match="int16 array"):
        int16_to_float(np.array([0.5]))


def test_pcm16_duration_ms() -> None:
    assert pcm16_duration_ms(48000) == 1000.0
    assert pcm16_duration_ms(4800) == 100.0
    assert pcm16_duration_ms(16000, rate=8000) == 1000.0
    assert pcm16_duration_ms(0) == 0.0
    with pytest.raises(AudioError, match="even"):
        pcm16_duration_ms(3)
    with pytest.raises(AudioError, match="positive"):
        pcm16_duration_ms(4, rate=0)


# -- Audio.from_array ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (np.array([0, 16384, -32768, 32767], dtype=np.int16), [0.0, 0.5, -1.0, 32767 / 32768]),
        (np.array([0, 2**30, -(2**31)], dtype=np.int32), [0.0, 0.5, -1.0]),
        (np.array([128, 192, 0, 64], dtype=np.uint8), [0.0, 0.5, -1.0, -0.5]),
        (np.array([0, 64, -128], dtype=np.int8), [0.0, 0.5, -1.0]),
        (np.array([0.0, 0.25, -0.75], dtype=np.float64), [0.0, 0.25, -0.75]),
        (np.array([0.0, 0.25, -0.75], dtype=np.float32), [0.0, 0.25, -0.75]),
        ([0.0, 0.5], [0.0, 0.5]),
    ],
)
def test_from_array_scales_each_dtype(data: np.ndarray, expected: list[float]) -> None:
    audio = Audio.from_array(data, 16000)
    assert audio.samples.dtype == np.float32
    assert audio.rate == 16000
    np.testing.assert_array_equal(audio.samples, np.array(expected, dtype=np.float32))
    assert audio.conversions == ()


def test_from_array_downmixes_and_says_so() -> None:
    stereo = np.array([[0.5, -0.5], [0.2, 0.4], [1.0, 0.0]], dtype=np.float32)
    audio = Audio.from_array(stereo, 48000)
    np.testing.assert_allclose(audio.samples, [0.0, 0.3, 0.5], atol=1e-7)
    assert audio.conversions == ("downmixed 2 channels to mono (mean)",)
    four = Audio.from_array(np.ones((10, 4), dtype=np.int16), 8000)
    assert four.conversions == ("downmixed 4 channels to mono (mean)",)
    one_channel = Audio.from_array(np.zeros((5, 1), dtype=np.int16), 8000)
    assert one_channel.samples.shape == (5,)
    assert one_channel.conversions == ()


def test_from_array_clips_out_of_range_floats_and_says_so() -> None:
    audio = Audio.from_array(np.array([1.5, -3.0, 0.5]), 24000)
    np.testing.assert_array_equal(audio.samples, [1.0, -1.0, 0.5])
    assert audio.conversions == ("clipped 2 sample(s) outside [-1, 1]",)


def test_from_array_copies_and_is_read_only() -> None:
    data = np.zeros(10, dtype=np.float32)
    audio = Audio.from_array(data, 24000)
    data[0] = 0.9
    assert audio.samples[0] == 0.0
    with pytest.raises(ValueError):
        audio.samples[0] = 1.0
    with pytest.raises(AttributeError):
        audio.rate = 8000  # type: ignore[misc]


def test_from_array_accepts_integral_float_rate() -> None:
    assert Audio.from_array([0.0], 24000.0).rate == 24000
    assert isinstance(Audio.from_array([0.0], np.int64(8000)).rate, int)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.zeros((0, 2), dtype=np.int16), "empty"),
        (np.array([0.0, np.nan]), "NaN"),
        (np.array([0.0, np.inf]), "NaN or infinite"),
        (np.array([1 + 1j]), "complex"),
        (np.array([True, False]), "bool"),
        (np.array(["a", "b"]), "str"),
        (np.array([object(), object()]), "object"),
        (np.array([1, 2], dtype=np.int64), "unsupported audio dtype int64"),
        (np.array([1, 2], dtype=np.uint16), "unsupported audio dtype uint16"),
        (np.zeros((4, 2, 2)), "3-D"),
        (np.float32(0.5), "0-D"),
        (np.zeros((2, 48000)), r"data\.T"),
        ("hello", "numeric array"),
        (b"\x00\x00", "from_pcm16"),
    ],
)
def test_from_array_rejects_bad_input(data: object, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        Audio.from_array(data, 24000)


@pytest.mark.parametrize("rate", [0, -8000, 22050.5, "24000", None, True, float("nan")])
def test_bad_rates_are_rejected(rate: object) -> None:
    with pytest.raises(AudioError, match="rate"):
        Audio.from_array(np.zeros(4), rate)  # type: ignore[arg-type]
    with pytest.raises(AudioError, match="rate"):
        Audio.from_pcm16(b"\x00\x00", rate)  # type: ignore[arg-type]


def test_audio_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        Audio.from_array([], 24000)


def test_empty_audio_when_asked_for() -> None:
    audio = Audio.from_array([], 24000, allow_empty=True)
    assert audio.duration_ms == 0.0
    assert audio.to_pcm16() == b""
    assert list(audio.chunks_b64()) == []
    assert Audio.from_pcm16(b"", allow_empty=True).samples.size == 0


def test_constructor_checks_types() -> None:
    with pytest.raises(AudioError, match="1-D float32"):
        Audio(np.zeros(4, dtype=np.float64), 24000)
    with pytest.raises(AudioError, match="rate"):
        Audio(np.zeros(4, dtype=np.float32), 0)


# -- PCM16 ------


def test_from_pcm16_and_back() -> None:
    pcm = np.array([0, 1000, -1000, 32767, -32768], dtype="<i2").tobytes()
    audio = Audio.from_pcm16(pcm)
    assert audio.rate == REALTIME_RATE == 24000
    assert audio.to_pcm16() == pcm
    assert Audio.from_pcm16(pcm, 8000).rate == 8000


def test_from_pcm16_rejects_bad_input() -> None:
    with pytest.raises(AudioError, match="odd number of bytes"):
        Audio.from_pcm16(b"\x00\x00\x00")
    with pytest.raises(AudioError, match="empty"):
        Audio.from_pcm16(b"")
    with pytest.raises(AudioError, match="needs bytes"):
        Audio.from_pcm16(np.zeros(4, dtype=np.int16))  # type: ignore[arg-type]


# -- properties, equality, repr ------


def test_duration_len_repr_and_equality() -> None:
    audio = Audio.from_array(np.zeros(12000, dtype=np.int16), 24000)
    assert audio.duration_ms == 500.0
    assert len(audio) == 12000
    assert repr(audio) == "Audio(rate=24000, samples=12000, duration_ms=500.0, conversions=())"
    assert audio == Audio.from_array(np.zeros(12000, dtype=np.float32), 24000)
    assert audio != Audio.from_array(np.zeros(12000, dtype=np.float32), 16000)
    assert audio != Audio.from_array(np.ones(12000, dtype=np.float32) / 2, 24000)


# -- resampling ------


def test_resample_keeps_duration_and_tone_and_notes_it() -> None:
    audio = Audio.from_array(sine(1000, 1.0, 48000), 48000)
    out = audio.resample(24000)
    assert out.rate == 24000
    assert out.samples.size == 24000
    assert out.conversions == ("resampled 48000 Hz to 24000 Hz (soxr HQ)",)
    spectrum = np.abs(np.fft.rfft(out.samples))
    assert int(np.argmax(spectrum)) == 1000  # 1 Hz per bin for one second
    expected = sine(1000, 1.0, 24000)
    np.testing.assert_allclose(out.samples[200:-200], expected[200:-200], atol=2e-3)


def test_resample_same_rate_is_identity_and_realtime_is_24k() -> None:
    audio = Audio.from_array(sine(440, 0.1, 24000), 24000)
    assert audio.resample(24000) is audio
    assert audio.to_realtime() is audio
    up = Audio.from_array(sine(440, 0.5, 16000), 16000).to_realtime()
    assert up.rate == 24000
    assert up.samples.size == 12000
    assert up.conversions == ("resampled 16000 Hz to 24000 Hz (soxr HQ)",)


def test_resample_round_trip_is_close() -> None:
    audio = Audio.from_array(sine(300, 1.0, 24000), 24000)
    back = audio.resample(44100).resample(24000)
    assert back.samples.size == audio.samples.size
    np.testing.assert_allclose(back.samples[500:-500], audio.samples[500:-500], atol=1e-3)
    assert back.conversions == (
        "resampled 24000 Hz to 44100 Hz (soxr HQ)",
        "resampled 44100 Hz to 24000 Hz (soxr HQ)",
    )


def test_resample_keeps_samples_in_range() -> None:
    square = np.sign(sine(1000, 0.2, 48000, amplitude=1.0)).astype(np.float32)
    out = Audio.from_array(square, 48000).resample(8000)
    assert float(np.abs(out.samples).max()) <= 1.0
    assert any(note.startswith("clipped") for note in out.conversions)


def test_resample_rejects_bad_rate() -> None:
    with pytest.raises(AudioError, match="rate"):
        Audio.from_array([0.0], 24000).resample(0)


# -- slicing and chunking ------


def test_slice_ms() -> None:
    audio = Audio.from_array(np.arange(24000, dtype=np.float32) / 24000, 24000)
    part = audio.slice_ms(100, 250)
    assert part.samples.size == 3600
    assert part.samples[0] == np.float32(2400 / 24000)
    assert part.duration_ms == 150.0
    assert audio.slice_ms(900).samples.size == 2400
    assert audio.slice_ms(900, 5000).samples.size == 2400
    assert audio.slice_ms(2000, 3000).samples.size == 0
    with pytest.raises(AudioError, match="start"):
        audio.slice_ms(-1, 10)
    with pytest.raises(AudioError, match="before its start"):
        audio.slice_ms(100, 50)


def test_chunks_b64_are_100ms_pcm16_at_24k() -> None:
    audio = Audio.from_array(sine(440, 0.25, 24000), 24000)
    chunks = list(audio.chunks_b64())
    decoded = [base64.b64decode(c) for c in chunks]
    assert [len(d) for d in decoded] == [4800, 4800, 2400]
    assert b"".join(decoded) == audio.to_pcm16()
    assert [len(base64.b64decode(c)) for c in audio.chunks_b64(chunk_ms=50)] == [2400] * 5


def test_chunks_b64_resample_first() -> None:
    audio = Audio.from_array(sine(440, 0.2, 16000), 16000)
    decoded = b"".join(base64.b64decode(c) for c in audio.chunks_b64(chunk_ms=20))
    assert decoded == audio.to_realtime().to_pcm16()
    assert len(decoded) == 2 * 4800


def test_chunks_b64_rejects_bad_chunk_size() -> None:
    audio = Audio.from_array([0.0], 24000)
    with pytest.raises(AudioError, match="chunk_ms"):
        list(audio.chunks_b64(chunk_ms=0))
    with pytest.raises(AudioError, match="chunk_ms"):
        list(audio.chunks_b64(chunk_ms=0.001))


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda a: a.slice_ms("x"), ("start_ms", "number")),
        (lambda a: a.slice_ms(True), ("start_ms",)),
        (lambda a: a.slice_ms(0, "1"), ("end_ms",)),
        (lambda a: list(a.chunks_b64("100")), ("chunk_ms", "number")),
        (lambda a: list(a.chunks_b64(True)), ("chunk_ms",)),
        (lambda a: list(a.chunks_b64(10**9)), ("chunk_ms", "60000")),
    ],
)
def test_times_of_the_wrong_kind_are_audio_errors(call, words) -> None:
    audio = Audio.from_array(np.zeros(2400, np.float32), 24000)
    with pytest.raises(AudioError) as info:
        call(audio)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
