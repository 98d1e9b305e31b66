"""The sans-I/O server engine's own cost, and what handing a brain's work to a thread costs. JSON lines.

1. `engine_session_cost`: a server-VAD session (40 ms appends of a caller saying 8 turns, each answered by
   the returns_desk script with espeak speech, a ping every 10 appends) through `Engine.receive/advance` at
   pace "fast", with a cheap energy VAD and an instant transcriber so that the engine's logic is what is
   timed. This engine against another revision's `voicelab/server/engine.py` (`--before-rev`, run against
   the same other modules), interleaved rounds, median wall time per session; ratio after/before.
2. `brain_decision`: one `response.create` answered by a bundled script brain, decided inline on the loop,
   against the same decision handed out (`Engine(hand_out_work=True)`, the brain wrapped so that it counts
   as a user's) and run by `Work.run_async` on `WorkerThreads` as app.py does, delivered back; median us per
   response, ratio handed-out/inline. Why bundled brains stay inline.

    python bench/bench_engine.py [--rounds 15] [--before-rev REV]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from voicelab.server.app import resolve_script
from voicelab.server.brains import BrainInput, Reply
from voicelab.server.engine import Engine
from voicelab.server.services import EngineServices, espeak_synthesizer
from voicelab.server.work import WorkerThreads

ROOT = Path(__file__).resolve().parent.parent


def energy_detector(threshold: float, prefix_ms: int, silence_ms: int, rate: int) -> Any:
    from voicelab.audio.turns import TurnDetection, TurnDetector

    return TurnDetector(TurnDetection(threshold, prefix_ms, silence_ms), "energy", rate)


def instant_transcriber(phrases: Any) -> Any:
    return lambda pcm16: "I would like to return an order."


SERVICES = EngineServices(espeak_synthesizer, energy_detector, instant_transcriber)


def caller_audio(turns: int) -> bytes:
    rng = np.random.default_rng(1)
    parts = []
    for _ in range(turns):
        tone = 0.3 * np.sin(np.arange(24 * 1200) * 2 * np.pi * 220 / 24000)
        parts.append(rng.normal(0, 0.0003, 24 * 700))
        parts.append(tone)
        parts.append(rng.normal(0, 0.0003, 24 * 1300))
    return (np.clip(np.concatenate(parts), -1, 1) * 32767).astype("<i2").tobytes()


def frames(turns: int) -> list[str]:
    pcm = caller_audio(turns)
    update = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad"}}}},
    }
    out = [json.dumps(update)]
    for index, offset in enumerate(range(0, len(pcm), 1920)):
        append = {
            "type": "input_audio_buffer.append",
            "audio": base64.b64encode(pcm[offset : offset + 1920]).decode(),
        }
        out.append(json.dumps(append))
        if index % 10 == 9:
            out.append(json.dumps({"type": "conversation.item.retrieve", "item_id": "item_missing"}))
    return out


def session(engine_class: Any, script: Any, session_frames: list[str]) -> tuple[float, int]:
    engine = engine_class(script, pace="fast", services=SERVICES, seed=1, wall_clock=lambda: 0.0)
    start = time.perf_counter()
    events = engine.start(0.0)
    now = 0.0
    for frame in session_frames:
        now += 40.0
        events += engine.receive(frame, now)
        while (due := engine.next_deadline()) is not None and due <= now:
            events += engine.advance(now)
    return time.perf_counter() - start, len(events)


def old_engine(rev: str) -> Any:
    source = subprocess.run(
        ["git", "show", f"{rev}:voicelab/server/engine.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "engine_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("engine_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Engine


def bench_session(rounds: int, rev: str) -> None:
    script = resolve_script("returns_desk")
    before = old_engine(rev)
    session_frames = frames(8)
    session(Engine, script, session_frames)  # warm the TTS cache and imports
    session(before, script, session_frames)
    times: dict[str, list[float]] = {"after": [], "before": []}
    counts = {}
    for _ in range(rounds):
        for name, cls in (("before", before), ("after", Engine)):
            wall, count = session(cls, script, session_frames)
            times[name].append(wall)
            counts[name] = count
    after_ms = statistics.median(times["after"]) * 1000
    before_ms = statistics.median(times["before"]) * 1000
    print(
        json.dumps(
            {
                "bench": "engine",
                "metric": "engine_session_cost",
                "value": round(after_ms / before_ms, 3),
                "unit": "x",
                "baseline": f"engine.py at {rev}, same run, interleaved",
                "after_ms": round(after_ms, 2),
                "before_ms": round(before_ms, 2),
                "events": counts,
                "frames": len(session_frames),
                "rounds": rounds,
            }
        )
    )


class UserBrain:
    """The bundled script, wrapped so that the engine treats it as a user's brain (handed out)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @property
    def phrases(self) -> Any:
        return self.inner.phrases

    def reply(self, context: BrainInput) -> Reply:
        return self.inner.reply(context)  # type: ignore[no-any-return]


async def bench_decision(rounds: int) -> None:
    script = resolve_script("returns_desk")
    threads = WorkerThreads(4)
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "I want a refund"}]}
    create = json.dumps({"type": "response.create", "response": {"output_modalities": ["text"]}})

    async def one(hand_out: bool) -> float:
        brain = UserBrain(script) if hand_out else script
        engine = Engine(brain, pace="fast", services=SERVICES, seed=1, hand_out_work=hand_out)  # type: ignore[arg-type]
        engine.start(0.0)
        engine.receive(json.dumps({"type": "conversation.item.create", "item": item}), 0.0)
        start = time.perf_counter()
        events = engine.receive(create, 0.0)
        for work in engine.take_work():
            events += engine.deliver(work, await work.run_async(threads), 0.0)
        elapsed = time.perf_counter() - start
        assert events[-2]["type"] == "response.done", events[-2]["type"]
        return elapsed

    for _ in range(20):
        await one(False)
        await one(True)
    inline, handed = [], []
    for _ in range(rounds * 20):
        inline.append(await one(False))
        handed.append(await one(True))
    inline_us = statistics.median(inline) * 1e6
    handed_us = statistics.median(handed) * 1e6
    print(
        json.dumps(
            {
                "bench": "engine",
                "metric": "brain_decision_handed_out_vs_inline",
                "value": round(handed_us / inline_us, 3),
                "unit": "x",
                "baseline": "the same response decided inline (bundled script brain)",
                "inline_us": round(inline_us, 1),
                "handed_out_us": round(handed_us, 1),
                "samples": len(inline),
            }
        )
    )
    threads.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--before-rev", default="9272609", help="git revision whose engine.py is the baseline"
    )
    args = parser.parse_args()
    bench_session(args.rounds, args.before_rev)
    asyncio.run(bench_decision(args.rounds))


if __name__ == "__main__":
    main()
