"""Fixtures shared across test packages: embedded servers with the bundled returns-desk script."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import voicelab


@pytest.fixture(scope="module")
def fast_server() -> Iterator[Any]:
    """Replies streamed at once: for tests where pacing does not matter."""
    with voicelab.serve("returns_desk", pace="fast") as server:
        yield server


@pytest.fixture(scope="module")
def paced_server() -> Iterator[Any]:
    """Replies paced at real time: for barge-in, truncation and playback tests."""
    with voicelab.serve("returns_desk", pace="realtime") as server:
        yield server


@pytest.fixture(scope="module")
def returns_recording(fast_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording of the demo agent and the returns caller's first three turns (fast server)."""
    from voicelab.caller import play_turns
    from voicelab.demo import caller_turns, returns_desk_agent

    folder = tmp_path_factory.mktemp("returns") / "rec"

    async def record() -> None:
        async with voicelab.connect(
            returns_desk_agent(), url=fast_server.url, api_key="sk-local", record_dir=folder
        ) as session:
            await play_turns(session, caller_turns("returns")[:3], realtime=False)

    asyncio.run(record())
    return folder
