"""The cockpit's playback tracker: the browser player's reports, and a stop that waits for the player's word.

At a barge-in the session calls `stop()` before it truncates: the player is flushed at once and the tracker
waits (briefly) for its final report, so the item is truncated at what was really heard, not at the last
periodic report (up to 100 ms old) minus the time the flush took to reach the browser. When no report comes
(no browser attached, a closed tab) it extrapolates from the last report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from voicelab.playback import PlaybackTracker

STOP_WAIT_S = 0.4


class PlayerPlayback(PlaybackTracker):
    """Tracks the browser player; `flush` is called to stop it (the Player widget's `interrupt`)."""

    def __init__(self, flush: Callable[[], None], clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self._flush = flush
        self._clock_fn = clock
        self._reported_at: float | None = None
        self._playing = False
        self._final: tuple[str, asyncio.Future[float]] | None = None
        self.confirmed_stops = 0
        self.estimated_stops = 0

    def on_played(self, item_id: str, ms: float, *, final: bool = False) -> None:
        super().on_played(item_id, ms)
        self._reported_at = self._clock_fn()
        self._playing = not final
        waiting = self._final
        if final and waiting is not None and waiting[0] == item_id and not waiting[1].done():
            waiting[1].set_result(float(ms))

    def estimate(self) -> float | None:
        """Played ms now: the last report plus the time since, while the player was playing."""
        state = self.state()
        if state is None:
            return None
        played = state.played_ms
        if self._playing and self._reported_at is not None:
            played += (self._clock_fn() - self._reported_at) * 1000.0
        return min(played, state.received_ms)

    async def stop(self) -> float | None:
        state = self.state()
        if state is None or state.finished:
            return None
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._final = (state.item_id, future)
        try:
            self._flush()
            try:
                heard = await asyncio.wait_for(future, STOP_WAIT_S)
                self.confirmed_stops += 1
                return heard
            except (asyncio.TimeoutError, TimeoutError):
                self.estimated_stops += 1
                return self.estimate()
        finally:
            self._final = None
