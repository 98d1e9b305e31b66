"""The cockpit in Jupyter Notebook 7 (the classic-looking front end many users open), in a real browser.

The same JupyterLab server serves Notebook 7's pages (`/notebooks/...`). Notebook 7 exposes no application
object to scripts, so the test drives it as a user does: the Run menu, then the cockpit's own buttons. With
the browser's auto gain off (`lab.mic.auto_gain = False`, as README suggests), the caller's first words are
transcribed exactly, the answer plays in the page, and Disconnect ends the call.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from browser_harness import JupyterServer, SpeechWav, make_speech_wav
from test_cockpit import FIRST, MONITOR, STATE, cockpit_cells

pytestmark = pytest.mark.browser

NO_AUTO_GAIN = "lab.mic.auto_gain = False"


def open_in_notebook7(page: Any, server: JupyterServer, notebook: str, timeout: float = 90.0) -> None:
    page.goto(f"{server.url}/notebooks/{notebook}?token={server.token}", timeout=timeout * 1000)
    # the kernel indicator shows "Idle" once the kernel is up
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sessions = server.api("GET", "/api/sessions")
        if any(s["path"].endswith(notebook) and s["kernel"]["execution_state"] == "idle" for s in sessions):
            return
        server.check_alive()
        page.wait_for_timeout(200)
    raise AssertionError(f"Notebook 7 did not start a kernel for {notebook} in {timeout:.0f} s")


def test_the_cockpit_in_notebook_7(jupyter_server: JupyterServer, chromium: Any, tmp_path: Path) -> None:
    wav = make_speech_wav(tmp_path / "caller.wav", FIRST)  # a sentence the returns desk's grammar knows
    context = chromium(wav).new_context(viewport={"width": 1280, "height": 1100})
    try:
        run_the_call(context.new_page(), jupyter_server, wav)
    finally:
        context.close()
        jupyter_server.shutdown_kernels()


def run_the_call(page: Any, jupyter_server: JupyterServer, wav: SpeechWav) -> None:
    jupyter_server.write_notebook("nb7.ipynb", [*cockpit_cells(), NO_AUTO_GAIN, MONITOR])
    open_in_notebook7(page, jupyter_server, "nb7.ipynb")
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    state = jupyter_server.wait_for_json(STATE, lambda s: "state" in s, timeout=60)
    assert state["state"] == "closed" and not state.get("error")

    page.get_by_role("button", name="Connect", exact=True).click(timeout=30_000)
    state = jupyter_server.wait_for_json(STATE, lambda s: s.get("state") == "open", timeout=30)
    state = jupyter_server.wait_for_json(
        STATE, lambda s: "assistant:" in s["transcript"] or s.get("error"), timeout=40
    )
    assert not state.get("error"), state["error"]
    # the first words, transcribed exactly by the offline recogniser: the audio came through undistorted
    assert wav.text.lower().rstrip(".") in state["transcript"].lower()
    # the answer played in the page: the player reported progress, in order, never past what it received
    state = jupyter_server.wait_for_json(STATE, lambda s: s["stats"]["player_reports"] > 3, timeout=30)
    stats = state["stats"]
    assert stats["player_non_monotonic"] == 0 and stats["player_past_received"] == 0
    assert stats["mic_gaps"] == 0 and stats["mic_dropped"] == 0

    page.get_by_role("button", name="Disconnect", exact=True).click()
    state = jupyter_server.wait_for_json(STATE, lambda s: s["state"] == "closed", timeout=30)
    assert state["recording"] and not state.get("error")
