"""`serve(..., workers=N)`: N server processes on one port, each connection served whole by one of them."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psutil
import pytest
from server_helpers import FAKE_SERVICES, SCRIPT
from websockets.asyncio.client import connect

import voicelab
from voicelab.commands import serve as serve_command
from voicelab.errors import ConfigError
from voicelab.server import ScriptedBrain, Server

TEXT_TURN = [
    {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hello there"}],
        },
    },
    {"type": "response.create"},
]


async def text_turn(url: str) -> list[str]:
    """The event types of one scripted text turn, up to response.done."""
    async with connect(url + "?model=gpt-realtime", max_size=None) as ws:
        kinds = [json.loads(await ws.recv())["type"]]
        for event in TEXT_TURN:
            await ws.send(json.dumps(event))
        while kinds[-1] != "response.done":
            kinds.append(json.loads(await asyncio.wait_for(ws.recv(), 20))["type"])
        return kinds


@pytest.fixture(scope="module")
def pair() -> Any:
    """The same script served by one process and by three."""
    with Server(script=SCRIPT, pace="fast") as one, Server(script=SCRIPT, pace="fast", workers=3) as three:
        yield one, three


def test_workers_serve_the_port_together_with_the_same_events(pair: tuple[Server, Server]) -> None:
    one, three = pair
    assert three.workers == 3 and len(three.worker_pids) == 2
    assert all(psutil.Process(pid).is_running() for pid in three.worker_pids)
    assert "workers=3" in repr(three)

    async def run() -> None:
        expected = await text_turn(one.url)
        assert expected[0] == "session.created" and "response.output_audio.delta" in expected
        # 24 connections spread by the kernel over 3 listening sockets: every process gets some
        sockets = [await connect(three.url + "?model=gpt-realtime") for _ in range(24)]
        try:
            for ws in sockets:
                assert json.loads(await ws.recv())["type"] == "session.created"
            assert three.connections == 24
            assert three._inner is not None and 0 < three._inner.connections < 24
            pool = three._pool
            assert pool is not None
            served = []
            for proc in pool.processes:  # each worker's own count
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(b"connections\n")
                proc.stdin.flush()
                served.append(int(proc.stdout.readline()))
            assert all(n > 0 for n in served) and sum(served) + three._inner.connections == 24
            # whichever process serves it, a turn has the events of the one-process server, in order
            turns = await asyncio.gather(*(text_turn(three.url) for _ in range(6)))
            assert all(turn == expected for turn in turns)
        finally:
            for ws in sockets:
                await ws.close()

    asyncio.run(run())
    for _ in range(100):
        if three.connections == 0:
            break
        time.sleep(0.05)
    assert three.connections == 0


def test_close_stops_every_worker() -> None:
    server = voicelab.serve(script=SCRIPT, pace="fast", workers=2)
    (pid,) = server.worker_pids
    server.close()
    assert server.closed and server.worker_pids == []
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_workers_exit_when_the_parent_is_killed() -> None:
    code = (
        "import voicelab, sys\n"
        "s = voicelab.serve(pace='fast', workers=2)\n"
        "print(s.worker_pids[0], flush=True)\n"
        "sys.stdin.readline()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        worker = psutil.Process(int(parent.stdout.readline()))
        assert worker.is_running()
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        worker.wait(30)  # stdin closed with the parent: the worker shuts its server down and exits
    finally:
        if parent.poll() is None:
            parent.kill()


def _not_module_level() -> ScriptedBrain:
    return ScriptedBrain(SCRIPT)


@pytest.mark.parametrize("workers", [0, -1, 65, True, 2.0, "2"])
def test_bad_worker_counts_fail_at_definition(workers: Any) -> None:
    with pytest.raises(ConfigError, match="workers must be a whole number from 1 to 64"):
        voicelab.serve(script=SCRIPT, workers=workers)


def test_workers_need_picklable_brain_and_services() -> None:
    with pytest.raises(ConfigError, match=r"brain= and services= must be picklable.*workers=1"):
        Server(brain=lambda: ScriptedBrain(SCRIPT), workers=2)
    with pytest.raises(ConfigError, match="must be picklable"):
        Server(
            brain=ScriptedBrain(SCRIPT),
            services=voicelab.server.EngineServices(
                lambda t, v, s: (b"", None), FAKE_SERVICES.turn_detector, FAKE_SERVICES.transcriber
            ),
            workers=2,
        )
    with Server(brain=_not_module_level, workers=1, services=FAKE_SERVICES) as single:
        assert single.workers == 1 and single.worker_pids == []


def test_cli_workers_option() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    serve_command.add_parser(sub)
    assert parser.parse_args(["serve"]).workers == 1
    assert parser.parse_args(["serve", "--workers", "4"]).workers == 4
    for bad in ("0", "x", "65"):
        with pytest.raises(SystemExit):
            parser.parse_args(["serve", "--workers", bad])
    with pytest.raises(argparse.ArgumentTypeError, match="give 1-64"):
        serve_command.worker_count("0")


def test_ctrl_c_on_the_process_group_stops_everything_quietly() -> None:
    """A terminal's Ctrl-C reaches the workers too: they leave the stopping to the parent, no traceback."""
    cli = subprocess.Popen(
        [sys.executable, "-m", "voicelab", "serve", "--workers", "2", "--pace", "fast"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert cli.stdout is not None
        assert "(2 processes)" in cli.stdout.readline()
        workers = [
            p
            for p in psutil.Process(cli.pid).children()
            if "voicelab.server.workers" in " ".join(p.cmdline())
        ]
        assert len(workers) == 1
        os.killpg(cli.pid, signal.SIGINT)
        _, err = cli.communicate(timeout=30)
        workers[0].wait(30)
        assert "Traceback" not in err, err
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
