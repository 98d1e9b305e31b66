"""The cockpit's prompt editor: the agent's instructions as a `voicelab.prompts.Prompt` in Markdown, checked
as you edit (validation findings against the agent), applied to the live session, kept as numbered
versions, and diffed against the version applied last."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from voicelab.errors import VoicelabError
from voicelab.prompts import Finding, Prompt


class PromptPanel:
    """`apply(markdown)` sends the instructions (the Lab passes `lab.update(instructions=...)`); `agent`
    (optional) is what tool and handoff names are checked against."""

    def __init__(self, apply: Callable[[str], Any], instructions: str = "", agent: Any = None) -> None:
        self._apply = apply
        self.agent = agent
        try:
            first = Prompt.parse(instructions or "")
        except VoicelabError:
            first = Prompt(role=instructions or "")
        self.versions: list[Prompt] = [first]  # versions[-1] is what the session has (or started with)
        self.editor = W.Textarea(
            value=first.render(),
            placeholder="# Role and Objective\n...\n\n# Personality and Tone\n## Tone\n...",
            layout=W.Layout(width="100%", height="260px"),
        )
        self.apply_button = W.Button(
            description="Apply prompt", tooltip="session.update with these instructions"
        )
        self.revert_button = W.Button(description="Revert", tooltip="back to the version applied last")
        self.findings = W.HTML()
        self.diff = W.HTML()
        self.message = W.HTML()
        self.apply_button.on_click(lambda _b: self.apply())
        self.revert_button.on_click(lambda _b: self.revert())
        self.editor.observe(lambda _change: self.check(), names="value")
        self.widget = W.VBox(
            [
                self.editor,
                W.HBox([self.apply_button, self.revert_button, self.message]),
                self.findings,
                self.diff,
            ]
        )
        self.check()

    @property
    def applied(self) -> Prompt:
        return self.versions[-1]

    def prompt(self) -> Prompt:
        """The editor's text as a Prompt (raises ConfigError when its Conversation States JSON is broken)."""
        return Prompt.parse(self.editor.value)

    def check(self) -> list[Finding]:
        """Validate the editor's prompt; show the findings and the diff against the applied version."""
        try:
            prompt = self.prompt()
        except VoicelabError as exc:
            self.findings.value = f"<span style='color:#b00020'>{html.escape(str(exc))}</span>"
            self.diff.value = ""
            return []
        found = prompt.validate(self.agent)
        if found:
            items = "".join(
                f"<li style='color:{'#b00020' if f.severity == 'error' else '#8a5a00'}'>"
                f"{html.escape(f.message)}</li>"
                for f in found
            )
            self.findings.value = f"<ul style='margin:2px 0'>{items}</ul>"
        else:
            self.findings.value = "<span style='color:#2e7d32'>no findings</span>"
        text = self.applied.diff(prompt)
        self.diff.value = (
            f"<pre style='font-size:11px;max-height:180px;overflow:auto'>{html.escape(text)}</pre>"
            if text
            else ""
        )
        return found

    def apply(self) -> Prompt | None:
        """Send the editor's prompt to the session; it becomes a new version. Errors show in the panel."""
        try:
            prompt = self.prompt()
            self._apply(prompt.render())
        except (VoicelabError, ValueError) as exc:
            self.message.value = f"<span style='color:#b00020'>{html.escape(str(exc))}</span>"
            return None
        if prompt != self.applied:
            self.versions.append(prompt)
        self.message.value = f"applied version {len(self.versions)} ({prompt.hash})"
        self.check()
        return prompt

    def revert(self) -> None:
        """Put the version applied last back into the editor."""
        self.editor.value = self.applied.render()
        self.message.value = f"reverted to version {len(self.versions)}"


__all__ = ["PromptPanel"]
