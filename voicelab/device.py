"""A local sound device (optional): play an `Audio`, or record one from the microphone.

Needs the `device` extra (`pip install 'voicelab[device]'`, i.e. `sounddevice`) and the system PortAudio
library (Debian/Ubuntu: `apt install libportaudio2`). Everything else in voicelab works without them; in a
notebook, the browser plays and records instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voicelab.audio.core import REALTIME_RATE, Audio
from voicelab.errors import AudioError, ConfigError

INSTALL_HINT = (
    "install the optional extra with pip install 'voicelab[device]' and the system PortAudio library "
    "(Debian/Ubuntu: apt install libportaudio2)"
)


def sounddevice_module() -> Any:
    """The `sounddevice` module, or a ConfigError that says what to install."""
    try:
        import sounddevice
    except ImportError as exc:
        raise ConfigError(f"a local sound device needs the sounddevice package: {INSTALL_HINT}") from exc
    except OSError as exc:  # sounddevice is there but cannot load libportaudio
        raise ConfigError(f"the PortAudio library could not be loaded ({exc}): {INSTALL_HINT}") from exc
    return sounddevice


def play(audio: Audio, *, blocking: bool = True, device: Any = None) -> None:
    """Play `audio` on the default (or given) output device."""
    if not isinstance(audio, Audio):
        raise AudioError(
            f"play() takes a voicelab Audio, got {type(audio).__name__}; wrap it with Audio.from_array"
        )
    sd = sounddevice_module()
    sd.play(audio.samples, samplerate=audio.rate, blocking=blocking, device=device)


def record(seconds: float, *, rate: int = REALTIME_RATE, device: Any = None) -> Audio:
    """Record `seconds` of mono audio from the default (or given) input device."""
    if not isinstance(seconds, (int, float)) or not np.isfinite(seconds) or seconds <= 0:
        raise AudioError(f"record() needs a positive number of seconds, got {seconds!r}")
    sd = sounddevice_module()
    frames = round(seconds * rate)
    data = sd.rec(frames, samplerate=rate, channels=1, dtype="float32", blocking=True, device=device)
    return Audio.from_array(np.asarray(data), rate)


__all__ = ["INSTALL_HINT", "play", "record", "sounddevice_module"]
