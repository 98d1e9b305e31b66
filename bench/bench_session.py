"""Session receive overhead over an audio-heavy stream. Prints one JSON line per figure.

A `websockets` server on loopback (in a separate process) sends the same canned GA audio turn
(`--seconds` of 24 kHz PCM16 in 100 ms `response.output_audio.delta` events, interleaved with one transcript
delta per chunk) as fast as it can.
Timed: from the client's trigger message to the client seeing `response.done`.

- bare: a bare `websockets` client loop that does `json.loads` on every frame (the least any client does);
- session: `voicelab.connect(...)` iterating app events (parse, validate non-audio events with the openai
  types, conversation state, playback tracking, AudioChunk events, listeners/iterator), with no recording
  (AudioChunk decodes its base64 lazily, and this loop never reads `.data`);
- session_recorded: the same with the recording on (events.jsonl + output.wav on disk);
- openai_client: the official `openai` client (`AsyncOpenAI().realtime.connect`) iterating its typed
  events; agents_session: the Agents SDK's `RealtimeSession` (`RealtimeRunner`) iterating its session events
  (the peers a user would otherwise pick, in the same rounds);
- session_recorded_stdlib_lines: session_recorded with every recording line encoded by the stdlib encoder,
  as the writer did before its high-rate lines took orjson (same bytes on disk): that change, same rounds;
- recording_writer_per_stream: the RecordingWriter alone recording the stream's events in-process (base64
  decoding included) with record_wire, and the same with the stdlib line encoder; _record_delta: the same
  with the valid deltas through record_delta, as a Session hands them over (ClientProtocol checked them);
- decode_floor: what recording cannot avoid on top of bare: base64-decoding every audio delta once (timed
  in-process on the same stream) with voicelab's decoder (pybase64), as a ratio to bare; and the same with
  the stdlib `base64` module, which the recording used before.

Each round runs bare, session and session_recorded back to back (after one warm-up round), so machine noise
hits all three alike; the ratio of a round is its session time / its bare time. Reported: the median ratio
over the rounds and its spread (min, quartiles, max). Targets: session <= 1.1x bare, recorded <= 1.6x.

    python bench/bench_session.py [--seconds 60] [--repeat 15]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection, serve

import voicelab
from voicelab.audio.b64 import b64decode
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
            if json.loads(message).get("type") in ("x.go", "input_audio_buffer.clear") or (
                "x.go" in message and '"conversation.item.create"' in message
            ):
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


async def session_stdlib_lines(url: str, record_dir: Path) -> float:
    """session_recorded with every events.jsonl line encoded by the stdlib encoder (the writer before its
    hot lines took orjson; the bytes on disk are the same), to measure that change in the same rounds."""

    with stdlib_lines():
        return await session(url, record_dir)


@contextlib.contextmanager
def stdlib_lines() -> Iterator[None]:
    """Every events.jsonl line through the stdlib encoder, as the writer did before its fast paths."""
    from voicelab import recording

    writer = recording.RecordingWriter
    fast, hot, one_piece = recording.encode_line, recording._hot_line, writer.record_delta
    recording.encode_line = lambda record: recording._ENCODER.encode(record) + "\n"  # type: ignore[assignment]
    recording._hot_line = lambda *args: None  # type: ignore[assignment]
    # no one-piece lines (record_delta, which record_wire uses for them): the general path for every event

    def general(
        self: Any, event: dict[str, Any], t_ms: float, pcm: Any = None, direction: str = "server"
    ) -> Any:
        return self._record_general(direction, event, pcm, t_ms)

    writer.record_delta = general  # type: ignore[method-assign]
    try:
        yield
    finally:
        recording.encode_line, recording._hot_line = fast, hot
        writer.record_delta = one_piece  # type: ignore[method-assign]


async def openai_client(url: str) -> float:
    """The official `openai` client's Realtime connection, iterating its typed events (a peer)."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="sk-bench", websocket_base_url=url.rsplit("/realtime", 1)[0])
    async with client.realtime.connect(model="m") as connection:
        await connection.recv()  # session.created
        start = time.perf_counter()
        await connection.input_audio_buffer.clear()  # the trigger
        async for event in connection:
            if event.type == "response.done":
                return time.perf_counter() - start
    raise RuntimeError("stream ended early")


async def agents_session(url: str) -> float:
    """The Agents SDK's `RealtimeSession` (RealtimeRunner), iterating its session events (a peer)."""
    from agents.realtime import RealtimeAgent, RealtimeRunner

    runner = RealtimeRunner(RealtimeAgent(name="bench", instructions="bench"))
    session = await runner.run(model_config={"url": url + "?model=m", "api_key": "sk-bench"})
    async with session:
        start = time.perf_counter()
        await session.send_message("x.go")  # the trigger: a conversation.item.create naming it
        async for event in session:
            raw = getattr(event, "data", None) if event.type == "raw_model_event" else None
            if getattr(raw, "type", None) == "raw_server_event" and raw.data.get("type") == "response.done":
                return time.perf_counter() - start
    raise RuntimeError("stream ended early")


def decode_time(stream: list[str], decode: Any = b64decode) -> float:
    """Seconds to base64-decode every audio delta of the stream once (the recording's unavoidable work),
    with voicelab's decoder (pybase64) or `decode`."""
    deltas = [e["delta"] for e in map(json.loads, stream) if e["type"] == "response.output_audio.delta"]
    start = time.perf_counter()
    for delta in deltas:
        decode(delta)
    return time.perf_counter() - start


def writer_time(stream: list[str], folder: Path, stdlib: bool, shortcut: bool = False) -> float:
    """Seconds for a RecordingWriter to record the stream's parsed events with record_wire (audio deltas
    base64-decoded, as a Session does), in-process: the writer alone, without the session or the socket.
    `stdlib`: every line through the stdlib encoder (the writer's line encoding before orjson). `shortcut`:
    the valid deltas with only their checked fields through record_delta, as a Session hands them over."""
    from voicelab import recording
    from voicelab.protocol.events import is_valid_delta

    events = [json.loads(frame) for frame in stream]
    checked = [
        shortcut and e["type"].endswith(".delta") and len(e) == 7 and is_valid_delta(e) for e in events
    ]
    writer = recording.RecordingWriter(folder, flush_ms=voicelab.recording.SESSION_FLUSH_MS)
    try:
        with stdlib_lines() if stdlib else contextlib.nullcontext():
            start = time.perf_counter()
            for event, plain in zip(events, checked, strict=True):
                audio = b64decode(event["delta"]) if event["type"] == "response.output_audio.delta" else None
                if plain:
                    writer.record_delta(event, writer.t_ms(), audio)
                else:
                    writer.record_wire("server", event, pcm=audio)
            writer.flush()
            return time.perf_counter() - start
    finally:
        writer.close()


def spread(values: list[float]) -> dict[str, float]:
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return {
        "min": round(min(values), 3),
        "q1": round(q1, 3),
        "q3": round(q3, 3),
        "max": round(max(values), 3),
    }


async def main(seconds: int, repeat: int) -> None:
    stream = frames(seconds)
    megabytes = sum(len(f) for f in stream) / 1e6
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(target=serve_forever, args=(seconds, ports), daemon=True)
    server.start()
    url = f"ws://127.0.0.1:{ports.get(timeout=60)}/v1/realtime"
    names = (
        "bare",
        "session",
        "session_recorded",
        "openai_client",
        "agents_session",
        "session_recorded_stdlib_lines",
    )
    times: dict[str, list[float]] = {name: [] for name in names}
    decode: list[float] = []
    decode_stdlib: list[float] = []
    writers: list[tuple[float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat + 1):  # round 0 warms up (imports, pydantic schemas, sockets) and is dropped
            round_times = (
                await bare(url),
                await session(url, False),
                await session(url, Path(tmp) / f"r{i}"),
                await openai_client(url),
                await agents_session(url),
                await session_stdlib_lines(url, Path(tmp) / f"s{i}"),
            )
            round_decode = decode_time(stream)
            round_decode_stdlib = decode_time(stream, base64.b64decode)
            round_writer = (
                writer_time(stream, Path(tmp) / f"w{i}", False),
                writer_time(stream, Path(tmp) / f"ws{i}", True),
                writer_time(stream, Path(tmp) / f"wd{i}", False, shortcut=True),
            )
            if i:
                writers.append(round_writer)
                for name, value in zip(names, round_times, strict=True):
                    times[name].append(value)
                decode.append(round_decode)
                decode_stdlib.append(round_decode_stdlib)
    server.terminate()
    server.join()
    common = {"bench": "session", "frames": len(stream), "stream_mb": round(megabytes, 2), "audio_s": seconds}
    common["rounds"] = repeat
    baseline = "bare websockets recv + json.loads, same round"
    bare_times = times["bare"]
    line = {**common, "metric": "bare_receive_time", "value": round(statistics.median(bare_times) * 1e3, 2)}
    print(json.dumps({**line, "unit": "ms"}))
    for name in names[1:]:
        med = statistics.median(times[name]) * 1e3
        ratios = [s / b for s, b in zip(times[name], bare_times, strict=True)]
        print(
            json.dumps(
                {
                    **common,
                    "metric": f"{name}_receive_time",
                    "value": round(med, 2),
                    "unit": "ms",
                    "baseline": baseline,
                    "ratio": round(statistics.median(ratios), 3),
                    "ratio_spread": spread(ratios),
                }
            )
        )
    overheads = [(s - b) / len(stream) * 1e6 for s, b in zip(times["session"], bare_times, strict=True)]
    line = {**common, "metric": "session_overhead_per_frame", "value": round(statistics.median(overheads), 2)}
    print(json.dumps({**line, "unit": "us"}))
    for label, index, how in (
        ("recording_writer_per_stream", 0, "record_wire"),
        ("recording_writer_per_stream_stdlib_lines", 1, "record_wire"),
        (
            "recording_writer_per_stream_record_delta",
            2,
            "record_delta for the checked deltas, else record_wire",
        ),
    ):
        value = round(statistics.median(w[index] for w in writers) * 1e3, 2)
        line = {**common, "metric": label, "value": value, "unit": "ms"}
        line["note"] = f"RecordingWriter.{how} over the stream's parsed events, base64 decoding included"
        line["base64_ms"] = round(statistics.median(decode) * 1e3, 2)
        print(json.dumps(line))
    for label, times_s, how in (
        ("recorded_decode_floor", decode, "voicelab.audio.b64 (pybase64)"),
        ("recorded_decode_floor_stdlib", decode_stdlib, "the stdlib base64 module, as before"),
    ):
        ratios = [1 + d / b for d, b in zip(times_s, bare_times, strict=True)]
        print(
            json.dumps(
                {
                    **common,
                    "metric": label,
                    "value": round(statistics.median(times_s) * 1e3, 2),
                    "unit": "ms",
                    "baseline": f"bare + base64-decoding every audio delta once with {how}",
                    "ratio": round(statistics.median(ratios), 3),
                }
            )
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="seconds of assistant audio in the stream")
    parser.add_argument("--repeat", type=int, default=15, help="timed rounds (after one warm-up round)")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.repeat))
