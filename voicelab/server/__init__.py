"""voicelab's embedded Realtime-compatible server: a sans-I/O engine, pluggable brains, scripts, websockets.

    with voicelab.serve("returns_desk", pace="fast") as server:
        client = AsyncOpenAI(api_key="sk-local", websocket_base_url=server.base_url)
        ...

It is not a language model: replies come from a script, a recording or an echo (see `brains`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from voicelab.checks import checked, whole
from voicelab.errors import ConfigError
from voicelab.server.app import AsyncServer, BrainSource, Server, bundled_scripts, serve_async
from voicelab.server.brains import Brain, BrainInput, Call, EchoBrain, ReplayBrain, Say, ScriptedBrain
from voicelab.server.engine import Engine
from voicelab.server.responses import Pace
from voicelab.server.script import Script, load_script
from voicelab.server.services import EngineServices
from voicelab.server.work import Work, WorkResult


@checked
def serve(
    script: str | Path | dict[str, Any] | None = None,
    *,
    brain: BrainSource | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    pace: Pace = "realtime",
    services: EngineServices | None = None,
    workers: int = 1,
) -> Server:
    """Start the embedded server in a background thread; returns once it listens.

    `script`: a script file, a bundled script name ("returns_desk", the default) or a dict.
    `brain`: a Brain, or a
    zero-argument factory called per connection (for stateful brains like ReplayBrain). A brain of your
    own (`phrases` and `reply(context) -> Say | Call`, plain or `async def`) never runs on the server's
    event loop thread: a plain `reply` runs in a worker thread, an `async def` one is awaited on the loop.
    `token`: require `Authorization: Bearer <token>`. `pace`: "realtime" streams audio at its real-time
    rate, "fast" at once.
    `services`: TTS, VAD and transcription (default in-process; `EngineServices.pooled()` transcribes in a
    worker process, for many concurrent sessions). `workers`: server processes sharing the port (default 1,
    this process only; N > 1 adds N - 1 worker processes, `voicelab.server.workers`, for more concurrent
    sessions than one event loop carries; brain and services must then be picklable).
    """
    whole(port, "port", lo=0, hi=65535, example=8765, where="serve (0: a free port)")
    try:
        return Server(
            script,
            brain=brain,
            host=host,
            port=port,
            token=token,
            pace=pace,
            services=services,
            workers=workers,
        )
    except ConfigError:
        _join_warm_up_threads()
        raise


def _join_warm_up_threads(timeout_s: float = 30.0) -> None:
    """Wait for the model and synthesis warm-up a server that could not listen had started: a process that
    exits while they run in native code can abort ("terminate called without an active exception")."""
    for thread in threading.enumerate():
        if thread.name == "voicelab-silero-load" or thread.name.endswith("(_warm)"):
            thread.join(timeout_s)


__all__ = [
    "AsyncServer",
    "Brain",
    "BrainInput",
    "Call",
    "EchoBrain",
    "Engine",
    "EngineServices",
    "ReplayBrain",
    "Say",
    "Script",
    "ScriptedBrain",
    "Server",
    "Work",
    "WorkResult",
    "bundled_scripts",
    "load_script",
    "serve",
    "serve_async",
]
