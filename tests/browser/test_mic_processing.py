"""The cockpit microphone's voice processing in a real browser: with auto gain, echo cancellation and noise
suppression off, Chromium grants exactly that and the fake microphone's WAV arrives unchanged at 24 kHz,
from its start even though the session opened 1.5 s after the Connect click; `settle_ms` sends the first
milliseconds after the mic opens as silence; turning auto gain back on re-opens the capture with it on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from browser_harness import JupyterServer, SpeechWav, open_notebook, speech_span

import voicelab

pytestmark = pytest.mark.browser

STATE = "mic_state.json"
SETTLE_MS = 1300  # the WAV's speech starts at 1.0 s: its first 0.3 s must arrive as silence
OPEN_AFTER_S = 1.5  # the audio captured before the session opened is sent when it opens

CELL = """
import asyncio, json, time
from pathlib import Path
import numpy as np
import voicelab
from voicelab.audio.core import Audio
from voicelab.widgets.mic import Microphone

STATE = Path("mic_state.json")
NEEDED = int({seconds} * 24000)
mic = Microphone(auto_gain=False, echo_cancellation=False, noise_suppression=False, settle_ms={settle})
chunks = []
saved = False

def on_audio(pcm, info):
    chunks.append(pcm)

connect_at = None

def on_command(message):
    global connect_at
    if message.get("type") == "connect":  # the session takes OPEN_AFTER_S to open, as a slow connect does
        connect_at = time.time()
        mic.session_state = "connecting"

mic.on_audio(on_audio)
mic.on_command(on_command)

async def monitor():
    global saved
    while True:
        if connect_at and time.time() - connect_at > {open_after} and mic.session_state != "open":
            mic.session_state = "open"
        samples = sum(len(c) for c in chunks) // 2
        if Path("turn_auto_gain_on").exists() and not mic.auto_gain:
            mic.auto_gain = True  # as a user would from a cell or the Settings tab
        if samples >= NEEDED and not saved:
            pcm = b"".join(chunks)[: NEEDED * 2]
            voicelab.write_audio("captured.wav", Audio.from_pcm16(pcm, 24000))
            saved = True
        state = {{"samples": samples, "saved": saved, "settings": dict(mic.track_settings),
                 "mic_state": mic.mic_state, "problem": mic.mic_problem, "gaps": mic.stats.gaps,
                 "auto_gain": mic.auto_gain}}
        Path("mic_state.partial").write_text(json.dumps(state))
        Path("mic_state.partial").replace(STATE)
        await asyncio.sleep(0.2)

task = asyncio.get_running_loop().create_task(monitor())
mic
"""


def test_processing_off_and_settling_in_a_real_browser(
    jupyter_server: JupyterServer, page: Any, speech_wav: SpeechWav
) -> None:
    seconds = speech_wav.duration_s
    jupyter_server.write_notebook(
        "mic.ipynb", [CELL.format(seconds=seconds, settle=SETTLE_MS, open_after=OPEN_AFTER_S)]
    )
    lab = open_notebook(page, jupyter_server, "mic.ipynb")
    lab.run_all()
    lab.click("Connect")

    state = jupyter_server.wait_for_json(
        STATE, lambda s: s.get("saved") or s.get("problem"), timeout=seconds + 40
    )
    assert not state["problem"], state["problem"]
    assert state["mic_state"] == "on" and state["gaps"] == 0
    # what the browser granted, read back from the live track
    settings = state["settings"]
    assert settings["autoGainControl"] is False
    assert settings["echoCancellation"] is False
    assert settings["noiseSuppression"] is False

    captured = voicelab.read_audio(jupyter_server.root / "captured.wav")
    samples = np.asarray(captured.samples, np.float64)
    start, end = speech_span(samples.astype(np.float32), 24000)
    # nothing was lost while the session opened: the capture starts with the file (aligned by the end of
    # speech, which processing off leaves where the file has it)
    lag = speech_wav.speech_end_s - end
    assert abs(lag) < 0.1
    print(f"captured from {lag * 1000:.0f} ms into the file; speech from {(start + lag) * 1000:.0f} ms")
    # the settling time (counted from the capture's start, a few ms before its first batch) arrived as
    # digital silence, though the file speaks from 1.0 s on
    assert not np.any(samples[: round((SETTLE_MS / 1000 - 0.1) * 24000)])
    assert start + lag == pytest.approx(SETTLE_MS / 1000, abs=0.1)
    # after it, the file as it is: no gain change
    source = np.asarray(voicelab.read_audio(speech_wav.path).to_realtime().samples, np.float64)
    lo, hi = round(SETTLE_MS / 1000 * 24000) + 4800, round(speech_wav.speech_end_s * 24000)
    shift = round(lag * 24000)
    rms_captured = float(np.sqrt(np.mean(samples[lo - shift : hi - shift] ** 2)))
    rms_source = float(np.sqrt(np.mean(source[lo:hi] ** 2)))
    assert rms_captured == pytest.approx(rms_source, rel=0.1)

    # turning auto gain on re-opens the capture with it on
    (jupyter_server.root / "turn_auto_gain_on").write_text("")
    state = jupyter_server.wait_for_json(
        STATE, lambda s: s["settings"].get("autoGainControl") is True, timeout=30
    )
    assert state["auto_gain"] is True and state["mic_state"] == "on"
