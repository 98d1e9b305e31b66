"""Offline text-to-speech with libespeak-ng, as bundled by the ``espeakng-loader`` wheel.

The library is driven through ctypes in synchronous mode: a synth callback collects int16 samples at
espeak's native rate (22050 Hz) and word events, then soxr resamples to 24 kHz. libespeak-ng keeps global
state, so every call holds one module lock; it is safe to call from several threads (e.g. via
``asyncio.to_thread``). Output is deterministic: each utterance runs in a freshly loaded library.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import soxr

from voicelab.audio.core import Audio
from voicelab.errors import ConfigError, VoicelabError

OUTPUT_RATE = 24000
MIN_SPEED = 0.25
MAX_SPEED = 1.5
BASE_WPM = 175  # espeak-ng's default rate, used for speed 1.0
MIN_WPM = 80  # espeak-ng's slowest rate; slower speeds add pauses between words instead
_GAP_UNIT_MS = 33.0


@dataclass(frozen=True)
class EspeakVoice:
    """How one Realtime voice name is rendered: an espeak-ng voice+variant and a pitch (0-100)."""

    name: str
    pitch: int
    pitch_range: int = 50


# Every Realtime voice gets a distinct en-US variant and pitch, so voices are told apart by ear and by ASR.
VOICES: Mapping[str, EspeakVoice] = {
    "alloy": EspeakVoice("en-us+f3", pitch=50),
    "ash": EspeakVoice("en-us+m1", pitch=40),
    "ballad": EspeakVoice("en-us+m3", pitch=55, pitch_range=80),
    "coral": EspeakVoice("en-us+f2", pitch=60),
    "echo": EspeakVoice("en-us+m2", pitch=30),
    "sage": EspeakVoice("en-us+f4", pitch=45, pitch_range=30),
    "shimmer": EspeakVoice("en-us+f5", pitch=70, pitch_range=70),
    "verse": EspeakVoice("en-us+m4", pitch=50, pitch_range=70),
    "marin": EspeakVoice("en-us+f1", pitch=55),
    "cedar": EspeakVoice("en-us+m7", pitch=35, pitch_range=40),
}

# espeak-ng C API constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _PITCH, _RANGE, _WORDGAP = 1, 3, 4, 7
_EVENT_LIST_TERMINATED, _EVENT_WORD = 0, 1
_EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = (("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8))


class _Event(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


def _bind(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = (_SynthCallback,)
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
    lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
    lib.espeak_ng_SetRandSeed.argtypes = (ctypes.c_long,)
    lib.espeak_ng_SetRandSeed.restype = None
    lib.espeak_Synth.argtypes = (
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.POINTER(ctypes.c_uint),
        ctypes.c_void_p,
    )


def _check(status: int, what: str) -> None:
    if status != _EE_OK:
        raise VoicelabError(f"libespeak-ng error {status} while {what}; reinstall the espeakng-loader wheel")


def _speak(text: str, voice: EspeakVoice, wpm: int, word_gap: int) -> tuple[np.ndarray, int, list]:
    """Run one utterance through a freshly loaded libespeak-ng; call only while holding ``_LOCK``.

    libespeak-ng keeps synthesis state in C statics that no API call resets (pitch flutter phase, the
    harmonic double buffer), so the same text comes out slightly different every time. Loading the library
    afresh (dlopen/dlclose, about 2 ms) makes every utterance deterministic.
    """
    import _ctypes

    import espeakng_loader

    chunks: list[np.ndarray] = []
    marks: list[tuple[int, int]] = []

    def on_synth(wav: ctypes.Array, count: int, events: ctypes.Array) -> int:
        if count > 0 and wav:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_WORD:
                marks.append((events[i].text_position - 1, events[i].audio_position))
            i += 1
        return 0  # 0 = continue synthesis

    callback = _SynthCallback(on_synth)
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    try:
        _bind(lib)
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise VoicelabError(
                f"libespeak-ng failed to initialise with data at {data_path.decode()}; "
                "reinstall the espeakng-loader wheel"
            )
        try:
            lib.espeak_SetSynthCallback(callback)
            _check(lib.espeak_SetVoiceByName(voice.name.encode()), f"selecting voice {voice.name}")
            _check(lib.espeak_SetParameter(_RATE, wpm, 0), "setting the rate")
            _check(lib.espeak_SetParameter(_PITCH, voice.pitch, 0), "setting the pitch")
            _check(lib.espeak_SetParameter(_RANGE, voice.pitch_range, 0), "setting the pitch range")
            _check(lib.espeak_SetParameter(_WORDGAP, word_gap, 0), "setting the word gap")
            lib.espeak_ng_SetRandSeed(1)
            data = text.encode("utf-8") + b"\0"
            buf = ctypes.create_string_buffer(data, len(data))
            _check(
                lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None),
                "synthesizing",
            )
        finally:
            lib.espeak_Terminate()
    finally:
        _ctypes.dlclose(lib._handle)
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return samples.astype(np.int16, copy=False), rate, marks


_LOCK = threading.Lock()


def _voice(voice: str) -> EspeakVoice:
    try:
        return VOICES[voice]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown voice {voice!r}; use one of the Realtime voices: {', '.join(VOICES)}"
        ) from None


def _rate(speed: float) -> tuple[int, int]:
    """Map a Realtime speed (0.25-1.5) to espeak words per minute and an extra word gap (10 ms units)."""
    if not isinstance(speed, (int, float)) or not MIN_SPEED <= speed <= MAX_SPEED:
        raise ConfigError(f"speed {speed!r} is out of range; use a number from {MIN_SPEED} to {MAX_SPEED}")
    wpm = BASE_WPM * speed
    if wpm >= MIN_WPM:
        return round(wpm), 0
    # Below espeak's slowest rate: speak at MIN_WPM and pad each word towards the requested words per
    # minute (one word-gap unit lengthens a word by about 33 ms at MIN_WPM, measured with espeak-ng 1.52).
    gap_ms = 60_000.0 / wpm - 60_000.0 / MIN_WPM
    return MIN_WPM, max(1, round(gap_ms / _GAP_UNIT_MS))


def synthesize_with_marks(
    text: str, voice: str = "alloy", speed: float = 1.0
) -> tuple[Audio, list[tuple[int, int]]]:
    """Speak ``text``; return 24 kHz audio and word marks ``(char_offset, ms)`` (where each word starts).

    ``char_offset`` indexes the Python string ``text``; ``ms`` is where the word starts in the audio.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("cannot synthesize empty text; pass at least one word to speak")
    spec = _voice(voice)
    wpm, word_gap = _rate(speed)
    with _LOCK:
        pcm, native_rate, marks = _speak(text, spec, wpm, word_gap)
    if pcm.size == 0:
        raise ConfigError(f"espeak-ng produced no sound for {text!r}; pass text with pronounceable words")
    samples = pcm.astype(np.float32) / 32768.0
    samples = soxr.resample(samples, native_rate, OUTPUT_RATE, quality="HQ").astype(np.float32)
    np.clip(samples, -1.0, 1.0, out=samples)
    audio = Audio.from_array(samples, OUTPUT_RATE)
    return audio, marks


def synthesize(text: str, voice: str = "alloy", speed: float = 1.0) -> Audio:
    """Speak ``text`` offline with a Realtime voice name; 24 kHz mono. Raises ConfigError on bad input."""
    return synthesize_with_marks(text, voice, speed)[0]


__all__ = ["MAX_SPEED", "MIN_SPEED", "OUTPUT_RATE", "VOICES", "synthesize", "synthesize_with_marks"]
