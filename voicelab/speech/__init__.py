"""Offline speech: text-to-speech with libespeak-ng and grammar-constrained recognition with pocketsphinx."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "VOICES": "voicelab.speech.tts",
    "synthesize": "voicelab.speech.tts",
    "synthesize_with_marks": "voicelab.speech.tts",
    "GrammarTranscriber": "voicelab.speech.asr",
    "LabelledAudio": "voicelab.speech.corpus",
    "Segment": "voicelab.speech.corpus",
    "make_conversation": "voicelab.speech.corpus",
    "make_corpus": "voicelab.speech.corpus",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'voicelab.speech' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
