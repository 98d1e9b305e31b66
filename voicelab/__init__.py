"""voicelab: prototype OpenAI Realtime voice agents in Jupyter, online or fully offline.

Public names are imported lazily so that `import voicelab` stays fast and light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Audio": "voicelab.audio.core",
    "read_audio": "voicelab.audio.io",
    "write_audio": "voicelab.audio.io",
    "detect_turns": "voicelab.audio.turns",
    "TurnDetection": "voicelab.audio.turns",
    "SessionConfig": "voicelab.config",
    "connect": "voicelab.session",
    "Session": "voicelab.session",
    "load_recording": "voicelab.recording",
    "Recording": "voicelab.recording",
    "serve": "voicelab.server",
    "Agent": "voicelab.agents",
    "tool": "voicelab.agents",
    "output_guardrail": "voicelab.agents",
    "Stubs": "voicelab.agents",
    "Lab": "voicelab.widgets",
    "Prompt": "voicelab.prompts",
    "Scenario": "voicelab.scenarios",
    "expect": "voicelab.scenarios",
    "experiment": "voicelab.experiments",
    "Variant": "voicelab.experiments",
    "export": "voicelab.export",
    "ChainedModels": "voicelab.pipeline",
    "ChainedSession": "voicelab.pipeline",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'voicelab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
