"""Where local playback of assistant audio is, so an interruption truncates at what the user heard.

The default is a wall clock: playback is assumed to start with the item's first audio delta and run in real
time, never past the audio received. A real player (a notebook widget, a sound device) calls
`on_played(item_id, ms)` instead; from then on the tracker trusts those reports.

A tracker may also have `async def stop() -> float | None`: the session calls it at a barge-in, before it
truncates, so a player that can stop and report what was really heard (the cockpit's) gives the exact
truncation point rather than its last periodic report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PlaybackState:
    item_id: str
    content_index: int
    played_ms: float
    received_ms: float

    @property
    def finished(self) -> bool:
        """True when everything received has been played."""
        return self.played_ms >= self.received_ms


class PlaybackTracker:
    """Tracks the current assistant audio item: received ms (from the session) and played ms."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._item_id: str | None = None
        self._content_index = 0
        self._received_ms = 0.0
        self._started_at: float | None = None
        self._played_ms: float | None = None  # reported by a player; None: use the wall clock

    def on_audio(self, item_id: str, content_index: int, ms: float) -> None:
        """Called by the session for every audio delta of `ms` milliseconds."""
        if item_id != self._item_id:
            self._item_id, self._content_index = item_id, content_index
            self._received_ms = 0.0
            self._started_at = self._clock()
            self._played_ms = None
        self._received_ms += ms

    def on_played(self, item_id: str, ms: float) -> None:
        """A player reports that `ms` of `item_id` have been heard (absolute, not incremental)."""
        if item_id == self._item_id:
            self._played_ms = max(0.0, float(ms))

    def state(self) -> PlaybackState | None:
        """The current item and how much of it was played (clamped to what was received), or None."""
        if self._item_id is None:
            return None
        if self._played_ms is not None:
            played = self._played_ms
        else:
            played = (self._clock() - (self._started_at or 0.0)) * 1000.0
        return PlaybackState(
            self._item_id, self._content_index, min(played, self._received_ms), self._received_ms
        )

    def reset(self) -> None:
        """Forget the current item (after an interruption)."""
        self._item_id = None
        self._received_ms = 0.0
        self._started_at = None
        self._played_ms = None


__all__ = ["PlaybackState", "PlaybackTracker"]
