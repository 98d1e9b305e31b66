"""The cockpit's ipywidgets panels: transcript, stubs and approvals, tables, settings.

Each panel keeps its own state and re-renders only in `refresh()`, which the Lab calls a few times a
second at most, so a busy call never floods the kernel's output channel.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as W

from voicelab.errors import VoicelabError

VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "marin", "sage", "shimmer", "verse")
_TURN_TYPES = ("server_vad", "semantic_vad", "none")


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


@dataclass
class _Entry:
    kind: str  # user | assistant | crumb
    key: str
    text: str
    final: bool = False
    note: str = ""


class TranscriptPanel:
    """The live transcript, with breadcrumbs for tool calls, handoffs, guardrail trips and interruptions."""

    def __init__(self, *, max_entries: int = 400) -> None:
        self.widget = W.HTML(value=self._render([]), layout=W.Layout(max_height="320px", overflow="auto"))
        self.entries: list[_Entry] = []
        self._index: dict[str, _Entry] = {}
        self._max = max_entries
        self.dirty = False
        self.updates = 0

    def _entry(self, kind: str, key: str) -> _Entry:
        entry = self._index.get(kind + key)
        if entry is None:
            entry = _Entry(kind, key, "")
            self._index[kind + key] = entry
            self.entries.append(entry)
            if len(self.entries) > self._max:
                old = self.entries.pop(0)
                self._index.pop(old.kind + old.key, None)
        return entry

    def delta(self, role: str, item_id: str, text: str) -> None:
        entry = self._entry(role, item_id)
        if not entry.final:
            entry.text += text
            self.dirty = True

    def done(self, role: str, item_id: str, text: str) -> None:
        entry = self._entry(role, item_id)
        entry.text, entry.final = text or entry.text, True
        self.dirty = True

    def crumb(self, text: str, note: str = "") -> None:
        entry = _Entry("crumb", f"c{len(self.entries)}-{len(self._index)}", text, True, note)
        self._index["crumb" + entry.key] = entry
        self.entries.append(entry)
        self.dirty = True

    def mark_interrupted(self, item_id: str, played_ms: float) -> None:
        entry = self._index.get("assistant" + item_id)
        if entry is not None:
            entry.note = f"heard {played_ms / 1000:.1f} s"
        self.crumb(f"interrupted at {played_ms / 1000:.2f} s of the answer")

    def text(self) -> str:
        """The transcript as plain lines (what the panel shows)."""
        lines = []
        for e in self.entries:
            if e.kind == "crumb":
                lines.append(f"  [{e.text}]")
            else:
                lines.append(f"{e.kind}: {e.text}" + (f" ({e.note})" if e.note else ""))
        return "\n".join(lines)

    def refresh(self) -> bool:
        if not self.dirty:
            return False
        self.dirty = False
        self.widget.value = self._render(self.entries)
        self.updates += 1
        return True

    @staticmethod
    def _render(entries: list[_Entry]) -> str:
        if not entries:
            return (
                "<div class='vl-transcript' aria-label='Transcript'><i>The transcript appears here.</i></div>"
            )
        rows = []
        for e in entries:
            if e.kind == "crumb":
                rows.append(
                    f"<div class='vl-crumb' style='color:#666;font-size:12px;margin:2px 0 2px 12px'>"
                    f"&#9656; {_esc(e.text)}</div>"
                )
                continue
            who = "Caller" if e.kind == "user" else "Assistant"
            color = "#e8f1fb" if e.kind == "user" else "#fdf0e4"
            note = f" <span style='color:#a00;font-size:11px'>({_esc(e.note)})</span>" if e.note else ""
            partial = "" if e.final else " <span style='color:#999'>&hellip;</span>"
            rows.append(
                f"<div class='vl-msg vl-{e.kind}' style='background:{color};border-radius:6px;"
                f"padding:4px 8px;margin:3px 0'><b>{who}:</b> {_esc(e.text)}{partial}{note}</div>"
            )
        return "<div class='vl-transcript' aria-label='Transcript'>" + "".join(rows) + "</div>"


def schema_skeleton(parameters: dict[str, Any] | None, arguments: dict[str, Any]) -> str:
    """A JSON answer to start from: the call's arguments echoed, plus a `result` field to fill in."""
    skeleton: dict[str, Any] = {}
    props = (parameters or {}).get("properties") or {}
    for name in props:
        if name in arguments:
            skeleton[name] = arguments[name]
    for name, value in arguments.items():
        skeleton.setdefault(name, value)
    skeleton["result"] = ""
    return json.dumps(skeleton, indent=1)


def parse_answer(text: str) -> Any:
    """The editor's text as JSON when it is JSON, else as plain text."""
    stripped = text.strip()
    if stripped[:1] in ("{", "[", '"') or stripped in ("true", "false", "null"):
        try:
            return json.loads(stripped)
        except ValueError:
            return text
    return text


class StubsPanel:
    """Pending manual tool calls (tool, arguments, a JSON editor, canned answers, Answer) and approvals
    (Approve / Reject / Always), as in the Realtime Playground; answered calls can be saved as fixtures."""

    def __init__(self, lab: Any) -> None:
        self._lab = lab
        self._shown: tuple[Any, ...] = ()
        self.calls = W.VBox()
        self.answered = W.HTML()
        self.save_path = W.Text(value="stubs.json", description="Stubs file", layout=W.Layout(width="320px"))
        self.save_button = W.Button(description="Save stubs", tooltip="Save the stubs with the answers given")
        self.save_button.on_click(lab._homed(lambda _b: self._save()))
        self.message = W.HTML()
        self.widget = W.VBox(
            [
                W.HTML("<b>Tool calls waiting for you</b>"),
                self.calls,
                self.answered,
                W.HBox([self.save_path, self.save_button]),
                self.message,
            ]
        )
        self._answers: list[str] = []
        self.dirty = True
        self.updates = 0

    def _state(self) -> tuple[Any, ...]:
        stubs = self._lab.stubs
        pending = tuple((p.call_id, p.name) for p in stubs.pending()) if stubs is not None else ()
        approvals = tuple(sorted(self._lab.pending_approvals().items()))
        return pending, approvals

    def record_answer(self, name: str, arguments: Any, output: Any, kind: str) -> None:
        args = arguments if isinstance(arguments, str) else json.dumps(arguments, default=str)
        line = f"{_esc(name)}({_esc(args[:120])}) &rarr; {_esc(str(output)[:160])}"
        self._answers.append(f"<div style='font-size:12px'>{line} <i>({_esc(kind)})</i></div>")
        self._answers = self._answers[-20:]
        self.answered.value = "<b>Answered</b>" + "".join(self._answers)
        self.updates += 1

    def refresh(self) -> bool:
        state = self._state()
        if state == self._shown and not self.dirty:
            return False
        self._shown, self.dirty = state, False
        boxes: list[W.Widget] = []
        stubs = self._lab.stubs
        for call in stubs.pending() if stubs is not None else []:
            boxes.append(self._call_box(call))
        approvals = self._lab.pending_approvals()
        for call_id, name in approvals.items():
            boxes.append(self._approval_box(call_id, name))
        if not boxes:
            boxes = [W.HTML("<i style='color:#777'>none</i>")]
        self.calls.children = tuple(boxes)
        self.updates += 1
        return True

    def _call_box(self, call: Any) -> W.Widget:
        args = json.dumps(call.arguments, default=str)
        title = W.HTML(
            f"<b>{_esc(call.name)}</b> <code>{_esc(args)}</code> <small>({_esc(call.call_id)})</small>"
        )
        editor = W.Textarea(
            value=schema_skeleton(self._lab.tool_parameters(call.name), call.arguments),
            layout=W.Layout(width="100%", height="90px"),
        )
        editor.add_class("vl-stub-editor")
        canned = self._lab.canned_answers(call.name)
        picker = W.Dropdown(
            options=[("canned answers", "")] + [(c[:60], c) for c in canned],
            value="",
            layout=W.Layout(width="240px"),
            description_allow_html=False,
        )

        def pick(change: dict[str, Any]) -> None:
            if change.get("new"):
                editor.value = change["new"]

        picker.observe(pick, names="value")
        answer = W.Button(description="Answer", button_style="primary", tooltip=f"Answer {call.name}")
        note = W.HTML()

        def on_answer(_b: Any) -> None:
            try:
                self._lab.answer(call.call_id, parse_answer(editor.value))
            except VoicelabError as exc:
                note.value = f"<span style='color:#b00020'>{_esc(exc)}</span>"
                return
            answer.disabled = True
            self.dirty = True

        answer.on_click(self._lab._homed(on_answer))
        return W.VBox(
            [title, editor, W.HBox([picker, answer]), note],
            layout=W.Layout(border="1px solid #ddd", padding="4px"),
        )

    def _approval_box(self, call_id: str, name: str) -> W.Widget:
        title = W.HTML(f"<b>Approve {_esc(name)}?</b> <small>({_esc(call_id)})</small>")
        approve = W.Button(description="Approve", button_style="success")
        reject = W.Button(description="Reject", button_style="danger")
        always = W.Button(description="Always", tooltip=f"Approve every call of {name} in this session")

        def decide(kind: str) -> Callable[[Any], None]:
            def handler(_b: Any) -> None:
                if kind == "reject":
                    self._lab.reject(call_id)
                else:
                    self._lab.approve(call_id, always=kind == "always")
                for b in (approve, reject, always):
                    b.disabled = True
                self.dirty = True

            return handler

        homed = self._lab._homed
        approve.on_click(homed(decide("approve")))
        reject.on_click(homed(decide("reject")))
        always.on_click(homed(decide("always")))
        return W.VBox(
            [title, W.HBox([approve, reject, always])],
            layout=W.Layout(border="1px solid #ddd", padding="4px"),
        )

    def _save(self) -> None:
        try:
            path = self._lab.save_stubs(self.save_path.value)
        except (VoicelabError, OSError) as exc:
            self.message.value = f"<span style='color:#b00020'>{_esc(exc)}</span>"
            return
        self.message.value = f"saved to <code>{_esc(path)}</code>"


class TablesPanel:
    """History, turns and latency, tool calls and guardrail trips of the current recording."""

    NAMES = ("history", "turns", "tool_calls", "guardrail_trips")

    def __init__(self) -> None:
        self.outputs = {name: W.HTML("<i>no recording yet</i>") for name in self.NAMES}
        self.refresh_button = W.Button(description="Refresh tables")
        self.widget = W.VBox([self.refresh_button, self._tabs()])
        self.updates = 0

    def _tabs(self) -> W.Widget:
        tabs = W.Tab(children=[self.outputs[n] for n in self.NAMES])
        for i, name in enumerate(self.NAMES):
            tabs.set_title(i, name.replace("_", " "))
        return tabs

    def show(self, frames: dict[str, Any]) -> None:
        for name in self.NAMES:
            frame = frames.get(name)
            if frame is None:
                continue
            if len(frame) == 0:
                self.outputs[name].value = "<i>empty</i>"
            else:
                self.outputs[name].value = frame.tail(200).to_html(
                    max_cols=30, float_format=lambda v: f"{v:.1f}"
                )
        self.updates += 1

    def show_error(self, message: str) -> None:
        for out in self.outputs.values():
            out.value = f"<span style='color:#b00020'>{_esc(message)}</span>"


class SettingsPanel:
    """Voice, turn detection and instructions, applied to the live session with `session.update`."""

    def __init__(self, apply: Callable[[dict[str, Any]], None], config: Any, mic: Any = None) -> None:
        td = getattr(config, "turn_detection", None) or {}
        td_type = td.get("type", "none") if isinstance(td, dict) else "none"
        voice = getattr(config, "voice", None) or "marin"
        self.voice = W.Dropdown(options=sorted(set(VOICES) | {voice}), value=voice, description="Voice")
        self.turn_type = W.Dropdown(
            options=_TURN_TYPES, value=td_type if td_type in _TURN_TYPES else "none", description="Turns"
        )
        self.threshold = W.BoundedFloatText(
            value=float(td.get("threshold", 0.5) if isinstance(td, dict) else 0.5),
            min=0.0,
            max=1.0,
            step=0.05,
            description="Threshold",
        )
        self.silence = W.BoundedIntText(
            value=int(td.get("silence_duration_ms", 500) if isinstance(td, dict) else 500),
            min=0,
            max=10_000,
            description="Silence ms",
        )
        self.padding = W.BoundedIntText(
            value=int(td.get("prefix_padding_ms", 300) if isinstance(td, dict) else 300),
            min=0,
            max=10_000,
            description="Padding ms",
        )
        self.instructions = W.Textarea(
            value=str(getattr(config, "instructions", "") or ""),
            description="Instructions",
            layout=W.Layout(width="100%", height="200px"),
        )
        self.apply_button = W.Button(
            description="Apply settings", tooltip="Send session.update with these settings"
        )
        self.message = W.HTML()
        self._apply = apply
        self.apply_button.on_click(lambda _b: self.apply())
        rows = [
            W.HBox([self.voice, self.turn_type]),
            W.HBox([self.threshold, self.silence, self.padding]),
            self.instructions,
            W.HBox([self.apply_button, self.message]),
        ]
        if mic is not None:
            rows.append(self._mic_row(mic))
        self.widget = W.VBox(rows)

    def _mic_row(self, mic: Any) -> Any:
        """The browser's voice processing, linked to the Microphone's traits (no session.update)."""
        from traitlets import link

        self.auto_gain = W.Checkbox(value=mic.auto_gain, description="Auto gain", indent=False)
        self.echo_cancellation = W.Checkbox(
            value=mic.echo_cancellation, description="Echo cancellation", indent=False
        )
        self.noise_suppression = W.Checkbox(
            value=mic.noise_suppression, description="Noise suppression", indent=False
        )
        self.settle = W.BoundedIntText(
            value=mic.settle_ms,
            min=0,
            max=3000,
            step=100,
            description="Settle ms",
            tooltip="After the mic opens, send this long as silence while auto gain settles",
        )
        self._links = [
            link((self.auto_gain, "value"), (mic, "auto_gain")),
            link((self.echo_cancellation, "value"), (mic, "echo_cancellation")),
            link((self.noise_suppression, "value"), (mic, "noise_suppression")),
            link((self.settle, "value"), (mic, "settle_ms")),
        ]
        label = W.HTML("<b>Microphone</b> (the browser's processing; a change re-opens the mic)")
        return W.VBox(
            [label, W.HBox([self.auto_gain, self.echo_cancellation, self.noise_suppression, self.settle])]
        )

    def values(self) -> dict[str, Any]:
        if self.turn_type.value == "none":
            turn: dict[str, Any] | None = None
        elif self.turn_type.value == "semantic_vad":
            turn = {"type": "semantic_vad"}
        else:
            turn = {
                "type": "server_vad",
                "threshold": float(self.threshold.value),
                "silence_duration_ms": int(self.silence.value),
                "prefix_padding_ms": int(self.padding.value),
            }
        return {"voice": self.voice.value, "turn_detection": turn, "instructions": self.instructions.value}

    def apply(self) -> None:
        try:
            self._apply(self.values())
        except (VoicelabError, ValueError) as exc:
            self.message.value = f"<span style='color:#b00020'>{_esc(exc)}</span>"
            return
        self.message.value = "applied"


def save_path(path: str | Path) -> Path:
    return Path(path).expanduser()


__all__ = [
    "VOICES",
    "SettingsPanel",
    "StubsPanel",
    "TablesPanel",
    "TranscriptPanel",
    "parse_answer",
    "schema_skeleton",
]
