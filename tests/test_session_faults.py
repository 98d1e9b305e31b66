"""Faults the client session must survive (issue 8): any server frame is an `error` event at worst, every
error reply to a response.create releases the queue, and a failed open leaves nothing behind. Hostile frames
go over a real socket; malformed events and refused creates run against the engine with no socket
(`voicelab.testing.ConnectionPair`)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_session import Conn, FakeServer, collect, types

import voicelab
from voicelab import events as ev
from voicelab.errors import ArgumentError, AudioError, ConfigError, LocalProtocolError, SessionError
from voicelab.protocol.samples import text_turn
from voicelab.recording import default_record_dir, load_recording
from voicelab.testing import ConnectionPair

# --- 1. any frame from the server: an error event at worst ----------------------------------------------

_DEEP = {"type": "response.done", "response": {"id": "r", "metadata": None}}
for _ in range(200):
    _DEEP = {"type": "x.nested", "inner": [_DEEP]}

HOSTILE = [
    "[" * 100_000,
    '{"type": "x", "a": ' + "[" * 50_000,
    json.dumps(_DEEP),  # valid JSON, deeper than any event
    "1" * 100_000,
    '"\\ud800"',
    "",
]


@pytest.mark.parametrize("frame", HOSTILE, ids=range(len(HOSTILE)))
async def test_a_hostile_server_frame_is_an_error_event_and_the_session_goes_on(
    frame: str, tmp_path: Path
) -> None:
    async def script(conn: Conn) -> None:
        await conn.expect("response.create")
        await conn.ws.send(frame)
        await conn.send(*text_turn("hi", "Hello!"))

    async with (
        FakeServer(script) as server,
        voicelab.connect(None, url=server.url, api_key="k", record_dir=tmp_path / "r") as session,
    ):
        await session.send_text("hi")
        got = await asyncio.wait_for(collect(session, "response_done"), 20)
    errors = [e for e in got if isinstance(e, ev.Error)]
    assert errors and not any(e.fatal for e in errors), errors
    assert "disconnected" not in types(got) and types(got)[-1] == "response_done"


# --- 8. every error reply to a response.create releases the queue ---------------------------------------


def test_a_rejected_response_create_does_not_leave_the_session_responding() -> None:
    pair = ConnectionPair({"output_modalities": ["text"]})
    pair.client.create_response(audio={"output": {"bogus": 1}})  # only the server knows the nested fields
    assert [(e.code, e.fatal) for e in pair.events if isinstance(e, ev.Error)] == [
        ("unknown_parameter", False)
    ]
    assert not pair.client.responding
    pair.client.send_text("hello")
    pair.run_until_idle()
    done = [e for e in pair.events if isinstance(e, ev.ResponseDone)]
    assert len(done) == 1 and done[0].status == "completed"


@pytest.mark.parametrize(
    "bad",
    [
        {"audio": {"output": {"bogus": 1}}},
        {"tools": [{"type": "function", "name": "bad name!", "parameters": {"type": "object"}}]},
        {"audio": {"output": {"voice": "robot"}}},
    ],
    ids=["unknown", "tool-name", "voice"],
)
def test_a_queued_create_goes_out_when_the_one_before_is_refused(bad: Any) -> None:
    pair = ConnectionPair({"output_modalities": ["text"]})
    pair.client.create_item(
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}
    )
    with pair.batch():  # both sent before the server answers the first
        pair.client.create_response(**bad)
        pair.client.create_response()  # queued behind the first
        assert pair.client.responding and len(pair.sent("response.create")) == 1
    pair.run_until_idle()
    assert [e.type for e in pair.events if e.type in ("error", "response_done")] == ["error", "response_done"]
    assert len(pair.sent("response.create")) == 2 and not pair.client.responding


def test_a_create_the_client_refuses_to_send_does_not_leave_it_responding() -> None:
    pair = ConnectionPair()
    with pytest.raises(LocalProtocolError):
        pair.client.create_response(output_modalities=5)
    with pytest.raises(ArgumentError, match="did you mean 'instructions'"):
        pair.client.create_response(instruction="Be brief.")
    with pytest.raises(LocalProtocolError, match="max_output_tokens=-5"):
        pair.client.create_response(max_output_tokens=-5)
    assert not pair.client.responding and pair.sent("response.create") == []


# --- 9. connect() and open() failures ------------------------------------------------------------------

BAD_URLS = [
    42,
    b"ws://127.0.0.1:1/v1/realtime",
    "ws://127.0.0.1:99999/v1/realtime",
    "ws://127.0.0.1:-1/v1/realtime",
    "ws://[::1/v1/realtime",
    "ws://::1:1/v1/realtime",
    "ws://h:abc/v1/realtime",
    "ws:///v1/realtime",
    "http://127.0.0.1:1/v1/realtime",
    "",
]


@pytest.mark.parametrize("url", BAD_URLS, ids=range(len(BAD_URLS)))
def test_a_bad_url_fails_at_connect_with_one_clear_message(url: Any) -> None:
    with pytest.raises(SessionError) as info:
        voicelab.connect(None, url=url, api_key="k", record_dir=False)
    message = str(info.value)
    assert "ws://HOST:PORT/v1/realtime" in message
    assert "\n" not in message


def _other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


@pytest.mark.parametrize("url", ["ws://127.0.0.1:1/v1/realtime", "ws://[::1]:1/v1/realtime"])
async def test_a_failed_open_leaves_no_task_no_file_no_folder_and_says_closed(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = _other_tasks()
    session = voicelab.connect(None, url=url, api_key="k", open_timeout=2)
    with pytest.raises(SessionError, match="cannot connect|no WebSocket handshake"):  # noqa: RUF043
        async with session:
            pass
    assert _other_tasks() <= before
    assert "closed" in repr(session) and session.closed
    got = await asyncio.wait_for(collect(session, "never"), 5)  # ends, does not hang
    assert types(got) == ["error", "disconnected"]
    assert not (tmp_path / "recordings").exists() or not any((tmp_path / "recordings").iterdir())


async def test_a_failed_open_keeps_an_explicit_recording_closed(tmp_path: Path) -> None:
    session = voicelab.connect(
        None, url="ws://127.0.0.1:1/v1/realtime", api_key="k", record_dir=tmp_path / "c"
    )
    with pytest.raises(SessionError):
        await session.open()
    rec = load_recording(tmp_path / "c")  # closed: its meta has the end, its events end with disconnected
    assert "ended_at" in rec.meta and [e["type"] for e in rec.events] == ["error", "disconnected"]
    assert session.recording_path == tmp_path / "c" and "closed" in repr(session)


async def test_record_dir_true_records_to_a_default_folder(
    fast_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with voicelab.connect(None, url=fast_server.url, record_dir=True) as session:
        path = session.recording_path
    assert path is not None and (tmp_path / path / "events.jsonl").exists()
    assert Path(path).parent == Path("recordings")


async def test_default_recording_folders_never_collide(
    fast_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    names = {default_record_dir() for _ in range(2000)}
    assert len(names) == 2000
    import voicelab.recording as recording

    class Frozen(recording._dt.datetime):  # type: ignore[name-defined,misc]
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return cls(2026, 1, 1, 12, 0, 0, 123456)

    monkeypatch.setattr(recording._dt, "datetime", Frozen)  # type: ignore[attr-defined]
    sessions = [voicelab.connect(None, url=fast_server.url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in sessions))
    paths = {s.recording_path for s in sessions}
    await asyncio.gather(*(s.close() for s in sessions))
    assert len(paths) == 3
    assert all(str(p).startswith(os.path.join("recordings", "20260101-120000-123456")) for p in paths)


@pytest.mark.parametrize("record_dir", [42, 1.5, ["a"], object()], ids=["int", "float", "list", "object"])
def test_a_record_dir_of_the_wrong_type_fails_at_connect(record_dir: Any) -> None:
    with pytest.raises(ConfigError, match="record_dir"):
        voicelab.connect(None, url="ws://127.0.0.1:1/v1/realtime", api_key="k", record_dir=record_dir)


def test_a_record_dir_under_a_file_fails_at_connect(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    for bad in (tmp_path / "file.txt", tmp_path / "file.txt" / "rec", tmp_path / "file.txt" / "a" / "b"):
        with pytest.raises(ConfigError, match="record_dir") as info:
            voicelab.connect(None, url="ws://127.0.0.1:1/v1/realtime", api_key="k", record_dir=bad)
        assert "file.txt" in str(info.value)


# --- server events of known types with fields of the wrong type: reported, the session goes on ----------

MALFORMED = [
    {"type": "response.done", "response": 5},
    {"type": "response.done", "response": {"id": 5, "status": [], "output": 5}},
    {"type": "response.created", "response": None},
    {"type": "conversation.item.added", "item": 5, "previous_item_id": 5},
    {"type": "conversation.item.done", "item": {"id": 5, "type": "message", "content": 5}},
    {"type": "conversation.item.truncated", "item_id": 5, "audio_end_ms": "x", "content_index": None},
    {"type": "conversation.item.deleted", "item_id": None},
    {"type": "response.output_audio.delta", "delta": 5, "item_id": None},
    {"type": "response.output_audio.delta", "delta": "!!not base64!!", "item_id": "i", "response_id": "r",
     "output_index": 0, "content_index": 0, "event_id": "e"},
    {"type": "response.output_audio_transcript.delta", "delta": None, "item_id": 5},
    {"type": "response.output_item.done", "item": {"type": "function_call", "call_id": 5, "name": None}},
    {"type": "input_audio_buffer.speech_started", "audio_start_ms": "x", "item_id": 5},
    {"type": "conversation.item.input_audio_transcription.completed", "item_id": 5, "transcript": 5},
    {"type": "session.updated", "session": 5},
    {"type": "error", "error": 5},
    {"type": "error", "error": {"message": None, "code": 5, "event_id": []}},
    {"type": "rate_limits.updated", "rate_limits": 5},
]  # fmt: skip


@pytest.mark.parametrize("event", MALFORMED, ids=[f"{i}-{e['type']}" for i, e in enumerate(MALFORMED)])
def test_a_malformed_server_event_is_reported_and_the_session_goes_on(event: dict[str, Any]) -> None:
    pair = ConnectionPair(None, pace="realtime")
    pair.client.send_text("I would like to return my order")
    assert pair.client.responding  # the answer is being streamed when the malformed event arrives
    got = pair.receive({"event_id": "event_x", **event})
    assert got and not [e for e in got if isinstance(e, ev.Error) and e.fatal], got
    pair.run_until_idle()  # the engine's answer goes on to its end
    assert pair.closed is None and not [e for e in pair.events if isinstance(e, ev.Error) and e.fatal]
    assert pair.types()[-2:] == ["response_done", "raw_server_event"]  # response.done, rate_limits.updated
    (done,) = [e for e in pair.server_events if e["type"] == "response.done"]
    answer = pair.client.conversation.get(done["response"]["output"][0]["id"])
    assert answer is not None and answer.transcript == "I can help with that. What is your order number?"


# --- connect() and Session(): every argument the handshake cannot use fails here, not at open -------------

_URL = "ws://127.0.0.1:1/v1/realtime"


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"bogus": 1}, ("'bogus'", "record_dir")),
        ({"recorddir": "x"}, ("'recorddir'", "did you mean 'record_dir'?")),
    ],
    ids=["bogus", "recorddir"],
)
def test_connect_with_a_misspelt_keyword_names_the_closest_one(kwargs: dict[str, Any], names: Any) -> None:
    with pytest.raises(ArgumentError) as info:
        voicelab.connect(None, **kwargs)
    assert isinstance(info.value, TypeError)
    assert str(info.value).startswith("voicelab.connect() has no argument")
    assert all(name in str(info.value) for name in names)


def test_session_with_a_misspelt_keyword_names_the_closest_one() -> None:
    with pytest.raises(
        ArgumentError, match="Session\\(\\) has no argument 'recorddir'; did you mean 'record_dir'"
    ):
        voicelab.Session(voicelab.SessionConfig(), url=_URL, recorddir=False)


@pytest.mark.parametrize("config", [5, "gpt-realtime", voicelab.SessionConfig], ids=["int", "str", "class"])
def test_session_given_no_session_config_points_to_connect(config: Any) -> None:
    with pytest.raises(ConfigError, match=r"voicelab\.SessionConfig.*voicelab\.connect\(") as info:
        voicelab.Session(config, url=_URL, api_key="k", record_dir=False)
    assert "\n" not in str(info.value)


SECRET = "sk-" + "proj-SECRETVALUE"
BAD_CONNECT = [
    ({"api_key": SECRET + " x\n"}, "api_key has a space, tab or line break"),
    ({"api_key": SECRET + "\t"}, "api_key has a space, tab or line break"),
    ({"api_key": SECRET + "é"}, "api_key has a non-ASCII character"),
    ({"api_key": "“" + SECRET + "”"}, "api_key has a non-ASCII character"),
    ({"headers": {"a\n": "b"}}, "'a\\\\n' is not an HTTP header name"),
    ({"headers": {"X Trace": "b"}}, "'X Trace' is not an HTTP header name"),
    ({"headers": {"X-Trace:": "b"}}, "is not an HTTP header name"),
    ({"headers": {"": "b"}}, "empty header name"),
    ({"headers": {"a": "b\r\nX: y"}}, r"headers\['a'\] has a line break"),
    ({"headers": {"Authorization": "Bearer " + SECRET + "\n"}}, r"\[.Authorization.\] has a line break"),
    ({"headers": {"a": "b\x00"}}, r"headers\['a'\] has a line break, a control"),
    ({"headers": {"a": "bé"}}, "one line of ASCII text"),
    ({"open_timeout": 10**9}, "open_timeout=1000000000 is out of range.*at most 3600"),
    ({"open_timeout": float("inf")}, "open_timeout=inf must be a number of seconds"),
    ({"response_timeout": 10**12}, "response_timeout=1000000000000 is out of range.*from 0 to 3600"),
    ({"response_timeout": True}, "response_timeout=True must be a number of seconds"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_CONNECT, ids=range(len(BAD_CONNECT)))
def test_what_the_handshake_cannot_carry_fails_at_connect_without_echoing_secrets(
    kwargs: dict[str, Any], message: str
) -> None:
    for make in (
        lambda: voicelab.connect(None, url=_URL, record_dir=False, **kwargs),
        lambda: voicelab.Session(voicelab.SessionConfig(), url=_URL, record_dir=False, **kwargs),
    ):
        with pytest.raises(ConfigError, match=message) as info:
            make()
        text = str(info.value)
        assert "SECRETVALUE" not in text and "\n" not in text


@pytest.mark.parametrize(
    "bad", [SECRET + "\n", SECRET + " x", "“" + SECRET + "”"], ids=["newline", "space", "quotes"]
)
def test_a_malformed_environment_key_fails_at_connect_to_the_openai_api(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPENAI_API_KEY that no Authorization header can carry: a one-line error naming the variable (not the
    key) when connecting to the real API; other servers do not need it, and connect as before."""
    monkeypatch.setenv("OPENAI_API_KEY", bad)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY has a") as info:
        voicelab.connect(None, url="wss://api.openai.com/v1/realtime", record_dir=False)
    assert "SECRETVALUE" not in str(info.value) and "\n" not in str(info.value)
    assert "not opened" in repr(voicelab.connect(None, url=_URL, record_dir=False))


def test_valid_keys_headers_and_timeouts_still_connect_lazily() -> None:
    session = voicelab.connect(
        None,
        url=_URL,
        api_key="sk-" + "proj-abc_DEF-123",
        headers={"X-Trace": "a b\tc", "x-custom_1.v": "~!"},
        open_timeout=3600,
        response_timeout=0,
        record_dir=False,
    )
    assert "not opened" in repr(session) and "abc_DEF" not in repr(session)


async def test_session_commands_refuse_bad_arguments_and_say_when_never_opened() -> None:
    session = voicelab.connect(None, url=_URL, api_key="k", record_dir=False)
    clip = voicelab.Audio.from_array(np.zeros(2400, dtype=np.float32), 24000)
    with pytest.raises(AudioError, match=r"pass voicelab.read_audio\(path\)"):
        await session.send_audio("/x.wav")  # type: ignore[arg-type]
    with pytest.raises(AudioError, match="rate=16000"):
        await session.send_audio(clip, rate=16000)
    with pytest.raises(ConfigError, match="commit='yes' must be True or False"):
        await session.send_audio(clip, commit="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="respond='no' must be True or False"):
        await session.send_text("hi", respond="no")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="respond=None must be True or False"):
        await session.send_function_output("call_1", "x", respond=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="non-empty str"):
        await session.send_text("")
    for command in (session.send_audio(clip), session.send_text("hi"), session.commit()):
        with pytest.raises(SessionError, match=r"never opened; open it first: `async with voicelab.connect"):
            await command
