"""`voicelab.Lab`: the notebook cockpit. A live session that runs in the background, and its panels.

    lab = voicelab.Lab.local(agent)          # starts the embedded server (no key)
    lab                                      # shows the cockpit; click Connect, speak
    await lab.connect()                      # or from code: returns once the session is open

The kernel handles widget messages and other cells only between cells, so nothing here blocks a cell: the
session's events are pumped by a task on the kernel's event loop, and every action (`connect`,
`disconnect`, `send_text`, `interrupt`, `update`, `play_audio`) starts at once and returns an awaitable
`Pending`. A failure (a refused connection, a session that died) shows in the cockpit and is raised by the
next call.

Kernel -> browser traffic is batched by one ticker: assistant audio at most every 50 ms, the timeline,
event log and transcript at most 4 times a second, the tables every few seconds when something changed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as _dt
import inspect
import secrets
import time
import traceback
from collections import deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np

from voicelab.audio.core import Audio
from voicelab.checks import checked_class, output_folder, unknown_keywords
from voicelab.errors import ConfigError, SessionError, VoicelabError
from voicelab.redact import redact_text
from voicelab.widgets.eventlog import EventLog
from voicelab.widgets.mic import Microphone
from voicelab.widgets.panels import SettingsPanel, StubsPanel, TablesPanel, TranscriptPanel
from voicelab.widgets.playback import PlayerPlayback
from voicelab.widgets.player import Player
from voicelab.widgets.prompt_panel import PromptPanel
from voicelab.widgets.tail import RecordingTail
from voicelab.widgets.timeline import Timeline

AUDIO_FLUSH_S = 0.05
PANEL_S = 0.25
TABLES_S = 3.0
# app events `lab.events` does not keep: each history event holds a copy of the whole history (a long call
# would hold thousands of copies), deltas and raw events are many and small
_NOT_KEPT = frozenset({"history_added", "history_updated", "transcript_delta", "raw_server_event"})
MIC_QUEUE_MAX = 500  # batches (20 s at 40 ms) before the oldest are dropped and counted


class LabError(VoicelabError):
    """The cockpit's session failed or was used in a way that cannot work; the message says what to do."""


def default_recording_folder(base: str | Path = "recordings") -> Path:
    """A folder name that never collides: time to the microsecond plus a random suffix."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path(base) / f"lab-{stamp}-{secrets.token_hex(3)}"


class Pending:
    """An action started in the background. `await` it for its result; its repr says where it is."""

    def __init__(self, task: asyncio.Future[Any] | concurrent.futures.Future[Any], what: str) -> None:
        self._task = task
        self.what = what

    def __await__(self) -> Any:
        task = self._task
        if isinstance(task, concurrent.futures.Future):
            return asyncio.wrap_future(task).__await__()
        return task.__await__()

    def done(self) -> bool:
        return self._task.done()

    def result(self) -> Any:
        return self._task.result()

    def __repr__(self) -> str:
        if not self._task.done():
            return f"<{self.what}: running in the background (await it to wait for the result)>"
        if self._task.cancelled():
            return f"<{self.what}: cancelled>"
        exc = self._task.exception()
        if exc is not None:
            return f"<{self.what}: failed: {exc}>"
        return f"<{self.what}: done>"


@checked_class
class Lab:
    """The cockpit for one agent (or session config): connect, talk, watch, answer tools, read tables.

    `record_dir` is the parent folder of this lab's recordings: every connect records into a new
    `record_dir/lab-<time>-<random>` folder (default `recordings/`), so re-running a notebook never collides.
    Extra keyword arguments go to `voicelab.connect` (e.g. `model=`, `headers=`, `response_timeout=`).
    """

    def __init__(
        self,
        agent_or_config: Any = None,
        url: str | None = None,
        api_key: str | None = None,
        *,
        record_dir: str | Path = "recordings",
        server: Any = None,
        batch_ms: int = 40,
        **connect_kwargs: Any,
    ) -> None:
        import voicelab

        if isinstance(record_dir, bool) or not isinstance(record_dir, (str, Path)):
            raise ConfigError(
                f"Lab record_dir must be a folder path (str or Path), got {type(record_dir).__name__}; "
                "recordings go into a new sub-folder per call."
            )
        if Path(record_dir).exists() and not Path(record_dir).is_dir():
            raise ConfigError(f"Lab record_dir {record_dir} is a file; pass a folder for the recordings.")
        output_folder(record_dir, "record_dir", example="'recordings'", where="Lab")
        for reserved in ("record_dir", "playback"):
            if reserved in connect_kwargs:
                raise ConfigError(f"Lab manages {reserved}= itself; drop it from Lab(...).")
        from voicelab.session import connect as _connect

        allowed = [*inspect.signature(Lab.__init__).parameters, *inspect.signature(_connect).parameters]
        unknown_keywords(
            connect_kwargs,
            [n for n in dict.fromkeys(allowed) if n not in ("self", "connect_kwargs")],
            "Lab()",
        )
        # Build (not open) a session now: a bad agent, config, url or missing key fails here, not at connect.
        probe = voicelab.connect(
            agent_or_config, url=url, api_key=api_key, record_dir=False, **connect_kwargs
        )
        self._target = agent_or_config
        self._url = url
        self._api_key = api_key
        self._connect_kwargs = connect_kwargs
        self._record_base = Path(record_dir).expanduser().resolve()
        self.server = server
        self.agent = probe.agent
        self.config = probe.config
        self.url = probe.url
        self._stubs = probe.runtime.stubs if probe.runtime is not None else None
        self._session: Any = None
        self._state = "closed"  # closed | connecting | open | failed
        self._error: str | None = None
        self.error_traceback: str | None = None  # of an unexpected failure in a background task
        self._error_raised = False
        self._tasks: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = _running_loop()
        self._tail: RecordingTail | None = None
        self._listeners: list[Callable[[Any], Any]] = []
        self.events: deque[Any] = deque(maxlen=1000)  # recent app events (not audio, deltas, history copies)
        self.recordings: list[Path] = []
        self._mic_queue: deque[tuple[bytes, float | None]] = deque()  # (pcm, browser capture time)
        self._mic_wake: asyncio.Event | None = None
        self.mic_dropped = 0
        self.mic_sent_delays_ms: list[float] = []
        self._saved_turn_detection: Any = None
        self._tables_dirty = False
        self._last_tables = 0.0
        self._tables_job: asyncio.Future[dict[str, Any]] | None = None
        self._waiters: list[tuple[str, Callable[[Any], bool] | None, asyncio.Future[Any]]] = []

        self.mic = Microphone(batch_ms=batch_ms)
        self.player = Player()
        self.timeline = Timeline()
        self.event_log = EventLog()
        self.transcript = TranscriptPanel()
        self.stubs_panel = StubsPanel(self)
        self.tables_panel = TablesPanel()
        self.settings = SettingsPanel(self._homed(self._apply_settings), self.config, mic=self.mic)
        self.prompt_panel = PromptPanel(
            self._homed(self._apply_prompt), str(self.config.instructions or ""), self.agent
        )
        self.mic.on_audio(self._homed(self._on_mic_audio))
        self.mic.on_command(self._homed(self._on_mic_command))
        self.mic.observe(self._homed(self._on_mode), names="mode")
        self.player.on_played(self._homed(self._on_played))
        self.tables_panel.refresh_button.on_click(self._homed(lambda _b: self._refresh_tables(force=True)))
        self._build_text_box()
        self._view: Any = None
        self.playback: PlayerPlayback | None = None

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def local(
        cls,
        agent_or_config: Any = None,
        script: Any = "returns_desk",
        *,
        pace: str = "realtime",
        token: str | None = None,
        **kwargs: Any,
    ) -> Lab:
        """A cockpit on the embedded server (started here with `script`; no key, no network)."""
        from voicelab.server import serve

        if "url" in kwargs:
            raise ConfigError("Lab.local starts its own server; use Lab(agent, url=...) for another server.")
        server = serve(script, pace=pace, token=token)  # type: ignore[arg-type]
        try:
            return cls(agent_or_config, url=server.url, api_key=token or "sk-local", server=server, **kwargs)
        except BaseException:
            server.close()
            raise

    def _build_text_box(self) -> None:
        import ipywidgets as W

        self.text = W.Text(placeholder="Type a message to the agent", layout=W.Layout(width="60%"))
        self.text.add_class("vl-text")
        self.send_button = W.Button(description="Send", tooltip="Send the message as the caller")
        self.send_button.on_click(self._homed(lambda _b: self._send_box()))

    # -- state ----------------------------------------------------------------------------------------
    @property
    def session(self) -> Any:
        """The current (or last) voicelab Session; None before the first connect."""
        return self._session

    @property
    def state(self) -> str:
        return self._state

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def recording_path(self) -> Path | None:
        return self._session.recording_path if self._session is not None else None

    @property
    def stubs(self) -> Any:
        """The agent's `voicelab.Stubs` (manual calls wait here), or None for a bare session config."""
        if self._session is not None and self._session.runtime is not None:
            return self._session.runtime.stubs
        return self._stubs

    def __repr__(self) -> str:
        agent = getattr(self.agent, "name", None)
        return (
            f"Lab(state={self._state!r}, url={self.url!r}, agent={agent!r}, "
            f"recording={str(self.recording_path) if self.recording_path else None!r})"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.view._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = repr(self)
        return bundle

    @property
    def view(self) -> Any:
        """The cockpit widget (displaying the lab shows it)."""
        if self._view is None:
            import ipywidgets as W

            tabs = W.Tab(
                children=[
                    self.event_log,
                    self.tables_panel.widget,
                    self.settings.widget,
                    self.prompt_panel.widget,
                ]
            )
            for i, title in enumerate(("Events", "Tables", "Settings", "Prompt")):
                tabs.set_title(i, title)
            left = W.VBox(
                [W.HTML("<b>Transcript</b>"), self.transcript.widget, W.HBox([self.text, self.send_button])],
                layout=W.Layout(width="55%"),
            )
            right = W.VBox([self.stubs_panel.widget], layout=W.Layout(width="45%"))
            self._view = W.VBox(
                [self.mic, self.player, W.HBox([left, right]), self.timeline, tabs],
                layout=W.Layout(border="1px solid #ccc", padding="6px"),
            )
            self._view.add_class("voicelab-lab")
            self.stubs_panel.refresh()
        return self._view

    # -- running things in the background ---------------------------------------------------------------
    def _start(self, coro: Coroutine[Any, Any, Any], what: str) -> Pending:
        """Run `coro` as a task on the lab's home loop (the kernel's), from any thread or loop."""
        try:
            home, current = self._home_loop(what)
        except LabError:
            coro.close()
            raise
        if current is home:
            task: asyncio.Future[Any] = home.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._task_done)
            return Pending(task, what)
        # a widget message handled on another thread (a kernel subshell): hand the work to the home loop
        future = asyncio.run_coroutine_threadsafe(coro, home)
        future.add_done_callback(lambda f: home.call_soon_threadsafe(self._future_done, f))
        return Pending(future, what)

    def _home_loop(self, what: str) -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop | None]:
        """The lab's home loop (the first it runs on: the kernel's) and the loop running here, if any."""
        current = _running_loop()
        home = self._loop
        if home is None or home.is_closed() or (current is not None and not home.is_running()):
            home = current
        if home is None:
            raise LabError(
                f"Lab.{what} needs a running asyncio event loop: in a notebook cell write "
                f"`await lab.{what}(...)`; in a script call it inside `async def main()` run by "
                "asyncio.run(main())."
            )
        self._loop = home
        return home, current

    def _homed(self, fn: Callable[..., Any]) -> Callable[..., None]:
        """`fn` wrapped to run on the lab's home loop: widget callbacks may arrive on another thread
        (JupyterLab sends widget messages to a kernel subshell), and the session lives on one loop."""

        def on_home(*args: Any, **kwargs: Any) -> None:
            home = self._loop
            if home is None or home.is_closed() or _running_loop() is home or not home.is_running():
                fn(*args, **kwargs)
            else:
                home.call_soon_threadsafe(lambda: fn(*args, **kwargs))

        return on_home

    def _future_done(self, future: Any) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None and not isinstance(exc, LabError):
            self.error_traceback = "".join(traceback.format_exception(exc))
            self._fail(f"{type(exc).__name__}: {exc}")

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        self._future_done(task)  # the exception is retrieved here: an un-awaited failure is never silent

    def _fail(self, message: str) -> None:
        secrets_ = tuple(s for s in (self._api_key,) if s)
        message = redact_text(message, secrets_)
        self._error = message
        self._error_raised = False
        self._set_state("failed" if self._state != "open" else self._state, f"Failed: {message}")

    def _check(self) -> None:
        """Raise the failure the cockpit showed, once, on the next call after it."""
        if self._error is not None and not self._error_raised:
            self._error_raised = True
            raise LabError(f"the lab's session failed: {self._error} (reconnect with lab.connect()).")

    def _set_state(self, state: str, status: str) -> None:
        self._state = state
        self.mic.session_state = state
        self.mic.status = status

    # -- connect / disconnect ---------------------------------------------------------------------------
    def connect(self) -> Pending:
        """Open a session (a new recording); returns at once. `await lab.connect()` waits until it is open."""
        return self._start(self._connect(), "connect")

    async def _connect(self) -> Any:
        import voicelab

        if self._state in ("open", "connecting") and self._session is not None and not self._session.closed:
            return self._session
        self._error, self._error_raised = None, False
        self._set_state("connecting", f"Connecting to {self.url} ...")
        folder = default_recording_folder(self._record_base)
        self.playback = PlayerPlayback(self.player.interrupt)
        session = voicelab.connect(
            self._target,
            url=self._url,
            api_key=self._api_key,
            record_dir=folder,
            playback=self.playback,
            **self._connect_kwargs,
        )
        if self._stubs is not None and session.runtime is not None:
            session.runtime.stubs = self._stubs  # one Stubs across reconnects: answers and saved fixtures
        self._session = session
        try:
            await session.open()
        except VoicelabError as exc:
            self._fail(str(exc))
            raise LabError(f"could not connect to {self.url}: {exc}") from None
        if session.recording_path is not None:
            self.recordings.append(session.recording_path)
            self._tail = RecordingTail(session.recording_path)
        self.timeline.reset()
        self._mic_queue.clear()
        self._mic_wake = asyncio.Event()
        self._set_state("open", f"Connected to {self.url}; recording to {session.recording_path}")
        loop = asyncio.get_running_loop()
        for coro in (self._pump(session), self._ticker(session), self._mic_sender(session)):
            task = loop.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._task_done)
        self.mic.start()
        if self.mic.mode == "ptt":
            await self._apply_mode(session, "ptt")
        return session

    def disconnect(self) -> Pending:
        """Close the session (the recording is complete on disk); returns at once."""
        return self._start(self._disconnect(), "disconnect")

    async def _disconnect(self) -> None:
        session = self._session
        self.mic.stop()
        if session is not None and not session.closed:
            await session.close()
        self.player.interrupt()
        await asyncio.sleep(0)  # the pump sees `disconnected`

    def close(self) -> Pending:
        """Disconnect and stop the embedded server this lab started."""

        async def _close() -> None:
            await self._disconnect()
            if self.server is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.server.close)

        return self._start(_close(), "close")

    def _live(self) -> Any:
        self._check()
        session = self._session
        if session is None or session.closed or self._state != "open":
            raise LabError("the lab is not connected; click Connect or run `await lab.connect()` first.")
        return session

    # -- actions ----------------------------------------------------------------------------------------
    def send_text(self, text: str) -> Pending:
        """Send a user text message and ask for a response."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("send_text needs a non-empty str, e.g. lab.send_text('Hello').")
        session = self._live()
        return self._start(session.send_text(text), "send_text")

    def interrupt(self) -> Pending:
        """Stop the assistant now: playback flushed, the item truncated at what was heard."""
        session = self._live()
        return self._start(session.interrupt(), "interrupt")  # the player stops through self.playback

    def update(self, **fields: Any) -> Pending:
        """`session.update` with flat SessionConfig fields (voice=, instructions=, turn_detection=, ...)."""
        new_config = self.config.replace(**fields)  # bad fields fail first, with the field named
        session = self._live()
        self.config = new_config
        return self._start(session.update(fields), "update")

    def _apply_settings(self, values: dict[str, Any]) -> None:
        self.update(**values)

    def _apply_prompt(self, instructions: str) -> None:
        self.update(instructions=instructions)
        self.settings.instructions.value = instructions  # the Settings tab shows what the session has

    def play_audio(
        self, audio: Audio | str | Path, *, realtime: bool = True, trailing_silence_ms: int = 800
    ) -> Pending:
        """Speak a file (WAV/FLAC/...) or an Audio as the caller, through the same path as the microphone.
        Silence follows so that server VAD ends the turn."""
        from voicelab.audio.io import read_audio

        clip = audio if isinstance(audio, Audio) else read_audio(audio)
        if trailing_silence_ms < 0:
            raise ConfigError("trailing_silence_ms must be >= 0.")
        pcm = clip.to_realtime().to_pcm16() + bytes(int(trailing_silence_ms * 24) * 2)
        self._live()
        return self._start(self._play_pcm(pcm, realtime), "play_audio")

    async def _play_pcm(self, pcm: bytes, realtime: bool) -> None:
        step = self.mic.batch_ms * 48
        started = time.monotonic()
        for index, offset in enumerate(range(0, len(pcm), step)):
            self._on_mic_audio(pcm[offset : offset + step], {"source": "file", "seq": index})
            if realtime:
                due = started + (index + 1) * self.mic.batch_ms / 1000.0
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            else:
                await asyncio.sleep(0)

    def answer(self, call_id: str, output: Any) -> None:
        """Answer a pending manual stub call."""
        if self.stubs is None:
            raise LabError("this lab has no agent, so no stubbed tools; pass a voicelab.Agent to Lab(...).")
        self.stubs.answer(call_id, output)
        self.stubs_panel.dirty = True

    def approve(self, call_id: str, *, always: bool = False) -> None:
        self._runtime().approve(call_id, always=always)
        self.stubs_panel.dirty = True

    def reject(self, call_id: str, message: str | None = None, *, always: bool = False) -> None:
        self._runtime().reject(call_id, message, always=always)
        self.stubs_panel.dirty = True

    def _runtime(self) -> Any:
        session = self._session
        if session is None or session.runtime is None:
            raise LabError("no agent session: approvals need a voicelab.Agent connected with lab.connect().")
        return session.runtime

    def pending_approvals(self) -> dict[str, str]:
        session = self._session
        if session is None or session.runtime is None:
            return {}
        return dict(session.runtime.pending_approvals())

    def save_stubs(self, path: str | Path) -> Path:
        """Save the stubs, with the manual answers given so far as fixtures (`Stubs.save`)."""
        if self.stubs is None:
            raise LabError("this lab has no agent, so no stubs to save.")
        return Path(self.stubs.save(path))

    def tool_parameters(self, name: str) -> dict[str, Any] | None:
        agent = (
            self._session.runtime.agent if self._session is not None and self._session.runtime else self.agent
        )
        for tool in getattr(agent, "tools", None) or []:
            if getattr(tool, "name", None) == name:
                return dict(getattr(tool, "parameters", {}) or {})
        return None

    def canned_answers(self, name: str) -> list[str]:
        """Answers to offer for `name`: typed earlier in this lab, and those of its stub (a manual stub's
        default, the outputs of a fixed, sequence or recorded stub loaded from a stubs file)."""
        stubs = self.stubs
        if stubs is None:
            return []
        stub = getattr(stubs, "_stubs", {}).get(name)
        candidates = list(getattr(stubs, "_manual_answers", {}).get(name, []))
        if stub is not None:
            candidates += [o for o in stub.outputs if stub.kind != "template"]
            if stub.default:
                candidates.append(stub.default)
        seen: list[str] = []
        for answer in candidates:
            if answer not in seen:
                seen.append(answer)
        return seen[-10:]

    def wait_for(
        self, event_type: str, predicate: Callable[[Any], bool] | None = None, *, timeout: float = 30.0
    ) -> Pending:
        """The next app event of `event_type` (for which `predicate(event)` is true), counted from this call.

        It starts waiting at once, so ask before you act and await after, and a fast answer is never missed:
        `answered = lab.wait_for("response_done")`, `await lab.play_audio(...)`, `await answered`.
        (`await lab.wait_for(...)` on its own waits from that line on.)"""
        if not isinstance(event_type, str) or not event_type:
            raise ConfigError("wait_for needs an event type such as 'response_done' or 'tool_start'.")
        if predicate is not None and not callable(predicate):
            raise ConfigError("wait_for's predicate must be a function of the event, e.g. lambda e: ...")
        self._check()
        home, _current = self._home_loop("wait_for")
        future: asyncio.Future[Any] = home.create_future()
        entry = (event_type, predicate, future)
        self._waiters.append(entry)

        async def wait() -> Any:
            try:
                return await asyncio.wait_for(future, timeout)
            except (asyncio.TimeoutError, TimeoutError):
                raise LabError(
                    f"no {event_type} event within {timeout:g} s (state: {self._state}); raise timeout= or "
                    "check that the call is live."
                ) from None
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)

        return self._start(wait(), "wait_for")

    def _wake_waiters(self, event: Any) -> None:
        for event_type, predicate, future in list(self._waiters):
            if future.done():
                continue
            if event.type == "disconnected" and event_type != "disconnected":
                future.set_exception(
                    LabError(f"the session ended ({event.reason}) before a {event_type} event.")
                )
            elif event.type == event_type and (predicate is None or predicate(event)):
                future.set_result(event)

    def add_listener(self, listener: Callable[[Any], Any]) -> None:
        """Call `listener(event)` (sync or async) for every app event of this and later sessions."""
        if not callable(listener):
            raise ConfigError("add_listener needs a callable taking one app event.")
        self._listeners.append(listener)

    def save_turns(self, folder: str | Path) -> Path:
        """Save the caller's turns of the current (or last) call as WAV clips with a manifest
        (`voicelab.clips` format); they are the scenarios prompt variants are replayed against."""
        from voicelab.clips import save_turns

        if self.recording_path is None:
            raise LabError("nothing recorded yet: connect and speak (or play a file) first.")
        return Path(save_turns(self.recording_path, folder))

    def tables(self) -> dict[str, Any]:
        """The current recording's tables: history, turns, tool_calls, guardrail_trips (DataFrames)."""
        from voicelab import tables

        if self.recording_path is None:
            raise LabError("nothing recorded yet: connect first.")
        return {name: getattr(tables, name)(self.recording_path) for name in TablesPanel.NAMES}

    def stats(self) -> dict[str, Any]:
        """Counters for tests and benchmarks: mic batches, gaps, played reports, messages to the browser."""
        mic, player = self.mic.stats, self.player.stats
        return {
            "state": self._state,
            "mic_batches": mic.batches,
            "mic_samples": mic.samples,
            "mic_ms": mic.duration_ms,
            "mic_gaps": mic.gaps,
            "mic_duplicates": mic.duplicates,
            "mic_by_source": dict(mic.by_source),
            "mic_dropped": self.mic_dropped,
            "mic_to_send_ms": list(self.mic_sent_delays_ms[-2000:]),
            "player_reports": player.reports,
            "player_played": dict(player.played),
            "player_non_monotonic": player.non_monotonic,
            "player_past_received": player.past_received,
            "player_underruns": player.underruns,
            "messages_to_browser": self.messages_to_browser(),
            "event_log_events": self.event_log.count,
        }

    def messages_to_browser(self) -> int:
        """Custom and state messages sent to the browser by the cockpit's widgets (approximate: one per
        send and per panel refresh)."""
        return (
            self.player.stats.messages
            + self.timeline.messages
            + self.event_log.messages
            + self.transcript.updates
            + self.stubs_panel.updates
            + self.tables_panel.updates
        )

    # -- browser -> kernel ------------------------------------------------------------------------------
    def _on_mic_audio(self, pcm: bytes, info: dict[str, Any]) -> None:
        session = self._session
        if session is None or self._state != "open" or session.closed:
            return
        captured = info.get("captured_at")
        self._mic_queue.append((pcm, float(captured) if isinstance(captured, (int, float)) else None))
        if len(self._mic_queue) > MIC_QUEUE_MAX:
            self._mic_queue.popleft()
            self.mic_dropped += 1
        if self._mic_wake is not None:
            self._mic_wake.set()

    async def _mic_sender(self, session: Any) -> None:
        """One task sends the mic's batches in order (concurrent sends could reorder them)."""
        wake = self._mic_wake
        assert wake is not None
        while not session.closed:
            if not self._mic_queue:
                wake.clear()
                await wake.wait()
                continue
            pcm, captured = self._mic_queue.popleft()
            try:
                await session.send_audio(np.frombuffer(pcm, dtype="<i2"), rate=24000)
            except SessionError:
                return
            if captured is not None and len(self.mic_sent_delays_ms) < 200_000:
                self.mic_sent_delays_ms.append(time.time() * 1000.0 - captured)

    def _on_mic_command(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "connect":
            self.connect()
        elif kind == "disconnect":
            self.disconnect()
        elif kind == "interrupt":
            if self._state == "open":
                self.interrupt()
        elif kind == "ptt" and self._state == "open":
            session = self._session
            if message.get("down"):
                self.player.interrupt()
                self._start(_ptt_down(session), "push_to_talk")
            else:
                self._start(_ptt_up(session, self._mic_queue_empty), "push_to_talk")
        elif kind == "mic_problem":
            self.transcript.crumb(f"microphone: {message.get('message')}")

    def _mic_queue_empty(self) -> bool:
        return not self._mic_queue

    def _on_mode(self, change: dict[str, Any]) -> None:
        if self._state == "open" and self._session is not None:
            self._start(self._apply_mode(self._session, change["new"]), "mode")

    async def _apply_mode(self, session: Any, mode: str) -> None:
        if mode == "ptt":
            self._saved_turn_detection = session.config.turn_detection
            await session.update({"turn_detection": None})
        elif self._saved_turn_detection is not None:
            await session.update({"turn_detection": self._saved_turn_detection})

    def _on_played(self, item_id: str, played_ms: float, report: dict[str, Any]) -> None:
        playback = self.playback
        if playback is not None:
            playback.on_played(item_id, played_ms, final=bool(report.get("final")))

    def _send_box(self) -> None:
        text = self.text.value
        if not text.strip():
            return
        try:
            self.send_text(text)
        except VoicelabError as exc:
            self.transcript.crumb(str(exc))
            return
        self.text.value = ""

    # -- the session's events ---------------------------------------------------------------------------
    async def _pump(self, session: Any) -> None:
        async for event in session:
            try:
                self._on_event(event)
            except Exception as exc:  # a cockpit bug must not stop the call; say it
                self.transcript.crumb(f"cockpit error on {event.type}: {type(exc).__name__}: {exc}")
            for listener in list(self._listeners):
                try:
                    result = listener(event)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception as exc:
                    self.transcript.crumb(f"listener {listener!r} raised {type(exc).__name__}: {exc}")

    def _on_event(self, event: Any) -> None:
        kind = event.type
        if kind == "audio":
            self.player.push(event.item_id, event.data)
            return
        if kind not in _NOT_KEPT:
            self.events.append(event)
        if self._waiters:
            self._wake_waiters(event)
        if kind == "audio_end":
            self.player.end(event.item_id)
        elif kind == "audio_interrupted":
            self.player.interrupt()
            self.transcript.mark_interrupted(event.item_id, event.played_ms)
        elif kind == "transcript_delta":
            self.transcript.delta(event.role, event.item_id, event.delta)
        elif kind == "transcript_done":
            self.transcript.done(event.role, event.item_id, event.transcript)
            self._tables_dirty = True
        elif kind == "tool_start":
            self.transcript.crumb(f"tool {event.name}({_short(event.arguments)}) started")
            self.stubs_panel.dirty = True
        elif kind == "tool_call":
            outcome = f"error: {event.error}" if event.error else _short(event.output)
            self.transcript.crumb(f"tool {event.name} -> {outcome} ({event.stub_kind or 'tool'})")
            self.stubs_panel.record_answer(
                event.name, event.arguments, event.output, event.stub_kind or "tool"
            )
            self.stubs_panel.dirty = True
            self._tables_dirty = True
        elif kind == "tool_approval_required":
            self.transcript.crumb(f"approval needed for {event.name}")
            self.stubs_panel.dirty = True
        elif kind == "guardrail_tripped":
            self.transcript.crumb(f"guardrail {event.guardrail} tripped")
            self._tables_dirty = True
        elif kind == "handoff":
            self.transcript.crumb(f"handoff {event.from_agent} -> {event.to_agent}")
        elif kind == "error":
            self.transcript.crumb(f"error ({event.code}): {event.message}")
            if getattr(event, "fatal", False):
                self._error = event.message
                self._error_raised = False
        elif kind == "response_done":
            self._tables_dirty = True
        elif kind == "disconnected":
            failed = self._error is not None
            status = f"Disconnected: {self._error}" if failed else f"Disconnected ({event.reason})."
            self._set_state("failed" if failed else "closed", status)
            self._tables_dirty = True

    async def _ticker(self, session: Any) -> None:
        """The one place that sends to the browser, batched: audio every 50 ms, panels 4 times a second."""
        last_panels = 0.0
        try:
            while True:
                await asyncio.sleep(AUDIO_FLUSH_S)
                if self.player.pending:
                    self.player.flush()
                now = time.monotonic()
                if now - last_panels >= PANEL_S:
                    last_panels = now
                    self._refresh_panels()
                if session.closed and self._state != "open" and not self.player.pending:
                    break
        finally:
            self._refresh_panels()
            self._refresh_tables(force=True)

    def _refresh_panels(self) -> None:
        if self._tail is not None:
            update = self._tail.poll()
            self.timeline.update(update)
            self.event_log.append(update.events)
        self.transcript.refresh()
        self.stubs_panel.refresh()
        self._refresh_tables()

    def _refresh_tables(self, force: bool = False) -> None:
        """Recompute the tables (in a worker thread, so the loop keeps moving the call's audio)."""
        now = time.monotonic()
        if self.recording_path is None or not (
            force or (self._tables_dirty and now - self._last_tables >= TABLES_S)
        ):
            return
        if self._tables_job is not None and not self._tables_job.done():
            self._tables_dirty = True  # again when this one is done
            return
        self._tables_dirty = False
        self._last_tables = now
        loop = _running_loop()
        if loop is None:
            self._tables_done(None)
            return
        self._tables_job = loop.run_in_executor(None, self.tables)
        self._tables_job.add_done_callback(self._tables_done)

    def _tables_done(self, job: asyncio.Future[dict[str, Any]] | None) -> None:
        try:
            frames = job.result() if job is not None else self.tables()
        except Exception as exc:  # a half-written recording: show why, try again later
            self.tables_panel.show_error(f"tables not ready: {type(exc).__name__}: {exc}")
            return
        self.tables_panel.show(frames)


async def _ptt_down(session: Any) -> None:
    if session.responding:
        await session.interrupt()
    await session.clear_input()


async def _ptt_up(session: Any, drained: Callable[[], bool]) -> None:
    for _ in range(100):  # the batches sent before the release go first
        if drained():
            break
        await asyncio.sleep(0.01)
    await session.commit()
    await session.create_response()


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _running_loop() -> asyncio.AbstractEventLoop | None:
    with contextlib.suppress(RuntimeError):
        return asyncio.get_running_loop()
    return None


__all__ = ["Lab", "LabError", "Pending", "default_recording_folder"]
