"""The player widget: streams the assistant's 24 kHz PCM16 to the browser as binary buffers (batched by the
caller of `flush()`), and takes the browser's `{item_id, played_ms}` reports, which feed
`session.playback.on_played` so barge-in truncates at what was really heard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anywidget
import traitlets

from voicelab.widgets._esm import esm


@dataclass
class PlayerStats:
    sent_bytes: int = 0
    messages: int = 0
    reports: int = 0
    underruns: int = 0
    flushes: int = 0
    played: dict[str, float] = field(default_factory=dict)  # item_id -> latest played_ms
    non_monotonic: int = 0  # reports that went backwards for an item (should stay 0)
    past_received: int = 0  # reports past what was sent for the item (should stay 0)
    log: list[tuple[str, float, float | None, bool]] = field(default_factory=list)
    # (item_id, played_ms, the browser's audio clock in s, final), the last 5000 reports


class Player(anywidget.AnyWidget):
    """Streaming playback in the browser: `push(item_id, pcm)` queues, `flush()` sends a message per item."""

    _esm = esm("player", with_audio=True)
    _css = ".voicelab-player .vl-player { font-size: 12px; color: #555; }"
    jitter_ms = traitlets.Int(80).tag(sync=True)
    report_ms = traitlets.Int(100).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stats = PlayerStats()
        self._queued: dict[str, list[bytes]] = {}
        self._ended: list[str] = []
        self._sent_ms: dict[str, float] = {}
        self._played_handlers: list[Callable[[str, float, dict[str, Any]], None]] = []
        self.on_msg(self._on_custom)

    def on_played(self, handler: Callable[[str, float, dict[str, Any]], None]) -> None:
        """Call `handler(item_id, played_ms, report)` for every report from the browser."""
        self._played_handlers.append(handler)

    def push(self, item_id: str, pcm: bytes) -> None:
        """Queue PCM16 24 kHz audio of `item_id` for the next flush."""
        if pcm:
            self._queued.setdefault(item_id, []).append(pcm)

    def end(self, item_id: str) -> None:
        """The item's audio is complete (the jitter buffer need not wait for more)."""
        self._ended.append(item_id)

    @property
    def pending(self) -> bool:
        return bool(self._queued or self._ended)

    def flush(self) -> int:
        """Send what is queued: one message per item (plus one per ended item). Returns messages sent."""
        sent = 0
        queued, self._queued = self._queued, {}
        for item_id, chunks in queued.items():
            data = b"".join(chunks)
            self.send({"type": "audio", "item_id": item_id, "bytes": len(data)}, buffers=[data])
            self._sent_ms[item_id] = self._sent_ms.get(item_id, 0.0) + len(data) / 48.0
            self.stats.sent_bytes += len(data)
            sent += 1
        ended, self._ended = self._ended, []
        for item_id in ended:
            self.send({"type": "end", "item_id": item_id})
            sent += 1
        self.stats.messages += sent
        return sent

    def interrupt(self) -> None:
        """Stop at once: drop what is queued here and in the browser."""
        self._queued.clear()
        self._ended.clear()
        self.send({"type": "flush"})
        self.stats.flushes += 1
        self.stats.messages += 1

    def _on_custom(self, _widget: Any, content: Any, _buffers: list[Any]) -> None:
        if not isinstance(content, dict) or content.get("type") != "played":
            return
        item_id = str(content.get("item_id") or "")
        try:
            played = float(content.get("played_ms") or 0.0)
        except (TypeError, ValueError):
            return
        stats = self.stats
        stats.reports += 1
        stats.underruns = int(content.get("underruns") or 0)
        if played + 0.5 < stats.played.get(item_id, 0.0):
            stats.non_monotonic += 1
        if played > self._sent_ms.get(item_id, 0.0) + 0.5:
            stats.past_received += 1
        stats.played[item_id] = max(played, stats.played.get(item_id, 0.0))
        clock = content.get("audio_time")
        audio_clock = float(clock) if isinstance(clock, (int, float)) else None
        stats.log.append((item_id, played, audio_clock, bool(content.get("final"))))
        del stats.log[:-5000]
        for handler in list(self._played_handlers):
            handler(item_id, played, content)

    def __repr__(self) -> str:
        return f"Player(items={len(self._sent_ms)}, underruns={self.stats.underruns})"


__all__ = ["Player", "PlayerStats"]
