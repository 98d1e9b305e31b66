"""A scripted caller: feeds recorded user turns into a live session the way a microphone would.

The microphone never stops: between turns it sends silence, so the server's VAD sees the end of each turn
exactly as it would on a call. The caller speaks its next turn only once the assistant has finished speaking
(its last response is done and its audio has been played out), after a short pause; its first turn too,
when an answer is still arriving or playing as play_turns starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voicelab.audio.core import REALTIME_RATE, Audio
from voicelab.checks import checked, flag, sequence_of
from voicelab.errors import ConfigError, SessionError


@dataclass
class CallerReport:
    """What happened while the caller spoke: one entry per turn, times on the session clock (ms)."""

    turn_started_ms: list[float] = field(default_factory=list)
    responses: int = 0
    events: list[Any] = field(default_factory=list)


class _Listener:
    """Tracks when the assistant is speaking, from the session's app events."""

    def __init__(self, *, instant_playback: bool = False) -> None:
        self.instant_playback = instant_playback  # no real-time player: audio counts as heard on arrival
        self._item_ms: dict[str, float] = {}
        self.active_responses = 0
        self.responses_done = 0
        self.spoken_responses = 0  # responses done that produced audio: an answer the caller heard
        self._audio_in: set[str] = set()
        self.audio_ms = 0.0
        self.first_audio_at: float | None = None
        self.changed = asyncio.Event()
        self.events: list[Any] = []

    async def on_event(self, session: Any, event: Any) -> None:
        kind = getattr(event, "type", "")
        self.events.append(event)
        if kind == "response_started":
            self.active_responses += 1
        elif kind == "response_done":
            self.active_responses = max(0, self.active_responses - 1)
            self.responses_done += 1
            if event.response_id in self._audio_in:
                self.spoken_responses += 1
        elif kind == "audio":
            self._audio_in.add(event.response_id)
            if self.instant_playback:
                played = self._item_ms.get(event.item_id, 0.0) + event.duration_ms
                self._item_ms[event.item_id] = played
                session.playback.on_played(event.item_id, played)
                return
            if self.first_audio_at is None:
                self.first_audio_at = time.monotonic()
            self.audio_ms += len(event.data) / (2 * REALTIME_RATE / 1000)
        elif kind == "audio_interrupted":
            self.first_audio_at = None
            self.audio_ms = 0.0
        self.changed.set()

    def playback_left_s(self) -> float:
        if self.first_audio_at is None:
            return 0.0
        return max(0.0, self.first_audio_at + self.audio_ms / 1000 - time.monotonic())

    def reset_playback(self) -> None:
        self.first_audio_at = None
        self.audio_ms = 0.0


@checked
async def play_turns(
    session: Any,
    turns: Sequence[Audio],
    *,
    chunk_ms: int = 100,
    pause_ms: int = 600,
    tail_ms: int = 1500,
    turn_timeout_s: float = 60.0,
    realtime: bool = True,
    settle_ms: int = 1500,
) -> CallerReport:
    """Speak `turns` into `session` (which should use server VAD), one after another.

    Each turn is streamed in `chunk_ms` chunks at real time, followed by silence until the assistant's
    answer has been played out and `pause_ms` more have passed.
    After the last turn, `tail_ms` of silence lets the last answer finish.

    `realtime=False` sends audio as fast as the session takes it and counts the assistant's audio as heard
    the moment it arrives (it reports it to `session.playback`), for tests and batch runs; after a turn it
    sends `settle_ms` of silence (enough for the VAD to end the turn) and then waits without sending.
    """
    if not all(hasattr(session, name) for name in ("add_listener", "send_audio", "playback")):
        got = f"the class {session.__name__}" if isinstance(session, type) else type(session).__name__
        raise ConfigError(
            f"play_turns needs an open session (from voicelab.connect(...)), got {got}; e.g. "
            "`async with voicelab.connect(agent, url=...) as session: await play_turns(session, turns)`"
        )
    sequence_of(
        turns, "turns", Audio, what="Audio values (one per user turn; read files with voicelab.read_audio)"
    )
    if not turns:
        raise ConfigError(
            "play_turns needs at least one turn: pass a list of Audio values (one per user turn)."
        )
    _check_sizes(chunk_ms, pause_ms, tail_ms, settle_ms, turn_timeout_s)
    flag(realtime, "realtime", where="play_turns")
    listener = _Listener(instant_playback=not realtime)
    session.add_listener(listener)
    report = CallerReport()
    chunk = int(REALTIME_RATE * chunk_ms / 1000)
    silence = Audio.from_array(np.zeros(chunk, dtype=np.float32), REALTIME_RATE)
    clock = _Pacer(chunk_ms, realtime=realtime)
    await _until_quiet(session, listener, clock, silence, realtime, turn_timeout_s)

    for index, turn in enumerate(turns):
        samples = turn.to_realtime().samples
        report.turn_started_ms.append(clock.sent_ms)
        heard_before = listener.spoken_responses
        for start in range(0, len(samples), chunk):
            piece = samples[start : start + chunk]
            await session.send_audio(Audio.from_array(piece, REALTIME_RATE))
            await clock.tick()
        # Keep the microphone open (silence) until the answer to this turn has been heard.
        deadline = time.monotonic() + turn_timeout_s
        silence_sent_ms = 0
        last = index == len(turns) - 1
        while True:
            # A response that only called a tool is not an answer: wait for the one that speaks.
            answered = listener.spoken_responses > heard_before and listener.active_responses == 0
            if answered and listener.playback_left_s() <= 0:
                break
            if time.monotonic() > deadline:
                raise SessionError(
                    f"The assistant did not answer turn {index + 1} within {turn_timeout_s:.0f} s: "
                    "check that the session uses server VAD with create_response, or raise turn_timeout_s."
                )
            if realtime or silence_sent_ms < settle_ms:
                await session.send_audio(silence)
                await clock.tick()
                silence_sent_ms += chunk_ms
            else:  # fast mode: the VAD has had its silence; wait for the answer without flooding
                listener.changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(listener.changed.wait(), 0.05)
        listener.reset_playback()
        trailing = tail_ms if last else pause_ms
        for _ in range(max(1, trailing // chunk_ms)):
            await session.send_audio(silence)
            await clock.tick()
    report.responses = listener.responses_done
    report.events = listener.events
    return report


MAX_CHUNK_MS = 1000  # one microphone chunk
MAX_WAIT_MS = 600_000  # pauses and tails: ten minutes of silence is already more than any call holds


def _check_sizes(chunk_ms: Any, pause_ms: Any, tail_ms: Any, settle_ms: Any, turn_timeout_s: Any) -> None:
    """ConfigError naming the argument for a size play_turns cannot use (each is bounded: a huge chunk or tail
    would allocate or send silence for hours)."""
    for name, value, low, high in (
        ("chunk_ms", chunk_ms, 1, MAX_CHUNK_MS),
        ("pause_ms", pause_ms, 0, MAX_WAIT_MS),
        ("tail_ms", tail_ms, 0, MAX_WAIT_MS),
        ("settle_ms", settle_ms, 0, MAX_WAIT_MS),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{name} must be a whole number of ms from {low} to {high}, got {value!r}.")
    ok = isinstance(turn_timeout_s, (int, float)) and not isinstance(turn_timeout_s, bool)
    if not ok or not 0 < turn_timeout_s <= 3600:  # (NaN fails the comparison too)
        raise ConfigError(
            f"turn_timeout_s must be seconds, more than 0 and at most 3600, got {turn_timeout_s!r}."
        )


async def _until_quiet(
    session: Any, listener: _Listener, clock: _Pacer, silence: Audio, realtime: bool, timeout_s: float
) -> None:
    """Before the first turn: let an answer that is still arriving or playing finish (a caller does not talk
    over it). Real time: the microphone sends silence meanwhile. Fast: audio counts as heard on arrival, so
    once the response is done what it sent counts as played."""

    def playing() -> bool:
        state = session.playback.state()
        return state is not None and not state.finished

    deadline = time.monotonic() + timeout_s
    while session.responding or playing():
        if time.monotonic() > deadline:
            raise SessionError(
                f"an answer was still playing {timeout_s:.0f} s after play_turns started; wait for it (or "
                "call session.interrupt()) before the caller speaks, or raise turn_timeout_s."
            )
        if not realtime and not session.responding:
            state = session.playback.state()
            if state is not None:
                session.playback.on_played(state.item_id, state.received_ms)
            continue
        if realtime:
            await session.send_audio(silence)
            await clock.tick()
        else:
            listener.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(listener.changed.wait(), 0.05)


class _Pacer:
    """Sleeps so that audio leaves at real time, measured against a start instant (no drift)."""

    def __init__(self, chunk_ms: int, *, realtime: bool) -> None:
        self.period_s = chunk_ms / 1000
        self.realtime = realtime
        self.count = 0
        self.start = time.monotonic()

    @property
    def sent_ms(self) -> float:
        """Audio sent so far, in ms: the position on the input track."""
        return self.count * self.period_s * 1000

    async def tick(self) -> None:
        self.count += 1
        if not self.realtime:
            await asyncio.sleep(0)
            return
        delay = self.start + self.count * self.period_s - time.monotonic()
        await asyncio.sleep(max(0.0, delay))
