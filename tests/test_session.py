"""Session against a real `websockets` server on loopback that plays canned GA sequences: the driver end to
end (transport, tasks, listeners, recording, watchdog). The protocol decisions themselves are tested without a
socket in tests/protocol/test_client.py and tests/test_testing.py (ConnectionPair)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

import voicelab
from voicelab import events as ev
from voicelab.audio.core import Audio
from voicelab.config import SessionConfig
from voicelab.errors import AudioError, ConfigError, SessionError
from voicelab.playback import PlaybackTracker
from voicelab.protocol import parse_server_event
from voicelab.protocol.samples import audio_turn, error_event, function_call_turn, session_created, text_turn
from voicelab.recording import load_recording

FAKE_KEY = "sk-" + "test-VOICELABSECRET123456"


class Conn:
    """The server side of one connection, as seen by a test script."""

    def __init__(self, ws: ServerConnection, received: list[dict[str, Any]]) -> None:
        self.ws = ws
        self.received = received
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(self, *events: dict[str, Any]) -> None:
        for event in events:
            if not event["type"].startswith("x."):
                parsed = parse_server_event(json.dumps(event))  # canned events must be valid GA
                assert getattr(parsed, "problem", None) is None, event
            await self.ws.send(json.dumps(event))

    async def expect(self, event_type: str, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            event = await asyncio.wait_for(self._inbox.get(), timeout)
            if event["type"] == event_type:
                return event

    async def pump(self) -> None:
        async for message in self.ws:
            event = json.loads(message)
            self.received.append(event)
            self._inbox.put_nowait(event)


Script = Callable[[Conn], Awaitable[None]]


class FakeServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.received: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []  # a failing script fails the test
        self.headers: dict[str, str] = {}
        self.url = ""

    async def _handler(self, ws: ServerConnection) -> None:
        self.headers = {k.lower(): v for k, v in ws.request.headers.raw_items()} if ws.request else {}
        conn = Conn(ws, self.received)
        pump = asyncio.create_task(conn.pump())
        await conn.send(session_created())
        script = asyncio.create_task(self.script(conn))
        try:
            await pump  # until the client closes
        except ConnectionClosed:
            pass
        finally:
            if not script.done():
                script.cancel()
            await asyncio.wait({script})
            if not script.cancelled() and not isinstance(script.exception(), (type(None), ConnectionClosed)):
                self.errors.append(script.exception())

    async def __aenter__(self) -> FakeServer:
        self._server = await serve(self._handler, "127.0.0.1", 0).__aenter__()
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/v1/realtime"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()
        if self.errors and not any(exc):
            raise self.errors[0]


async def collect(session: voicelab.Session, until: str, limit: int = 500) -> list[ev.AppEvent]:
    out: list[ev.AppEvent] = []
    async for event in session:
        out.append(event)
        if event.type == until or len(out) >= limit:
            break
    return out


def types(events: list[ev.AppEvent]) -> list[str]:
    return [e.type for e in events]


async def text_script(conn: Conn) -> None:
    await conn.expect("session.update")
    await conn.expect("conversation.item.create")
    await conn.expect("response.create")
    await conn.send(*text_turn("Hello there", "Hi! How can I help?"))


async def test_text_turn_events_history_and_recording(tmp_path: Path) -> None:
    async with (
        FakeServer(text_script) as server,
        voicelab.connect(
            SessionConfig(output_modalities=["text"]),
            url=server.url,
            api_key=FAKE_KEY,
            record_dir=tmp_path / "r",
        ) as session,
    ):
        await session.send_text("Hello there")
        got = await collect(session, "response_done")
        assert session.recording_path == tmp_path / "r"
        assert [(i.role, i.status) for i in session.history] == [
            ("user", "completed"),
            ("assistant", "completed"),
        ]
        assert session.history[1].text == "Hi! How can I help?"
    assert server.headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert "openai-beta" not in server.headers
    sent = [e["type"] for e in server.received]
    assert sent[:3] == ["session.update", "conversation.item.create", "response.create"]
    assert server.received[0]["session"]["output_modalities"] == ["text"]
    t = types(got)
    assert (
        t.index("history_added")
        < t.index("response_started")
        < t.index("transcript_done")
        < t.index("response_done")
    )
    deltas = "".join(e.delta for e in got if isinstance(e, ev.TranscriptDelta))
    assert deltas == "Hi! How can I help?"
    done = next(e for e in got if isinstance(e, ev.ResponseDone))
    assert (done.response_id, done.status, done.usage["total_tokens"]) == ("resp_text1", "completed", 30)
    rec = load_recording(tmp_path / "r")
    dirs = {(e["dir"], e["type"]) for e in rec.events}
    assert ("client", "session.update") in dirs and ("server", "response.done") in dirs
    assert ("app", "response_done") in dirs
    assert rec.meta["url"].startswith("ws://127.0.0.1") and rec.meta["model"] == "gpt-realtime"


async def test_api_key_never_leaks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def script(conn: Conn) -> None:
        await conn.expect("response.create")
        await conn.send(error_event(f"Incorrect API key provided: {FAKE_KEY[:8]}***", "invalid_api_key"))
        await conn.ws.close(3000, "invalid_request_error.invalid_api_key")

    async with FakeServer(script) as server:
        session = voicelab.connect(
            None, url=server.url + f"?model=m&api_key={FAKE_KEY}", api_key=FAKE_KEY, record_dir=tmp_path / "k"
        )
        assert FAKE_KEY not in repr(session) and FAKE_KEY not in repr(session.config)
        async with session:
            await session.send_text("hi")
            got = await collect(session, "disconnected")
            assert FAKE_KEY not in repr(session)
    fatal = [e for e in got if isinstance(e, ev.Error) and e.fatal]
    assert fatal and "3000" in fatal[0].message
    for path in (tmp_path / "k").iterdir():
        assert FAKE_KEY.encode() not in path.read_bytes(), path
    client_logs = [r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server")]
    assert client_logs and not any(FAKE_KEY in m for m in client_logs)
    assert FAKE_KEY not in repr(got)


async def test_audio_turn_send_audio_and_output_track(tmp_path: Path) -> None:
    reply = (np.sin(np.arange(24000) / 10) * 8000).astype("<i2").tobytes()  # 1 s

    async def script(conn: Conn) -> None:
        await conn.expect("input_audio_buffer.commit")
        await conn.send(*audio_turn(reply, "Sure, one moment.", user_transcript="what time is it"))

    async with (
        FakeServer(script) as server,
        voicelab.connect(None, url=server.url, api_key="k", record_dir=tmp_path / "a") as session,
    ):
        samples = np.zeros(16000, dtype=np.int16)  # 1 s at 16 kHz
        await session.send_audio(samples, rate=16000, commit=True)
        got = await collect(session, "transcript_done", limit=200)
        got += await collect(session, "transcript_done")  # the user transcript comes after the response
    appends = [e for e in server.received if e["type"] == "input_audio_buffer.append"]
    assert len(appends) == 10  # 1 s in 100 ms chunks
    assert all(len(e["audio"]) == 6400 for e in appends)  # 4800 bytes of PCM16 24 kHz, base64
    audio = b"".join(e.data for e in got if isinstance(e, ev.AudioChunk))
    assert audio == reply
    assert "speech_started" in types(got) and "speech_stopped" in types(got) and "audio_end" in types(got)
    user_done = [e for e in got if isinstance(e, ev.TranscriptDone) and e.role == "user"]
    assert user_done[0].transcript == "what time is it"
    assert session.conversation.get("item_asst2").audio_ms == 1000.0
    rec = load_recording(tmp_path / "a")
    assert rec.input.duration_ms >= 1000.0
    assert rec.output.duration_ms >= 1000.0
    out_pcm = rec.output.to_pcm16()
    assert reply in out_pcm  # placed as a whole on the output track
    refs = [e["event"]["delta"]["$audio"] for e in rec.events if e["type"] == "response.output_audio.delta"]
    assert sum(r["duration_ms"] for r in refs) == 1000.0 and all(r["track"] == "output" for r in refs)


async def test_function_call_round_trip(tmp_path: Path) -> None:
    async def script(conn: Conn) -> None:
        await conn.expect("response.create")
        await conn.send(*function_call_turn("get_weather", '{"city":"Paris"}', call_id="call_1"))
        output = await conn.expect("conversation.item.create")
        assert output["item"] == {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": '{"temp": 21}',
        }
        await conn.expect("response.create")
        await conn.send(*text_turn("x", "It is 21 degrees."))

    class ToolRunner:
        async def on_event(self, session: voicelab.Session, event: ev.AppEvent) -> None:
            if isinstance(event, ev.FunctionCall):
                assert json.loads(event.arguments) == {"city": "Paris"}
                await session.send_function_output(event.call_id, {"temp": 21})

    async with (
        FakeServer(script) as server,
        voicelab.connect(None, url=server.url, api_key="k", record_dir=tmp_path / "f") as session,
    ):
        session.add_listener(ToolRunner())
        await session.create_response()
        got = await collect(session, "function_call")
        got += await collect(session, "response_done")  # the call's response
        got += await collect(session, "response_done")  # the follow-up
    call = next(e for e in got if isinstance(e, ev.FunctionCall))
    assert (call.name, call.call_id, call.item_id, call.response_id) == (
        "get_weather",
        "call_1",
        "item_call1",
        "resp_call1",
    )
    assert [e["type"] for e in server.received].count("response.create") == 2


async def test_barge_in_truncates_at_played_ms(tmp_path: Path) -> None:
    reply = np.full(24000 * 2, 500, dtype="<i2").tobytes()  # 2 s received at once

    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    tracker = PlaybackTracker(clock=clock)

    async def script(conn: Conn) -> None:
        await conn.expect("session.update")
        await conn.send(*audio_turn(reply, "A long answer", end=False))
        await conn.expect("input_audio_buffer.clear")  # the test's cue: the caller starts speaking now
        await conn.send(
            {
                "type": "input_audio_buffer.speech_started",
                "event_id": "e",
                "audio_start_ms": 5000,
                "item_id": "u3",
            }
        )
        truncate = await conn.expect("conversation.item.truncate")
        await conn.send(
            {
                "type": "conversation.item.truncated",
                "event_id": "e2",
                "item_id": truncate["item_id"],
                "content_index": 0,
                "audio_end_ms": truncate["audio_end_ms"],
            }
        )

    async with FakeServer(script) as server:
        config = SessionConfig(turn_detection={"type": "server_vad", "interrupt_response": False})
        async with voicelab.connect(
            config, url=server.url, api_key="k", record_dir=tmp_path / "b", playback=tracker
        ) as s:
            got = await collect(s, "audio", limit=100)
            while sum(e.duration_ms for e in got if isinstance(e, ev.AudioChunk)) < 2000:
                got.append(await s.__anext__())
            clock.now = 0.75  # 750 ms played on the wall clock
            await s.send_event({"type": "input_audio_buffer.clear"})  # tells the fake server to barge in
            got += await collect(s, "history_updated")
    interrupted = next(e for e in got if isinstance(e, ev.AudioInterrupted))
    assert (interrupted.item_id, interrupted.played_ms) == ("item_asst2", 750.0)
    truncate = next(e for e in server.received if e["type"] == "conversation.item.truncate")
    assert (truncate["item_id"], truncate["content_index"], truncate["audio_end_ms"]) == (
        "item_asst2",
        0,
        750,
    )
    # interrupt_response false: the client cancels the still-active response itself
    assert any(e["type"] == "response.cancel" for e in server.received)
    assert s.conversation.get("item_asst2").truncated_ms == 750
    rec = load_recording(tmp_path / "b")
    start = next(e for e in rec.events if e["type"] == "response.output_audio.delta")["event"]["delta"][
        "$audio"
    ]
    assert rec.output.duration_ms == pytest.approx(start["start_ms"] + 750, abs=0.05)  # unplayed audio cut


async def test_interrupt_cancels_and_returns_played(tmp_path: Path) -> None:
    reply = np.full(24000, 1, dtype="<i2").tobytes()

    async def script(conn: Conn) -> None:
        await conn.send(*audio_turn(reply, "hello", end=False))
        await conn.expect("response.cancel")

    tracker = PlaybackTracker()
    async with (
        FakeServer(script) as server,
        voicelab.connect(None, url=server.url, api_key="k", record_dir=tmp_path / "i", playback=tracker) as s,
    ):
        received = 0.0
        while received < 1000.0:  # all audio in: playback (120 ms) is behind what was received
            received += sum(e.duration_ms for e in await collect(s, "audio") if isinstance(e, ev.AudioChunk))
        tracker.on_played("item_asst2", 120)  # a real player reports what was heard
        played = await s.interrupt()
        await asyncio.sleep(0.1)
    assert played == 120.0
    kinds = [e["type"] for e in server.received]
    assert kinds.index("conversation.item.truncate") < kinds.index("response.cancel")
    truncate = next(e for e in server.received if e["type"] == "conversation.item.truncate")
    assert truncate["audio_end_ms"] == 120


async def test_faults_error_malformed_unknown_then_close(tmp_path: Path) -> None:
    async def script(conn: Conn) -> None:
        await conn.expect("session.update")
        await conn.send(error_event("Unknown parameter: 'session.bogus'.", "unknown_parameter"))
        await conn.ws.send("this is not json")
        await conn.ws.send('{"type": "future.event", "event_id": "e", "x": 1}')
        await conn.ws.send('{"type": "session.updated", "event_id": "e"}')  # known type, invalid payload
        await conn.send(*text_turn())
        await conn.ws.close(4000, "invalid_request_error.beta_api_shape_disabled")

    async with (
        FakeServer(script) as server,
        voicelab.connect(None, url=server.url, api_key="k", record_dir=tmp_path / "x") as s,
    ):
        got = await asyncio.wait_for(collect(s, "disconnected"), 10)
        with pytest.raises(SessionError, match="closed"):
            await s.send_text("too late")
    errors = [e for e in got if isinstance(e, ev.Error)]
    assert [(e.code, e.fatal) for e in errors] == [
        ("unknown_parameter", False),
        ("invalid_json", False),
        ("invalid_server_event", False),
        ("connection_closed", True),
    ]
    assert "4000" in errors[-1].message and "beta_api_shape_disabled" in errors[-1].message
    raw = [e.event["type"] for e in got if isinstance(e, ev.RawServerEvent)]
    assert "future.event" in raw
    assert "response_done" in types(got)  # the session went on after the non-fatal errors
    assert got[-1] == ev.Disconnected(4000, "invalid_request_error.beta_api_shape_disabled")
    rec = load_recording(tmp_path / "x")
    kinds = [(e["dir"], e["type"]) for e in rec.events]
    assert ("server", "invalid_frame") in kinds and ("server", "future.event") in kinds
    assert ("server", "response.done") in kinds and ("app", "disconnected") in kinds
    assert "ended_at" in rec.meta


async def test_closed_mid_response(tmp_path: Path) -> None:
    async def script(conn: Conn) -> None:
        await conn.expect("session.update")
        await conn.send(*audio_turn(b"\x00\x00" * 4800, "cut off", end=False))
        conn.ws.transport.abort()  # no close frame: the connection just drops

    async with (
        FakeServer(script) as server,
        voicelab.connect(None, url=server.url, api_key="k", record_dir=tmp_path / "m") as s,
    ):
        got = await asyncio.wait_for(collect(s, "disconnected"), 10)
    fatal = [e for e in got if isinstance(e, ev.Error) and e.fatal]
    assert len(fatal) == 1 and fatal[0].code == "connection_closed"
    rec = load_recording(tmp_path / "m")
    assert any(e["type"] == "response.output_audio.delta" for e in rec.events)
    start = next(e for e in rec.events if e["type"] == "response.output_audio.delta")["event"]["delta"][
        "$audio"
    ]
    assert rec.output.duration_ms == pytest.approx(start["start_ms"] + 200.0, abs=0.05)


async def test_server_that_stops_answering(tmp_path: Path) -> None:
    async def script(conn: Conn) -> None:
        await conn.expect("response.create")
        await asyncio.sleep(30)  # never answers

    async with (
        FakeServer(script) as server,
        voicelab.connect(
            None, url=server.url, api_key="k", record_dir=tmp_path / "t", response_timeout=0.3
        ) as s,
    ):
        await s.create_response()
        got = await asyncio.wait_for(collect(s, "disconnected"), 10)
    error = next(e for e in got if isinstance(e, ev.Error))
    assert (error.code, error.fatal) == ("response_timeout", True)
    assert "0.3 s" in error.message


async def test_listener_errors_become_events_and_order_is_kept(tmp_path: Path) -> None:
    seen: list[str] = []

    class Bad:
        async def on_event(self, session: voicelab.Session, event: ev.AppEvent) -> None:
            seen.append(event.type)
            if isinstance(event, ev.ResponseStarted):
                raise RuntimeError("boom")

    async with (
        FakeServer(text_script) as server,
        voicelab.connect(None, url=server.url, api_key="k", record_dir=tmp_path / "l") as s,
    ):
        s.add_listener(Bad())
        await s.send_text("Hello there")
        got = await collect(s, "response_done")
    error = next(e for e in got if isinstance(e, ev.Error))
    assert error.code == "listener_error" and "boom" in error.message and "response_started" in error.message
    expected = [t for t in types(got) if t != "error"]
    assert seen[: len(expected)] == expected


async def test_agent_like_object_listener_attached_first(tmp_path: Path) -> None:
    class Runtime:
        def __init__(self) -> None:
            self.events: list[str] = []

        async def on_event(self, session: voicelab.Session, event: ev.AppEvent) -> None:
            self.events.append(event.type)

    class FakeAgent:
        name = "helper"

        def session_config(self) -> SessionConfig:
            return SessionConfig(instructions="Be helpful.", voice="marin")

        def create_listener(self) -> Runtime:
            return Runtime()

    async with FakeServer(text_script) as server:
        session = voicelab.connect(FakeAgent(), url=server.url, api_key="k", record_dir=tmp_path / "g")
        async with session:
            await session.send_message("Hello there")
            got = await collect(session, "response_done")
    assert session.runtime.events[: len(got)] == types(got)
    update = server.received[0]
    assert update["session"]["instructions"] == "Be helpful."
    assert update["session"]["audio"]["output"]["voice"] == "marin"
    assert load_recording(tmp_path / "g").meta["agent"] == "helper"


async def test_update_and_item_helpers(tmp_path: Path) -> None:
    async def script(conn: Conn) -> None:
        await conn.expect("x.never", timeout=30)

    async with (
        FakeServer(script) as server,
        voicelab.connect({"voice": "ash"}, url=server.url, api_key="k", record_dir=tmp_path / "u") as s,
    ):
        await s.update({"instructions": "Shorter."})
        await s.update({"audio": {"output": {"voice": "verse"}}})
        await s.create_item(
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]},
            previous_item_id="root",
        )
        await s.delete_item("item_x")
        await s.clear_input()
        await s.cancel_response()  # nothing active: nothing sent
        with pytest.raises(ConfigError):
            await s.update({"voice": "robot"})
        with pytest.raises(AudioError, match="rate="):
            await s.send_audio(np.zeros(100, dtype=np.float32))
        await s.send_audio(Audio.from_array(np.zeros(480, dtype=np.float32), 24000))
        await asyncio.sleep(0.1)
    updates = [e["session"] for e in server.received if e["type"] == "session.update"]
    assert updates[1]["instructions"] == "Shorter." and updates[1]["audio"]["output"]["voice"] == "ash"
    assert updates[2]["audio"]["output"]["voice"] == "verse" and updates[2]["instructions"] == "Shorter."
    kinds = [e["type"] for e in server.received]
    assert "response.cancel" not in kinds
    assert kinds[-4:] == [
        "conversation.item.create",
        "conversation.item.delete",
        "input_audio_buffer.clear",
        "input_audio_buffer.append",
    ]
    assert s.config.voice == "verse"


async def test_connect_errors_are_bounded(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match="cannot connect"):
        async with voicelab.connect(
            None, url="ws://127.0.0.1:1/v1/realtime", api_key="k", record_dir=tmp_path / "c"
        ):
            pass
    rec = load_recording(tmp_path / "c")
    assert [e["type"] for e in rec.events] == ["error", "disconnected"]
    with pytest.raises(ConfigError, match="SessionConfig, a dict"):
        voicelab.connect(42)  # type: ignore[arg-type]
    with pytest.raises(SessionError, match="not a WebSocket URL"):
        voicelab.connect(None, url="http://localhost/v1/realtime")


async def test_iterating_before_open() -> None:
    session = voicelab.connect(None, url="ws://127.0.0.1:1/v1/realtime", api_key="k")
    with pytest.raises(SessionError, match="async with"):
        await session.__anext__()


def test_plain_asyncio_run(tmp_path: Path) -> None:
    async def main() -> list[str]:
        async with FakeServer(text_script) as server:
            session = await voicelab.connect(None, url=server.url, api_key="k", record_dir=tmp_path / "s")
            await session.send_text("Hello there")
            got = await collect(session, "response_done")
            await session.close()
            return types(got)

    assert "response_done" in asyncio.run(main())


def test_session_clock_and_responding_before_open() -> None:
    session = voicelab.connect(None, url="ws://127.0.0.1:9/v1/realtime", api_key="sk-x", record_dir=False)
    first = session.now_ms()
    assert first >= 0 and session.now_ms() >= first
    assert session.responding is False
