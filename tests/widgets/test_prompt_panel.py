"""The cockpit's prompt editor panel: findings as you edit, apply to the live session, versions and diff."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from voicelab import Agent, tool
from voicelab.errors import ConfigError
from voicelab.prompts import Prompt
from voicelab.recording import read_events
from voicelab.widgets import Lab, PromptPanel


@tool
def lookup_order(order_number: str) -> str:
    """Look up an order."""
    return "It was delivered on March third."


BASE = Prompt(
    role="You are the returns desk.",
    tools="Look orders up with `lookup_order`.",
    states=[{"id": "1_number", "description": "Ask for the order number."}],
)
CAREFUL = BASE.replace(instructions="When the caller gives a number, repeat it back to confirm it.")


def test_findings_diff_versions_and_errors() -> None:
    applied: list[str] = []
    agent = Agent(name="desk", instructions=BASE.render(), tools=[lookup_order])
    panel = PromptPanel(applied.append, BASE.render(), agent)
    assert panel.editor.value == BASE.render()
    assert "repeat them back" in panel.findings.value and panel.diff.value == ""  # checked when opened
    panel.editor.value = CAREFUL.render()  # typing re-checks
    assert panel.findings.value == "<span style='color:#2e7d32'>no findings</span>"
    assert (
        "+When the caller gives a number" in panel.diff.value and "changed: instructions" in panel.diff.value
    )
    assert panel.apply() == CAREFUL
    assert applied == [CAREFUL.render()] and len(panel.versions) == 2
    assert panel.message.value == f"applied version 2 ({CAREFUL.hash})" and panel.diff.value == ""
    panel.editor.value = CAREFUL.render().replace("`lookup_order`", "`refund_order`")
    assert "has no such tool" in panel.findings.value
    panel.revert()
    assert panel.editor.value == CAREFUL.render()
    panel.editor.value = "# Conversation States\n```json\n[{broken\n```"
    assert "not valid" in panel.findings.value
    assert panel.apply() is None and "not valid" in panel.message.value and len(applied) == 1

    def refuse(_text: str) -> None:
        raise ConfigError("the lab is not connected")

    refused = PromptPanel(refuse, "You are brief.")
    assert refused.apply() is None and "not connected" in refused.message.value
    assert refused.versions[0] == Prompt(role="You are brief.")


def _updated_instructions(recording: Path | None) -> str | None:
    assert recording is not None
    updated = [
        e["event"]["session"].get("instructions")
        for e in read_events(recording)
        if e["dir"] == "server" and e["type"] == "session.updated"
    ]
    return updated[-1] if updated else None


async def test_the_lab_applies_the_prompt_to_the_live_session(tmp_path: Path) -> None:
    agent = Agent(
        name="desk",
        instructions=BASE.render(),
        tools=[lookup_order],
        turn_detection={"type": "server_vad", "silence_duration_ms": 500},
    )
    lab = Lab.local(agent, "returns_prompts", pace="fast", record_dir=tmp_path)
    try:
        view: Any = lab.view
        tabs = view.children[-1]
        assert [tabs.get_title(i) for i in range(len(tabs.children))][-1] == "Prompt"
        await lab.connect()
        lab.prompt_panel.editor.value = CAREFUL.render()
        lab.prompt_panel.apply_button.click()
        for _ in range(500):  # the server confirms the new instructions
            if _updated_instructions(lab.recording_path) == CAREFUL.render():
                break
            await asyncio.sleep(0.01)
        assert _updated_instructions(lab.recording_path) == CAREFUL.render()
        assert lab.config.instructions == CAREFUL.render()
        assert lab.settings.instructions.value == CAREFUL.render()
        lab.send_text("Hi, I would like to return an order.")
        await lab.wait_for("response_done", timeout=20)
        assert "I will read it back to you." in lab.transcript.text()  # the script's rule for this prompt
    finally:
        await lab.close()
