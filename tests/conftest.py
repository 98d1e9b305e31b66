"""Fixtures shared across test packages: embedded servers with the bundled returns-desk script."""

from __future__ import annotations

from collections.abc import Iterator
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
