"""Reading and writing audio files with soundfile (libsndfile: WAV, FLAC, OGG, MP3, ...)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile

from voicelab.audio.core import Audio, float_to_int16
from voicelab.checks import checked, path_arg
from voicelab.errors import AudioError

_FORMATS_BY_SUFFIX = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}


@checked
def read_audio(path: str | os.PathLike[str], *, allow_empty: bool = False) -> Audio:
    """Read any file soundfile can read as mono float32 `Audio` at the file's own rate.

    Several channels are downmixed (noted in `conversions`), and the file's format, rate and channel count are
    noted too. Callers resample if they need another rate (e.g. `.to_realtime()`).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise AudioError(f"read_audio needs a file path (str or Path), got {type(path).__name__}")
    file = Path(path)
    if not file.exists():
        raise AudioError(f"audio file {str(file)!r} does not exist; check the path")
    if file.is_dir():
        raise AudioError(
            f"{str(file)!r} is a directory, not an audio file; pass the path of a WAV or FLAC file"
        )
    try:
        info = soundfile.info(str(file))
        data, rate = soundfile.read(str(file), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(
            f"cannot read {str(file)!r} as audio ({exc}); pass a valid WAV, FLAC, OGG or MP3 file "
            "(the file may be corrupt or not audio at all)"
        ) from exc
    if data.shape[0] == 0 and not allow_empty:
        raise AudioError(
            f"audio file {str(file)!r} has no samples; record some audio into it first "
            "(from Python, read_audio(..., allow_empty=True) accepts it)"
        )
    audio = Audio.from_array(data, rate, allow_empty=allow_empty)
    channels = "1 channel" if info.channels == 1 else f"{info.channels} channels"
    note = f"read {info.format} {info.subtype} at {rate} Hz, {channels}, from {file.name}"
    return Audio(audio.samples, audio.rate, (note, *audio.conversions))


@checked
def write_audio(
    path: str | os.PathLike[str], audio: Audio, format: str | None = None, *, subtype: str = "PCM_16"
) -> Path:
    """Write `audio` as a mono file (PCM16 by default); the format comes from the suffix unless given."""
    if not isinstance(audio, Audio):
        raise AudioError(
            f"write_audio needs an Audio value, got {type(audio).__name__}; "
            "wrap samples with Audio.from_array(data, rate)"
        )
    file = path_arg(path, "path", example="'caller.wav'", where="write_audio", error=AudioError)
    if file.is_dir():
        raise AudioError(
            f"{str(file)!r} is a directory; pass a file path such as {str(file / 'audio.wav')!r}"
        )
    if not file.parent.exists():
        raise AudioError(f"folder {str(file.parent)!r} does not exist; create it first")
    if format is None:
        format = _FORMATS_BY_SUFFIX.get(file.suffix.lower())
        if format is None:
            raise AudioError(
                f"cannot tell the audio format from {file.name!r}; "
                "use a .wav or .flac suffix, or pass format='WAV'"
            )
    if not isinstance(format, str):
        raise AudioError(f"format must be a str such as 'WAV' or 'FLAC', got {type(format).__name__}")
    if not isinstance(subtype, str):
        raise AudioError(f"subtype must be a str such as 'PCM_16', got {type(subtype).__name__}")
    format = format.upper()
    available = soundfile.available_formats()
    if format not in available:
        raise AudioError(f"unknown audio format {format!r}; use one of {', '.join(sorted(available))}")
    if not soundfile.check_format(format, subtype):
        raise AudioError(f"format {format} cannot store subtype {subtype!r}; use subtype='PCM_16'")
    data = float_to_int16(audio.samples) if subtype == "PCM_16" else audio.samples.astype(np.float32)
    try:
        soundfile.write(str(file), data, audio.rate, format=format, subtype=subtype)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise AudioError(
            f"cannot write {str(file)!r} as {format} ({exc}); check the rate and the path"
        ) from exc
    return file


__all__ = ["read_audio", "write_audio"]
