"""App events of the agent runtime (recorded with `dir: "app"`; types as in the recording format)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from voicelab.events import AppEvent


@dataclass(frozen=True)
class ToolStart(AppEvent):
    """A tool call is about to be answered (by a stub, the implementation, or after approval)."""

    type: ClassVar[str] = "tool_start"
    call_id: str
    name: str
    arguments: str
    agent: str


@dataclass(frozen=True)
class ToolCall(AppEvent):
    """A tool call was answered: `output` went to the model (an error text when `error` is set).

    stub_kind: None (the implementation ran) or fixed/template/callable/sequence/recorded/manual.
    approval: None (not needed) or approved/rejected/always_approved/always_rejected.
    started_ms/duration_ms: the session clock (the recording's t_ms; `AgentRuntime.now_ms()`) from the call's
    arrival to the output being sent.
    """

    type: ClassVar[str] = "tool_call"
    call_id: str
    name: str
    arguments: str
    output: str
    stub_kind: str | None = None
    approval: str | None = None
    started_ms: float = 0.0
    duration_ms: float = 0.0
    error: str | None = None
    agent: str | None = None


@dataclass(frozen=True)
class ToolApprovalRequired(AppEvent):
    """A tool needs approval: call `event.approve()` or `event.reject(message)` (or the runtime's methods)."""

    type: ClassVar[str] = "tool_approval_required"
    call_id: str
    name: str
    arguments: str
    runtime: Any = field(default=None, repr=False, compare=False)

    def approve(self, *, always: bool = False) -> None:
        self.runtime.approve(self.call_id, always=always)

    def reject(self, message: str | None = None, *, always: bool = False) -> None:
        self.runtime.reject(self.call_id, message, always=always)

    def to_record(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class GuardrailTripped(AppEvent):
    """An output guardrail cut a response. `guardrail` names the guardrails that tripped (comma-separated),
    `text` is the transcript checked, `played_ms` the audio of the item the user heard, `follow_up` the
    message sent to the model afterwards (None: none was sent). `response_finished` is True when the whole
    reply had arrived before the trip: nothing was left to cancel (no error), playback was still cut.
    `note` says why no follow-up was sent when one was configured (MAX_GUARDRAIL_FOLLOW_UPS in a row)."""

    type: ClassVar[str] = "guardrail_tripped"
    guardrail: str
    item_id: str
    text: str
    played_ms: float | None
    follow_up: str | None
    response_id: str | None = None
    info: Any = None
    response_finished: bool = False  # the whole reply had arrived: playback was cut, nothing was cancelled
    note: str | None = None  # why no follow-up was sent when one was configured (the follow-up cap)


@dataclass(frozen=True)
class AgentHandoff(AppEvent):
    """The session moved from one agent to another (recorded as `handoff`)."""

    type: ClassVar[str] = "handoff"
    from_agent: str
    to_agent: str
    call_id: str | None = None
    arguments: str | None = None


__all__ = ["AgentHandoff", "GuardrailTripped", "ToolApprovalRequired", "ToolCall", "ToolStart"]
