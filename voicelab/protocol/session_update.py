"""How a `session.update` changes a session: the one merge rule of the client (`Session.update` with a
dict) and the embedded server (`Engine`), sans-I/O.

Present top-level fields replace the current value whole (`instructions`, `tools`, `tool_choice`, `prompt`,
...). `audio` is the exception: its `input` and `output` objects merge, and each of their fields
(`format`, `transcription`, `noise_reduction`, `turn_detection`, `voice`, `speed`) again replaces whole. So
`{"audio": {"output": {"voice": "ash"}}}` keeps the output format, and `{"audio": {"input": {"transcription":
{"model": "whisper-1"}}}}` drops a language set before.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

AUDIO_DIRECTIONS = ("input", "output")

# (direction, field, value) -> the value to store: a side's own normalisation (the server fills turn-detection
# defaults and a PCM format's rate)
Normalize = Callable[[str, str, Any], Any]


def merge_session_update(
    current: dict[str, Any], update: dict[str, Any], normalize: Normalize | None = None
) -> dict[str, Any]:
    """The session after `update` (a new dict; neither argument is changed). See the module docstring."""
    merged = copy.deepcopy(current)
    for key, value in update.items():
        if key != "audio" or not isinstance(value, dict):
            merged[key] = copy.deepcopy(value)
            continue
        audio = merged.get("audio")
        if not isinstance(audio, dict):
            audio = merged["audio"] = {}
        for direction in AUDIO_DIRECTIONS:
            changes = value.get(direction)
            if not isinstance(changes, dict):
                continue
            target = audio.get(direction)
            if not isinstance(target, dict):
                target = audio[direction] = {}
            for field, inner in changes.items():
                stored = normalize(direction, field, inner) if normalize is not None else inner
                target[field] = copy.deepcopy(stored)
    return merged


__all__ = ["AUDIO_DIRECTIONS", "Normalize", "merge_session_update"]
