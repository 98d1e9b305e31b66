"""Audio on the wire: the session's formats, their bytes per millisecond, and the caller's audio as appends.

The Realtime API carries audio as PCM16 at 24 kHz (``audio/pcm``) or G.711 at 8 kHz (``audio/pcmu``,
``audio/pcma``). A caller's audio comes at any rate (a 48 kHz microphone, a 16 kHz file) and in pieces: an
``InputStream`` turns consecutive pieces into one continuous stream in the session's format, with the
chunking-exact streaming resampler of the VAD front end (``voicelab.audio.resample``), so the audio on the
wire does not depend on how the caller cut it (resampling each piece alone puts a seam at every boundary).
The resampler holds back about a millisecond (its filter's half length); ``flush()`` ends the stream and
gives it back (at a commit: the turn ends there).

Both sides use these: the client's protocol (``voicelab.protocol.client``), the server's input buffer and
the recording's tables agree on what a millisecond of each format is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from voicelab.audio.core import REALTIME_RATE, float_to_pcm16
from voicelab.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voicelab.audio.resample import VadResampler as StreamResampler
from voicelab.errors import AudioError

PCM16_BYTES_PER_MS = 48.0  # 24 kHz * 2 bytes / 1000
G711_BYTES_PER_MS = 8.0  # 8 kHz * 1 byte / 1000
G711_RATE = 8000
WIRE_NAMES = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
_G711 = {"audio/pcmu", "audio/pcma", "g711_ulaw", "g711_alaw", "pcmu", "pcma"}


def bytes_per_ms(audio_format: Any) -> float:
    """Bytes per millisecond of a session audio format: a GA object (``{"type": "audio/pcmu"}``), its type,
    or a beta name (``"g711_ulaw"``); None or anything else is PCM16 at 24 kHz."""
    if isinstance(audio_format, str):
        kind: Any = audio_format
    elif isinstance(audio_format, Mapping):
        kind = audio_format.get("type")
    else:  # a parsed GA object (openai's types) or None
        kind = getattr(audio_format, "type", None)
    return G711_BYTES_PER_MS if kind in _G711 else PCM16_BYTES_PER_MS


def pcm16_samples(data: bytes | bytearray | memoryview) -> np.ndarray:
    """PCM16 little-endian bytes as int16 samples; an odd length names the problem."""
    raw = bytes(data)
    if len(raw) % 2:
        raise AudioError(
            f"PCM16 audio has 2 bytes per sample, but {len(raw)} bytes were given (an odd number); pass "
            "whole samples (numpy: samples.astype('<i2').tobytes())."
        )
    return np.frombuffer(raw, dtype="<i2")


class InputStream:
    """A caller's audio at `rate` Hz -> the session's input format (``"pcm16"``, ``"g711_ulaw"`` or
    ``"g711_alaw"``), continuous across `push` calls. Each push returns ``(wire, pcm24)``: the bytes to
    append, and the same audio as PCM16 at 24 kHz (for the recording). For G.711 the 8 kHz resampler may
    hold back audio the 24 kHz copy already has: that copy waits until wire bytes come to carry it."""

    def __init__(self, fmt: str, rate: int) -> None:
        if fmt not in ("pcm16", "g711_ulaw", "g711_alaw"):
            raise AudioError(f"unknown input format {fmt!r}; use 'pcm16', 'g711_ulaw' or 'g711_alaw'")
        self.fmt = fmt
        self.rate = rate
        self._to24 = None if rate == REALTIME_RATE else StreamResampler(rate, REALTIME_RATE)
        self._to8: StreamResampler | None = None
        if fmt != "pcm16" and rate != G711_RATE:
            self._to8 = StreamResampler(rate, G711_RATE)
        self._pcm24_waiting = b""

    def push(self, samples: np.ndarray, last: bool = False) -> tuple[bytes, bytes]:
        """More of the stream (mono float32 in [-1, 1] at `rate`); `last` ends it (the held-back tail too)."""
        at24 = samples if self._to24 is None else self._to24.resample_chunk(samples, last=last)
        pcm24 = float_to_pcm16(at24)
        if self.fmt == "pcm16":
            return pcm24, pcm24
        at8 = samples if self._to8 is None else self._to8.resample_chunk(samples, last=last)
        encode = ulaw_encode if self.fmt == "g711_ulaw" else alaw_encode
        wire = encode(at8)
        pcm24, self._pcm24_waiting = self._pcm24_waiting + pcm24, b""
        if not wire:
            self._pcm24_waiting = pcm24
            return b"", b""
        return wire, pcm24

    def flush(self) -> tuple[bytes, bytes]:
        """End the stream: what the resamplers still hold (a millisecond or so)."""
        return self.push(np.zeros(0, dtype=np.float32), last=True)

    @property
    def holds(self) -> bool:
        """Whether a flush would give anything (only a resampled stream holds audio back)."""
        return self._to24 is not None or self._to8 is not None


class G711Decoder:
    """One item's G.711 audio (8 kHz) -> PCM16 24 kHz, continuous across deltas and length-exact: each
    delta of n bytes gives 3n samples. The stream is delayed by the resampler's lookahead (about 2 ms,
    silence first) instead of holding audio back, so every delta's length is kept (playback and truncation
    count milliseconds from them); decoding each delta alone put a click at every delta boundary."""

    def __init__(self, law: str) -> None:
        if law not in ("g711_ulaw", "g711_alaw"):
            raise AudioError(f"unknown G.711 law {law!r}; use 'g711_ulaw' or 'g711_alaw'")
        self.law = law
        self._resampler = StreamResampler(G711_RATE, REALTIME_RATE)
        ratio = REALTIME_RATE // G711_RATE
        self._out = np.zeros(ratio * (self._resampler.lookahead + 1), dtype=np.float32)

    def decode(self, data: bytes) -> bytes:
        samples = ulaw_decode(data) if self.law == "g711_ulaw" else alaw_decode(data)
        if samples.size == 0:
            return b""
        floats = samples.astype(np.float32) / 32768.0
        self._out = np.concatenate([self._out, self._resampler.resample_chunk(floats)])
        count = floats.size * (REALTIME_RATE // G711_RATE)
        ready, self._out = self._out[:count], self._out[count:]
        return float_to_pcm16(ready)


__all__ = [
    "G711_BYTES_PER_MS",
    "G711_RATE",
    "PCM16_BYTES_PER_MS",
    "WIRE_NAMES",
    "G711Decoder",
    "InputStream",
    "bytes_per_ms",
    "pcm16_samples",
]
