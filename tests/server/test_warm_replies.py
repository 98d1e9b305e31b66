"""The server synthesizes a script's fixed replies at start: a first reply is sent without waiting for TTS."""

from __future__ import annotations

import time

from server_helpers import FAKE_SERVICES, SCRIPT

from voicelab.server import EchoBrain, ScriptedBrain, Server
from voicelab.server.app import _static_lines
from voicelab.server.services import _espeak, espeak_synthesizer


def test_fixed_replies_are_the_ones_without_placeholders() -> None:
    lines = _static_lines(ScriptedBrain(SCRIPT))
    assert lines[:2] == ["Hi, how can I help?", "one two three four five six seven eight nine ten"]
    assert not any("{" in line for line in lines)  # "In {city} it is {output.sky}." depends on the call
    assert lines[-1] == ScriptedBrain(SCRIPT).script.fallback
    assert _static_lines(EchoBrain()) == []


def test_the_default_synthesizer_has_them_cached_once_the_server_runs() -> None:
    script = {**SCRIPT, "fallback": "A fallback line that nothing else synthesizes, number 8812."}
    lines = _static_lines(ScriptedBrain(script))
    _espeak.cache_clear()
    with Server(script=script, pace="fast"):
        for _ in range(400):  # the warm-up runs on a background thread after the grammar is built
            if _espeak.cache_info().currsize >= len(lines):
                break
            time.sleep(0.05)
        for line in lines:
            hits = _espeak.cache_info().hits
            espeak_synthesizer(line, "alloy", 1.0)
            assert _espeak.cache_info().hits == hits + 1


def test_custom_synthesizers_are_not_called_ahead() -> None:
    calls: list[str] = []

    def tts(text: str, voice: str, speed: float) -> tuple[bytes, None]:
        calls.append(text)
        return b"\0\0" * 240, None

    services = type(FAKE_SERVICES)(tts, FAKE_SERVICES.turn_detector, FAKE_SERVICES.transcriber)
    with Server(brain=ScriptedBrain(SCRIPT), services=services):
        time.sleep(0.3)
    assert calls == []  # a user's synthesizer may be slow or remote: it runs only for real replies
