"""The websockets app: handshake errors and close codes, frames, concurrency, serve() and the CLI command."""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from typing import Any

import pytest
from server_helpers import FAKE_SERVICES, SCRIPT, validate
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

import voicelab
from voicelab.commands import serve as serve_command
from voicelab.errors import ConfigError
from voicelab.server import ScriptedBrain, Server, app, serve_async


@pytest.fixture(scope="module")
def server() -> Any:
    with Server(
        brain=ScriptedBrain(SCRIPT), pace="fast", token="secret-token", services=FAKE_SERVICES
    ) as srv:
        yield srv


async def recv(ws: ClientConnection) -> dict[str, Any]:
    event = json.loads(await asyncio.wait_for(ws.recv(), 10))
    validate([event])
    return event


async def refused(url: str, headers: dict[str, str]) -> tuple[dict[str, Any], int, str]:
    async with connect(url, additional_headers=headers) as ws:
        event = await recv(ws)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code is not None
        return event["error"], ws.close_code, ws.close_reason or ""


AUTH = {"Authorization": "Bearer secret-token"}


async def test_handshake_errors_close_like_the_real_api(server: Server) -> None:
    error, code, reason = await refused(server.url + "?model=gpt-realtime", {"Authorization": "Bearer wrong"})
    assert (error["code"], code, reason) == ("invalid_api_key", 3000, "invalid_request_error.invalid_api_key")
    assert "wrong" not in error["message"] and "secret-token" not in error["message"]
    error, code, _ = await refused(server.url + "?model=gpt-realtime", {})
    assert (error["code"], code) == (None, 3000)
    error, code, reason = await refused(
        server.url + "?model=gpt-realtime", {**AUTH, "OpenAI-Beta": "realtime=v1"}
    )
    assert (error["code"], code, reason) == (
        "beta_api_shape_disabled",
        4000,
        "invalid_request_error.beta_api_shape_disabled",
    )
    error, code, reason = await refused(server.url, AUTH)
    assert (error["code"], code, reason) == ("missing_model", 4000, "invalid_request_error.missing_model")


async def test_other_paths_are_404(server: Server) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"ws://127.0.0.1:{server.port}/v1/other?model=x", additional_headers=AUTH):
            pass
    assert info.value.response.status_code == 404


async def test_text_turn_and_frame_errors_over_the_socket(server: Server) -> None:
    async with connect(server.url + "?model=gpt-realtime", additional_headers=AUTH) as ws:
        created = await recv(ws)
        assert created["type"] == "session.created" and created["session"]["model"] == "gpt-realtime"
        await ws.send(b"\x00binary")
        assert (await recv(ws))["error"]["code"] == "invalid_event"
        await ws.send("not json")
        assert (await recv(ws))["error"]["code"] == "invalid_json"
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}
        await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
        await ws.send(json.dumps({"type": "response.create", "response": {"output_modalities": ["text"]}}))
        seen = []
        while not seen or seen[-1]["type"] != "rate_limits.updated":
            seen.append(await recv(ws))
        done = next(e for e in seen if e["type"] == "response.done")
        assert done["response"]["output"][0]["content"][0]["text"] == "Hi, how can I help?"


async def test_many_concurrent_connections(server: Server) -> None:
    async def one(n: int) -> str:
        async with connect(server.url + "?model=gpt-realtime", additional_headers=AUTH) as ws:
            await recv(ws)
            item = {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": f"echo {n}"}],
            }
            await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
            await ws.send(json.dumps({"type": "response.create"}))
            while True:
                event = await recv(ws)
                if event["type"] == "response.done":
                    return str(event["response"]["output"][0]["content"][0]["transcript"])

    replies = await asyncio.gather(*(one(n) for n in range(20)))
    assert replies == ["No rule for that."] * 20


async def test_async_server_inside_a_running_loop() -> None:
    async with await serve_async(brain=ScriptedBrain(SCRIPT), pace="fast", services=FAKE_SERVICES) as srv:
        assert srv.url == f"ws://127.0.0.1:{srv.port}/v1/realtime"
        assert srv.base_url == f"ws://127.0.0.1:{srv.port}/v1"
        async with connect(srv.url + "?model=gpt-realtime") as ws:
            assert (await recv(ws))["type"] == "session.created"
            assert srv.connections == 1


def test_serve_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="pace must be"):
        voicelab.serve(pace="slow")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="either script= or brain="):
        voicelab.serve("returns_desk", brain=ScriptedBrain(SCRIPT))
    with Server(brain=ScriptedBrain(SCRIPT), services=FAKE_SERVICES) as first:
        with pytest.raises(ConfigError, match="could not listen"):
            Server(brain=ScriptedBrain(SCRIPT), port=first.port, services=FAKE_SERVICES)
        assert repr(first).startswith(f"<voicelab Server {first.url} pace=realtime running")
    assert first.closed


def test_cli_serve_prints_the_url_and_stops(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    serve_command.add_parser(sub)
    args = parser.parse_args(["serve", "--pace", "fast", "--token", "t0k"])
    assert (args.host, args.port, args.script, args.pace) == ("127.0.0.1", 0, None, "fast")
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(serve_command.run(args, stop)))
    thread.start()
    printed = ""
    for _ in range(200):
        printed += capsys.readouterr().out
        if "Press Ctrl-C" in printed:
            break
        threading.Event().wait(0.05)
    stop.set()
    thread.join(10)
    assert result == [0]
    assert "voicelab embedded Realtime server: ws://127.0.0.1:" in printed
    assert "/v1/realtime" in printed and "t0k" not in printed


def test_listen_errors_say_what_to_change() -> None:
    from voicelab.server.app import _listen_error

    in_use = OSError(98, "error while attempting to bind on address: address already in use")
    assert "Pick another port" in _listen_error("127.0.0.1", 8765, in_use)
    assert "from 1024 up" in _listen_error("127.0.0.1", 80, PermissionError(13, "permission denied"))
    assert "0 to 65535" in _listen_error("127.0.0.1", 99999, OverflowError("bind(): port must be 0-65535."))
    bad_host = OSError(99, "cannot assign requested address")
    message = _listen_error("10.9.9.9", 8765, bad_host)
    assert "Check the host" in message and "Pick another port" not in message


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"port": True}, ("port", "whole number")),
        ({"port": "80"}, ("port",)),
        ({"brain": 5}, ("brain", "factory")),
        ({"scrpt": "returns_desk"}, ("scrpt", "did you mean 'script'")),
    ],
)
def test_serve_arguments_fail_before_the_server_starts(
    kwargs: dict[str, Any], words: tuple[str, ...]
) -> None:
    from voicelab.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        voicelab.serve(**kwargs)
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))


def test_a_server_that_cannot_listen_leaves_no_warm_up_running() -> None:
    """The model load and synthesis warm-up it started are waited for: a process that exited while they ran in
    native code aborted ("terminate called without an active exception", exit 134) about one run in three
    (e.g. `voicelab serve --host 256.1.1.1` under load)."""
    import subprocess
    import sys

    code = (
        "import threading, voicelab\n"
        "try:\n    voicelab.serve(host='256.1.1.1')\nexcept voicelab.errors.ConfigError:\n    pass\n"
        "print([t.name for t in threading.enumerate() if t.name != 'MainThread'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def test_the_warm_up_starts_only_once_the_server_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that cannot listen starts no model load or synthesis a process could exit in the middle of."""
    started: list[bool] = []
    warm_up = app._Handler.warm_up
    monkeypatch.setattr(app._Handler, "warm_up", lambda self: started.append(True) or warm_up(self))
    with pytest.raises(ConfigError, match="could not listen"):
        Server(brain=ScriptedBrain(SCRIPT), host="256.1.1.1", services=FAKE_SERVICES)
    assert started == []
    with Server(brain=ScriptedBrain(SCRIPT), services=FAKE_SERVICES):
        assert started == [True]


@pytest.fixture
def slow_warm_up(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[bool]]:
    """The server's warm-up waits for the returned event, then appends True to the returned list."""
    release = threading.Event()
    finished: list[bool] = []

    def slow_warm(self: Any, phrases: list[str], lines: list[str]) -> None:
        release.wait(30)
        finished.append(True)

    monkeypatch.setattr(app._Handler, "_warm", slow_warm)
    return release, finished


def test_close_waits_for_the_warm_up_thread(slow_warm_up: tuple[threading.Event, list[bool]]) -> None:
    """A script that starts a server, closes it and exits must not exit while the warm-up runs native code
    (SIGABRT, "terminate called without an active exception"): Server.close() joins it, with a bound."""
    release, finished = slow_warm_up
    server = Server(brain=ScriptedBrain(SCRIPT), services=FAKE_SERVICES)
    handler = server._inner._handler  # type: ignore[union-attr]
    thread = handler._warming
    assert thread is not None and thread.is_alive()
    handler.join_warm_up(0.01)  # bounded: it returns while the thread still runs
    assert thread.is_alive() and finished == []
    threading.Timer(0.1, release.set).start()
    server.close()
    assert finished == [True] and not thread.is_alive()


def test_close_waits_for_a_warm_up_longer_than_its_loop_timeout(
    slow_warm_up: tuple[threading.Event, list[bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() stops the server within its loop timeout and joins the warm-up itself, for as long as that
    takes (up to WARM_UP_JOIN_S): a warm-up that outlasts the loop timeout is no TimeoutError."""
    release, finished = slow_warm_up
    monkeypatch.setattr(app, "STOP_TIMEOUT_S", 0.3)
    server = Server(brain=ScriptedBrain(SCRIPT), services=FAKE_SERVICES)
    threading.Timer(1.0, release.set).start()
    server.close()
    assert finished == [True] and server.closed


async def test_aclose_waits_for_the_warm_up_thread_off_the_loop(
    slow_warm_up: tuple[threading.Event, list[bool]],
) -> None:
    """`serve_async(...)`'s aclose() joins the warm-up too, without blocking the loop meanwhile."""
    release, finished = slow_warm_up
    server = await serve_async(brain=ScriptedBrain(SCRIPT), services=FAKE_SERVICES)
    thread = server._handler._warming
    assert thread is not None and thread.is_alive()
    ticks: list[float] = []

    async def tick() -> None:
        while not finished:
            ticks.append(asyncio.get_running_loop().time())
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    threading.Timer(0.2, release.set).start()
    await server.aclose()
    await ticker
    assert finished == [True] and not thread.is_alive()
    assert len(ticks) >= 5  # the loop ran while aclose() waited
