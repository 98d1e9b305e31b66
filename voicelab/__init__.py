"""voicelab: prototype OpenAI Realtime voice agents in Jupyter, online or fully offline.

Public names are imported lazily so that `import voicelab` stays fast and light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

# What type checkers and IDEs see (`X as X`: an explicit re-export); tests/test_exports.py keeps it equal to
# _EXPORTS.
if TYPE_CHECKING:
    from voicelab.agents import (
        Agent as Agent,
    )
    from voicelab.agents import (
        Stubs as Stubs,
    )
    from voicelab.agents import (
        output_guardrail as output_guardrail,
    )
    from voicelab.agents import (
        tool as tool,
    )
    from voicelab.audio.core import Audio as Audio
    from voicelab.audio.io import read_audio as read_audio
    from voicelab.audio.io import write_audio as write_audio
    from voicelab.audio.turns import TurnDetection as TurnDetection
    from voicelab.audio.turns import detect_turns as detect_turns
    from voicelab.config import SessionConfig as SessionConfig
    from voicelab.experiments import Variant as Variant
    from voicelab.experiments import experiment as experiment
    from voicelab.export import export as export
    from voicelab.pipeline import ChainedModels as ChainedModels
    from voicelab.pipeline import ChainedSession as ChainedSession
    from voicelab.prompts import Prompt as Prompt
    from voicelab.recording import Recording as Recording
    from voicelab.recording import load_recording as load_recording
    from voicelab.scenarios import Scenario as Scenario
    from voicelab.scenarios import expect as expect
    from voicelab.server import serve as serve
    from voicelab.session import Session as Session
    from voicelab.session import connect as connect
    from voicelab.widgets import Lab as Lab


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        if name.startswith("__"):
            raise AttributeError(f"module 'voicelab' has no attribute {name!r}")
        from voicelab.checks import unknown_name  # the closest public name, e.g. voicelab.Agnet -> Agent

        raise unknown_name("voicelab", name, __all__)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Every public name (imported or not yet) for dir() and tab completion."""
    return sorted(set(globals()) | set(__all__))
