"""`voicelab serve`: run the embedded Realtime-compatible server until Ctrl-C."""

from __future__ import annotations

import argparse
import threading
from typing import Any


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port number; give 0-65535 (0: a free port)"
        ) from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number; give 0-65535 (0: a free port)")
    return value


def worker_count(text: str) -> int:
    """An argparse type: server processes sharing the port, 1 to MAX_WORKERS."""
    from voicelab.server.workers import MAX_WORKERS

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a worker count; give 1-{MAX_WORKERS} (server processes sharing the port)"
        )
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve",
        help="run the embedded Realtime-compatible server (offline, scripted replies)",
        description=(
            "Run voicelab's embedded Realtime server (WebSocket and HTTP APIs on one port). Point the "
            "openai client at the printed base URLs (AsyncOpenAI(base_url=..., websocket_base_url=...)) or "
            "the Agents SDK at the printed URL. Replies come from a script, not a language model."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=0, help="port (default 0: a free port)")
    parser.add_argument(
        "--script",
        default=None,
        help="script file (.yaml/.json) or bundled script name (default: returns_desk)",
    )
    parser.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' from clients")
    parser.add_argument(
        "--pace",
        choices=("realtime", "fast"),
        default="realtime",
        help="stream audio at its real-time rate (default) or as fast as possible",
    )
    parser.add_argument(
        "--workers",
        type=worker_count,
        default=1,
        help="server processes sharing the port (default 1); more carry more concurrent sessions",
    )
    return parser


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serve until Ctrl-C (or until `stop` is set, for tests)."""
    from voicelab.server import serve

    workers = getattr(args, "workers", 1)
    server = serve(
        args.script, host=args.host, port=args.port, token=args.token, pace=args.pace, workers=workers
    )
    try:
        processes = f" ({workers} processes)" if workers > 1 else ""
        print(f"voicelab embedded Realtime server: {server.url}{processes}", flush=True)
        print(
            f"  openai client: AsyncOpenAI(api_key=..., base_url={server.http_base_url!r}, "
            f"websocket_base_url={server.base_url!r})",
            flush=True,
        )
        print(
            f"  HTTP APIs:     {server.http_base_url}/audio/transcriptions, /audio/speech, /responses, "
            "/chat/completions",
            flush=True,
        )
        print(
            f"  Agents SDK:    model_config={{'url': '{server.url}?model=gpt-realtime', 'api_key': ...}}",
            flush=True,
        )
        print("Press Ctrl-C to stop.", flush=True)
        (stop or threading.Event()).wait()
    finally:
        server.close()
    return 0
