"""The optional local sound device: clear errors without it, the right calls with it."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from voicelab import device
from voicelab.audio.core import Audio
from voicelab.errors import AudioError, ConfigError


def test_missing_sounddevice_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'voicelab\[device\]'.*libportaudio2"):
        device.play(Audio.from_array(np.zeros(10, np.float32), 24000))


def test_missing_portaudio_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    real_import = __builtins__["__import__"] if isinstance(__builtins__, dict) else __builtins__.__import__
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr("builtins.__import__", failing_import)
    with pytest.raises(ConfigError, match="PortAudio library could not be loaded"):
        device.sounddevice_module()


class FakeSoundDevice(types.ModuleType):
    def __init__(self) -> None:
        super().__init__("sounddevice")
        self.calls: list[tuple[str, dict[str, object]]] = []

    def play(self, data: np.ndarray, **kwargs: object) -> None:
        self.calls.append(("play", {"size": data.size, **kwargs}))

    def rec(self, frames: int, **kwargs: object) -> np.ndarray:
        self.calls.append(("rec", {"frames": frames, **kwargs}))
        return np.full((frames, 1), 0.25, np.float32)


def test_play_and_record_call_sounddevice(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeSoundDevice()
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    device.play(Audio.from_array(np.zeros(480, np.float32), 24000), blocking=False)
    recorded = device.record(0.5, rate=16000)
    assert fake.calls[0] == ("play", {"size": 480, "samplerate": 24000, "blocking": False, "device": None})
    assert fake.calls[1][1]["frames"] == 8000 and fake.calls[1][1]["channels"] == 1
    assert recorded.rate == 16000 and recorded.samples.size == 8000 and recorded.samples[0] == 0.25


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), "2"])
def test_record_needs_positive_seconds(seconds: object) -> None:
    with pytest.raises(AudioError, match="positive number of seconds"):
        device.record(seconds)  # type: ignore[arg-type]


def test_play_needs_audio() -> None:
    with pytest.raises(AudioError, match=r"wrap it with Audio\.from_array"):
        device.play(np.zeros(10))  # type: ignore[arg-type]
