"""Chained architecture and HTTP API benchmarks on loopback. Prints one JSON line per figure.

1. End of the caller's speech -> first audio, chained (transcription session -> /v1/responses ->
   /v1/audio/speech) against speech-to-speech (/v1/realtime), the same agent and caller turns against the
   embedded server, callers in real time; p50 of `tables.turns(...)["speech_end_to_first_audio_ms"]`, and the
   chained split (transcription, text model, synthesis). Target: chained p50 <= silence_duration_ms + 100 ms.
2. HTTP request overhead: POST /v1/chat/completions (a scripted answer) against a bare Starlette handler
   returning a fixed JSON body on the same stack (uvicorn), sequential requests over one keep-alive
   connection; p50 latency ratio. Target <= 1.5x.
3. Time to the first streamed audio byte of POST /v1/audio/speech (response_format=pcm) for one sentence,
   uncached text each time; p50, and its ratio to the whole response. Target <= 30 ms.

    python bench/bench_chained.py [--turns 4] [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import voicelab
from voicelab import tables
from voicelab.caller import play_turns
from voicelab.demo import caller_turns, returns_desk_agent
from voicelab.recording import load_recording

SILENCE_MS = 500  # returns_desk_agent()'s server_vad silence_duration_ms


def emit(metric: str, value: float, unit: str = "ms", **extra: Any) -> None:
    print(json.dumps({"bench": "chained", "metric": metric, "value": round(value, 3), "unit": unit, **extra}))


async def end_of_speech_to_first_audio(turns: int) -> None:
    caller = caller_turns("returns")[:turns]
    medians: dict[str, float] = {}
    decided: dict[str, float] = {}
    with voicelab.serve("returns_desk", pace="realtime") as server, tempfile.TemporaryDirectory() as tmp:
        for architecture in ("realtime", "chained"):
            folder = Path(tmp) / architecture
            session = voicelab.connect(
                returns_desk_agent(), url=server.url, record_dir=folder, architecture=architecture
            )
            async with session:
                await play_turns(session, caller, realtime=True)
            frame = tables.turns(load_recording(folder))
            medians[architecture] = float(frame["speech_end_to_first_audio_ms"].median())
            decided[architecture] = float(frame["eos_to_first_audio_ms"].median())
            if architecture == "chained":
                for column in ("transcription_ms", "text_model_ms", "synthesis_ms"):
                    emit(f"chained_{column}_p50", float(frame[column].median()), turns=len(frame))
    emit("realtime_eos_to_first_audio_p50", decided["realtime"], note="from speech_stopped")
    emit(
        "chained_eos_to_first_audio_p50",
        decided["chained"],
        baseline="realtime_eos_to_first_audio_p50",
        ratio=round(decided["chained"] / decided["realtime"], 3),
    )
    emit("realtime_speech_end_to_first_audio_p50", medians["realtime"], silence_duration_ms=SILENCE_MS)
    emit(
        "chained_speech_end_to_first_audio_p50",
        medians["chained"],
        baseline="realtime_speech_end_to_first_audio_p50",
        ratio=round(medians["chained"] / medians["realtime"], 3),
        target_ms=SILENCE_MS + 100,
    )


class _Bare:
    """A bare Starlette handler on uvicorn in a thread: the stack's own floor."""

    def __init__(self) -> None:
        async def handler(request: Any) -> JSONResponse:
            await request.body()
            return JSONResponse({"ok": True})

        app = Starlette(routes=[Route("/v1/chat/completions", handler, methods=["POST"])])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # as the server's
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, access_log=False, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def _timed_posts(url: str, body: dict[str, Any], n: int) -> list[float]:
    out = []
    with httpx.Client(headers={"Authorization": "Bearer sk-local"}) as client:
        for _ in range(20):  # warm-up: connection, caches, first transcriber use
            client.post(url, json=body).raise_for_status()
        for _ in range(n):
            start = time.perf_counter()
            client.post(url, json=body).raise_for_status()
            out.append((time.perf_counter() - start) * 1000)
    return out


def http_overhead(requests: int) -> None:
    body = {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "Hi, I would like to return an order."}],
    }
    bare = _Bare()
    try:
        with voicelab.serve("returns_desk", pace="fast") as server:
            bare_ms = statistics.median(
                _timed_posts(f"http://127.0.0.1:{bare.port}/v1/chat/completions", body, requests)
            )
            ours_ms = statistics.median(
                _timed_posts(f"{server.http_base_url}/chat/completions", body, requests)
            )
    finally:
        bare.close()
    emit("bare_starlette_post_p50", bare_ms, requests=requests)
    emit(
        "chat_completions_post_p50",
        ours_ms,
        baseline="bare_starlette_post_p50",
        ratio=round(ours_ms / bare_ms, 3),
        target_ratio=1.5,
    )


def speech_first_byte(requests: int) -> None:
    firsts, totals = [], []
    with voicelab.serve("returns_desk", pace="fast") as server, httpx.Client() as client:
        url = f"{server.http_base_url}/audio/speech"
        for index in range(requests + 5):
            body = {
                "model": "gpt-4o-mini-tts",
                "voice": "coral",
                "input": f"Your order number {index} is on its way and should arrive on Tuesday.",
                "response_format": "pcm",
            }
            start = time.perf_counter()
            with client.stream("POST", url, json=body) as response:
                first = None
                for _ in response.iter_raw():
                    if first is None:
                        first = time.perf_counter()
            end = time.perf_counter()
            if index >= 5 and first is not None:  # the first requests warm the voice and the connection
                firsts.append((first - start) * 1000)
                totals.append((end - start) * 1000)
    first_ms, total_ms = statistics.median(firsts), statistics.median(totals)
    emit("speech_whole_response_p50", total_ms, requests=len(totals))
    emit(
        "speech_first_audio_byte_p50",
        first_ms,
        baseline="speech_whole_response_p50",
        ratio=round(first_ms / total_ms, 3),
        target_ms=30,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--turns", type=int, default=4, help="caller turns per architecture (default and most: 4)"
    )
    parser.add_argument("--requests", type=int, default=300, help="HTTP requests per figure (default 300)")
    args = parser.parse_args()
    http_overhead(args.requests)
    speech_first_byte(min(args.requests, 60))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(end_of_speech_to_first_audio(args.turns))


if __name__ == "__main__":
    main()
