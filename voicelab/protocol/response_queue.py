"""The client's response bookkeeping, sans-I/O: which `response.create` may go out now, which wait, and which
server `error` answers one of them (issue 8, thin core).

    queue = ResponseQueue()
    event = queue.request(create, active)  # the create to send now (marked in flight), or None: queued
    queue.unsent()                         # that send raised: nothing is in flight
    queue.on_created()                     # response.created (queue.on_done() for response.done)
    queue.refused(error)                   # an `error` event: True when it answers the create in flight
    event = queue.next_to_send(active)     # after response.done or a refused create: the next queued one

Only creates for the default conversation queue (`conversation: "none"` ones go straight out). A create is in
flight from its send until `response.created` or an `error` whose `event_id` is the create's (or, from a
server that does not echo ids, an error whose `param` starts with "response"). Cancels the session sent are
remembered so that `response_cancel_not_active` answering one (the response ended first) is a race, not an
error.
"""

from __future__ import annotations

from collections import deque
from typing import Any

CANCELS_REMEMBERED = 64


class ResponseQueue:
    """See the module docstring. No I/O, no clock: the session calls it and sends what it returns."""

    def __init__(self) -> None:
        self.awaiting_created = False  # a create was sent and neither response.created nor its error came
        self.awaiting_id: str | None = None
        self.queued: deque[dict[str, Any]] = deque()
        self._cancels: deque[str] = deque(maxlen=CANCELS_REMEMBERED)

    def busy(self, active: bool) -> bool:
        """Whether a new create must wait: a response is active (`active`) or a create is in flight."""
        return active or self.awaiting_created

    def pending(self, active: bool) -> bool:
        """Whether anything is active, in flight or queued (the session's `responding`)."""
        return self.busy(active) or bool(self.queued)

    def request(self, event: dict[str, Any], active: bool) -> dict[str, Any] | None:
        """A response.create for the default conversation: the event to send now, or None (queued)."""
        if self.busy(active):
            self.queued.append(event)
            return None
        self.sent(event)
        return event

    def sent(self, event: dict[str, Any]) -> None:
        """`event` (a response.create) is going out: in flight until response.created or its error."""
        self.awaiting_created = True
        self.awaiting_id = event.get("event_id")

    def unsent(self) -> None:
        """The send of the create in flight failed: nothing is in flight."""
        self.awaiting_created = False
        self.awaiting_id = None

    def on_created(self) -> None:
        self.awaiting_created = False
        self.awaiting_id = None

    def on_done(self) -> None:
        self.awaiting_created = False
        self.awaiting_id = None

    def next_to_send(self, active: bool) -> dict[str, Any] | None:
        """The queued create to send now that the last response ended or was refused (marked in flight), or
        None."""
        if not self.queued or self.busy(active):
            return None
        event = self.queued.popleft()
        self.sent(event)
        return event

    def refused(self, error: dict[str, Any]) -> bool:
        """Whether a server error answers the create in flight; if so nothing is in flight any more."""
        if not self.awaiting_created:
            return False
        if error.get("code") == "conversation_already_has_active_response":
            answered = True
        elif error.get("event_id") is not None:
            answered = error.get("event_id") == self.awaiting_id
        else:
            answered = str(error.get("param") or "").startswith("response")
        if answered:
            self.unsent()
        return answered

    def clear(self) -> None:
        """Drop the queued creates (a cancel or an interruption: what was asked for is no longer wanted)."""
        self.queued.clear()

    def cancel_sent(self, event_id: str) -> None:
        self._cancels.append(event_id)

    def raced_cancel(self, error: dict[str, Any]) -> bool:
        """Whether an error is `response_cancel_not_active` answering a cancel this session sent: the response
        ended before the cancel arrived, which is no mistake."""
        return error.get("code") == "response_cancel_not_active" and error.get("event_id") in self._cancels


__all__ = ["CANCELS_REMEMBERED", "ResponseQueue"]
