"""ITU-T G.711 μ-law and A-law (the Realtime `audio/pcmu` and `audio/pcma` formats, 8 kHz), vectorised.

Encoders take int16 PCM samples (or float samples in [-1, 1], converted with `float_to_int16`) and return one
byte per sample; decoders take those bytes and return int16 PCM. The segment tables follow G.711 as in the
classic reference implementation: μ-law works on 14-bit magnitudes with a bias of 33, A-law on 13 bits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voicelab.audio.core import float_to_int16
from voicelab.errors import AudioError

_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ULAW_BIAS = 0x84  # 132 on the 16-bit scale, 33 on the 14-bit one
_ULAW_CLIP = 8159  # largest 14-bit magnitude before the bias


def _pcm_input(samples: Any) -> np.ndarray:
    """int16 samples as int32 for the bit arithmetic; floats are converted from [-1, 1]."""
    array = np.asarray(samples)
    if array.ndim != 1:
        raise AudioError(f"G.711 encoding needs mono 1-D samples, got shape {array.shape}; downmix first")
    if array.dtype.kind == "f":
        array = float_to_int16(array)
    elif array.dtype != np.int16:
        raise AudioError(
            f"G.711 encoding needs int16 PCM or float samples in [-1, 1], got {array.dtype}; "
            "convert with .astype(np.int16) or use Audio.from_array(...).samples"
        )
    return array.astype(np.int32)


def _code_input(data: Any) -> np.ndarray:
    """G.711 bytes (bytes-like or a uint8 array) as int32 codes."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8).astype(np.int32)
    array = np.asarray(data)
    if array.dtype != np.uint8 or array.ndim != 1:
        raise AudioError(
            f"G.711 decoding needs bytes or a 1-D uint8 array, got {array.dtype} of shape {array.shape}; "
            "pass the raw G.711 bytes"
        )
    return array.astype(np.int32)


def ulaw_encode(samples: Any) -> bytes:
    """int16 (or float) samples -> μ-law bytes."""
    pcm = _pcm_input(samples) >> 2  # 14-bit
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_ULAW_SEG_END, magnitude, side="left")
    code = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((magnitude >> (seg + 1)) & 0x0F))
    return (code ^ mask).astype(np.uint8).tobytes()


def ulaw_decode(data: Any) -> np.ndarray:
    """μ-law bytes -> int16 samples."""
    code = ~_code_input(data) & 0xFF
    t = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def alaw_encode(samples: Any) -> bytes:
    """int16 (or float) samples -> A-law bytes."""
    pcm = _pcm_input(samples) >> 3  # 13-bit
    negative = pcm < 0
    mask = np.where(negative, 0x55, 0xD5)
    magnitude = np.where(negative, -pcm - 1, pcm)
    seg = np.searchsorted(_ALAW_SEG_END, magnitude, side="left")
    shift = np.where(seg < 2, 1, seg)
    code = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((magnitude >> shift) & 0x0F))
    return (code ^ mask).astype(np.uint8).tobytes()


def alaw_decode(data: Any) -> np.ndarray:
    """A-law bytes -> int16 samples."""
    code = _code_input(data) ^ 0x55
    seg = (code & 0x70) >> 4
    t = ((code & 0x0F) << 4) + np.where(seg == 0, 8, 0x108)
    t = t << np.maximum(seg - 1, 0)
    return np.where(code & 0x80, t, -t).astype(np.int16)


__all__ = ["alaw_decode", "alaw_encode", "ulaw_decode", "ulaw_encode"]
