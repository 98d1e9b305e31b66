"""`ConnectionPair`: the client protocol against the embedded server's engine, in memory, on a clock you move.

    from voicelab.testing import ConnectionPair

    pair = ConnectionPair(voicelab.SessionConfig(output_modalities=["text"]), script="returns_desk")
    pair.client.send_text("I'd like to return my order")
    pair.run_until_idle()                    # the engine's paced events, on the pair's clock (no waiting)
    pair.types()                             # the app events the client saw, in order
    pair.sent("response.create")             # what the client sent; pair.server_events: what the engine sent

No socket, no event loop, no wall clock: `voicelab.protocol.client.ClientProtocol` (what a `voicelab.Session`
drives) talks to `voicelab.server.Engine` (what `voicelab.serve()` drives) through two in-memory queues, as
JSON text, and the clock only moves with `advance(ms)` / `run_until_idle()`. Runs are deterministic (server
ids from `seed`), so a test can assert exact event sequences. Like h11's `ConnectionPair` and the Agents SDK's
scripted model: what voicelab's own tests use, users can use too.

Delivery: a client command's events reach the engine at once, and everything the engine answers reaches the
client before the command returns (a zero-latency wire; the client's sends go first); inside
`with pair.batch():` they wait for the end of the block (commands sent before any answer arrives). Paced
events (audio at `pace="realtime"`, server VAD's turn ends) come out when the clock passes their time. An
agent gives its session configuration only: its runtime (tools, guardrails, handoffs) runs in a
`voicelab.Session`; answer calls here with `pair.client.send_function_output(...)`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from voicelab.audio.core import Audio
from voicelab.checks import checked_class, flag, number, one_of, text, whole
from voicelab.config import SessionConfig
from voicelab.errors import ConfigError
from voicelab.events import AppEvent
from voicelab.playback import PlaybackTracker
from voicelab.protocol.client import ClientProtocol
from voicelab.protocol.conversation import Conversation, Item
from voicelab.protocol.events import dumps_event
from voicelab.server.brains import Brain
from voicelab.server.engine import Engine
from voicelab.server.responses import Pace
from voicelab.server.services import EngineServices

MAX_ADVANCE_MS = 86_400_000  # a day of session clock in one call
MAX_STEPS = 100_000  # engine wake-ups one run_until_idle/advance may take before it is called a loop


class PairClient:
    """The client side of a `ConnectionPair`: the `voicelab.Session` commands, synchronous. Each sends its
    events to the engine and returns once the engine's answers reached the client."""

    def __init__(self, pair: ConnectionPair) -> None:
        self._pair = pair
        self.protocol: ClientProtocol = pair.protocol

    @property
    def config(self) -> SessionConfig:
        return self.protocol.config

    @property
    def conversation(self) -> Conversation:
        return self.protocol.conversation

    @property
    def history(self) -> list[Item]:
        return self.protocol.conversation.items

    @property
    def responding(self) -> bool:
        return self.protocol.responding

    def send_text(self, text: str, respond: bool = True) -> None:
        flag(respond, "respond", where="send_text")
        self._pair.send(self.protocol.text_item(text))
        if respond:
            self.create_response()

    def send_function_output(self, call_id: str, output: Any, respond: bool = True) -> None:
        flag(respond, "respond", where="send_function_output")
        self._pair.send(self.protocol.function_output_item(call_id, output))
        if respond:
            self.create_response()

    def create_item(self, item: dict[str, Any], previous_item_id: str | None = None) -> None:
        self._pair.send(self.protocol.create_item(item, previous_item_id))

    def delete_item(self, item_id: str) -> None:
        self._pair.send(self.protocol.delete_item(item_id))

    def create_response(self, **params: Any) -> None:
        self._pair.send(self.protocol.create_response(**params))

    def cancel_response(self, response_id: str | None = None) -> None:
        self._pair.send(self.protocol.cancel_response(response_id))

    def update(self, config: SessionConfig | dict[str, Any]) -> None:
        self._pair.send(self.protocol.update(config))

    def send_event(self, event: dict[str, Any]) -> None:
        self._pair.send(self.protocol.send_event(event))

    def commit(self) -> None:
        for event, _pcm in self.protocol.input_tail():
            self._pair.send([event])
        self._pair.send(self.protocol.commit())

    def clear_input(self) -> None:
        self._pair.send(self.protocol.clear_input())

    def send_audio(
        self, audio: Audio | np.ndarray | bytes, rate: int | None = None, commit: bool = False
    ) -> None:
        """Append audio in ~100 ms events, all at the current time (move the clock between calls to stream
        it in real time)."""
        flag(commit, "commit", where="send_audio")
        for event, _pcm in self.protocol.audio_appends(audio, rate, last=commit):
            self._pair.send([event])
        if commit:
            self.commit()

    def interrupt(self) -> float | None:
        """audio_interrupted + truncate at what the playback tracker says was played (on the pair's clock),
        then a cancel when a response is active. Returns the played ms (None: nothing was playing)."""
        played = self.cut_playback()
        self._pair.send(self.protocol.interrupt_cancel())
        return played

    def cut_playback(self) -> float | None:
        cut = self.protocol.cut_playback(self.protocol.playback.state())
        self._pair.events.extend(cut.events)
        self._pair.send(cut.send)
        return cut.played_ms


@checked_class
class ConnectionPair:
    """A `ClientProtocol` wired to an `Engine` (see the module docstring).

    `agent_or_config`: a SessionConfig, a dict of session fields, a voicelab.Agent (its configuration) or
    None. `script`: a bundled script name (default "returns_desk"), a path or a dict; or `brain=` any Brain.
    `pace`: "fast" (every response event at once) or "realtime" (audio paced on the pair's clock).
    `playback`: the client's tracker (default: one on the pair's clock, so `advance()` plays audio).
    """

    def __init__(
        self,
        agent_or_config: Any = None,
        *,
        script: str | Path | dict[str, Any] | None = None,
        brain: Brain | None = None,
        pace: Pace = "fast",
        services: EngineServices | None = None,
        playback: PlaybackTracker | None = None,
        seed: int | None = 0,
    ) -> None:
        from voicelab.session import config_of

        config, _agent = config_of(agent_or_config, caller="voicelab.testing.ConnectionPair")
        one_of(pace, "pace", ("fast", "realtime"), where="ConnectionPair")
        if services is not None and not isinstance(services, EngineServices):
            raise ConfigError(
                f"services must be a voicelab.server.EngineServices (e.g. EngineServices.default()), got "
                f"{type(services).__name__}."
            )
        if seed is not None:
            whole(seed, "seed", example=0, where="ConnectionPair (None: random)")
        if brain is not None and script is not None:
            raise ConfigError("pass either script= or brain= to ConnectionPair, not both.")
        if brain is None:
            from voicelab.server.app import resolve_script

            brain = resolve_script(script)
        elif not hasattr(brain, "reply"):
            raise ConfigError(
                f"brain must be a voicelab.server Brain (with reply()), got {type(brain).__name__}; or pass "
                "script=."
            )
        if playback is not None and not isinstance(playback, PlaybackTracker):
            raise ConfigError(f"playback must be a voicelab PlaybackTracker, got {type(playback).__name__}.")
        self.now_ms = 0.0
        self.playback = playback or PlaybackTracker(clock=lambda: self.now_ms / 1000.0)
        self.protocol = ClientProtocol(config, playback=self.playback)
        self.engine = Engine(brain, model=config.model, pace=pace, services=services, seed=seed)
        self.client = PairClient(self)
        self.events: list[AppEvent] = []  # the app events the client saw, in order
        self.server_events: list[dict[str, Any]] = []  # what the engine sent, in order
        self.client_events: list[dict[str, Any]] = []  # what the client sent, in order
        self.closed: tuple[int, str] | None = None  # the engine's close (code, reason), once it closed
        self._to_server: list[str] = []
        self._to_client: list[dict[str, Any]] = []
        self._held = 0  # inside batch(): nothing is delivered yet
        self._to_client.extend(self.engine.start(self.now_ms))
        self.protocol.connection_open()
        self.send(self.protocol.session_update())

    def __repr__(self) -> str:
        return (
            f"ConnectionPair(t={self.now_ms:g} ms, events={len(self.events)}, "
            f"server_events={len(self.server_events)}, client_events={len(self.client_events)}, "
            f"closed={self.closed})"
        )

    # -- the wire ------------------------------------------------------------------------------------
    def send(self, events: list[dict[str, Any]]) -> None:
        """Put client events on the wire (as a Session would send them) and deliver until both sides are
        quiet at the current time."""
        for event in events:
            self.client_events.append(event)
            self._to_server.append(dumps_event(event))
        self._pump()

    def receive(self, *server_events: dict[str, Any] | str) -> list[AppEvent]:
        """Hand the client server frames directly (dicts or raw text, e.g. a malformed one); returns the app
        events they gave. The engine does not see them."""
        for index, frame in enumerate(server_events):
            if not isinstance(frame, (dict, str)):
                raise ConfigError(
                    f"receive() takes server events as dicts or raw text frames; argument {index} is a "
                    f"{type(frame).__name__}"
                )
        before = len(self.events)
        for frame in server_events:
            self._deliver(frame)
        self._pump()
        return self.events[before:]

    @contextlib.contextmanager
    def batch(self) -> Iterator[ConnectionPair]:
        """Hold delivery: the client's commands inside the block reach the engine only when it ends, as if
        all were sent before any answer arrived (e.g. a second response.create while the first is in
        flight)."""
        self._held += 1
        try:
            yield self
        finally:
            self._held -= 1
            if not self._held:
                self._pump()

    def _pump(self) -> None:
        if self._held:
            return
        while self._to_server or self._to_client:
            if self._to_server and self.closed is None:
                text = self._to_server.pop(0)
                self._to_client.extend(self.engine.receive(text, self.now_ms))
                if self.engine.closed is not None:
                    self.closed = self.engine.closed
                continue
            self._to_server.clear()  # a closed engine reads nothing more
            if self._to_client:
                event = self._to_client.pop(0)
                self.server_events.append(event)
                self._deliver(event)
        if self.closed is not None:
            self.protocol.connection_closed()

    def _deliver(self, frame: dict[str, Any] | str) -> None:
        protocol = self.protocol
        text = frame if isinstance(frame, str) else json.dumps(frame)
        self.events.extend(protocol.receive(text, self.now_ms))
        if protocol.barge_in:  # the pair's player stops at once: truncate at the tracker's figure
            protocol.barge_in = False
            cut = protocol.cut_playback(protocol.playback.state())
            self.events.extend(cut.events)
            self._queue(cut.send + protocol.barge_in_cancel())
        self._queue(protocol.events_to_send())

    def _queue(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.client_events.append(event)
            self._to_server.append(dumps_event(event))

    # -- the clock -----------------------------------------------------------------------------------
    def advance(self, ms: float) -> list[AppEvent]:
        """Move the clock `ms` forward, waking the engine at each of its deadlines on the way; returns the app
        events the client saw meanwhile."""
        if not isinstance(ms, (int, float)) or isinstance(ms, bool) or not ms >= 0:
            raise ConfigError(f"advance() takes a number of ms >= 0, got {ms!r}.")
        number(ms, "ms", lo=0, hi=MAX_ADVANCE_MS, unit="ms", example=700, where="ConnectionPair.advance")
        before = len(self.events)
        self._run(self.now_ms + float(ms))
        return self.events[before:]

    def run_until_idle(self, max_ms: float = 600_000.0) -> list[AppEvent]:
        """Advance to each of the engine's deadlines until it has none (a response fully sent, nothing
        pending); returns the app events the client saw meanwhile. ConfigError when the engine is still busy
        `max_ms` after the current time (e.g. server VAD's idle timeout keeps re-arming)."""
        number(max_ms, "max_ms", lo=0, lo_open=True, hi=MAX_ADVANCE_MS, unit="ms", where="run_until_idle")
        before = len(self.events)
        limit = self.now_ms + max_ms
        self._run(limit, stop_when_idle=True)
        due = self.engine.next_deadline()
        if self.closed is None and due is not None:
            raise ConfigError(
                f"the engine still has work {max_ms:g} ms later (next at {due:g} ms); call advance(ms) for a "
                "bounded step, or raise max_ms."
            )
        return self.events[before:]

    def _run(self, until_ms: float, stop_when_idle: bool = False) -> None:
        self._pump()
        for _ in range(MAX_STEPS):
            if self.closed is not None:
                break
            due = self.engine.next_deadline()
            if due is None or due > until_ms:
                break
            self.now_ms = max(self.now_ms, due)
            self._to_client.extend(self.engine.advance(self.now_ms))
            if self.engine.closed is not None:
                self.closed = self.engine.closed
            self._pump()
        else:
            raise ConfigError(
                f"the engine woke {MAX_STEPS} times without going idle at {self.now_ms:g} ms; it is looping."
            )
        if not stop_when_idle:
            self.now_ms = max(self.now_ms, until_ms)

    # -- reading what happened -------------------------------------------------------------------------
    def types(self) -> list[str]:
        """The app events' types, in order."""
        return [event.type for event in self.events]

    def sent(self, event_type: str) -> list[dict[str, Any]]:
        """The client events of one type, in order."""
        text(event_type, "event_type", example="response.create", where="ConnectionPair.sent")
        return [event for event in self.client_events if event["type"] == event_type]


__all__ = ["MAX_STEPS", "ConnectionPair", "PairClient"]
