"""The `Audio` value and PCM16/float conversions.

`Audio` is mono float32 samples in [-1, 1] at an integer rate. Anything done to get there that changes the
signal (downmixing, resampling, clipping) is written into `conversions`, never hidden.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import soxr

from voicelab.audio.b64 import b64encode
from voicelab.checks import checked, checked_class, number
from voicelab.errors import AudioError

REALTIME_RATE = 24000
"""Sample rate of the Realtime API's PCM16 audio (`audio/pcm`)."""

_INT_SCALES: dict[np.dtype, float] = {
    np.dtype(np.int8): 128.0,
    np.dtype(np.int16): 32768.0,
    np.dtype(np.int32): 2147483648.0,
}
_SUPPORTED_DTYPES = "int8, int16, int32, uint8, float16, float32, float64"


MAX_CHUNK_MS = 60_000  # one append of a minute is already 2.9 MB of PCM16; the API caps an event at 15 MiB
MAX_RATE = 768_000  # the highest sample rate of audio hardware; more is a mistake (and a huge resample)


def _check_rate(rate: Any) -> int:
    """A positive integer sample rate, or AudioError."""
    if isinstance(rate, bool) or not isinstance(rate, Real):
        raise AudioError(f"sample rate must be a positive integer in Hz, got {rate!r}; pass e.g. rate=24000")
    if not math.isfinite(float(rate)) or float(rate) != int(float(rate)):
        raise AudioError(f"sample rate must be a whole number of Hz, got {rate!r}; pass e.g. rate=24000")
    if float(rate) <= 0:
        raise AudioError(f"sample rate must be positive, got {rate!r}; pass e.g. rate=24000")
    if float(rate) > MAX_RATE:
        raise AudioError(
            f"sample rate {rate!r} Hz is above {MAX_RATE} Hz, the most any audio device uses; pass the real "
            "rate, e.g. rate=24000"
        )
    return int(float(rate))


def _check_finite(samples: np.ndarray) -> None:
    if not np.isfinite(samples).all():
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise AudioError(
            f"audio contains {bad} NaN or infinite sample(s); clean it first, e.g. np.nan_to_num(data)"
        )


def int16_to_float(data: np.ndarray) -> np.ndarray:
    """int16 samples -> float32 in [-1, 1) (divides by 32768, so the round trip is exact)."""
    array = np.asarray(data)
    if array.dtype != np.int16:
        raise AudioError(
            f"int16_to_float needs an int16 array, got {array.dtype}; use Audio.from_array instead"
        )
    return array.astype(np.float32) / np.float32(32768.0)


def float_to_int16(data: np.ndarray) -> np.ndarray:
    """Float samples -> int16: scaled by 32768, rounded to nearest (ties to even), clipped to int16 range."""
    array = np.asarray(data)
    if array.dtype.kind != "f":
        raise AudioError(
            f"float_to_int16 needs a float array, got {array.dtype}; convert with .astype(np.float32)"
        )
    _check_finite(array)
    scaled = np.rint(array.astype(np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def pcm16_to_float(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Little-endian PCM16 bytes -> float32 samples in [-1, 1)."""
    buffer = memoryview(data).cast("B")
    if buffer.nbytes % 2:
        raise AudioError(
            f"PCM16 data has an odd number of bytes ({buffer.nbytes}); each sample is 2 bytes, "
            "so the data is truncated or not PCM16: pass whole samples"
        )
    return np.frombuffer(buffer, dtype="<i2").astype(np.float32) / np.float32(32768.0)


def float_to_pcm16(data: np.ndarray) -> bytes:
    """Float samples -> little-endian PCM16 bytes (see `float_to_int16` for rounding and clipping)."""
    return float_to_int16(data).astype("<i2", copy=False).tobytes()


def pcm16_duration_ms(nbytes: int, rate: int = REALTIME_RATE) -> float:
    """Duration in ms of `nbytes` of mono PCM16 at `rate`."""
    rate = _check_rate(rate)
    if nbytes < 0 or nbytes % 2:
        raise AudioError(f"PCM16 byte count must be even and >= 0, got {nbytes}; each sample is 2 bytes")
    return nbytes / 2 / rate * 1000.0


def _is_supported(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or dtype in _INT_SCALES or dtype == np.uint8


def _to_float32(array: np.ndarray) -> np.ndarray:
    """Scale a supported numeric dtype to float32 in [-1, 1]."""
    dtype = array.dtype
    if dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    if dtype in _INT_SCALES:
        return (array.astype(np.float64) / _INT_SCALES[dtype]).astype(np.float32)
    if dtype == np.uint8:
        return ((array.astype(np.float32) - 128.0) / np.float32(128.0)).astype(np.float32)
    raise AudioError(f"unsupported audio dtype {dtype}; pass one of {_SUPPORTED_DTYPES}")


@checked_class
@dataclass(frozen=True, eq=False)
class Audio:
    """Mono float32 samples in [-1, 1] at `rate` Hz, plus notes of what was done to get here.

    Build it with `from_array`, `from_pcm16` or `voicelab.audio.io.read_audio`, which validate their input.
    The samples array is read-only: every operation returns a new `Audio`.
    """

    samples: np.ndarray
    rate: int
    conversions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        samples = self.samples
        if not isinstance(samples, np.ndarray) or samples.ndim != 1 or samples.dtype != np.float32:
            raise AudioError(
                "Audio.samples must be a 1-D float32 numpy array; "
                "build Audio with Audio.from_array(data, rate) instead"
            )
        object.__setattr__(self, "rate", _check_rate(self.rate))
        object.__setattr__(self, "conversions", tuple(self.conversions))
        if samples.flags.writeable:
            samples = samples.view()
            samples.flags.writeable = False
            object.__setattr__(self, "samples", samples)

    # -- construction -------------------------------------------------------------------------------------

    @classmethod
    @checked
    def from_array(cls, data: Any, rate: int, *, allow_empty: bool = False) -> Audio:
        """Validate and convert any supported numeric array of shape (n,) or (n, channels).

        Integers are scaled to [-1, 1] (int16 / 32768, int32 / 2**31, int8 / 128, uint8 centred on 128).
        Several channels are averaged into one, and float samples outside [-1, 1] are clipped; both are noted
        in `conversions`.
        """
        rate = _check_rate(rate)
        if isinstance(data, (str, bytes, bytearray, memoryview)):
            raise AudioError(
                f"Audio.from_array needs a numeric array, got {type(data).__name__}; "
                "for PCM16 bytes use Audio.from_pcm16(data, rate)"
            )
        try:
            array = np.asarray(data)
        except (TypeError, ValueError) as exc:
            raise AudioError(
                f"cannot read audio data as an array ({exc}); pass a numpy array of samples"
            ) from exc
        if not _is_supported(array.dtype):
            kind = {"b": "bool", "c": "complex", "O": "object", "U": "str", "S": "bytes"}.get(
                array.dtype.kind, "unsupported"
            )
            raise AudioError(
                f"unsupported audio dtype {array.dtype} ({kind}); pass one of {_SUPPORTED_DTYPES} "
                "(e.g. data.astype(np.float32) for samples in [-1, 1], or np.int16 for PCM)"
            )
        conversions: list[str] = []
        if array.ndim == 2:
            frames, channels = array.shape
            if channels > frames > 0:
                raise AudioError(
                    f"audio of shape {array.shape} looks like (channels, samples); "
                    "voicelab expects (samples, channels): pass data.T"
                )
            if channels == 0:
                raise AudioError(
                    "audio has 0 channels; pass an array of shape (samples,) or (samples, channels)"
                )
        elif array.ndim != 1:
            raise AudioError(
                f"audio must have shape (samples,) or (samples, channels), got {array.ndim}-D shape "
                f"{array.shape}; pass one recording at a time"
            )
        if array.shape[0] == 0 and not allow_empty:
            raise AudioError(
                "audio is empty (0 samples); pass at least one sample "
                "(or allow_empty=True where empty is fine)"
            )
        samples = _to_float32(array)
        _check_finite(samples)
        samples, note = _clip(samples)
        if note:
            conversions.append(note)
        if samples.ndim == 2:
            channels = samples.shape[1]
            if channels == 1:
                samples = samples[:, 0]
            else:
                samples = samples.mean(axis=1, dtype=np.float64).astype(np.float32)
                conversions.append(f"downmixed {channels} channels to mono (mean)")
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if np.may_share_memory(samples, array):
            samples = samples.copy()
        return cls(samples, rate, tuple(conversions))

    @classmethod
    @checked
    def from_pcm16(
        cls, data: bytes | bytearray | memoryview, rate: int = REALTIME_RATE, *, allow_empty: bool = False
    ) -> Audio:
        """Mono little-endian PCM16 bytes (the Realtime `audio/pcm` format) -> Audio."""
        rate = _check_rate(rate)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise AudioError(
                f"Audio.from_pcm16 needs bytes, got {type(data).__name__}; for arrays use Audio.from_array"
            )
        samples = pcm16_to_float(data)
        if samples.size == 0 and not allow_empty:
            raise AudioError(
                "PCM16 data is empty (0 bytes); pass at least one sample "
                "(or allow_empty=True where empty is fine)"
            )
        return cls(samples, rate)

    # -- properties ---------------------------------------------------------------------------------------

    @property
    def duration_ms(self) -> float:
        return self.samples.size / self.rate * 1000.0

    def __len__(self) -> int:
        return int(self.samples.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Audio):
            return NotImplemented
        return (
            self.rate == other.rate
            and self.conversions == other.conversions
            and np.array_equal(self.samples, other.samples)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Audio(rate={self.rate}, samples={self.samples.size}, duration_ms={self.duration_ms:.1f}, "
            f"conversions={self.conversions!r})"
        )

    # -- conversions --------------------------------------------------------------------------------------

    def to_pcm16(self) -> bytes:
        """Little-endian int16 bytes at this audio's rate."""
        return float_to_pcm16(self.samples)

    @checked
    def resample(self, rate: int) -> Audio:
        """Resample with soxr (high quality); a no-op when the rate already matches."""
        rate = _check_rate(rate)
        if rate == self.rate:
            return self
        notes = [*self.conversions, f"resampled {self.rate} Hz to {rate} Hz (soxr HQ)"]
        if self.samples.size == 0:
            return Audio(np.zeros(0, dtype=np.float32), rate, tuple(notes))
        out = soxr.resample(self.samples, self.rate, rate, quality="HQ")
        out, note = _clip(np.ascontiguousarray(out, dtype=np.float32))
        if note:
            notes.append(note + " after resampling")
        return Audio(out, rate, tuple(notes))

    def to_realtime(self) -> Audio:
        """This audio at 24 kHz, the Realtime API's PCM16 rate."""
        return self.resample(REALTIME_RATE)

    @checked
    def slice_ms(self, start_ms: float, end_ms: float | None = None) -> Audio:
        """Samples from `start_ms` up to `end_ms` (clamped to the end; None means the end)."""
        number(start_ms, "start_ms", unit="ms", example=0, where="slice_ms", error=AudioError)
        if end_ms is not None:
            number(end_ms, "end_ms", unit="ms", example=1000, where="slice_ms", error=AudioError)
        if not math.isfinite(start_ms) or start_ms < 0:
            raise AudioError(f"slice start must be a finite time >= 0 ms, got {start_ms}")
        if end_ms is not None and (not math.isfinite(end_ms) or end_ms < start_ms):
            raise AudioError(
                f"slice end ({end_ms} ms) must be finite and not before its start ({start_ms} ms)"
            )
        n = self.samples.size
        start = min(round(start_ms * self.rate / 1000.0), n)
        end = n if end_ms is None else min(round(end_ms * self.rate / 1000.0), n)
        return Audio(self.samples[start:end], self.rate, self.conversions)

    @checked
    def chunks_b64(self, chunk_ms: float = 100) -> Iterator[str]:
        """Base64 PCM16 24 kHz little-endian chunks of `chunk_ms` (the last may be shorter), ready for
        `input_audio_buffer.append`."""
        number(chunk_ms, "chunk_ms", unit="ms", example=100, where="chunks_b64", error=AudioError)
        if chunk_ms > MAX_CHUNK_MS:
            raise AudioError(
                f"chunk_ms={chunk_ms} is over {MAX_CHUNK_MS} ms; one append should carry a few hundred ms, "
                "e.g. chunk_ms=100"
            )
        if not math.isfinite(chunk_ms) or chunk_ms <= 0:
            raise AudioError(f"chunk_ms must be a positive number of milliseconds, got {chunk_ms}")
        chunk_samples = round(chunk_ms * REALTIME_RATE / 1000.0)
        if chunk_samples < 1:
            raise AudioError(
                f"chunk_ms={chunk_ms} is shorter than one sample at 24 kHz; use chunk_ms >= 0.05"
            )
        pcm = self.to_realtime().to_pcm16()
        step = chunk_samples * 2
        for offset in range(0, len(pcm), step):
            yield b64encode(pcm[offset : offset + step])


def _clip(samples: np.ndarray) -> tuple[np.ndarray, str]:
    """Clip to [-1, 1]; returns the samples and a note when any sample was outside."""
    if samples.size == 0:
        return samples, ""
    low, high = float(samples.min()), float(samples.max())
    if low >= -1.0 and high <= 1.0:
        return samples, ""
    count = int(np.count_nonzero((samples < -1.0) | (samples > 1.0)))
    return np.clip(samples, -1.0, 1.0), f"clipped {count} sample(s) outside [-1, 1]"


__all__ = [
    "REALTIME_RATE",
    "Audio",
    "float_to_int16",
    "float_to_pcm16",
    "int16_to_float",
    "pcm16_duration_ms",
    "pcm16_to_float",
]
