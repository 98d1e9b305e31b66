"""Session receive overhead over an audio-heavy stream. Prints one JSON line per figure.

A `websockets` server on loopback (in a separate process) sends the same canned GA audio turn
(`--seconds` of 24 kHz PCM16 in 100 ms `response.output_audio.delta` events, interleaved with one transcript
delta per chunk) as fast as it can.
Timed: from the client's trigger message to the client seeing `response.done`.

- baseline: a bare `websockets` client loop that does `json.loads` on every frame (the least any client does);
- session: `voicelab.connect(...)` iterating app events (parse, validate non-audio events with the openai
  types, conversation state, playback tracking, AudioChunk events, listeners/iterator), with no recording
  (AudioChunk decodes its base64 lazily, and this loop never reads `.data`);
- session_recorded: the same with the recording on (events.jsonl + output.wav on disk).

The ratio is session time / baseline time in the same run (target <= 1.2x for the session without recording).

    python bench/bench_session.py [--seconds 60] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection, serve

import voicelab
from voicelab.events import ResponseDone
from voicelab.protocol.samples import audio_turn, session_created


def frames(seconds: int) -> list[str]:
    pcm = (np.sin(np.arange(seconds * 24000) / 7) * 9000).astype("<i2").tobytes()
    transcript = " ".join(f"word{i}" for i in range(seconds * 10))
    events = audio_turn(pcm, transcript, user_transcript=None)
    return [json.dumps(e) for e in events]


def serve_forever(seconds: int, ports: Any) -> None:
    """The loopback server, in its own process so that its work is not timed with the client's."""
    stream = frames(seconds)

    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps(session_created()))
        async for message in ws:
            if json.loads(message).get("type") in ("x.go", "input_audio_buffer.clear"):
                for frame in stream:
                    await ws.send(frame)

    async def run() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
            ports.put(server.sockets[0].getsockname()[1])
            await asyncio.Future()

    asyncio.run(run())


async def bare(url: str) -> float:
    async with ws_connect(url + "?model=m", compression=None, max_size=None) as ws:
        json.loads(await ws.recv())  # session.created
        start = time.perf_counter()
        await ws.send('{"type": "x.go"}')
        async for message in ws:
            if json.loads(message)["type"] == "response.done":
                return time.perf_counter() - start
    raise RuntimeError("stream ended early")


async def session(url: str, record_dir: Path | bool) -> float:
    async with voicelab.connect(None, url=url, api_key="sk-bench", record_dir=record_dir) as s:
        start = time.perf_counter()
        await s.clear_input()  # the trigger: a valid client event
        async for event in s:
            if isinstance(event, ResponseDone):
                return time.perf_counter() - start
    raise RuntimeError("stream ended early")


async def main(seconds: int, repeat: int) -> None:
    stream = frames(seconds)
    megabytes = sum(len(f) for f in stream) / 1e6
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(target=serve_forever, args=(seconds, ports), daemon=True)
    server.start()
    url = f"ws://127.0.0.1:{ports.get(timeout=60)}/v1/realtime"
    results: dict[str, list[float]] = {"bare": [], "session": [], "session_recorded": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):  # interleaved so that machine noise hits all three alike
            results["bare"].append(await bare(url))
            results["session"].append(await session(url, False))
            results["session_recorded"].append(await session(url, Path(tmp) / f"r{i}"))
    server.terminate()
    server.join()
    base = statistics.median(results["bare"])
    common = {"bench": "session", "frames": len(stream), "stream_mb": round(megabytes, 2), "audio_s": seconds}
    for name, times in results.items():
        med = statistics.median(times)
        line = {**common, "metric": f"{name}_receive_time", "value": round(med * 1000, 2), "unit": "ms"}
        if name != "bare":
            line["baseline"] = "bare websockets recv + json.loads"
            line["ratio"] = round(med / base, 3)
        print(json.dumps(line))
    per_frame = (statistics.median(results["session"]) - base) / len(stream) * 1e6
    print(
        json.dumps(
            {**common, "metric": "session_overhead_per_frame", "value": round(per_frame, 2), "unit": "us"}
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="seconds of assistant audio in the stream")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.repeat))
