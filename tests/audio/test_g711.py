from __future__ import annotations

import warnings

import numpy as np
import pytest

from voicelab.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voicelab.errors import AudioError

EVERY_INT16 = np.arange(-32768, 32768, dtype=np.int16)
EVERY_CODE = bytes(range(256))


def pcm(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int16)


def test_ulaw_known_code_points() -> None:
    assert ulaw_encode(pcm(0)) == b"\xff"
    assert ulaw_encode(pcm(32767, -32768)) == b"\x80\x00"
    assert ulaw_encode(pcm(1, 3, -1)) == b"\xff\xff\x7e"
    assert ulaw_encode(pcm(8, -8)) == b"\xfe\x7e"
    np.testing.assert_array_equal(ulaw_decode(b"\xff\x7f\x80\x00"), [0, 0, 32124, -32124])
    np.testing.assert_array_equal(ulaw_decode(b"\xfe\x7e"), [8, -8])


def test_alaw_known_code_points() -> None:
    assert alaw_encode(pcm(0)) == b"\xd5"
    assert alaw_encode(pcm(-1)) == b"\x55"
    assert alaw_encode(pcm(32767, -32768)) == b"\xaa\x2a"
    np.testing.assert_array_equal(alaw_decode(b"\xd5\x55\xaa\x2a"), [8, -8, 32256, -32256])


def test_decoders_are_odd_symmetric() -> None:
    u = ulaw_decode(EVERY_CODE).astype(int)
    a = alaw_decode(EVERY_CODE).astype(int)
    np.testing.assert_array_equal(u[:128], -u[128:])
    np.testing.assert_array_equal(a[:128], -a[128:])
    assert u.dtype.kind == "i"
    assert ulaw_decode(EVERY_CODE).dtype == np.int16


def test_every_code_round_trips() -> None:
    assert alaw_encode(alaw_decode(EVERY_CODE)) == EVERY_CODE
    # μ-law has two zeros (0xFF and 0x7F); decoding gives 0 both times, which encodes as 0xFF.
    expected = EVERY_CODE.replace(b"\x7f", b"\xff")
    assert ulaw_encode(ulaw_decode(EVERY_CODE)) == expected


@pytest.mark.parametrize(
    ("encode", "decode", "small_error", "relative_error"),
    [(ulaw_encode, ulaw_decode, 7, 0.0504), (alaw_encode, alaw_decode, 8, 1 / 32)],
)
def test_round_trip_error_bounds(encode, decode, small_error: int, relative_error: float) -> None:
    x = EVERY_INT16.astype(np.int64)
    y = decode(encode(EVERY_INT16)).astype(np.int64)
    error = np.abs(y - x)
    small = np.abs(x) < 32
    assert error[small].max() == small_error
    loud = (np.abs(x) >= 256) & (np.abs(x) <= 32000)
    assert (error[loud] / np.abs(x[loud])).max() <= relative_error
    assert error.max() <= 644  # full-scale values clip at the top segment
    # Quantising twice changes nothing.
    assert encode(y.astype(np.int16)) == encode(EVERY_INT16)


def test_codes_are_monotonic_in_the_signal() -> None:
    u = ulaw_decode(ulaw_encode(EVERY_INT16)).astype(int)
    a = alaw_decode(alaw_encode(EVERY_INT16)).astype(int)
    assert (np.diff(u) >= 0).all()
    assert (np.diff(a) >= 0).all()


def test_float_input_is_converted_from_unit_range() -> None:
    floats = np.array([0.0, 0.5, -0.5, 1.0], dtype=np.float32)
    assert ulaw_encode(floats) == ulaw_encode(pcm(0, 16384, -16384, 32767))
    assert alaw_encode(floats) == alaw_encode(pcm(0, 16384, -16384, 32767))


def test_decoders_accept_uint8_arrays_and_bytearrays() -> None:
    codes = np.frombuffer(EVERY_CODE, dtype=np.uint8)
    np.testing.assert_array_equal(ulaw_decode(codes), ulaw_decode(EVERY_CODE))
    np.testing.assert_array_equal(alaw_decode(bytearray(EVERY_CODE)), alaw_decode(EVERY_CODE))
    assert ulaw_decode(b"").size == 0
    assert ulaw_encode(np.zeros(0, dtype=np.int16)) == b""


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(AudioError, match="int16 PCM or float"):
        ulaw_encode(np.array([1, 2], dtype=np.int32))
    with pytest.raises(AudioError, match="1-D"):
        alaw_encode(np.zeros((4, 2), dtype=np.int16))
    with pytest.raises(AudioError, match="NaN"):
        alaw_encode(np.array([np.nan]))
    with pytest.raises(AudioError, match="uint8"):
        ulaw_decode(np.array([1, 2], dtype=np.int16))


def test_matches_the_stdlib_reference_where_available() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # removed in Python 3.13
    data = EVERY_INT16.astype("<i2").tobytes()
    assert ulaw_encode(EVERY_INT16) == audioop.lin2ulaw(data, 2)
    assert alaw_encode(EVERY_INT16) == audioop.lin2alaw(data, 2)
    assert ulaw_decode(EVERY_CODE).astype("<i2").tobytes() == audioop.ulaw2lin(EVERY_CODE, 2)
    assert alaw_decode(EVERY_CODE).astype("<i2").tobytes() == audioop.alaw2lin(EVERY_CODE, 2)
