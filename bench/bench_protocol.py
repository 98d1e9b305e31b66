"""The sans-I/O client protocol's cost per server frame, in-process (no socket, no event loop).

The stream is bench_session.py's: `--seconds` of a GA audio turn (100 ms `response.output_audio.delta` events
with a transcript delta each, then the done events). Timed per frame, best of `--repeat` passes:

- json_loads: `json.loads` of every frame (the least any client does), the baseline of the same run;
- protocol_receive: `ClientProtocol.receive(frame, t_ms)` (parse, deltas, conversation state, playback
  tracking, app events), no recorder;
- session_receive: the same plus `Session._publish` of each app event, as the session's reader does (no
  listeners, recording off: the events go to the iterator's queue);
- pair_text_turn: one `ConnectionPair` text turn against the engine (`returns_desk`, pace="fast"), in ms.

Prints JSON lines; the ratios are against json_loads measured in the same run.

    python bench/bench_protocol.py [--seconds 60] [--repeat 30]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from bench_session import frames  # this folder is on sys.path when the bench runs as a script

from voicelab.config import SessionConfig
from voicelab.protocol.client import ClientProtocol
from voicelab.session import Session
from voicelab.testing import ConnectionPair


def per_frame_us(stream: list[str], run: Callable[[list[str]], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run(stream)
        best = min(best, time.perf_counter() - start)
    return best / len(stream) * 1e6


def loads(stream: list[str]) -> None:
    for frame in stream:
        json.loads(frame)


def protocol_receive(stream: list[str]) -> None:
    protocol = ClientProtocol(SessionConfig())
    receive = protocol.receive
    for frame in stream:
        receive(frame, 0.0)


def session_receive(stream: list[str]) -> None:
    session = Session(SessionConfig(), url="ws://127.0.0.1:9/v1/realtime", api_key="k", record_dir=False)
    receive, publish = session.protocol.receive, session._publish
    for frame in stream:
        for event in receive(frame, 0.0):
            publish(event)


def pair_turn_ms(repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        pair = ConnectionPair({"output_modalities": ["text"]}, script="returns_desk")
        pair.client.send_text("I would like to return my order")
        pair.run_until_idle()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


def main(seconds: int, repeat: int) -> None:
    stream = frames(seconds)
    base = {"bench": "protocol", "frames": len(stream), "audio_s": seconds, "passes": repeat}
    bare = per_frame_us(stream, loads, repeat)
    print(json.dumps({**base, "metric": "json_loads_per_frame", "value": round(bare, 3), "unit": "us"}))
    for name, run in (("protocol_receive", protocol_receive), ("session_receive", session_receive)):
        cost = per_frame_us(stream, run, repeat)
        line = {**base, "metric": f"{name}_per_frame", "value": round(cost, 3), "unit": "us"}
        print(
            json.dumps({**line, "baseline": "json.loads per frame, same run", "ratio": round(cost / bare, 3)})
        )
    turn = pair_turn_ms(max(3, repeat // 5))
    print(json.dumps({**base, "metric": "pair_text_turn", "value": round(turn, 2), "unit": "ms"}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="seconds of assistant audio in the stream")
    parser.add_argument("--repeat", type=int, default=30, help="timed passes (the best is kept)")
    args = parser.parse_args()
    main(args.seconds, args.repeat)
