"""Human approval of tool calls: pending decisions per call id, and "always" decisions per tool name."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from voicelab.errors import ConfigError

DEFAULT_REJECTION_MESSAGE = "Tool execution was not approved."
"""What the model is told when a call is rejected without a message (the Agents SDK's text)."""

ApprovalStatus = Literal["approved", "rejected", "always_approved", "always_rejected"]


@dataclass(frozen=True)
class Decision:
    approved: bool
    status: ApprovalStatus
    message: str | None = None


class Approvals:
    """Waits for approve/reject decisions. `always=True` decides for the tool for the rest of the session."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[str, asyncio.Future[Decision]]] = {}
        self._always: dict[str, Decision] = {}

    def standing(self, name: str) -> Decision | None:
        """The "always" decision for a tool, if one was given."""
        return self._always.get(name)

    async def wait(self, call_id: str, name: str) -> Decision:
        """Wait for the decision on one call (registered before the app hears of it)."""
        future = self.register(call_id, name)
        try:
            return await future
        finally:
            self.discard(call_id)

    def register(self, call_id: str, name: str) -> asyncio.Future[Decision]:
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = (name, future)
        return future

    def discard(self, call_id: str) -> None:
        """Forget a call's pending entry (its decision arrived, or the call was abandoned)."""
        self._pending.pop(call_id, None)

    def pending(self) -> dict[str, str]:
        """call_id -> tool name of calls waiting for a decision."""
        return {call_id: name for call_id, (name, _) in self._pending.items()}

    def approve(self, call_id: str, *, always: bool = False) -> None:
        self._decide(call_id, Decision(True, "always_approved" if always else "approved"), always)

    def reject(self, call_id: str, message: str | None = None, *, always: bool = False) -> None:
        status: ApprovalStatus = "always_rejected" if always else "rejected"
        self._decide(call_id, Decision(False, status, message or DEFAULT_REJECTION_MESSAGE), always)

    def _decide(self, call_id: str, decision: Decision, always: bool) -> None:
        entry = self._pending.get(call_id)
        if entry is None:
            waiting = ", ".join(self._pending) or "none"
            raise ConfigError(f"no tool call {call_id!r} is waiting for approval (waiting: {waiting})")
        name, future = entry
        if always:
            self._always[name] = decision
        if not future.done():
            future.get_loop().call_soon_threadsafe(_settle, future, decision)


def _settle(future: asyncio.Future[Decision], decision: Decision) -> None:
    if not future.done():
        future.set_result(decision)


__all__ = ["DEFAULT_REJECTION_MESSAGE", "ApprovalStatus", "Approvals", "Decision"]
