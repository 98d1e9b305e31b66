"""Cockpit bench: a live call in a real browser, and a 10-minute call's kernel memory.

Live call (Debian Chromium + JupyterLab, tests/browser/browser_harness.py): the embedded server runs in its
own process (`voicelab serve`), so the kernel's CPU is the cockpit's and the session's. Chromium's fake
microphone speaks a four-turn caller; the bench clicks Connect, waits for the last answer, clicks Disconnect,
and reads what a notebook cell wrote:
- mic -> append: the browser's capture time of a batch's first sample (batch end minus batch_ms) to the moment
  the kernel sent the `input_audio_buffer.append` carrying it; p50/p95;
- played_ms vs the audio clock: between consecutive reports of one item while it plays, how far the played
  ms moved from the AudioContext clock (ms);
- kernel -> browser messages per second during the call (Jupyter drops past ~1000/s);
- kernel CPU during the call, % of one core, against the same kernel idle for 5 s before Connect (baseline).

10-minute call (no browser, server at pace="fast"): 10 minutes of caller audio go through the microphone
widget's message path, and the kernel process's RSS growth from minute 1 to minute 10 is reported, with the
server in its own process (the cockpit's and session's share) and in the kernel (Lab.local).

Prints one JSON line per figure ({"bench": "cockpit", ...}). Run: ``python bench/bench_cockpit.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from browser_harness import (  # noqa: E402
    browser_unavailable_reason,
    launch_chromium,
    open_notebook,
    start_jupyter,
)

LINES = [
    "Hi, I would like to return an order.",
    "The order number is four five six seven.",
    "Yes, please send me the return label.",
    "No, that is all. Thank you, goodbye.",
]
PAUSE_S = 6.0

CELLS = [
    """import asyncio, json, os, time, resource
from pathlib import Path
import voicelab

config = voicelab.SessionConfig(
    turn_detection={"type": "server_vad", "silence_duration_ms": 500},
    transcription={"model": "gpt-4o-mini-transcribe"},
)
lab = voicelab.Lab(config, url=os.environ["BENCH_URL"], api_key="sk-local")
lab""",
    """def _write(state):
    tmp = Path("bench_state.partial")
    tmp.write_text(json.dumps(state, default=str))
    tmp.replace("bench_state.json")

async def _monitor():
    idle_t, idle_cpu = time.monotonic(), time.process_time()
    await asyncio.sleep(5.0)
    idle = (time.process_time() - idle_cpu) / (time.monotonic() - idle_t)
    while lab.state != "open":
        await asyncio.sleep(0.05)
    t0, cpu0, msgs0 = time.monotonic(), time.process_time(), lab.messages_to_browser()
    while True:
        dt = time.monotonic() - t0
        state = {"idle_cpu": idle, "call_s": dt, "state": lab.state,
                 "call_cpu": (time.process_time() - cpu0) / max(dt, 1e-9),
                 "messages": lab.messages_to_browser() - msgs0,
                 "transcript": lab.transcript.text(), "stats": lab.stats(),
                 "player_log": lab.player.stats.log, "batch_ms": lab.mic.batch_ms}
        _write(state)
        if lab.state != "open":
            return
        await asyncio.sleep(0.5)

_task = asyncio.get_running_loop().create_task(_monitor())""",
]


def emit(metric: str, value: float, unit: str, **tags: Any) -> None:
    record = {"bench": "cockpit", "metric": metric, "value": round(float(value), 3), "unit": unit, **tags}
    print(json.dumps(record), flush=True)


def caller_wav(path: Path) -> float:
    import voicelab
    from voicelab.audio.core import Audio
    from voicelab.speech import synthesize

    parts = [np.zeros(48000, np.float32)]
    for line in LINES:
        spoken = np.asarray(synthesize(line).samples, np.float32)
        parts += [spoken, np.zeros(int(PAUSE_S * 24000), np.float32)]
    samples = np.concatenate(parts)
    voicelab.write_audio(path, Audio.from_array(samples, 24000))
    return len(samples) / 24000


def played_vs_clock(log: list[list[Any]]) -> float:
    """Largest difference between played-ms steps and audio-clock steps of consecutive reports of an item."""
    worst = 0.0
    for prev, cur in itertools.pairwise(log):
        if prev[0] != cur[0] or prev[2] is None or cur[2] is None or cur[3] or prev[3]:
            continue
        worst = max(worst, abs((cur[1] - prev[1]) - (cur[2] - prev[2]) * 1000.0))
    return worst


def live_call() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        duration = caller_wav(work / "caller.wav")
        serve = subprocess.Popen(
            [sys.executable, "-m", "voicelab", "serve", "--pace", "realtime"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert serve.stdout is not None
            first = serve.stdout.readline()
            url = re.search(r"ws://\S+", first)
            if url is None:
                raise RuntimeError(f"voicelab serve printed {first!r}")
            os.environ["BENCH_URL"] = url.group(0)
            server = start_jupyter(work / "lab")
            try:
                server.write_notebook("bench.ipynb", CELLS)
                with sync_playwright() as playwright:
                    browser = launch_chromium(playwright, fake_mic=work / "caller.wav")
                    page = browser.new_context().new_page()
                    lab = open_notebook(page, server, "bench.ipynb")
                    lab.run_all()
                    page.wait_for_timeout(5500)  # the idle baseline
                    lab.click("Connect")
                    server.wait_for_json(
                        "bench_state.json",
                        lambda s: (
                            "goodbye" in s.get("transcript", "").lower()
                            and s["transcript"].count("assistant:") >= 4
                        ),
                        timeout=duration + 40,
                    )
                    page.wait_for_timeout(3000)  # the last answer plays out
                    lab.click("Disconnect")
                    state = server.wait_for_json(
                        "bench_state.json", lambda s: s["state"] != "open", timeout=30
                    )
                    browser.close()
            finally:
                server.stop()
        finally:
            serve.terminate()
            serve.wait(10)
    stats = state["stats"]
    delays = np.asarray(stats["mic_to_send_ms"], float) + state["batch_ms"]
    emit("mic_to_append_p50", float(np.percentile(delays, 50)), "ms", batches=len(delays))
    p95 = float(np.percentile(delays, 95))
    emit("mic_to_append_p95", p95, "ms", batch_ms=state["batch_ms"], target="<= 80")
    emit("played_vs_audio_clock_max", played_vs_clock(state["player_log"]), "ms", target="<= 30")
    emit(
        "messages_to_browser_per_s",
        state["messages"] / state["call_s"],
        "1/s",
        call_s=round(state["call_s"], 1),
        jupyter_limit=1000,
        target="<= 100",
    )
    emit(
        "kernel_cpu_during_call",
        100 * state["call_cpu"],
        "% of a core",
        idle_baseline=round(100 * state["idle_cpu"], 2),
        ratio_to_idle=round(state["call_cpu"] / max(state["idle_cpu"], 1e-6), 1),
        target="< 15",
    )
    emit(
        "mic_gaps",
        stats["mic_gaps"],
        "batches",
        mic_s=round(stats["mic_ms"] / 1000, 1),
        underruns=stats["player_underruns"],
    )


def rss_mb() -> float:
    text = Path("/proc/self/status").read_text()
    kb = int(re.search(r"VmRSS:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    return kb / 1024


async def ten_minute_call(minutes: float = 10.0, *, server_in_process: bool = True) -> None:
    import voicelab
    from voicelab.demo import caller_turns
    from voicelab.widgets import Lab

    config = voicelab.SessionConfig(
        turn_detection={"type": "server_vad", "silence_duration_ms": 500},
        transcription={"model": "gpt-4o-mini-transcribe"},
    )
    turns = [t.to_realtime().to_pcm16() for t in caller_turns()]
    serve = None
    with tempfile.TemporaryDirectory() as workdir:
        if server_in_process:  # Lab.local, as a notebook runs it
            lab = Lab.local(config, pace="fast", record_dir=workdir)
        else:  # the kernel's own share: the server in another process
            command = [sys.executable, "-m", "voicelab", "serve", "--pace", "fast"]
            serve = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            assert serve.stdout is not None
            url = re.search(r"ws://\S+", serve.stdout.readline())
            assert url is not None
            lab = Lab(config, url=url.group(0), api_key="sk-local", record_dir=workdir)
        lab.player.send = lambda content, buffers=None: None  # no browser: what the comm would carry
        lab.timeline.send = lambda content, buffers=None: None
        lab.event_log.send = lambda content, buffers=None: None
        try:
            await lab.connect()
            seq, sent_ms, marks = 0, 0.0, {}
            started = time.perf_counter()
            while sent_ms < minutes * 60_000:
                for turn in turns:
                    pcm = turn + bytes(4 * 48000)  # the turn, then 4 s of silence
                    for offset in range(0, len(pcm), 1920):
                        seq += 1
                        chunk = pcm[offset : offset + 1920]
                        lab.mic._on_custom(lab.mic, {"type": "audio", "seq": seq}, [memoryview(chunk)])
                        sent_ms += len(chunk) / 48
                        if seq % 25 == 0:
                            await asyncio.sleep(0.002)  # the sender and the server keep up
                    minute = int(sent_ms // 60_000)
                    if minute not in marks:
                        marks[minute] = rss_mb()
            await asyncio.sleep(1.0)
            end = rss_mb()
            wall = time.perf_counter() - started
            await lab.disconnect()
        finally:
            await lab.close()
            if serve is not None:
                serve.terminate()
                serve.wait(10)
    base = marks.get(1, marks[min(marks)])
    emit(
        "kernel_rss_growth_10min_call" if not server_in_process else "kernel_rss_growth_10min_call_lab_local",
        end - base,
        "MiB",
        from_minute=1,
        rss_minute1=round(base, 1),
        rss_end=round(end, 1),
        call_min=minutes,
        server="in the kernel (Lab.local)" if server_in_process else "own process",
        wall_s=round(wall, 1),
        target="< 50",
    )


def main() -> None:
    reason = browser_unavailable_reason()
    if reason:
        print(f"bench_cockpit: live call skipped: {reason}", file=sys.stderr)
    else:
        live_call()
    asyncio.run(ten_minute_call(server_in_process=False))
    asyncio.run(ten_minute_call(server_in_process=True))


if __name__ == "__main__":
    main()
