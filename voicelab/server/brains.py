"""Brains decide what the embedded server answers. None of them is a language model.

A brain gets a `BrainInput` (the latest user text or transcript, or the latest function output,
plus the session
instructions and declared tools) and returns a `Say` (text to speak or send) or a `Call` (a function call).

Your own brain (any object with `phrases` and `reply`) may be slow: `reply` may block (it runs in a worker
thread of the server, possibly several sessions' at once) or be `async def` (awaited on the server's event
loop, so it must await rather than block). The server never runs it on its event loop thread; an exception
from it ends that response `failed`. The bundled brains below answer in microseconds and run inline.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from voicelab.errors import ScriptError
from voicelab.server.script import (
    MAX_INSTRUCTIONS_MATCH_CHARS,
    MAX_MATCH_CHARS,
    Rule,
    Script,
    fill,
    fill_arguments,
    load_script,
)


@dataclass(frozen=True)
class Say:
    """Answer with this text (spoken when the response has audio output)."""

    text: str


@dataclass(frozen=True)
class Call:
    """Answer with a function call. `note` is handed back in `BrainInput.call_note` with the call's output."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    note: Any = None


Reply = Say | Call


@dataclass(frozen=True)
class BrainInput:
    """What a brain may look at when a response is requested."""

    user_text: str | None
    instructions: str
    tools: tuple[str, ...] = ()
    function_output: str | None = None  # set when the latest item is a function_call_output
    function_name: str | None = None
    call_note: Any = None
    idle: bool = False  # the response was triggered by idle_timeout_ms
    items: tuple[Mapping[str, Any], ...] = ()


@runtime_checkable
class Brain(Protocol):
    @property
    def phrases(self) -> Sequence[str]:
        """Phrases callers are expected to say (the offline transcription grammar)."""
        ...

    def reply(self, context: BrainInput) -> Reply | Awaitable[Reply]:
        """The answer, or (`async def reply`) an awaitable of it."""
        ...


@dataclass(frozen=True)
class _RuleNote:
    rule: Rule
    groups: Mapping[str, str | None]


class ScriptedBrain:
    """Answers from a script's rules (see `voicelab.server.script` for the format)."""

    def __init__(self, script: Script | str | Path | Mapping[str, Any]) -> None:
        self.script = script if isinstance(script, Script) else load_script(script)

    @property
    def phrases(self) -> Sequence[str]:
        return self.script.phrases

    def _applies(self, rule: Rule, context: BrainInput) -> bool:
        instructions = context.instructions[:MAX_INSTRUCTIONS_MATCH_CHARS]
        if rule.instructions is not None and not rule.instructions.search(instructions):
            return False
        return rule.call_name is None or rule.call_name in context.tools

    def reply(self, context: BrainInput) -> Reply:
        if context.function_output is not None:
            note = context.call_note
            if isinstance(note, _RuleNote) and note.rule.say is not None:
                return Say(fill(note.rule.say, note.groups, context.function_output))
            handoff = (context.function_name or "").startswith("transfer_to_")
            if not handoff:
                return Say(context.function_output)
            # a handoff rule without `say`: the new agent answers the caller's last words with its own rules
        if context.idle:
            return Say(self.script.idle or self.script.fallback)
        text = (context.user_text or "")[:MAX_MATCH_CHARS]
        for rule in self.script.rules:
            if not self._applies(rule, context):
                continue
            match = rule.match.search(text)
            if match is None:
                continue
            groups = {name: (value or "").strip() for name, value in match.groupdict().items()}
            if rule.call_name is not None:
                return Call(
                    rule.call_name, fill_arguments(dict(rule.call_arguments), groups), _RuleNote(rule, groups)
                )
            assert rule.say is not None
            return Say(fill(rule.say, groups))
        return Say(self.script.fallback)


class EchoBrain:
    """Says back what the user said (their text, or the transcript of their audio)."""

    def __init__(self, phrases: Iterable[str] = ()) -> None:
        self._phrases = list(phrases)

    @property
    def phrases(self) -> Sequence[str]:
        return self._phrases

    def reply(self, context: BrainInput) -> Reply:
        if context.function_output is not None:
            return Say(context.function_output)
        if context.user_text:
            return Say(context.user_text)
        return Say("I did not catch that; the echo brain could not transcribe your audio.")


class ReplayBrain:
    """Replays a recorded session's assistant turns, one per response, in order.

    Minimal version: the recording's `response.done` events give the replies (a message's transcript or text,
    or a function call); what the user says is not matched against the recording.
    """

    def __init__(
        self, replies: Sequence[Reply], phrases: Iterable[str] = (), exhausted: str | None = None
    ) -> None:
        self._replies = list(replies)
        self._next = 0
        self._phrases = list(phrases)
        self.exhausted = exhausted or "The recording has no more assistant turns to replay."

    @property
    def phrases(self) -> Sequence[str]:
        return self._phrases

    @property
    def remaining(self) -> int:
        return len(self._replies) - self._next

    def reply(self, context: BrainInput) -> Reply:
        if self._next >= len(self._replies):
            return Say(self.exhausted)
        reply = self._replies[self._next]
        self._next += 1
        return reply

    @classmethod
    def from_recording(cls, path: str | Path) -> ReplayBrain:
        """Read `events.jsonl` of a recording folder (or the file itself)."""
        path = Path(path)
        events_path = path / "events.jsonl" if path.is_dir() else path
        try:
            lines = events_path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ScriptError(
                f"{events_path}: cannot read the recording ({exc.strerror}). Pass a recording folder."
            ) from None
        replies: list[Reply] = []
        phrases: list[str] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise ScriptError(
                    f"{events_path}, line {number}: not JSON. The recording is damaged; remove that line."
                ) from None
            if record.get("dir") != "server":
                continue
            event = record.get("event") or {}
            if event.get("type") == "conversation.item.input_audio_transcription.completed":
                if event.get("transcript"):
                    phrases.append(event["transcript"])
            elif event.get("type") == "response.done":
                reply = _reply_of(event.get("response") or {})
                if reply is not None:
                    replies.append(reply)
        return cls(replies, phrases)


def _reply_of(response: Mapping[str, Any]) -> Reply | None:
    for item in response.get("output") or []:
        if item.get("type") == "function_call":
            try:
                arguments = json.loads(item.get("arguments") or "{}")
            except json.JSONDecodeError:
                arguments = {}
            return Call(item.get("name", ""), arguments if isinstance(arguments, dict) else {})
    texts = [
        part.get("transcript") or part.get("text") or ""
        for item in response.get("output") or []
        if item.get("type") == "message"
        for part in item.get("content") or []
    ]
    text = " ".join(t for t in texts if t)
    return Say(text) if text else None
