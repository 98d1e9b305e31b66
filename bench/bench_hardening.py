"""What the hardening of issue 8 costs per frame. Prints one JSON line per figure.

- parse_frame_vs_decode_frame: the shared frame decoder with its depth check (`parse_frame`) against the bare
  decoder (`decode_frame`), on a 100 ms `input_audio_buffer.append` frame and on a `response.done` frame;
  and what the check adds per frame as a share of the engine's whole work on one 100 ms append;
- engine_append_trimmed: the engine handling 100 ms appends of silence under server VAD with the idle buffer
  trimmed as it goes, as a ratio to the same appends with trimming off (the buffer grows, as before).

Ratios of medians measured in the same run (interleaved rounds). Target: the frame check under 2% of an
append's engine time; trimming no slower than growing.

    python bench/bench_hardening.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "server"))

from voicelab.protocol.events import decode_frame, parse_frame
from voicelab.protocol.samples import text_turn
from voicelab.server.brains import EchoBrain
from voicelab.server.engine import Engine

APPEND = json.dumps(
    {
        "type": "input_audio_buffer.append",
        "event_id": "event_1",
        "audio": base64.b64encode(bytes(4800)).decode(),
    }
)
DONE = json.dumps(
    next(e for e in text_turn("hi", "Hello there, how can I help you today?") if e["type"] == "response.done")
)


def _per_call_us(function: Any, argument: Any, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        function(argument)
    return (time.perf_counter() - start) / count * 1e6


def _engine_append_us(trim: bool, appends: int) -> float:
    from server_helpers import FAKE_SERVICES

    import voicelab.server.engine as engine_module

    keep = engine_module.VAD_KEEP_MS
    engine_module.VAD_KEEP_MS = keep if trim else 1e15  # 1e15 ms: never trims
    try:
        return _appends(appends, FAKE_SERVICES)
    finally:
        engine_module.VAD_KEEP_MS = keep


def _appends(appends: int, services: Any) -> float:
    engine = Engine(EchoBrain(), pace="fast", services=services, seed=1)
    engine.start(0)
    detection: Any = {"type": "server_vad"}
    update = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": detection}}},
    }
    engine.receive(json.dumps(update), 0)
    start = time.perf_counter()
    for index in range(appends):
        engine.receive(APPEND, index * 100.0)
    return (time.perf_counter() - start) / appends * 1e6


def main(repeat: int) -> None:
    ratios: dict[str, list[float]] = {"append": [], "response_done": []}
    bare: dict[str, list[float]] = {"append": [], "response_done": []}
    for _ in range(repeat):
        for name, frame in (("append", APPEND), ("response_done", DONE)):
            base = _per_call_us(decode_frame, frame, 2000)
            checked = _per_call_us(parse_frame, frame, 2000)
            ratios[name].append(checked / base)
            bare[name].append(base)
    for name in ratios:
        print(
            json.dumps(
                {
                    "bench": "hardening",
                    "metric": f"parse_frame_vs_decode_frame_{name}",
                    "value": round(statistics.median(ratios[name]), 3),
                    "unit": "ratio",
                    "decode_frame_us": round(statistics.median(bare[name]), 2),
                    "spread": [round(min(ratios[name]), 3), round(max(ratios[name]), 3)],
                }
            )
        )
    trimmed_ratio: list[float] = []
    append_us: list[float] = []
    for _ in range(max(3, repeat // 3)):  # A B B A: a drift of the machine hits both alike
        growing = _engine_append_us(False, 3000)
        trimmed = _engine_append_us(True, 3000) + _engine_append_us(True, 3000)
        growing += _engine_append_us(False, 3000)
        trimmed_ratio.append(trimmed / growing)
        append_us.append(trimmed / 2)
    engine_us = statistics.median(append_us)
    check_us = statistics.median(bare["append"]) * (statistics.median(ratios["append"]) - 1)
    print(
        json.dumps(
            {
                "bench": "hardening",
                "metric": "frame_check_share_of_engine_append",
                "value": round(check_us / engine_us, 4),
                "unit": "fraction",
                "check_us": round(check_us, 2),
                "engine_append_us": round(engine_us, 1),
                "target": "< 0.02",
            }
        )
    )
    print(
        json.dumps(
            {
                "bench": "hardening",
                "metric": "engine_append_trimmed_vs_growing",
                "value": round(statistics.median(trimmed_ratio), 3),
                "unit": "ratio",
                "appends": 3000,
                "note": "5 min of 100 ms silence appends under server_vad (the tests' energy detector)",
                "target": "about 1.0 (this machine: +-10% noise)",
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=15)
    main(parser.parse_args().repeat)
