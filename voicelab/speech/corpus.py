"""Labelled speech made with the offline TTS: multi-turn caller conversations with exact turn boundaries.

Labels: each utterance is synthesized on its own and trimmed to its first and last sample whose magnitude
reaches ``TRIM_RATIO`` (1 %, i.e. -40 dB) of that utterance's peak, so a ``Segment`` spans exactly the
samples where speech is, ``[start_ms, end_ms)`` on a 24 kHz clock (ms = sample index / 24). Silence
between turns is digital zero before noise is added. Noise (white or pink, seeded) is scaled so that
``10*log10(speech power / noise power)`` over the samples inside the segments equals ``snr_db``; if the
mix would clip, speech and noise are scaled down together, which keeps the SNR.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from voicelab.audio.core import Audio
from voicelab.errors import ConfigError
from voicelab.speech.tts import OUTPUT_RATE, VOICES, synthesize

# The caller lines of the embedded server's bundled script: keep them word for word.
CONVERSATIONS: dict[str, tuple[str, ...]] = {
    "returns": (
        "Hi, I would like to return an order.",
        "The order number is four five six seven.",
        "Yes, please send me the return label.",
        "No, that is all. Thank you, goodbye.",
    ),
    "spelling": (
        "Hello, I need to update the name on my account.",
        "My last name is Smith. S M I T H.",
        "Yes, that is correct.",
    ),
    "human": (
        "I want to speak to a human.",
        "Yes, please transfer me to a person.",
        "Thank you.",
    ),
}

TRIM_RATIO = 0.01
NOISES = ("white", "pink")
DEFAULT_GAP_MS = (1200, 2500)
PEAK_LIMIT = 0.99


@dataclass(frozen=True)
class Segment:
    """One labelled stretch of speech, ``[start_ms, end_ms)`` from the start of the audio."""

    start_ms: float
    end_ms: float
    text: str


@dataclass(frozen=True)
class LabelledAudio:
    audio: Audio
    segments: tuple[Segment, ...]


def trim_bounds(samples: np.ndarray, ratio: float = TRIM_RATIO) -> tuple[int, int]:
    """Index of the first and one past the last sample with ``|x| >= ratio * peak``."""
    magnitude = np.abs(samples)
    peak = float(magnitude.max(initial=0.0))
    if peak == 0.0:
        raise ConfigError("cannot label silent audio; synthesize text with pronounceable words")
    loud = np.flatnonzero(magnitude >= ratio * peak)
    return int(loud[0]), int(loud[-1]) + 1


def _gaps(gap_ms: Sequence[float], count: int, rng: np.random.Generator) -> list[float]:
    values = list(gap_ms)
    if isinstance(gap_ms, tuple) and len(values) == 2:
        low, high = values
        if not 0 <= low <= high:
            raise ConfigError(f"gap_ms range {gap_ms!r} is invalid; pass (low, high) with 0 <= low <= high")
        return [float(rng.uniform(low, high)) for _ in range(count)]
    if len(values) != count or any(v < 0 for v in values):
        raise ConfigError(
            f"gap_ms list {values!r} needs {count} non-negative values (lead-in, one per gap between "
            f"turns, tail); or pass a (low, high) tuple to draw them at random"
        )
    return [float(v) for v in values]


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n)
    shaping = np.zeros_like(freqs)
    shaping[1:] = 1.0 / np.sqrt(freqs[1:])  # power ~ 1/f
    return np.fft.irfft(spectrum * shaping, n)


def speech_mask(n: int, segments: Sequence[Segment], rate: int = OUTPUT_RATE) -> np.ndarray:
    """Boolean mask of the samples inside ``segments``."""
    mask = np.zeros(n, bool)
    for seg in segments:
        mask[round(seg.start_ms * rate / 1000) : round(seg.end_ms * rate / 1000)] = True
    return mask


def measure_snr_db(
    clean: np.ndarray, noisy: np.ndarray, segments: Sequence[Segment], rate: int = OUTPUT_RATE
) -> float:
    """SNR over the speech segments, from the clean signal and the noisy mix (same scale)."""
    mask = speech_mask(len(clean), segments, rate)
    scale = float(np.dot(noisy[mask], clean[mask]) / np.dot(clean[mask], clean[mask]))
    noise = noisy[mask] - scale * clean[mask]
    return float(10 * np.log10(np.mean((scale * clean[mask]) ** 2) / np.mean(noise**2)))


def make_conversation(
    lines: Sequence[str],
    *,
    voice: str = "alloy",
    speed: float = 1.0,
    gap_ms: Sequence[float] = DEFAULT_GAP_MS,
    snr_db: float | None = None,
    noise: str = "white",
    seed: int = 0,
) -> LabelledAudio:
    """Speak ``lines`` as one caller's turns separated by silence; label where each turn's speech is.

    ``gap_ms`` is a ``(low, high)`` tuple (each silence drawn uniformly, seeded) or a list of
    ``len(lines) + 1`` silences: lead-in, one between each pair of turns, tail.
    """
    if isinstance(lines, str) or not lines:
        raise ConfigError("make_conversation needs a non-empty list of lines, e.g. ['Hello.', 'Thank you.']")
    if noise not in NOISES:
        raise ConfigError(f"unknown noise {noise!r}; use one of {', '.join(NOISES)}")
    rng = np.random.default_rng(seed)
    gaps = _gaps(gap_ms, len(lines) + 1, rng)
    pieces: list[np.ndarray] = []
    segments: list[Segment] = []
    position = 0
    for i, line in enumerate(lines):
        silence = np.zeros(round(gaps[i] * OUTPUT_RATE / 1000), np.float32)
        pieces.append(silence)
        position += silence.size
        samples = synthesize(line, voice=voice, speed=speed).samples
        start, end = trim_bounds(samples)
        pieces.append(samples[start:end])
        segments.append(
            Segment(position * 1000 / OUTPUT_RATE, (position + end - start) * 1000 / OUTPUT_RATE, line)
        )
        position += end - start
    pieces.append(np.zeros(round(gaps[-1] * OUTPUT_RATE / 1000), np.float32))
    mix = np.concatenate(pieces).astype(np.float64)
    if snr_db is not None:
        mask = speech_mask(mix.size, segments)
        noise_samples = _noise(noise, mix.size, rng)
        speech_power = np.mean(mix[mask] ** 2)
        target_noise_power = speech_power / 10 ** (snr_db / 10)
        noise_samples *= np.sqrt(target_noise_power / np.mean(noise_samples[mask] ** 2))
        mix = mix + noise_samples
    peak = float(np.abs(mix).max())
    if peak > PEAK_LIMIT:
        mix *= PEAK_LIMIT / peak
    return LabelledAudio(Audio.from_array(mix.astype(np.float32), OUTPUT_RATE), tuple(segments))


def write_labelled(
    out_dir: str | os.PathLike[str], relpath: str, labelled: LabelledAudio, **meta: Any
) -> dict[str, Any]:
    """Write ``labelled`` as 16-bit FLAC under ``out_dir``; return its manifest entry."""
    path = Path(out_dir) / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, labelled.audio.samples, labelled.audio.rate, format="FLAC", subtype="PCM_16")
    return {
        "path": Path(relpath).as_posix(),
        **meta,
        "segments": [
            {**asdict(s), "start_ms": round(s.start_ms, 4), "end_ms": round(s.end_ms, 4)}
            for s in labelled.segments
        ],
    }


def _name(value: float | None) -> str:
    return "clean" if value is None else f"{value:g}".replace(".", "p").replace("-", "m")


def make_corpus(
    out_dir: str | os.PathLike[str],
    *,
    snrs: Sequence[float | None] = (None, 20, 10, 5),
    voices: Sequence[str] = ("alloy", "ash", "coral", "echo", "sage", "verse"),
    speeds: Sequence[float] = (0.9, 1.0, 1.2),
    n: int = 24,
    noise: str = "white",
    seed: int = 0,
    gap_ms: Sequence[float] = DEFAULT_GAP_MS,
) -> dict[str, Any]:
    """Write ``n`` conversations (cycling names, voices, speeds) at each SNR as FLAC + ``manifest.json``.

    Conversation ``i`` uses seed ``seed + i`` for its silences and noise, so every SNR variant of it has the
    same timeline and labels. Returns the manifest (also written to ``out_dir/manifest.json``).
    """
    if n < 1:
        raise ConfigError(f"n={n} conversations is too few; pass n >= 1")
    unknown = [v for v in voices if v not in VOICES]
    if unknown or not voices or not speeds:
        raise ConfigError(
            f"voices {list(voices)!r} / speeds {list(speeds)!r} must be non-empty Realtime values"
        )
    names = list(CONVERSATIONS)
    files: list[dict[str, Any]] = []
    for i in range(n):
        name = names[i % len(names)]
        voice = voices[i % len(voices)]
        speed = speeds[(i // len(voices)) % len(speeds)]
        for snr in snrs:
            labelled = make_conversation(
                CONVERSATIONS[name],
                voice=voice,
                speed=speed,
                gap_ms=gap_ms,
                snr_db=snr,
                noise=noise,
                seed=seed + i,
            )
            relpath = f"{name}_{i:02d}_{voice}_{_name(speed)}_{_name(snr)}.flac"
            meta = {"kind": "conversation", "name": name, "voice": voice, "speed": speed}
            meta |= {"snr_db": snr, "noise": noise if snr is not None else None, "seed": seed + i}
            files.append(write_labelled(out_dir, relpath, labelled, **meta))
    manifest = {"rate": OUTPUT_RATE, "files": files}
    write_manifest(out_dir, manifest)
    return manifest


def write_manifest(out_dir: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    path = Path(out_dir) / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return path


def load_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a manifest written by ``make_corpus`` or ``fixtures/generate.py``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


__all__ = [
    "CONVERSATIONS",
    "TRIM_RATIO",
    "LabelledAudio",
    "Segment",
    "load_manifest",
    "make_conversation",
    "make_corpus",
    "measure_snr_db",
    "speech_mask",
    "trim_bounds",
    "write_labelled",
    "write_manifest",
]
