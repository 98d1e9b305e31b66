"""Embedded server benchmarks on loopback. Prints one JSON line per figure.

1. Capacity: N concurrent real-time sessions with server VAD (ramped 1, 2, 4, 8, 16, 32, 48, ... until the
   first failing N). The server runs in its own process (transcription in its worker process,
   `EngineServices.pooled()`); the callers run in OTHER processes (up to `--client-procs`, sessions split
   evenly), so that client CPU does not hold the server's GIL. Each session streams 24 kHz caller speech
   (a synthesized fixture line, ~2.5 s) then 3 s of digital silence, in real time in 40 ms chunks, with server
   VAD, and gets a paced audio reply per turn from the `returns_desk` script. Event latency: `speech_stopped`
   arrival against when the audio it refers to was sent, and a ping (every 200 ms a
   `conversation.item.retrieve` of a missing item, timed to its `error` echo). The figure is the largest N
   whose p99 of both stays under 50 ms. Run twice: without input transcription events (the headline; the
   scripted brain still transcribes each turn to pick its reply) and with `transcription` in the session.
2. End of user speech -> first audio delta, p50 over a few turns of one session (the caller knows where its
   speech ends in the stream it sends). Target: <= silence_duration_ms + 30 ms.
3. A 10-turn scenario (the fixture caller lines, synthesized) at pace="fast", one session, transcription
   in-process: wall time against the scenario's real-time length (caller + assistant audio). Target >= 50x.

    python bench/bench_server.py [--stage-s 8] [--max-clients 256] [--client-procs 2]
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
TRANSCRIBED_SESSION = {
    "type": "realtime",
    "audio": {
        "input": {
            "turn_detection": {"type": "server_vad", "silence_duration_ms": SILENCE_MS},
            "transcription": {"model": "gpt-4o-transcribe"},
        }
    },
}
CAPACITY_LINE = "Hi, I would like to return an order."
CAPACITY_GAP_MS = 3000


def emit(bench: str, metric: str, value: float, unit: str, **extra: Any) -> None:
    print(
        json.dumps({"bench": bench, "metric": metric, "value": round(value, 3), "unit": unit, **extra}),
        flush=True,
    )


NOISE_DBFS = -60.0  # a quiet microphone's floor: the VAD runs on every frame, as on a real call


def pcm(text: str) -> bytes:
    return (synthesize(text, voice="echo").samples * 32767).astype("<i2").tobytes()


def with_noise(clip: bytes, seed: int = 0) -> bytes:
    """`clip` (PCM16) plus white noise at NOISE_DBFS RMS, so that silence is not digital silence."""
    samples = np.frombuffer(clip, dtype="<i2").astype(np.float32)
    rms = 32768 * 10 ** (NOISE_DBFS / 20)
    noise = np.random.default_rng(seed).normal(0.0, rms, samples.size)
    return np.clip(samples + noise, -32768, 32767).astype("<i2").tobytes()


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


def trigger_chunks(speech: bytes, gap_ms: int, seconds: float) -> dict[int, int]:
    """audio_end_ms of each speech_stopped -> index of the 40 ms chunk whose arrival lets the VAD decide.

    The server runs the same detector over the same chunks, so a replica here says exactly which chunk
    triggers each event; latency counted from that chunk's send time is the server's own (the 12-92 ms the
    detector must wait for, 32 ms frames, the resampler delay and the 40 ms chunking, are left out).
    """
    from voicelab.audio.turns import TurnDetection, TurnDetector

    detector = TurnDetector(TurnDetection(0.5, 300, SILENCE_MS), "silero", 24000)
    cycles = int(seconds * 1000 / (len(speech) / 48 + gap_ms)) + 2
    step = CHUNK_MS * 48
    # the same pieces as Client.streamer sends: each block cut in 40 ms chunks, its last one shorter
    pieces = [
        block[i : i + step]
        for block in (speech, with_noise(bytes(gap_ms * 48), seed=1))
        for i in range(0, len(block), step)
    ]
    found: dict[int, int] = {}
    for index, piece in enumerate(pieces * cycles):
        samples = np.frombuffer(piece, dtype="<i2").astype(np.float32) / 32768.0
        for event in detector.push(samples):
            if hasattr(event, "audio_end_ms"):
                found[int(event.audio_end_ms)] = index
    return found


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
        self.gap = with_noise(bytes(gap_ms * 48), seed=1)
        self.index = index
        self.start = 0.0
        self.pings: dict[str, float] = {}
        self.rtts: list[float] = []
        self.stopped: list[float] = []
        self.decided: list[float] = []  # speech_stopped arrival after the chunk that triggered it was sent
        self.triggers: dict[int, int] = {}
        self.sent_at: list[float] = []  # when each chunk was sent
        self.speech_ends: list[float] = []
        self.first_deltas: list[float] = []
        self.stopped_at: list[float] = []
        self.stopped_to_delta: list[float] = []
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
                trigger = self.triggers.get(int(event["audio_end_ms"]))
                if trigger is not None and trigger < len(self.sent_at):
                    self.decided.append((now - self.sent_at[trigger]) * 1000)
                self.stopped_at.append(now)
                self.awaiting_delta = True
            elif kind == "response.output_audio.delta" and self.awaiting_delta:
                self.awaiting_delta = False
                self.first_deltas.append(now)
                self.stopped_to_delta.append((now - self.stopped_at[-1]) * 1000)

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
                    self.sent_at.append(time.perf_counter())
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


async def stage(
    url: str,
    clients: int,
    seconds: float,
    speech: bytes,
    gap_ms: int,
    session: dict[str, Any] = SESSION,
    first: int = 0,
    of: int | None = None,
) -> list[Client]:
    """`clients` sessions (numbers `first`.. of `of` in all, for the stagger) for `seconds`."""
    of = of or clients
    triggers = trigger_chunks(speech, gap_ms, seconds)
    connections = [await connect(url + "?model=gpt-realtime", max_size=None) for _ in range(clients)]
    try:
        runners = [Client(ws, speech, gap_ms, first + i) for i, ws in enumerate(connections)]
        for runner in runners:
            runner.triggers = triggers
        for ws in connections:
            await ws.send(json.dumps({"type": "session.update", "session": session}))
        until = time.perf_counter() + seconds
        readers = [asyncio.create_task(c.reader()) for c in runners]

        # stagger the callers so that their turns do not all end at the same moment
        async def run(client: Client, delay: float) -> None:
            await asyncio.sleep(delay)
            await asyncio.gather(client.streamer(until), client.pinger(until))

        stagger = (len(speech) / 48 + gap_ms) / 1000
        await asyncio.gather(*(run(c, c.index * stagger / of) for c in runners))
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
            speech_stopped_after_its_audio_p50_ms=round(p(client.stopped, 50), 3),
            speech_stopped_after_trigger_chunk_p50_ms=round(p(client.decided, 50), 3),
            speech_stopped_to_first_delta_p50_ms=round(p(client.stopped_to_delta, 50), 3),
        )
    finally:
        stop_server(proc)


async def client_process(
    url: str, clients: int, first: int, of: int, seconds: float, transcribe: bool
) -> None:
    """One client process of a capacity stage: runs its sessions, prints their figures as one JSON line."""
    speech = with_noise(pcm(CAPACITY_LINE))
    session = TRANSCRIBED_SESSION if transcribe else SESSION
    runners = await stage(url, clients, seconds, speech, CAPACITY_GAP_MS, session, first, of)
    result = {
        "rtts": [r for c in runners for r in c.rtts],
        "stopped": [r for c in runners for r in c.stopped],
        "decided": [r for c in runners for r in c.decided],
        "replies": sum(len(c.first_deltas) for c in runners),
    }
    print(json.dumps(result), flush=True)


def run_stage(url: str, n: int, seconds: float, procs: int, transcribe: bool) -> dict[str, list[float]]:
    """N sessions split over `procs` client processes; their figures merged."""
    procs = max(1, min(procs, n))
    shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    firsts = [sum(shares[:i]) for i in range(procs)]
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--client", url, str(share), str(first), str(n), str(seconds)]
            + (["--transcribe"] if transcribe else []),
            stdout=subprocess.PIPE,
            text=True,
        )
        for share, first in zip(shares, firsts, strict=True)
    ]
    merged: dict[str, Any] = {"rtts": [], "stopped": [], "decided": [], "replies": 0}
    for child in children:
        out, _ = child.communicate(timeout=seconds + 120)
        part = json.loads(out.strip().splitlines()[-1])
        merged["rtts"] += part["rtts"]
        merged["stopped"] += part["stopped"]
        merged["decided"] += part["decided"]
        merged["replies"] += part["replies"]
    return merged


def capacity(stage_s: float, max_clients: int, procs: int, transcribe: bool) -> None:
    proc, url = start_server("realtime")
    time.sleep(1.5)  # the worker process builds the transcription grammar
    label = "with_transcription" if transcribe else "vad_replies"
    try:
        run_stage(url, 2, 4.0, 1, transcribe)  # warm-up (first decoders, first TTS calls): not counted
        best = 0
        n = 1
        while n <= max_clients:
            figures = run_stage(url, n, stage_s, procs, transcribe)
            rtts, stopped, decided = figures["rtts"], figures["stopped"], figures["decided"]
            worst = max(p(rtts, 99), p(decided, 99)) if rtts and decided else float("inf")
            emit(
                "server",
                f"event_latency_p99_ms_at_{n}_sessions_{label}",
                worst,
                "ms",
                ping_p50=round(p(rtts, 50), 3),
                ping_p99=round(p(rtts, 99), 3),
                speech_stopped_after_trigger_chunk_p50=round(p(decided, 50), 3),
                speech_stopped_after_trigger_chunk_p99=round(p(decided, 99), 3),
                speech_stopped_after_its_audio_p50=round(p(stopped, 50), 3),
                speech_stopped_after_its_audio_p99=round(p(stopped, 99), 3),
                pings=len(rtts),
                turns=len(stopped),
                replies=figures["replies"],
                client_processes=min(procs, n),
            )
            if worst >= 50:
                break
            best = n
            n = n * 2 if n < 16 else n + 16
        emit(
            "server",
            f"realtime_sessions_with_p99_under_50ms_{label}",
            best,
            "sessions",
            target=100,
            cores=2,
            stage_s=stage_s,
            processes=f"1 server (+1 transcription worker), {procs} client processes",
            session=(
                f"{CAPACITY_LINE!r} (~2.5 s) then {CAPACITY_GAP_MS} ms of silence, repeated, with white "
                f"noise at {NOISE_DBFS:.0f} dBFS throughout, 40 ms "
                "real-time chunks, server_vad (silence 500 ms), paced audio replies, a ping every 200 ms"
                + (", input transcription events" if transcribe else "")
            ),
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
    parser.add_argument("--stage-s", type=float, default=8.0, help="seconds per capacity stage")
    parser.add_argument("--max-clients", type=int, default=256)
    parser.add_argument("--client-procs", type=int, default=2, help="client processes per capacity stage")
    parser.add_argument("--turns", type=int, default=6, help="turns for the reply-latency figure")
    parser.add_argument("--only", choices=("scenario", "latency", "capacity"), default=None)
    parser.add_argument(
        "--client", nargs=5, metavar=("URL", "N", "FIRST", "OF", "SECONDS"), help=argparse.SUPPRESS
    )
    parser.add_argument("--transcribe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        url, n, first, of, seconds = args.client
        asyncio.run(client_process(url, int(n), int(first), int(of), float(seconds), args.transcribe))
        return
    if args.only in (None, "scenario"):
        asyncio.run(scenario_speed())
    if args.only in (None, "latency"):
        asyncio.run(reply_latency(args.turns))
    if args.only in (None, "capacity"):
        capacity(args.stage_s, args.max_clients, args.client_procs, transcribe=False)
        capacity(args.stage_s, args.max_clients, args.client_procs, transcribe=True)


if __name__ == "__main__":
    main()
