"""Embedded server benchmarks on loopback. Prints one JSON line per figure.

1. Capacity: N concurrent real-time sessions with server VAD (ramped 1, 2, 4, 8, 12, 16, ...), each streaming
   24 kHz caller speech and silence in real time in 40 ms chunks and getting paced audio replies. Event
   latency: `speech_stopped` arrival against when the audio it refers to was sent, and a ping (every 200 ms a
   `conversation.item.retrieve` of a missing item, timed to its `error` echo). The figure is the largest N
   whose p99 of both stays under 50 ms. The server runs in its own process with transcription in a worker
   process (`EngineServices.pooled()`); the clients run in this one.
2. End of user speech -> first audio delta, p50 over a few turns of one session (the caller knows where its
   speech ends in the stream it sends). Target: <= silence_duration_ms + 30 ms.
3. A 10-turn scenario (the fixture caller lines, synthesized) at pace="fast", one session, transcription
   in-process: wall time against the scenario's real-time length (caller + assistant audio). Target >= 50x.

    python bench/bench_server.py [--stage-s 6] [--max-clients 64]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from voicelab.speech import synthesize

SILENCE_MS = 500
CHUNK_MS = 40
LINES = [
    "Hi, I would like to return an order.",
    "The order number is four five six seven.",
    "Yes, please send me the return label.",
    "No, that is all. Thank you, goodbye.",
    "Hello, I need to update the name on my account.",
    "My last name is Smith. S M I T H.",
    "Yes, that is correct.",
    "I want to speak to a human.",
    "Yes, please transfer me to a person.",
    "Thank you.",
]
SESSION = {
    "type": "realtime",
    "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": SILENCE_MS}}},
}


def emit(bench: str, metric: str, value: float, unit: str, **extra: Any) -> None:
    print(
        json.dumps({"bench": bench, "metric": metric, "value": round(value, 3), "unit": unit, **extra}),
        flush=True,
    )


def pcm(text: str) -> bytes:
    return (synthesize(text, voice="echo").samples * 32767).astype("<i2").tobytes()


def start_server(pace: str, services: str = "pooled") -> tuple[subprocess.Popen[str], str]:
    code = (
        "import sys\n"
        "from voicelab.server import EngineServices, Server\n"
        f"s = Server('returns_desk', pace={pace!r}, services=EngineServices.{services}())\n"
        "print(s.url, flush=True)\n"
        "sys.stdin.read()\n"
        "s.close()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


def stop_server(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


def speech_end_ms(audio: bytes) -> float:
    """Where the speech in a synthesized clip ends (last sample above -40 dBFS)."""
    samples = np.frombuffer(audio, dtype="<i2")
    loud = np.nonzero(np.abs(samples) > 327)[0]
    return float(loud[-1] + 1) / 24 if loud.size else 0.0


class Client:
    """One caller streaming speech then silence in real time, in 40 ms chunks.

    Records: ping RTTs (a `conversation.item.retrieve` of a missing item every 200 ms, timed to its `error`
    echo); speech_stopped latency (arrival minus when the chunk holding `audio_end_ms` was sent); and the time
    from the end of the caller's speech to the first audio delta of the reply.
    """

    def __init__(self, ws: ClientConnection, speech: bytes, gap_ms: int, index: int) -> None:
        self.ws = ws
        self.speech = speech
        self.speech_end = speech_end_ms(speech)
        self.gap = bytes(gap_ms * 48)
        self.index = index
        self.start = 0.0
        self.pings: dict[str, float] = {}
        self.rtts: list[float] = []
        self.stopped: list[float] = []
        self.speech_ends: list[float] = []
        self.first_deltas: list[float] = []
        self.awaiting_delta = False

    async def reader(self) -> None:
        async for frame in self.ws:
            now = time.perf_counter()
            event = json.loads(frame)
            kind = event["type"]
            if kind == "error":
                sent = self.pings.pop(event["error"].get("event_id") or "", None)
                if sent is not None:
                    self.rtts.append((now - sent) * 1000)
            elif kind == "input_audio_buffer.speech_stopped":
                chunk_sent = self.start + (event["audio_end_ms"] // CHUNK_MS) * CHUNK_MS / 1000
                self.stopped.append((now - chunk_sent) * 1000)
                self.awaiting_delta = True
            elif kind == "response.output_audio.delta" and self.awaiting_delta:
                self.awaiting_delta = False
                self.first_deltas.append(now)

    async def pinger(self, until: float) -> None:
        n = 0
        while time.perf_counter() < until:
            await asyncio.sleep(0.2)
            n += 1
            event_id = f"ping_{self.index}_{n}"
            self.pings[event_id] = time.perf_counter()
            ping = {"type": "conversation.item.retrieve", "item_id": "item_missing", "event_id": event_id}
            await self.ws.send(json.dumps(ping))

    async def streamer(self, until: float) -> None:
        step = CHUNK_MS * 48
        self.start = time.perf_counter()
        sent_ms = 0.0
        while time.perf_counter() < until:
            for block, is_speech in ((self.speech, True), (self.gap, False)):
                if is_speech:
                    self.speech_ends.append(self.start + (sent_ms + self.speech_end) / 1000)
                for offset in range(0, len(block), step):
                    piece = block[offset : offset + step]
                    sent_ms += len(piece) / 48
                    audio = base64.b64encode(piece).decode()
                    await self.ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
                    delay = self.start + sent_ms / 1000 - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if time.perf_counter() >= until:
                    return

    def reply_gaps(self) -> list[float]:
        """Speech end -> first audio delta, for turns that got a reply."""
        gaps = []
        for delta in self.first_deltas:
            ends = [end for end in self.speech_ends if end < delta]
            if ends:
                gaps.append((delta - ends[-1]) * 1000)
        return gaps


async def stage(url: str, clients: int, seconds: float, speech: bytes, gap_ms: int) -> list[Client]:
    connections = [await connect(url + "?model=gpt-realtime", max_size=None) for _ in range(clients)]
    try:
        runners = [Client(ws, speech, gap_ms, i) for i, ws in enumerate(connections)]
        for ws in connections:
            await ws.send(json.dumps({"type": "session.update", "session": SESSION}))
        until = time.perf_counter() + seconds
        readers = [asyncio.create_task(c.reader()) for c in runners]

        # stagger the callers so that their turns do not all end at the same moment
        async def run(client: Client, delay: float) -> None:
            await asyncio.sleep(delay)
            await asyncio.gather(client.streamer(until), client.pinger(until))

        await asyncio.gather(*(run(c, i * 2.5 / max(1, clients)) for i, c in enumerate(runners)))
        await asyncio.sleep(0.5)
        for task in readers:
            task.cancel()
        return runners
    finally:
        for ws in connections:
            await ws.close()


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def reply_latency(turns: int) -> None:
    speech = pcm("Yes, that is correct.")
    proc, url = start_server("realtime")
    try:
        seconds = turns * (len(speech) / 48 + 1500) / 1000
        (client,) = await stage(url, 1, seconds, speech, 1500)
        gaps = client.reply_gaps()
        emit(
            "server",
            "speech_end_to_first_audio_delta_p50_ms",
            statistics.median(gaps) if gaps else float("nan"),
            "ms",
            target=SILENCE_MS + 30,
            silence_duration_ms=SILENCE_MS,
            turns=len(gaps),
            speech_stopped_latency_p50_ms=round(p(client.stopped, 50), 3),
        )
    finally:
        stop_server(proc)


async def capacity(stage_s: float, max_clients: int) -> None:
    speech = pcm("Hi, I would like to return an order.")
    proc, url = start_server("realtime")
    try:
        best = 0
        n = 1
        while n <= max_clients:
            runners = await stage(url, n, stage_s, speech, 2500)
            rtts = [r for c in runners for r in c.rtts]
            stopped = [r for c in runners for r in c.stopped]
            worst = max(p(rtts, 99), p(stopped, 99)) if rtts and stopped else float("inf")
            emit(
                "server",
                f"event_latency_p99_ms_at_{n}_sessions",
                worst,
                "ms",
                ping_p50=round(p(rtts, 50), 3),
                ping_p99=round(p(rtts, 99), 3),
                speech_stopped_p50=round(p(stopped, 50), 3),
                speech_stopped_p99=round(p(stopped, 99), 3),
                pings=len(rtts),
                turns=len(stopped),
            )
            if worst >= 50:
                break
            best = n
            n = n * 2 if n < 8 else n + 4
        emit(
            "server", "realtime_vad_sessions_with_p99_under_50ms", best, "sessions", cores=2, stage_s=stage_s
        )
    finally:
        stop_server(proc)


async def scenario_speed() -> None:
    callers = [pcm(line) + bytes(800 * 48) for line in LINES]
    proc, url = start_server("fast", services="default")
    await asyncio.sleep(1.0)  # the server builds the transcription grammar in the background at start
    try:
        async with connect(url + "?model=gpt-realtime", max_size=None) as ws:
            await ws.send(json.dumps({"type": "session.update", "session": SESSION}))
            await ws.recv()  # session.created
            await ws.recv()  # session.updated
            assistant_bytes = 0
            start = time.perf_counter()
            for audio in callers:
                for offset in range(0, len(audio), 9600):
                    piece = base64.b64encode(audio[offset : offset + 9600]).decode()
                    await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": piece}))
                while True:
                    event = json.loads(await ws.recv())
                    if event["type"] == "response.output_audio.delta":
                        assistant_bytes += len(base64.b64decode(event["delta"]))
                    if event["type"] == "response.done":
                        break
            wall_ms = (time.perf_counter() - start) * 1000
        real_ms = sum(len(a) for a in callers) / 48 + assistant_bytes / 48
        emit("server", "ten_turn_scenario_wall_ms", wall_ms, "ms", realtime_ms=round(real_ms, 1))
        emit(
            "server",
            "ten_turn_scenario_speedup",
            real_ms / wall_ms,
            "x",
            target=50,
            baseline="real-time length",
        )
    finally:
        stop_server(proc)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stage-s", type=float, default=6.0, help="seconds per capacity stage")
    parser.add_argument("--max-clients", type=int, default=64)
    parser.add_argument("--turns", type=int, default=6, help="turns for the reply-latency figure")
    args = parser.parse_args()
    asyncio.run(scenario_speed())
    asyncio.run(reply_latency(args.turns))
    asyncio.run(capacity(args.stage_s, args.max_clients))


if __name__ == "__main__":
    main()
