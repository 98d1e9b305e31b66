"""Fixtures for tests in a real browser: one JupyterLab per test session, one Chromium per test.

Missing Playwright or Chromium skips these tests locally, with the reason; in CI (CI=true) it fails them.

Browser tests are plain `def` functions using Playwright's sync API. That API marks an asyncio loop as
running in the main thread for as long as Playwright is started, which breaks every later `async def` test of
the session ("Runner.run() cannot be called from a running event loop"): so Playwright lives for one test only
(starting it and Chromium takes about a second), while JupyterLab, a subprocess, lives for the whole session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_harness import (
    IN_CI,
    JupyterServer,
    SpeechWav,
    browser_unavailable_reason,
    launch_chromium,
    make_speech_wav,
    start_jupyter,
)


def require_browser() -> None:
    reason = browser_unavailable_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"browser test skipped: {reason}")


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """JupyterLab on 127.0.0.1 in a temporary root; the python3 kernel is this interpreter's."""
    require_browser()
    server = start_jupyter(tmp_path_factory.mktemp("jupyter"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def playwright_sync() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    manager = sync_playwright().start()
    try:
        yield manager
    finally:
        manager.stop()


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> SpeechWav:
    """The default utterance for the fake microphone (24 kHz speech, 1 s of silence before and after)."""
    return make_speech_wav(
        tmp_path_factory.mktemp("mic") / "caller.wav", "Hello, I would like to return the shoes I ordered."
    )


@pytest.fixture
def chromium(playwright_sync: Any) -> Iterator[Callable[..., Any]]:
    """`chromium(fake_mic=WAV)` launches (once per WAV and test) a headless Chromium whose mic plays WAV."""
    browsers: dict[Path | None, Any] = {}

    def launch(fake_mic: Path | SpeechWav | None = None) -> Any:
        if isinstance(fake_mic, SpeechWav):
            fake_mic = fake_mic.path
        key = Path(fake_mic).resolve() if fake_mic is not None else None
        if key not in browsers:
            browsers[key] = launch_chromium(playwright_sync, fake_mic=key)
        return browsers[key]

    try:
        yield launch
    finally:
        for browser in browsers.values():
            browser.close()


@pytest.fixture
def browser(chromium: Callable[..., Any], speech_wav: SpeechWav) -> Any:
    """Chromium whose fake microphone plays `speech_wav` once per getUserMedia stream."""
    return chromium(speech_wav)


@pytest.fixture
def page(browser: Any, jupyter_server: JupyterServer, tmp_path: Path) -> Iterator[Any]:
    """A fresh browser context and page; on leaving, a screenshot lands in tmp_path and the kernels stop.

    The page's console messages and uncaught errors go to tmp_path/console.log and to the captured output,
    which pytest shows when the test failed.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"console.{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    try:
        yield page
    finally:
        (tmp_path / "console.log").write_text("\n".join(console))
        print("browser console:", *console[-50:], sep="\n")
        with contextlib.suppress(Exception):  # the page may be gone; the screenshot is only a help
            page.screenshot(path=str(tmp_path / "last-page.png"), full_page=True)
        context.close()
        jupyter_server.shutdown_kernels()
