"""Embedded server benchmarks on loopback. Prints one JSON line per figure.

1. A 10-turn call (the fixture caller lines, synthesized, with a -60 dBFS noise floor) at pace="fast", one
   session, transcription in-process: wall time against the call's real-time length (caller + assistant
   audio): the first run, and the median of 3 more runs of the same audio (a replay, as an experiment's
   repeats are); with the server in this process (the notebook case; target >= 100x) and in its own.
   Each of `--rounds` rounds is a fresh process (a first run is only one once per process), alternating
   with --before-src's code; the median over the rounds and every round's value are reported.
2. Capacity: N concurrent real-time sessions with server VAD. The server runs in its own process
   (`--services`, by default `EngineServices.pooled()`: transcription in its worker process); the callers
   run in OTHER processes (`--client-procs`, sessions split evenly). Each session streams 24 kHz caller
   speech (a synthesized fixture line, ~2.5 s) then 3 s of silence, with white noise at -60 dBFS
   throughout (never digital silence), each 40 ms chunk sent once it has been spoken (as a microphone
   would), and gets a paced audio reply per turn from the `returns_desk` script. Sessions start staggered
   over one cycle; counting starts once all N stream and lasts `--steady-s` (10 s). Event latency:
   `speech_stopped` arrival against the send time of the chunk that let the VAD decide (a replica of the
   detector names it), and a ping (every 200 ms a `conversation.item.retrieve` of a missing item, timed to
   its `error` echo). Each N runs `--repeats` times; an N passes when the median over the repeats of
   max(p99 ping, p99 speech_stopped) is under 50 ms (min and max reported). The server's CPU over the
   counted window, in % of one core per session, is split by stage: the event loop thread, the batched VAD
   thread, other threads, the transcription worker process. `--services` may list several constructors
   (e.g. "pooled()" "pooled(batch_vad=False)") to compare designs in the same run.
3. End of user speech -> first audio delta over `--turns` turns of one session, mic-like as above: the
   caller says the 10 fixture lines in turn, 1.5 s apart, so that each speech ends at another point of the
   40 ms chunking (one line said over and over ends at the same point every time: its chunk wait is one
   value, not a distribution). The caller knows where its speech ends: the last loud sample, as spoken.
   Each turn's floor is the least any server could do: from that speech end to the send of the chunk that
   reaches speech end + silence_duration_ms (a perfect VAD, no server time; 500-540 ms, 520 on average);
   `over_floor` is the rest: the VAD's offset error, the turn decision and the server's response. Targets
   p50 <= 520 ms, p95 <= 560 ms with silence_duration_ms 500. `--rounds` fresh servers, interleaved with
   --before-src's; all turns pooled.

    python bench/bench_server.py [--steady-s 10] [--sessions 8 16 ...] [--repeats 3]
                                 [--services "pooled()" ...] [--transcription] [--only capacity]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
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


TAG = os.environ.get("VOICELAB_BENCH_TAG", "")  # "_before": a run of --before-src's code


def emit(bench: str, metric: str, value: float, unit: str, **extra: Any) -> None:
    record = {"bench": bench, "metric": metric + TAG, "value": round(value, 3), "unit": unit, **extra}
    print(json.dumps(record), flush=True)


NOISE_DBFS = -60.0  # a quiet microphone's floor: the VAD runs on every frame, as on a real call


def pcm(text: str) -> bytes:
    return (synthesize(text, voice="echo").samples * 32767).astype("<i2").tobytes()


def with_noise(clip: bytes, seed: int = 0) -> bytes:
    """`clip` (PCM16) plus white noise at NOISE_DBFS RMS, so that silence is not digital silence."""
    samples = np.frombuffer(clip, dtype="<i2").astype(np.float32)
    rms = 32768 * 10 ** (NOISE_DBFS / 20)
    noise = np.random.default_rng(seed).normal(0.0, rms, samples.size)
    return np.clip(samples + noise, -32768, 32767).astype("<i2").tobytes()


def start_server(
    pace: str, services: str = "pooled()", src: str | None = None, workers: int = 1
) -> tuple[subprocess.Popen[str], str]:
    """The server in its own process; `services` is an `EngineServices` constructor call; `src` a folder
    holding another voicelab package to run instead; `workers` > 1: `Server(workers=N)`, N processes on
    the port. A `threads` line on its stdin answers with its threads' names and native ids (for the CPU
    split) and its worker processes' ids ("_workers"); EOF stops it."""
    extra = f", workers={workers}" if workers > 1 else ""
    code = (
        "import json, sys, threading\n"
        "from voicelab.server import EngineServices, Server\n"
        f"s = Server('returns_desk', pace={pace!r}, services=EngineServices.{services}{extra})\n"
        "print(s.url, flush=True)\n"
        "for line in sys.stdin:\n"
        "    names = {t.name: t.native_id for t in threading.enumerate()}\n"
        "    names['_workers'] = getattr(s, 'worker_pids', [])\n"
        "    print(json.dumps(names), flush=True)\n"
        "s.close()\n"
    )
    env = None if src is None else {**os.environ, "PYTHONPATH": src}
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=src,  # `python -c` imports from its working folder first
        env=env,
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


def trigger_chunks(speeches: list[bytes], gap_ms: int, seconds: float) -> dict[int, int]:
    """audio_end_ms of each speech_stopped -> index of the 40 ms chunk whose arrival lets the VAD decide.

    The server runs the same detector over the same chunks, so a replica here says exactly which chunk
    triggers each event; latency counted from that chunk's send time is the server's own (the wait for the
    silence and the 40 ms chunking are left out).
    """
    from voicelab.audio.turns import TurnDetection, TurnDetector

    detector = TurnDetector(TurnDetection(0.5, 300, SILENCE_MS), "silero", 24000)
    cycle_ms = sum(len(speech) / 48 + gap_ms for speech in speeches)
    cycles = int(seconds * 1000 / cycle_ms) + 2
    step = CHUNK_MS * 48
    # the same pieces as Client.streamer sends: each block cut in 40 ms chunks, its last one shorter
    gap = with_noise(bytes(gap_ms * 48), seed=1)
    pieces = [
        block[i : i + step]
        for speech in speeches
        for block in (speech, gap)
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

    def __init__(self, ws: ClientConnection, speeches: list[bytes], gap_ms: int, index: int) -> None:
        self.ws = ws
        self.speeches = speeches  # said in turn, each followed by the gap
        self.gap = with_noise(bytes(gap_ms * 48), seed=1)
        self.index = index
        self.start = 0.0
        self.pings: dict[str, float] = {}
        self.rtts: list[float] = []
        self.stopped: list[float] = []
        self.decided: list[float] = []  # speech_stopped arrival after the chunk that triggered it was sent
        self.triggers: dict[int, int] = {}
        self.sent_at: list[float] = []  # when each chunk was sent
        self.chunk_ends_ms: list[float] = []  # where each chunk ends in the stream (each block is cut alone)
        self.speech_ends: list[float] = []
        # per turn: the least any server could answer in (its speech end -> the send of the chunk that
        # reaches speech end + silence_duration_ms: a perfect VAD and no server time)
        self.floors: list[float] = []
        self.first_deltas: list[float] = []
        self.stopped_at: list[float] = []
        self.stopped_to_delta: list[float] = []
        self.awaiting_delta = False
        self.window = (0.0, float("inf"))  # perf_counter span whose events are counted
        self.late_send_ms = 0.0  # the latest a chunk went out after it was spoken (client overload)

    def counted(self, at: float) -> bool:
        return self.window[0] <= at < self.window[1]

    async def reader(self) -> None:
        async for frame in self.ws:
            now = time.perf_counter()
            event = json.loads(frame)
            kind = event["type"]
            if kind == "error":
                sent = self.pings.pop(event["error"].get("event_id") or "", None)
                if sent is not None and self.counted(sent):
                    self.rtts.append((now - sent) * 1000)
            elif kind == "input_audio_buffer.speech_stopped":
                # the chunk holding audio_end_ms (the first that ends at or after it) and when it went out
                held = bisect.bisect_left(self.chunk_ends_ms, event["audio_end_ms"])
                if held < len(self.sent_at) and self.counted(self.sent_at[held]):
                    self.stopped.append((now - self.sent_at[held]) * 1000)
                trigger = self.triggers.get(int(event["audio_end_ms"]))
                sent_at = None
                if trigger is not None and trigger < len(self.sent_at):
                    sent_at = self.sent_at[trigger]
                if sent_at is not None and self.counted(sent_at):
                    self.decided.append((now - self.sent_at[trigger]) * 1000)
                self.stopped_at.append(now)
                self.awaiting_delta = True
            elif kind == "response.output_audio.delta" and self.awaiting_delta:
                self.awaiting_delta = False
                if not self.counted(self.stopped_at[-1]):
                    continue
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
            for speech in self.speeches:
                speech_end = sent_ms + speech_end_ms(speech)
                self.speech_ends.append(self.start + speech_end / 1000)
                floor = None
                for block in (speech, self.gap):
                    for offset in range(0, len(block), step):
                        piece = block[offset : offset + step]
                        sent_ms += len(piece) / 48
                        if floor is None and sent_ms >= speech_end + SILENCE_MS:
                            floor = sent_ms - speech_end
                        # a microphone has a chunk only once it has been spoken: wait for its end, then send
                        delay = self.start + sent_ms / 1000 - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        elif self.counted(time.perf_counter()):
                            self.late_send_ms = max(self.late_send_ms, -delay * 1000)
                        audio = base64.b64encode(piece).decode()
                        self.sent_at.append(time.perf_counter())
                        self.chunk_ends_ms.append(sent_ms)
                        await self.ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
                self.floors.append(floor if floor is not None else float("nan"))
                if time.perf_counter() >= until:
                    return

    def reply_gaps(self) -> list[tuple[float, float]]:
        """(speech end -> first audio delta, that turn's floor), for turns that got a reply."""
        gaps = []
        for delta in self.first_deltas:
            turns = [i for i, end in enumerate(self.speech_ends) if end < delta]
            if turns and turns[-1] < len(self.floors):
                gaps.append(((delta - self.speech_ends[turns[-1]]) * 1000, self.floors[turns[-1]]))
        return gaps


async def stage(
    url: str,
    clients: int,
    seconds: float,
    speeches: list[bytes],
    gap_ms: int,
    session: dict[str, Any] = SESSION,
    first: int = 0,
    of: int | None = None,
) -> list[Client]:
    """`clients` sessions (numbers `first`.. of `of` in all, for the stagger) for `seconds`, in one process;
    everything they see is counted (the reply-latency figure)."""
    of = of or clients
    triggers = trigger_chunks(speeches, gap_ms, seconds)
    connections = [await connect(url + "?model=gpt-realtime", max_size=None) for _ in range(clients)]
    try:
        runners = [Client(ws, speeches, gap_ms, first + i) for i, ws in enumerate(connections)]
        for runner in runners:
            runner.triggers = triggers
        for ws in connections:
            await ws.send(json.dumps({"type": "session.update", "session": session}))
        until = time.perf_counter() + seconds
        readers = [asyncio.create_task(c.reader()) for c in runners]
        await asyncio.gather(*(asyncio.gather(c.streamer(until), c.pinger(until)) for c in runners))
        await asyncio.sleep(0.5)
        for task in readers:
            task.cancel()
        return runners
    finally:
        for ws in connections:
            await ws.close()


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def emit_reply_latency(label: str, gaps: list[float], over: list[float], **extra: Any) -> None:
    """The reply-latency line: end of speech -> first audio delta over `gaps` (ms), its targets, and the
    time `over` each turn's floor; `label` ends the metric's name ("_before": the other code's)."""
    emit(
        "server",
        "speech_end_to_first_audio_delta_p50_ms" + label,
        statistics.median(gaps) if gaps else float("nan"),
        "ms",
        target=520,
        p95=round(p(gaps, 95), 3),
        p95_target=560,
        silence_duration_ms=SILENCE_MS,
        turns=len(gaps),
        over_floor_p50_ms=round(p(over, 50), 3),
        over_floor_p95_ms=round(p(over, 95), 3),
        **extra,
    )


async def reply_latency(turns: int) -> None:
    """One caller says the fixture lines in turn (each ends at another point of the 40 ms chunking, as real
    speech does), `turns` of them, 1.5 s apart."""
    speeches = [with_noise(pcm(line), seed=i) for i, line in enumerate(LINES)]
    proc, url = start_server("realtime")
    try:
        seconds = sum(len(speeches[i % len(speeches)]) / 48 + 1500 for i in range(turns)) / 1000
        (client,) = await stage(url, 1, seconds, speeches, 1500)
        pairs = client.reply_gaps()
        gaps = [gap for gap, _ in pairs]
        over = [gap - floor for gap, floor in pairs]
        emit_reply_latency(
            "",
            gaps,
            over,
            floor_p50_ms=round(p([floor for _, floor in pairs], 50), 3),
            speech_stopped_after_its_audio_p50_ms=round(p(client.stopped, 50), 3),
            speech_stopped_after_trigger_chunk_p50_ms=round(p(client.decided, 50), 3),
            speech_stopped_to_first_delta_p50_ms=round(p(client.stopped_to_delta, 50), 3),
            gaps_ms=[round(g, 2) for g in gaps],
            over_floor_ms=[round(o, 2) for o in over],
            method="mic-like: the 10 fixture lines in turn, each 40 ms chunk sent once spoken, noise floor "
            "-60 dBFS, speech end = when the last loud sample was spoken; floor = that turn's speech end -> "
            "the send of the chunk reaching speech end + silence_duration_ms (a perfect VAD, no server time)",
        )
    finally:
        stop_server(proc)


# --- capacity: N sessions in steady state ------------------------------------------------------------


async def client_process(
    url: str, clients: int, first: int, of: int, steady_s: float, transcribe: bool
) -> None:
    """One client process of a capacity stage. Connects its sessions, prints `ready`, waits for `go T`
    (T: a wall-clock time) on stdin; session k starts streaming at T + k * cycle / N (so that turns do
    not all end together); only what happens once all N stream, from T + cycle + 1 s for `steady_s`
    seconds, is counted. Prints its figures as one JSON line."""
    speech = with_noise(pcm(CAPACITY_LINE))
    session = TRANSCRIBED_SESSION if transcribe else SESSION
    cycle = (len(speech) / 48 + CAPACITY_GAP_MS) / 1000
    connections = [await connect(url + "?model=gpt-realtime", max_size=None) for _ in range(clients)]
    try:
        runners = [Client(ws, [speech], CAPACITY_GAP_MS, first + i) for i, ws in enumerate(connections)]
        for ws in connections:
            await ws.send(json.dumps({"type": "session.update", "session": session}))
        print("ready", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        go_wall = float(line.split()[1])
        go = time.perf_counter() + (go_wall - time.time())
        window = (go + cycle + 1.0, go + cycle + 1.0 + steady_s)
        until = window[1] + 0.3
        triggers = trigger_chunks([speech], CAPACITY_GAP_MS, until - go + cycle)
        for runner in runners:
            runner.triggers = triggers
            runner.window = window
        readers = [asyncio.create_task(c.reader()) for c in runners]

        async def run(client: Client) -> None:
            await asyncio.sleep(max(0.0, go + client.index * cycle / of - time.perf_counter()))
            await asyncio.gather(client.streamer(until), client.pinger(until))

        await asyncio.gather(*(run(c) for c in runners))
        await asyncio.sleep(0.5)
        for task in readers:
            task.cancel()
    finally:
        for ws in connections:
            await ws.close()
    result = {
        "rtts": [r for c in runners for r in c.rtts],
        "stopped": [r for c in runners for r in c.stopped],
        "decided": [r for c in runners for r in c.decided],
        "replies": sum(len(c.first_deltas) for c in runners),
        "late_send_ms": max(c.late_send_ms for c in runners),
    }
    print(json.dumps(result), flush=True)


class ServerCpu:
    """CPU seconds of the server process by stage: the event loop thread (WebSocket I/O, engine, the VAD
    front end), the batched VAD thread, other threads of the server process, the transcription workers,
    and with `workers=N` the N - 1 other server processes (all their threads)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        import psutil

        self.process = psutil.Process(proc.pid)
        self.proc = proc

    def sample(self) -> dict[str, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("threads\n")  # the VAD thread starts with the first session
        self.proc.stdin.flush()
        names: dict[str, Any] = json.loads(self.proc.stdout.readline())
        self.loop = names.get("voicelab-server")
        self.vad = names.get("voicelab-vad-batch")
        workers = set(names.get("_workers", []))
        out = {"loop": 0.0, "vad_thread": 0.0, "other_threads": 0.0, "transcription_worker": 0.0}
        if workers:
            out["worker_processes"] = 0.0
        for thread in self.process.threads():
            cpu = thread.user_time + thread.system_time
            key = "loop" if thread.id == self.loop else "vad_thread" if thread.id == self.vad else None
            out[key or "other_threads"] += cpu
        for child in self.process.children(recursive=True):
            times = child.cpu_times()
            key = "worker_processes" if child.pid in workers else "transcription_worker"
            out[key] += times.user + times.system
        return out


def run_stage(
    url: str,
    n: int,
    steady_s: float,
    procs: int,
    transcribe: bool,
    cpu: ServerCpu | None,
    src: str | None = None,
) -> dict[str, Any]:
    """N sessions split over `procs` client processes in steady state; their figures merged, and the
    server's CPU over the counted window (% of one core per session, by stage). `src`: the server runs
    that folder's voicelab, and so do the callers (their replica of the VAD names the trigger chunks)."""
    procs = max(1, min(procs, n))
    env = None if src is None else {**os.environ, "PYTHONPATH": src}
    shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    firsts = [sum(shares[:i]) for i in range(procs)]
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--client",
                url,
                str(share),
                str(first),
                str(n),
                str(steady_s),
            ]
            + (["--transcribe"] if transcribe else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=src,
        )
        for share, first in zip(shares, firsts, strict=True)
    ]
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("a client process failed to connect its sessions")
    go = time.time() + 0.3
    for child in children:
        assert child.stdin is not None
        child.stdin.write(f"go {go}\n")
        child.stdin.flush()
    cycle = (len(with_noise(pcm(CAPACITY_LINE))) / 48 + CAPACITY_GAP_MS) / 1000
    split: dict[str, float] = {}
    client_pct = float("nan")
    if cpu is not None:
        import psutil

        callers = [psutil.Process(child.pid) for child in children]

        def caller_cpu() -> float:
            return sum(sum(c.cpu_times()[:2]) for c in callers)

        time.sleep(max(0.0, go + cycle + 1.0 - time.time()))
        before, callers_before = cpu.sample(), caller_cpu()
        time.sleep(max(0.0, go + cycle + 1.0 + steady_s - time.time()))
        after, callers_after = cpu.sample(), caller_cpu()
        split = {k: round((after[k] - before[k]) / steady_s / n * 100, 3) for k in before}
        split["total"] = round(sum(split.values()), 3)
        client_pct = round((callers_after - callers_before) / steady_s / n * 100, 3)
    merged: dict[str, Any] = {"rtts": [], "stopped": [], "decided": [], "replies": 0, "late_send_ms": 0.0}
    merged["client_cpu_pct_per_session"] = client_pct
    for child in children:
        out, _ = child.communicate(timeout=steady_s + cycle + 120)
        part = json.loads(out.strip().splitlines()[-1])
        for key in ("rtts", "stopped", "decided"):
            merged[key] += part[key]
        merged["replies"] += part["replies"]
        merged["late_send_ms"] = max(merged["late_send_ms"], part["late_send_ms"])
    merged["cpu_pct_per_session"] = split
    return merged


def capacity(
    steady_s: float,
    sizes: list[int],
    repeats: int,
    procs: int,
    transcribe: bool,
    designs: list[tuple[str, str, str | None, int]],
) -> None:
    """The sweep over `sizes` for each design (label suffix, services, source folder or None, server
    processes), their
    stages interleaved (N, repeat, design) so that machine load hits them alike; each N `repeats` times; a
    design stops after its first N whose median p99 fails."""
    kind = "with_transcription" if transcribe else "vad_replies"
    servers = {
        label: start_server("realtime", services, src, workers) for label, services, src, workers in designs
    }
    time.sleep(1.5)  # the worker processes build the transcription grammar
    try:
        cpus = {label: ServerCpu(proc) for label, (proc, _) in servers.items()}
        sources = {label: src for label, _, src, _ in designs}
        for label, (_, url) in servers.items():
            run_stage(
                url, 2, 2.0, 1, transcribe, None, sources[label]
            )  # warm-up (first decoders, TTS calls): not counted
        best = {label: 0 for label in servers}
        best_cpu: dict[str, dict[str, float]] = {label: {} for label in servers}
        running = list(servers)
        for n in sizes:
            if not running:
                break
            worst: dict[str, list[float]] = {label: [] for label in running}
            figures: dict[str, list[dict[str, Any]]] = {label: [] for label in running}
            for _ in range(repeats):
                for label in running:
                    figure = run_stage(
                        servers[label][1], n, steady_s, procs, transcribe, cpus[label], sources[label]
                    )
                    rtts, decided = figure["rtts"], figure["decided"]
                    worst[label].append(
                        max(p(rtts, 99), p(decided, 99)) if rtts and decided else float("inf")
                    )
                    figures[label].append(figure)
            for label in list(running):
                middle = statistics.median(worst[label])
                runs = figures[label]
                pick = runs[worst[label].index(sorted(worst[label])[(len(runs) - 1) // 2])]
                rtts, stopped, decided = pick["rtts"], pick["stopped"], pick["decided"]
                cpu_split = {
                    k: round(statistics.median(f["cpu_pct_per_session"][k] for f in runs), 3)
                    for k in runs[0]["cpu_pct_per_session"]
                }
                emit(
                    "server",
                    f"event_latency_p99_ms_at_{n}_sessions_{kind}{label}",
                    middle,
                    "ms",
                    repeats=repeats,
                    p99_min=round(min(worst[label]), 3),
                    p99_max=round(max(worst[label]), 3),
                    repeats_under_50ms=sum(w < 50 for w in worst[label]),
                    ping_p50=round(p(rtts, 50), 3),
                    ping_p99=round(p(rtts, 99), 3),
                    speech_stopped_after_trigger_chunk_p50=round(p(decided, 50), 3),
                    speech_stopped_after_trigger_chunk_p99=round(p(decided, 99), 3),
                    speech_stopped_after_its_audio_p50=round(p(stopped, 50), 3),
                    pings=len(rtts),
                    turns=len(stopped),
                    replies=pick["replies"],
                    client_send_late_max_ms=round(max(f["late_send_ms"] for f in runs), 1),
                    server_cpu_pct_of_core_per_session=cpu_split,
                    client_cpu_pct_of_core_per_session=round(
                        statistics.median(f["client_cpu_pct_per_session"] for f in runs), 3
                    ),
                    load_1min=round(os.getloadavg()[0], 2),
                    client_processes=min(procs, n),
                )
                if middle >= 50:
                    running.remove(label)
                else:
                    best[label], best_cpu[label] = n, cpu_split
        for label, services, src, workers in designs:
            emit(
                "server",
                f"realtime_sessions_with_p99_under_50ms_{kind}{label}",
                best[label],
                "sessions",
                target=100,
                cores=2,
                steady_s=steady_s,
                repeats=repeats,
                server_cpu_pct_of_core_per_session=best_cpu[label],
                cpu_target_pct=1.0,
                services=services,
                code=src or "this checkout",
                processes=f"{workers} server process{'es' if workers > 1 else ''} (+1 transcription "
                f"worker each), {procs} client processes",
                workers=workers,
                session=(
                    f"{CAPACITY_LINE!r} (~2.5 s) then {CAPACITY_GAP_MS} ms of silence, repeated, with white "
                    f"noise at {NOISE_DBFS:.0f} dBFS throughout, each 40 ms chunk sent once spoken, "
                    "server_vad (silence 500 ms), paced audio replies, a ping every 200 ms"
                    + (", input transcription events" if transcribe else "")
                ),
                method="all N stream before counting starts (starts staggered over one cycle), then "
                f"{steady_s:.0f} s counted; p99 of ping RTT and of speech_stopped after its trigger chunk; "
                f"an N passes when the median of {repeats} repeats does; designs interleaved per repeat",
            )
    finally:
        for proc, _ in servers.values():
            stop_server(proc)


async def scenario_speed(in_process: bool, services: str) -> None:
    """The 10-turn call at pace="fast": the server in this process (the notebook case) or in its own."""
    from voicelab.server import EngineServices, Server

    callers = [with_noise(pcm(line) + bytes(800 * 48), seed=i) for i, line in enumerate(LINES)]
    proc = None
    server = None
    if in_process:
        server = Server("returns_desk", pace="fast", services=eval(f"E.{services}", {"E": EngineServices}))
        url = server.url
    else:
        proc, url = start_server("fast", services=services)
    await asyncio.sleep(1.0)  # the server builds the transcription grammar in the background at start
    try:
        walls: list[float] = []
        for _ in range(4):
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
                walls.append((time.perf_counter() - start) * 1000)
        real_ms = sum(len(a) for a in callers) / 48 + assistant_bytes / 48
        where = "one_process" if in_process else "server_own_process"
        # the first run decodes every turn; the others replay the same audio (an experiment's repeats)
        for label, runs in (("first_run", walls[:1]), ("replayed", walls[1:])):
            wall_ms = statistics.median(runs)
            emit(
                "server",
                f"ten_turn_scenario_speedup_{where}_{label}",
                real_ms / wall_ms,
                "x",
                target=100 if in_process else 50,
                baseline="real-time length",
                wall_ms=round(wall_ms, 1),
                realtime_ms=round(real_ms, 1),
                spread=[round(real_ms / w, 1) for w in sorted(runs, reverse=True)],
                services=services,
            )
    finally:
        if server is not None:
            server.close()
        if proc is not None:
            stop_server(proc)


def child_rounds(stage: str, rounds: int, before_src: str | None, extra: list[str]) -> dict[str, list[Any]]:
    """`rounds` runs of a stage, each in a fresh process (so that a first run really is one: no cache
    of an earlier round), this checkout's and --before-src's alternating; their JSON lines by label."""
    script = str(Path(__file__).resolve())
    designs = ([("_before", before_src)] if before_src else []) + [("", None)]
    found: dict[str, list[Any]] = {label: [] for label, _ in designs}
    for _ in range(rounds):
        for label, src in designs:
            env = {**os.environ, "VOICELAB_BENCH_TAG": ""}
            if src is not None:
                env["PYTHONPATH"] = src  # run from there: `python -c` servers import its voicelab
            out = subprocess.run(
                [sys.executable, script, "--child-stage", stage, *extra],
                env=env,
                cwd=src,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            found[label].append([json.loads(line) for line in out.splitlines() if line.startswith("{")])
    return found


def scenario_rounds(rounds: int, before_src: str | None) -> None:
    """The 10-turn call's figures over `rounds` fresh processes: the median, and every round's value."""
    load = round(os.getloadavg()[0], 2)
    for label, runs in child_rounds("scenario", rounds, before_src, []).items():
        by_metric: dict[str, list[dict[str, Any]]] = {}
        for lines in runs:
            for line in lines:
                by_metric.setdefault(line["metric"], []).append(line)
        for metric, lines in by_metric.items():
            values = [line["value"] for line in lines]
            first = lines[0]
            emit(
                "server",
                metric + label,
                statistics.median(values),
                "x",
                target=first["target"],
                baseline=first["baseline"],
                realtime_ms=first["realtime_ms"],
                rounds=len(values),
                spread=sorted(round(v, 1) for v in values),
                each_round="first run of a fresh process"
                if "first_run" in metric
                else "median of 3 replays in a fresh process",
                services=first["services"],
                code=before_src if label else "this checkout",
                load_1min=load,
            )


def latency_rounds(rounds: int, before_src: str | None, turns: int) -> None:
    """End of speech -> first audio delta over `rounds` fresh servers: all turns pooled, p50 and p95,
    and each round's p50."""
    load = round(os.getloadavg()[0], 2)
    for label, runs in child_rounds("latency", rounds, before_src, ["--turns", str(turns)]).items():
        lines = [line for lines in runs for line in lines]
        gaps = [g for line in lines for g in line["gaps_ms"]]
        over = [o for line in lines for o in line["over_floor_ms"]]
        first = lines[0]
        emit_reply_latency(
            label,
            gaps,
            over,
            rounds=len(lines),
            round_p50s=sorted(round(line["value"], 1) for line in lines),
            round_p95s=sorted(round(line["p95"], 1) for line in lines),
            floor_p50_ms=round(statistics.median(line["floor_p50_ms"] for line in lines), 3),
            speech_stopped_after_trigger_chunk_p50_ms=round(
                statistics.median(line["speech_stopped_after_trigger_chunk_p50_ms"] for line in lines), 3
            ),
            speech_stopped_to_first_delta_p50_ms=round(
                statistics.median(line["speech_stopped_to_first_delta_p50_ms"] for line in lines), 3
            ),
            method=first["method"] + "; rounds interleaved with the other code's",
            code=before_src if label else "this checkout",
            load_1min=load,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steady-s", type=float, default=10.0, help="counted seconds per capacity stage")
    parser.add_argument(
        "--sessions", type=int, nargs="+", default=[8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 160]
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each N")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes per capacity stage")
    parser.add_argument(
        "--turns", type=int, default=10, help="turns for the reply-latency figure (the fixture lines in turn)"
    )
    parser.add_argument(
        "--services",
        nargs="+",
        default=["pooled()"],
        help="EngineServices constructors to compare in the same run, e.g. 'pooled(batch_vad=False)'",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        help="server processes sharing the port (Server(workers=N)); several values are compared in the "
        "same run, e.g. --workers 1 2",
    )
    parser.add_argument("--transcription", action="store_true", help="also sweep with transcription events")
    parser.add_argument(
        "--before-src",
        metavar="DIR",
        help="a folder holding another version's voicelab package (e.g. `git archive <commit> voicelab`): "
        "its figures are measured in the same run, interleaved, their names ending in _before",
    )
    parser.add_argument(
        "--only", nargs="+", choices=("scenario", "latency", "capacity"), default=None, help="these stages"
    )
    parser.add_argument(
        "--client", nargs=5, metavar=("URL", "N", "FIRST", "OF", "SECONDS"), help=argparse.SUPPRESS
    )
    parser.add_argument("--transcribe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="scenario and latency: fresh processes per design, interleaved with --before-src's",
    )
    parser.add_argument("--child-stage", choices=("scenario", "latency"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        url, n, first, of, seconds = args.client
        asyncio.run(client_process(url, int(n), int(first), int(of), float(seconds), args.transcribe))
        return
    if args.child_stage == "scenario":
        asyncio.run(scenario_speed(True, "default()"))
        asyncio.run(scenario_speed(False, "default()"))
        return
    if args.child_stage == "latency":
        asyncio.run(reply_latency(args.turns))
        return
    stages = set(args.only or ("scenario", "latency", "capacity"))
    if "scenario" in stages:
        scenario_rounds(args.rounds, args.before_src)
    if "capacity" in stages:
        designs: list[tuple[str, str, str | None, int]] = []
        if args.before_src:
            designs.append(("_before", "pooled()", args.before_src, 1))
        for workers in args.workers:
            for services in args.services:
                tag = "" if services == "pooled()" else "_" + re.sub(r"\W+", "_", services).strip("_")
                tag += f"_workers{workers}" if workers > 1 else ""
                designs.append((tag, services, None, workers))
        capacity(args.steady_s, args.sessions, args.repeats, args.client_procs, False, designs)
        if args.transcription:
            capacity(args.steady_s, args.sessions, args.repeats, args.client_procs, True, designs)
    if "latency" in stages:
        latency_rounds(args.rounds, args.before_src, args.turns)


if __name__ == "__main__":
    main()
